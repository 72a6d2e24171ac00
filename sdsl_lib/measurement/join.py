"""Joins of the measured tables, for the analysis (each stage writes only its own tables).

- :func:`alpha_with_context`: ``alpha`` with the sizes and perplexities of ``models``, the FLOP
  ratio :math:`c = N/M`, the measured :math:`c` of ``cost_calibration`` and the greedy acceptance of
  the throughput runs: the wide table that ``alpha.csv`` itself held before the stage split (the
  committed profiles still hold it, and are returned as they are);
- :func:`acceptance_by_position`: the temperature-1 rows (alpha stage) and the temperature-0 rows
  (throughput stage) in one frame.

Every table is read through :func:`sdsl_lib.measurement.schema.read_table`. Tables joined must come
from the same trained models: when their sidecars record the models' fingerprints, a disagreement
stops the join with one line (``SchemaError``) instead of mixing two trainings.

No torch here.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd

from sdsl_lib.measurement import schema
from sdsl_lib.measurement.schema import TABLES, SchemaError, read_table

__all__ = ["ALPHA_CONTEXT_COLUMNS", "all_pairs", "alpha_with_context", "acceptance_by_position", "greedy_acceptance"]

#: The columns :func:`alpha_with_context` adds to the alpha stage's own (the schema's legacy ones).
ALPHA_CONTEXT_COLUMNS = tuple(
    c.name for c in TABLES["alpha"].columns if not c.required and c.name not in schema.RECENT_COLUMNS
)


def all_pairs(profile_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """Every (draft, target) pair of the models in ``models.csv`` (the expected set of a complete run)."""
    m = read_table(profile_dir, "models")
    return [(d, t) for t in m[m.role == "target"].model for d in m[m.role == "draft"].model]


def _model_fingerprints(profile_dir: Path, name: str) -> dict:
    side = profile_dir / f"{name}.csv.json"
    try:
        return json.loads(side.read_text()).get("model_fingerprints") or {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}


def _check_same_models(profile_dir: Path, names) -> None:
    seen: dict[str, tuple[str, str]] = {}
    for name in names:
        for model, fp in _model_fingerprints(profile_dir, name).items():
            if model in seen and seen[model][1] != fp:
                raise SchemaError(
                    f"{profile_dir / (name + '.csv')}: measured on another training of model {model!r} than "
                    f"{seen[model][0]}.csv (fingerprints {fp} vs {seen[model][1]}); rerun that stage"
                )
            seen.setdefault(model, (name, fp))


def acceptance_by_position(profile_dir: str | os.PathLike, expected_pairs=None) -> pd.DataFrame:
    """Per-position acceptance at temperature 1 (alpha stage) and 0 (throughput stage, when measured)."""
    d = Path(profile_dir)
    pos = read_table(d, "acceptance_by_position", expected_pairs)
    if (d / "acceptance_by_position_greedy.csv").is_file():
        _check_same_models(d, ("acceptance_by_position", "acceptance_by_position_greedy"))
        greedy = read_table(d, "acceptance_by_position_greedy", expected_pairs)
        pos = pd.concat([pos[pos.temperature != 0], greedy], ignore_index=True)
    return pos


def greedy_acceptance(positions: pd.DataFrame) -> pd.Series:
    """Accepted / attempted draft positions of the greedy runs, per (draft, target)."""
    g = positions[positions.temperature == 0].groupby(["draft", "target"])[["accepts", "attempts"]].sum()
    return g["accepts"] / g["attempts"].where(g["attempts"] > 0)


def alpha_with_context(profile_dir: str | os.PathLike, expected_pairs=None) -> pd.DataFrame:
    """``alpha`` joined with models, cost calibration and greedy acceptance (one row per pair).

    Parameters
    ----------
    profile_dir : path
        A measured profile folder.
    expected_pairs : iterable of (draft, target), optional
        Default: every pair of ``models.csv`` (a complete run); a pair missing or extra raises.

    Returns
    -------
    pandas.DataFrame
        The schema's ``alpha`` columns, legacy ones included. ``c_measured`` and
        ``greedy_acceptance_run`` are NaN when their stage has not been run.
    """
    d = Path(profile_dir)
    expected_pairs = all_pairs(d) if expected_pairs is None else list(expected_pairs)
    alpha = read_table(d, "alpha", expected_pairs)
    if all(c in alpha.columns for c in ALPHA_CONTEXT_COLUMNS):
        return alpha  # written before the stage split: already joined
    _check_same_models(d, ("models", "alpha", "cost_calibration", "acceptance_by_position_greedy"))
    m = read_table(d, "models").set_index("model")
    dm, tm = m.loc[alpha.draft].reset_index(drop=True), m.loc[alpha.target].reset_index(drop=True)
    out = alpha.copy()
    for side, mm in (("draft", dm), ("target", tm)):
        out[f"n_params_{side}"] = mm.n_params.to_numpy()
        out[f"n_tokens_{side}"] = mm.n_tokens.to_numpy()
        out[f"{side}_test_ppl"] = mm.test_ppl.to_numpy()
        out[f"{side}_val_ppl"] = mm.val_ppl.to_numpy()
    out["c_flops"] = dm.n_params.to_numpy() / tm.n_params.to_numpy()
    out["c_flops_non_embedding"] = dm.n_params_non_embedding.to_numpy() / tm.n_params_non_embedding.to_numpy()
    out["c_measured"] = math.nan
    if (d / "cost_calibration.csv").is_file():
        cal = read_table(d, "cost_calibration", expected_models=list(m.index))
        one = cal[cal.n_new_tokens == 1].set_index("model")["latency_median_s"]
        out["c_measured"] = one.loc[alpha.draft].to_numpy() / one.loc[alpha.target].to_numpy()
    out["greedy_acceptance_run"] = math.nan
    if (d / "acceptance_by_position_greedy.csv").is_file():
        g = greedy_acceptance(read_table(d, "acceptance_by_position_greedy", expected_pairs))
        out["greedy_acceptance_run"] = [g.get((a, b), math.nan) for a, b in zip(alpha.draft, alpha.target)]
    order = [c.name for c in TABLES["alpha"].columns if c.name in out.columns]
    return out[order]
