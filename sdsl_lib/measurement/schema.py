"""The one definition of every measured table: columns, dtypes, ranges, keys and the stage that writes it.

Every CSV the measurement pipeline writes under ``<out>/<profile>/`` is declared here, and both
sides use the declaration: the stages pass their frames through :func:`prepare` before writing
(column order, checks), and readers call :func:`read_table`, which stops with **one line** naming the
file and what is wrong (a missing file or column, an unknown column, a bad dtype, a value out of
range, missing or extra (draft, target) pairs or models, a duplicate key, an unparsable file).

No torch here: the analysis and the planner import this module without the measurement extras.

Legacy columns
    Before the stages were split (each stage writes only its own tables), ``alpha.csv`` carried
    columns joined from other stages (perplexities and sizes from ``models.csv``, ``c_measured``
    from ``cost_calibration.csv``, ``greedy_acceptance_run`` from the throughput runs), and
    ``acceptance_by_position.csv`` held the greedy (temperature 0) rows of the throughput stage
    too. The committed profiles keep those bytes; such columns are declared ``legacy``: accepted
    and checked when present, never written. :mod:`sdsl_lib.measurement.join` makes the joined
    view from either layout.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from sdsl_lib.measurement.schema_core import Column, SchemaError, Table, check_frame, check_set

__all__ = [
    "Column",
    "Table",
    "TABLES",
    "SchemaError",
    "table",
    "prepare",
    "validate",
    "read_table",
    "read_file",
    "stage_tables",
    "RECENT_COLUMNS",
    "REAL_ONLY",
    "ENGINE_ONLY",
]

_INF = math.inf


def _c(name, kind, lo=-_INF, hi=_INF, nullable=False, required=True) -> Column:
    return Column(name, kind, lo, hi, nullable, required)


def _legacy(name, kind, lo=-_INF, hi=_INF, nullable=False) -> Column:
    return Column(name, kind, lo, hi, nullable, required=False)


_PAIR = (_c("draft", "str"), _c("target", "str"))
_PROB, _POS, _NONNEG = (0.0, 1.0), (0.0, _INF), (0.0, _INF)
_CI = ("ci95_lower", "ci95_upper")


def _le(a: str, b: str):
    """Row check ``a <= b`` (rows where either is missing pass)."""
    return (f"{a} <= {b}", lambda df: ~(df[a] > df[b]) | df[a].isna() | df[b].isna())


_TABLE_LIST = (
    Table(
        "models",
        "train",
        (
            _c("model", "str"),
            _c("role", "str"),
            # 0 and empty losses: the prompt-lookup draft (no weights, a point mass has no perplexity).
            _c("n_params", "int", 0),
            _c("n_params_non_embedding", "int", 0),
            _c("n_params_embedding", "int", 0),
            _c("d_model", "int", 1),
            _c("n_layers", "int", 1),
            _c("n_heads", "int", 1),
            _c("d_ff", "int", 1),
            _c("vocab_size", "int", 2),
            _c("n_tokens", "int", 0),
            _c("n_steps", "int", 0),
            _c("lr_max", "float", 0),
            _c("val_loss_nats", "float", 0, nullable=True),
            _c("val_ppl", "float", 1, nullable=True),
            _c("test_loss_nats", "float", 0, nullable=True),
            _c("test_ppl", "float", 1, nullable=True),
            _c("val_tokens", "int", 1),
            _c("test_tokens", "int", 1),
            _c("train_time_s", "float", 0),
            _c("device", "str"),
            _c("torch_threads", "int", 1),
        ),
        ("model",),
        (
            ("role in {draft, target}", lambda df: df["role"].isin(["draft", "target"])),
            (
                "n_params = n_params_embedding + n_params_non_embedding",
                lambda df: df["n_params"] == df["n_params_embedding"] + df["n_params_non_embedding"],
            ),
        ),
    ),
    Table(
        "loss_curves",
        "train",
        (
            _c("model", "str"),
            _c("step", "int", 1),
            _c("n_tokens", "int", 1),
            _c("lr", "float", 0),
            _c("train_loss_nats", "float", 0),
            _c("val_loss_subset_nats", "float", 0),
        ),
        ("model", "step"),
    ),
    Table(
        "loss_budget_points",
        "train",
        (
            _c("model", "str"),
            _c("n_params", "int", 1),
            _c("n_params_non_embedding", "int", 0),
            _c("n_tokens", "int", 1),
            _c("n_steps", "int", 1),
            _c("budget_frac", "float", 0, 1),
            _c("val_loss_nats", "float", 0),
            _c("val_ppl", "float", 1),
            _c("branch", "str"),
        ),
        ("model", "budget_frac"),
    ),
    Table(
        "alpha",
        "alpha",
        (
            *_PAIR,
            _legacy("n_params_draft", "int", 1),
            _legacy("n_params_target", "int", 1),
            _legacy("n_tokens_draft", "int", 0),
            _legacy("n_tokens_target", "int", 0),
            _legacy("draft_test_ppl", "float", 1),
            _legacy("target_test_ppl", "float", 1),
            _legacy("draft_val_ppl", "float", 1),
            _legacy("target_val_ppl", "float", 1),
            _c("alpha_tf", "float", *_PROB),
            *(_c(f"alpha_tf_{s}", "float", nullable=True) for s in _CI),
            _c("alpha_tar", "float", *_PROB, nullable=True),
            *(_c(f"alpha_tar_{s}", "float", nullable=True) for s in _CI),
            _c("alpha_tar_std_error", "float", 0, nullable=True),
            _c("alpha_tar_residual_std", "float", 0, nullable=True),
            _c("greedy_match_tf", "float", *_PROB),
            *(_c(f"greedy_match_tf_{s}", "float", nullable=True) for s in _CI),
            _c("n_positions", "int", 1),
            _legacy("greedy_acceptance_run", "float", *_PROB, nullable=True),
            # Real target only: repetition statistics of the scored text (workload.repetition_stats).
            _legacy("text_distinct_frac", "float", *_PROB),
            _legacy("text_repeat4_rate", "float", *_PROB),
            _legacy("text_looping", "bool"),
            _legacy("c_flops", "float", 0),
            _legacy("c_flops_non_embedding", "float", 0),
            _legacy("c_measured", "float", 0, nullable=True),
        ),
        ("draft", "target"),
        (_le("alpha_tf_ci95_lower", "alpha_tf"), _le("alpha_tf", "alpha_tf_ci95_upper")),
    ),
    Table(
        "tar",
        "alpha",
        (
            *_PAIR,
            _c("temperature", "float", 0),
            _c("gamma", "int", 1),
            _c("n_iterations_full", "int", 0),
            _c("n_prompts", "int", 1),
            _c("new_tokens_per_prompt", "int", 1),
            _c("tar_no_bonus", "float", 0, nullable=True),
            _c("tar_no_bonus_std", "float", 0, nullable=True),
            _c("tar_with_bonus", "float", 1, nullable=True),
            _c("time_s", "float", 0),
        ),
        ("draft", "target", "temperature", "gamma"),
        (_le("tar_no_bonus", "gamma"),),
        ("temperature", "gamma"),
    ),
)

_POSITION_COLUMNS = (
    *_PAIR,
    _c("temperature", "float", 0),
    _c("gamma", "int", 1),
    _c("position", "int", 1),
    _c("attempts", "int", 0),
    _c("accepts", "int", 0),
    _c("acceptance_rate", "float", *_PROB, nullable=True),
)
_POSITION_KEY = ("draft", "target", "temperature", "gamma", "position")
_POSITION_CHECKS = (_le("accepts", "attempts"), _le("position", "gamma"))
_POSITION_GRID = ("temperature", "gamma", "position")


def _without(columns: tuple, name: str) -> tuple:
    return tuple(c for c in columns if c.name != name)


#: Columns added with the real target (timing protocol, repetition statistics): optional, because
#: the tables committed before them lack them; every new run writes them.
RECENT_COLUMNS = frozenset(
    {"other_load_cores", "load_flagged", "output_distinct_frac", "output_repeat4_rate", "n_prompts_rejected_load",
     "output_distinct_frac_mean", "output_repeat4_rate_mean", "text_distinct_frac", "text_repeat4_rate",
     "text_looping"}
)  # fmt: skip
#: Tables only a profile on a real target writes.
REAL_ONLY = ("throughput_sampled", "throughput_sampled_summary", "exactness", "chi_square")
#: Tables only ``--engine vllm`` writes (stage vllm).
ENGINE_ONLY = ("vllm_acceptance", "vllm_acceptance_by_position", "vllm_throughput")

_TPUT_COLUMNS = (
    *_PAIR,
    _c("prompt_idx", "int", 0),
    _c("method", "str"),
    _c("gamma", "int", 0),
    _c("new_tokens", "int", 1),
    _c("time_s", "float", 0),
    _c("tokens_per_s", "float", 0),
    _c("iterations", "int", 1, nullable=True),
    _c("drafted", "int", 0, nullable=True),
    _c("accepted", "int", 0, nullable=True),
    _c("draft_time_s", "float", 0, nullable=True),
    _c("verify_time_s", "float", 0, nullable=True),
    _c("matches_autoregressive", "bool", nullable=True),
    _c("speedup_vs_autoregressive", "float", 0),
    # Timing protocol and repetition statistics (absent from tables measured before they existed).
    _legacy("other_load_cores", "float", 0, nullable=True),
    _legacy("load_flagged", "bool"),
    _legacy("output_distinct_frac", "float", *_PROB, nullable=True),
    _legacy("output_repeat4_rate", "float", *_PROB, nullable=True),
)
_TPUT_KEY = ("draft", "target", "prompt_idx", "method", "gamma")
_TPUT_CHECKS = (
    ("method in {autoregressive, speculative}", lambda df: df["method"].isin(["autoregressive", "speculative"])),
)
_TPUT_GRID = ("prompt_idx", "method", "gamma")
_SUMMARY_COLUMNS = (
    *_PAIR,
    _c("method", "str"),
    _c("gamma", "int", 0),
    _c("n_prompts", "int", 1),
    _c("tokens_per_s_median", "float", 0),
    _c("tokens_per_s_p025", "float", 0),
    _c("tokens_per_s_p975", "float", 0),
    _c("speedup_median", "float", 0),
    _c("speedup_p025", "float", 0),
    _c("speedup_p975", "float", 0),
    _c("tokens_per_iteration_mean", "float", 1, nullable=True),
    _c("all_match_autoregressive", "bool", nullable=True),
    _legacy("n_prompts_rejected_load", "int", 0),
    _legacy("output_distinct_frac_mean", "float", *_PROB, nullable=True),
    _legacy("output_repeat4_rate_mean", "float", *_PROB, nullable=True),
)
_SUMMARY_KEY = ("draft", "target", "method", "gamma")
_SUMMARY_CHECKS = (_le("speedup_p025", "speedup_median"), _le("speedup_median", "speedup_p975"))

_TABLE_LIST += (
    # Temperature 1 (the TAR runs of the alpha stage); legacy files hold the greedy rows as well.
    Table("acceptance_by_position", "alpha", _POSITION_COLUMNS, _POSITION_KEY, _POSITION_CHECKS, _POSITION_GRID),
    Table(
        "cost_calibration",
        "calibrate",
        (
            _c("model", "str"),
            _c("role", "str"),
            _c("n_params", "int", 0),
            _c("n_new_tokens", "int", 1),
            _c("prefix_len_tokens", "int", 1),
            _c("latency_median_s", "float", 0),
            _c("latency_p025_s", "float", 0),
            _c("latency_p975_s", "float", 0),
            _c("n_repeats", "int", 1),
            _c("latency_rel_one_token", "float", 0),
        ),
        ("model", "n_new_tokens"),
        (_le("latency_p025_s", "latency_median_s"), _le("latency_median_s", "latency_p975_s")),
        ("n_new_tokens",),
    ),
    Table("throughput", "throughput", _TPUT_COLUMNS, _TPUT_KEY, _TPUT_CHECKS, _TPUT_GRID),
    Table("throughput_summary", "throughput", _SUMMARY_COLUMNS, _SUMMARY_KEY, _SUMMARY_CHECKS, ("method", "gamma")),
    # Real target only: the same runs sampled at the profile's temperature (0.7).
    Table(
        "throughput_sampled",
        "throughput",
        (*_without(_TPUT_COLUMNS, "matches_autoregressive"), _c("temperature", "float", 0)),
        _TPUT_KEY,
        _TPUT_CHECKS,
        _TPUT_GRID,
    ),
    Table(
        "throughput_sampled_summary",
        "throughput",
        (*_without(_SUMMARY_COLUMNS, "all_match_autoregressive"), _c("temperature", "float", 0)),
        _SUMMARY_KEY,
        _SUMMARY_CHECKS,
        ("method", "gamma"),
    ),
    # Temperature 0: accepted / attempted draft positions along the greedy throughput runs.
    Table(
        "acceptance_by_position_greedy",
        "throughput",
        _POSITION_COLUMNS,
        _POSITION_KEY,
        _POSITION_CHECKS,
        _POSITION_GRID,
    ),
    Table(
        "hf_baseline",
        "hf",
        (
            *_PAIR,
            _c("prompt_idx", "int", 0),
            _c("repeat", "int", 0),
            _c("engine", "str"),
            _c("gamma", "int", 1),
            _c("new_tokens", "int", 1),
            _c("time_s", "float", 0),
            _c("tokens_per_s", "float", 0),
            _c("iterations", "int", 1, nullable=True),
            _c("drafted", "int", 0, nullable=True),
            _c("accepted", "int", 0, nullable=True),
            _c("identical", "bool"),
        ),
        ("draft", "target", "gamma", "prompt_idx", "repeat", "engine"),
        (("engine in {ours, hf}", lambda df: df["engine"].isin(["ours", "hf"])),),
        ("gamma", "prompt_idx", "repeat", "engine"),
    ),
    Table(
        "hf_summary",
        "hf",
        (
            *_PAIR,
            _c("gamma", "int", 1),
            _c("ours_over_hf_speed_ratio_median", "float", 0),
            _c("ours_over_hf_speed_ratio_p025", "float", 0),
            _c("ours_over_hf_speed_ratio_p975", "float", 0),
            _c("ours_tokens_per_s_median", "float", 0),
            _c("hf_tokens_per_s_median", "float", 0),
            _c("ours_accepted_over_drafted", "float", *_PROB, nullable=True),
            _c("n_prompts", "int", 1),
            _c("all_identical", "bool"),
        ),
        ("draft", "target", "gamma"),
    ),
)

_TABLE_LIST += (
    # Stage exact (real target, fp32): greedy speculative output against greedy decoding, per prompt.
    Table(
        "exactness",
        "exact",
        (
            *_PAIR,
            _c("gamma", "int", 1),
            _c("prompt_idx", "int", 0),
            _c("new_tokens", "int", 1),
            _c("matches_autoregressive", "bool"),
            _c("first_mismatch", "int", 0, nullable=True),
        ),
        ("draft", "target", "gamma", "prompt_idx"),
        (),
        ("gamma", "prompt_idx"),
    ),
    # Stage exact: chi-square test of the first sampled token against the target's own probabilities.
    Table(
        "chi_square",
        "exact",
        (
            *_PAIR,
            _c("temperature", "float", 0),
            _c("gamma", "int", 1),
            _c("n_draws", "int", 1),
            _c("n_bins", "int", 2),
            _c("min_expected", "float", 0),
            _c("statistic", "float", 0),
            _c("dof", "int", 1),
            _c("p_value", "float", *_PROB),
            _c("passes", "bool"),
        ),
        ("draft", "target", "temperature", "gamma"),
    ),
)

_ENGINE = _c("engine", "str")
_ENGINE_CHECK = ("engine in {vllm, ours}", lambda df: df["engine"].isin(["vllm", "ours"]))
_TABLE_LIST += (
    # Stage vllm (--engine vllm): vLLM's counters beside our loop's on the same prompts (greedy).
    Table(
        "vllm_acceptance",
        "vllm",
        (
            *_PAIR,
            _ENGINE,
            _c("gamma", "int", 1),
            _c("n_prompts", "int", 1),
            _c("new_tokens_per_prompt", "int", 1),
            _c("num_drafts", "int", 0),
            _c("num_draft_tokens", "int", 0),
            _c("num_accepted_tokens", "int", 0),
            _c("mean_acceptance_length", "float", 1, nullable=True),
            _c("draft_acceptance_rate", "float", *_PROB, nullable=True),
            _c("alpha", "float", *_PROB, nullable=True),
            *(_c(f"alpha_{s}", "float", *_PROB, nullable=True) for s in _CI),
            _c("alpha_tar", "float", *_PROB, nullable=True),
            _c("iid_p_value", "float", *_PROB, nullable=True),
            _c("greedy_equal_ar", "bool"),
        ),
        ("draft", "target", "engine", "gamma"),
        (_ENGINE_CHECK, _le("num_accepted_tokens", "num_draft_tokens")),
        ("engine", "gamma"),
    ),
    Table(
        "vllm_acceptance_by_position",
        "vllm",
        (*_POSITION_COLUMNS[:2], _ENGINE, *_POSITION_COLUMNS[2:], _c("per_draft_rate", "float", *_PROB, nullable=True)),
        ("draft", "target", "engine", "temperature", "gamma", "position"),
        (_ENGINE_CHECK, *_POSITION_CHECKS),
        ("engine", "temperature", "gamma", "position"),
    ),
    Table(
        "vllm_throughput",
        "vllm",
        (
            *_PAIR,
            _ENGINE,
            _c("method", "str"),
            _c("gamma", "int", 0),
            _c("batch_size", "int", 1),
            _c("n_prompts", "int", 1),
            _c("new_tokens", "int", 1),
            _c("seconds", "float", 0),
            _c("tokens_per_s", "float", 0),
            _c("speedup_vs_autoregressive", "float", 0),
            _c("loadavg1", "float", 0),
            _c("greedy_equal_ar", "bool"),
        ),
        ("draft", "target", "engine", "method", "gamma", "batch_size"),
        (_ENGINE_CHECK, _TPUT_CHECKS[0]),
        ("engine", "method", "gamma", "batch_size"),
    ),
)

#: Every measured table by name, in the order the stages write them.
TABLES: dict[str, Table] = {t.name: t for t in _TABLE_LIST}


def table(name: str) -> Table:
    """The declaration of table ``name`` (``"alpha"`` or ``"alpha.csv"``)."""
    key = name[:-4] if name.endswith(".csv") else name
    if key not in TABLES:
        raise ValueError(f"name must be one of {list(TABLES)}, got {name!r}")
    return TABLES[key]


def stage_tables(stage: str) -> tuple[str, ...]:
    """Names of the tables that ``stage`` writes (and no other stage does)."""
    return tuple(t.name for t in _TABLE_LIST if t.stage == stage)


def validate(df: pd.DataFrame, name: str, where: str | None = None, expected_pairs=None, expected_models=None) -> None:
    """Check ``df`` against the declaration of table ``name``; raise :class:`SchemaError` (one line).

    Parameters
    ----------
    df : pandas.DataFrame
    name : str
        A key of :data:`TABLES`.
    where : str, optional
        How to name the data in the message (default ``<name>.csv``).
    expected_pairs : iterable of (draft, target), optional
        The exact set of pairs the table must hold (tables keyed by draft and target only).
    expected_models : iterable of str, optional
        The exact set of models (tables with a ``model`` column only).
    """
    t = table(name)
    where = where or t.file
    check_frame(df, t, where)
    if expected_pairs is not None:
        if not t.has_pairs:
            raise ValueError(f"expected_pairs applies to pair tables only, not {t.name!r}")
        found = set(zip(df["draft"], df["target"]))
        check_set(found, {tuple(p) for p in expected_pairs}, "pairs", where)
    if expected_models is not None:
        if "model" not in df.columns:
            raise ValueError(f"expected_models applies to tables with a model column, not {t.name!r}")
        check_set(set(df["model"]), expected_models, "models", where)


def prepare(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """The frame a stage writes: columns in declaration order (absent optional ones left out), checked.

    Raises :class:`SchemaError` when a writer produces what the schema does not allow: the writer
    is then wrong, and nothing is written.
    """
    t = table(name)
    order = [c.name for c in t.columns if c.name in df.columns]
    extra = [c for c in df.columns if c not in order]
    out = df[order + extra].reset_index(drop=True)
    validate(out, name, where=f"{t.file} (as written by stage {t.stage})")
    return out


def read_table(profile_dir: str | os.PathLike, name: str, expected_pairs=None, expected_models=None) -> pd.DataFrame:
    """Read ``<profile_dir>/<name>.csv`` and validate it (see :func:`validate`).

    Raises
    ------
    SchemaError
        One line naming the file: missing, unparsable, or not matching its declaration.
    """
    return read_file(Path(profile_dir) / table(name).file, name, expected_pairs, expected_models)


def read_file(path: str | os.PathLike, name: str, expected_pairs=None, expected_models=None) -> pd.DataFrame:
    """Read the CSV at ``path`` as table ``name`` and validate it (:func:`read_table` for any file name)."""
    t, path = table(name), Path(path)
    if not path.is_file():
        raise SchemaError(f"{path}: missing (written by `python -m sdsl_lib.measurement --stage {t.stage}`)")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot be parsed as CSV ({str(exc).splitlines()[0]})") from None
    validate(df, t.name, str(path), expected_pairs, expected_models)
    return df
