"""The measured tables of one profile (``data/measured/<profile>/*.csv``), read for the analysis.

Every read goes through :func:`read_table` (one function, one table name), so that when
:mod:`sdsl_lib.measurement.schema` (the one definition of every measured CSV) is settled, this
module calls it there and nowhere else. Until then the check is minimal: the file exists and holds
the columns the analysis uses (:data:`FILES`).

:func:`table_fingerprints` gives the sha256 of each table's bytes: the provenance that results
files carry, so that a notebook reading an earlier notebook's results can tell whether they were
computed from the tables on disk now (:mod:`sdsl_lib.analysis.results`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sdsl_lib.io import repo_root

__all__ = [
    "FILES",
    "MeasuredData",
    "measured_dir",
    "read_table",
    "load_measured",
    "table_fingerprints",
    "json_safe",
    "need_columns",
]

_ALPHA_COLUMNS = [
    "draft",
    "target",
    "n_params_draft",
    "n_params_target",
    "n_tokens_draft",
    "n_tokens_target",
    "draft_val_ppl",
    "target_val_ppl",
    "draft_test_ppl",
    "target_test_ppl",
    "alpha_tf",
    "alpha_tf_ci95_lower",
    "alpha_tf_ci95_upper",
    "alpha_tar",
    "alpha_tar_ci95_lower",
    "alpha_tar_ci95_upper",
    "greedy_match_tf",
    "greedy_match_tf_ci95_lower",
    "greedy_match_tf_ci95_upper",
    "greedy_acceptance_run",
    "c_flops",
    "c_measured",
]

#: The measured files and the columns the analysis reads from each (``data/measured/README.md``).
FILES = {
    "models": (
        "models.csv",
        ["model", "role", "n_params", "n_params_non_embedding", "n_tokens", "val_loss_nats", "val_ppl", "test_ppl"],
    ),
    "loss_curves": ("loss_curves.csv", ["model", "step", "n_tokens", "train_loss_nats", "val_loss_subset_nats"]),
    "loss_budget_points": (
        "loss_budget_points.csv",
        ["model", "n_params", "n_params_non_embedding", "n_tokens", "val_loss_nats", "branch"],
    ),
    "alpha": ("alpha.csv", _ALPHA_COLUMNS),
    "tar": ("tar.csv", ["draft", "target", "gamma", "n_iterations_full", "tar_no_bonus", "tar_no_bonus_std"]),
    "acceptance_by_position": (
        "acceptance_by_position.csv",
        ["draft", "target", "temperature", "gamma", "position", "attempts", "accepts"],
    ),
    "cost_calibration": (
        "cost_calibration.csv",
        ["model", "role", "n_params", "n_new_tokens", "latency_median_s", "latency_p025_s", "latency_p975_s"],
    ),
    "throughput": (
        "throughput.csv",
        [
            "draft",
            "target",
            "gamma",
            "method",
            "prompt_idx",
            "new_tokens",
            "time_s",
            "tokens_per_s",
            "speedup_vs_autoregressive",
        ],
    ),
    "throughput_summary": (
        "throughput_summary.csv",
        [
            "draft",
            "target",
            "method",
            "gamma",
            "n_prompts",
            "speedup_median",
            "speedup_p025",
            "speedup_p975",
            "tokens_per_iteration_mean",
        ],
    ),
    "hf_baseline": ("hf_baseline.csv", ["draft", "target", "engine", "gamma", "tokens_per_s"]),
}
_OPTIONAL = ("hf_baseline",)


@dataclass(frozen=True)
class MeasuredData:
    """The tidy tables of one measured profile (``None`` for a table not loaded or absent)."""

    profile: str
    path: Path
    models: pd.DataFrame | None = None
    loss_curves: pd.DataFrame | None = None
    loss_budget_points: pd.DataFrame | None = None
    alpha: pd.DataFrame | None = None
    tar: pd.DataFrame | None = None
    acceptance_by_position: pd.DataFrame | None = None
    cost_calibration: pd.DataFrame | None = None
    throughput: pd.DataFrame | None = None
    throughput_summary: pd.DataFrame | None = None
    hf_baseline: pd.DataFrame | None = None
    sidecars: dict = field(default_factory=dict)

    @property
    def drafts(self) -> list[str]:
        """Draft names, smallest first."""
        m = self.models
        return list(m[m.role == "draft"].sort_values("n_params")["model"])

    @property
    def targets(self) -> list[str]:
        """Target names, smallest first."""
        m = self.models
        return list(m[m.role == "target"].sort_values("n_params")["model"])


def measured_dir(profile: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The folder of a measured profile: ``<root>/data/measured/<profile>/`` (or ``profile`` itself
    when it names an existing folder).

    Raises ``ValueError`` naming the profiles that exist when the folder is missing.
    """
    p = Path(profile)
    if p.is_dir() and (p / "models.csv").is_file():
        return p
    base = (Path(root) if root is not None else repo_root()) / "data" / "measured"
    path = base / str(profile)
    if not path.is_dir():
        have = sorted(q.name for q in base.iterdir() if q.is_dir()) if base.is_dir() else []
        raise ValueError(
            f"profile must name a measured folder under {base} (have: {have or 'none'}), got {str(profile)!r}"
        )
    return path


def read_table(folder: str | os.PathLike, name: str) -> pd.DataFrame:
    """Read one measured table (``name`` a key of :data:`FILES`), validated against the schema.

    The single entry point of the analysis to the measured CSVs. Every table is checked by
    :mod:`sdsl_lib.measurement.schema` (the one definition of every measured table: columns, dtypes,
    ranges, keys, the expected set of pairs), so a damaged table stops the notebook that reads it with
    one line naming the file; then the columns the analysis uses (:data:`FILES`) are checked.

    Raises
    ------
    ValueError
        One line: unknown table, missing file, a table that breaks the schema, or missing columns.
    """
    from sdsl_lib.measurement import join, schema  # torch-free

    if name not in FILES:
        raise ValueError(f"name must be one of {list(FILES)}, got {name!r}")
    file, columns = FILES[name]
    path = Path(folder) / file
    if not path.is_file():
        raise ValueError(
            f"{Path(folder)} lacks {file}; run `python -m sdsl_lib.measurement --profile {Path(folder).name}`"
        )
    if name == "alpha":
        df = join.alpha_with_context(folder)  # the wide table, old or new layout
    elif name == "acceptance_by_position":
        df = join.acceptance_by_position(folder, join.all_pairs(folder))
    else:
        spec = schema.table(name)
        pairs = join.all_pairs(folder) if spec.has_pairs and spec.stage != "hf" else None
        df = schema.read_table(folder, name, expected_pairs=pairs)
    need_columns(df, str(path), columns)
    return df


def load_measured(profile: str | os.PathLike, root: str | os.PathLike | None = None, require=None) -> MeasuredData:
    """Read the tidy CSVs of a measured profile through :func:`read_table`.

    Parameters
    ----------
    profile : str or path
        ``"cpu"``, ``"smoke"``, ``"gpu"``... (a folder under ``data/measured/``), or a folder.
    root : path, optional
        Repository root (default: this checkout).
    require : sequence of str, optional
        Table names (keys of :data:`FILES`) that must be present; default every table but
        ``hf_baseline``. Tables present but not required are loaded too.

    Returns
    -------
    MeasuredData

    Raises
    ------
    ValueError
        When a required file is missing, or a present file lacks a column listed in :data:`FILES`.
    """
    path = measured_dir(profile, root)
    require = [k for k in FILES if k not in _OPTIONAL] if require is None else list(require)
    unknown = [k for k in require if k not in FILES]
    if unknown:
        raise ValueError(f"require must be among {list(FILES)}, got {unknown}")
    tables, sidecars = {}, {}
    for key, (name, _) in FILES.items():
        f = path / name
        if not f.is_file():
            if key in require:
                raise ValueError(
                    f"{path} lacks {name} (needed: {require}); "
                    f"run `python -m sdsl_lib.measurement.pipeline --profile {path.name}`"
                )
            continue
        tables[key] = read_table(path, key)
        side = f.with_name(f.name + ".json")
        if side.is_file():
            sidecars[key] = json.loads(side.read_text())
    return MeasuredData(profile=path.name, path=path, sidecars=sidecars, **tables)


def table_fingerprints(data: MeasuredData, names) -> dict:
    """The sha256 of each named table's bytes on disk (the provenance a results file carries).

    Returns ``{name: {"file": "alpha.csv", "sha256": "...", "commit": <sidecar commit or None>}}``.
    """
    out = {}
    for name in names:
        if name not in FILES:
            raise ValueError(f"names must be among {list(FILES)}, got {name!r}")
        path = Path(data.path) / FILES[name][0]
        if not path.is_file():
            raise ValueError(f"{data.path} lacks {FILES[name][0]}, which the provenance names")
        side = data.sidecars.get(name, {})
        commit = side.get("git_commit") or side.get("commit") or (side.get("provenance") or {}).get("git_commit")
        out[name] = {"file": FILES[name][0], "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "commit": commit}
    return out


def json_safe(obj):
    """Recursively turn numpy scalars into Python numbers and NaN/inf into ``None`` (strict JSON).

    Examples
    --------
    >>> json_safe({"a": np.float64("nan"), "b": [np.int64(2), 0.5], "c": np.bool_(True)})
    {'a': None, 'b': [2, 0.5], 'c': True}
    """
    if hasattr(obj, "to_dict") and not isinstance(obj, (pd.DataFrame, pd.Series)):
        return json_safe(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def need_columns(df: pd.DataFrame, name: str, columns) -> None:
    """Raise ``ValueError`` naming ``name`` and the columns it lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")
