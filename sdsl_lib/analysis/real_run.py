r"""One measured real-target run, read from its folder: what notebook 15 judges, as one function each.

Notebook 15 reads its main run (``data/measured/smollm2``) section by section and then holds other
runs of the same protocol against the same rules: a recipe experiment (a draft trained otherwise)
and a run on another host (``data/measured/smollm2-fp16w``: an AVX2 CPU, the target timed in fp16w
numerics). The pieces they share live here so that every run is judged by the same code:

- :func:`eq1_against_measured`: Eq. 1 with held-out acceptance and the run's own calibrated costs,
  beside every measured speed-up (notebook 15 §4);
- :func:`eq1_abs_log_error`: its mean absolute log error, interval resampling pairs;
- :func:`best_trained_and_lookup`: the held-out best speed-up of the trained drafts and of prompt
  lookup, greedy and sampled (§3; :func:`sdsl_lib.analysis.throughput.heldout_best_speedup`);
- :func:`host_of`: the CPU and the target's timing numerics a run's sidecar records, and
  :func:`host_label`, its short name ("AVX2 host", "AVX-512 BF16 host");
- :func:`over_fastest_plain`: a run's per-prompt speed-ups restated over the host's fastest plain
  decoder (``plain_numerics.csv`` of ``benchmarks/bench_plain_numerics.py``), where the run's own
  timing numerics is not the fastest target alone;
- :func:`workload_of`: the workload a run trained and scored on, and its target tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sdsl_lib.analysis import throughput as th
from sdsl_lib.analysis.stats import Interval, cluster_bootstrap
from sdsl_lib.analysis.tables import need_columns
from sdsl_lib.laws.wallclock import wallclock_speedup

__all__ = [
    "verification_cost",
    "eq1_against_measured",
    "eq1_abs_log_error",
    "best_trained_and_lookup",
    "host_of",
    "host_label",
    "over_fastest_plain",
    "workload_of",
]

#: The two timed decodings of a real-target run: its throughput table for each.
RUNS = {"greedy": "throughput", "sampled T=0.7": "throughput_sampled"}


def verification_cost(calibration: pd.DataFrame, target: str, gamma: int) -> float:
    r"""$v_{\gamma+1}$: the target's calibrated cost of scoring $\gamma + 1$ tokens in one pass, in
    one-token steps (the largest calibrated count when $\gamma + 1$ exceeds it)."""
    need_columns(calibration, "calibration", ["model", "n_new_tokens", "latency_median_s"])
    cal = calibration[calibration["model"] == target].set_index("n_new_tokens")["latency_median_s"]
    if cal.empty or 1 not in cal.index:
        raise ValueError(f"calibration holds no one-token latency of target {target!r}")
    if gamma < 1:
        raise ValueError(f"gamma must be >= 1, got {gamma}")
    return float(cal[min(gamma + 1, int(cal.index.max()))] / cal[1])


def eq1_against_measured(
    summary: pd.DataFrame,
    alpha: pd.DataFrame,
    calibration: pd.DataFrame,
    target: str,
    alpha_column: str = "greedy_match_tf",
) -> pd.DataFrame:
    r"""Every measured (draft, gamma) speed-up beside Eq. 1 with held-out acceptance and measured costs.

    .. math:: \hat S = \frac{1 - \alpha^{\gamma+1}}{(1 - \alpha)(\gamma c + v_{\gamma+1})}

    with $\alpha$ = ``alpha_column`` (teacher-forced, so not the timed runs' own counts), $c$ = the
    draft's calibrated one-token latency over the target's, $v_{\gamma+1}$ from
    :func:`verification_cost`. Columns: ``draft``, ``target``, ``gamma``, ``alpha``, ``c``, ``v``, ``predicted``,
    ``speedup_median`` (measured), ``log_error`` = $|\ln(\hat S / S)|$; a row per speculative
    (draft, gamma) of ``summary`` whose draft has an acceptance.
    """
    need_columns(summary, "summary", ["draft", "target", "method", "gamma", "speedup_median"])
    need_columns(alpha, "alpha", ["draft", alpha_column])
    cal = calibration.set_index(["model", "n_new_tokens"])["latency_median_s"]
    s = summary[summary["method"] == "speculative"].merge(alpha[["draft", alpha_column]], on="draft")
    s = s.rename(columns={alpha_column: "alpha"})
    s["c"] = [cal[(d, 1)] / cal[(target, 1)] for d in s["draft"]]
    s["v"] = [verification_cost(calibration, target, int(g)) for g in s["gamma"]]
    s["predicted"] = wallclock_speedup(s["alpha"].clip(upper=0.999), s["gamma"], s["c"], s["v"])
    s["log_error"] = np.abs(np.log(s["predicted"] / s["speedup_median"]))
    return s[["draft", "target", "gamma", "alpha", "c", "v", "predicted", "speedup_median", "log_error"]].reset_index(
        drop=True
    )


def eq1_abs_log_error(pred: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> Interval:
    """Mean ``log_error`` of :func:`eq1_against_measured`, interval resampling **pairs** (a pair's
    gammas share its acceptance and cost, so they are not independent)."""
    need_columns(pred, "pred", ["draft", "target", "log_error"])
    return cluster_bootstrap(pred, lambda f: float(f["log_error"].mean()), "pair", n_boot, seed)


def best_trained_and_lookup(
    throughputs: dict, models: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> tuple[dict, dict]:
    """Held-out best speed-up per decoding (keys of ``throughputs``) of the trained drafts and of prompt lookup.

    ``throughputs``: decoding label -> per-prompt throughput rows (load-flagged prompts are dropped
    here, :func:`sdsl_lib.analysis.throughput.drop_load_flagged`); ``models``: the run's models
    table indexed by model (prompt lookup: the draft with no parameters). A run without a prompt
    lookup draft gets an empty second dict.
    """
    need_columns(models.reset_index(), "models", ["model", "role", "n_params"])
    drafts = models.index[models["role"] == "draft"]
    lookup = sorted(drafts[models.loc[drafts, "n_params"] == 0])
    trained = sorted(drafts[models.loc[drafts, "n_params"] > 0])
    if not trained:
        raise ValueError("models holds no trained draft (a draft with n_params > 0)")
    best, best_lookup = {}, {}
    for label, rows in throughputs.items():
        rows = th.drop_load_flagged(rows)
        best[label] = th.heldout_best_speedup(rows, trained, n_boot, seed)
        if lookup:
            best_lookup[label] = th.heldout_best_speedup(rows, lookup, n_boot, seed)
    return best, best_lookup


def host_of(folder) -> dict:
    """The CPU (model, the ISA flags of ``timing.CPU_FLAGS`` it has, torch capability) and the target's timing numerics that a run's
    ``throughput.csv.json`` sidecar records ("not recorded" where a run predates the field)."""
    side = json.loads((Path(folder) / "throughput.csv.json").read_text())
    hw = side.get("hardware", {})
    real = side.get("config", {}).get("real") or {}
    flags = hw.get("cpu_flags")
    return {
        "cpu_model": hw.get("cpu_model", "not recorded"),
        "cpu_flags": ", ".join(flags) if flags else ("none of those checked" if flags == [] else "not recorded"),
        "torch_cpu_capability": hw.get("torch_cpu_capability", "not recorded"),
        "timing_dtype": real.get("timing_dtype", "not recorded"),
    }


def host_label(folder) -> str:
    """A run's host in two words, from its sidecar's CPU flags: "AMX host", "AVX-512 BF16 host",
    "AVX-512 host" or "AVX2 host" (the fastest bf16 path it has), "host" where none is recorded."""
    side = json.loads((Path(folder) / "throughput.csv.json").read_text())
    flags = set(side.get("hardware", {}).get("cpu_flags") or ())
    for flag, label in (("amx_bf16", "AMX host"), ("avx512_bf16", "AVX-512 BF16 host"), ("avx512f", "AVX-512 host"),
                        ("avx2", "AVX2 host")):  # fmt: skip
        if flag in flags:
            return label
    return "host"


def over_fastest_plain(
    rows: pd.DataFrame, plain: pd.DataFrame, numerics: str, temperature: float
) -> tuple[pd.DataFrame, str]:
    r"""Per-prompt speed-ups of a run restated over the fastest plain decoder of its host.

    A run's ``speedup_vs_autoregressive`` is over the target alone in the run's timing ``numerics``.
    ``plain`` (``benchmarks/bench_plain_numerics.py``: the same prompts decoded by the target alone in
    several numerics, interleaved, one row per prompt, temperature and numerics) gives each prompt's
    factor $f_p$ = tokens/s in ``numerics`` over tokens/s in the fastest numerics (the one with the
    highest median over prompts at ``temperature``; load-flagged calls left out), and

    .. math:: S^{	ext{fastest}}_{k,p} = S_{k,p} \, f_p .

    Returns the rows with ``speedup_vs_autoregressive`` so rescaled (prompts without a factor are
    dropped) and the fastest numerics' name. Where ``numerics`` is the fastest, $f_p$ is 1 on every prompt.
    """
    need_columns(plain, "plain", ["prompt_idx", "temperature", "numerics", "tokens_per_s", "load_flagged"])
    need_columns(rows, "rows", ["prompt_idx", "speedup_vs_autoregressive"])
    at = plain[np.isclose(plain["temperature"], temperature) & ~plain["load_flagged"].astype(bool)]
    if at.empty:
        raise ValueError(
            f"plain holds no unflagged call at temperature {temperature:g} (it has {sorted(plain.temperature.unique())})"
        )
    wide = at.pivot_table(index="prompt_idx", columns="numerics", values="tokens_per_s", aggfunc="median")
    if numerics not in wide.columns:
        raise ValueError(f"numerics must be one of the plain table's {sorted(wide.columns)}, got {numerics!r}")
    fastest = str(wide.median().idxmax())
    factor = (wide[numerics] / wide[fastest]).dropna()
    out = rows[rows["prompt_idx"].isin(factor.index)].copy()
    out["speedup_vs_autoregressive"] = (
        out["speedup_vs_autoregressive"].to_numpy() * factor.loc[out["prompt_idx"]].to_numpy()
    )
    return out.reset_index(drop=True), fastest


def workload_of(folder, workloads_dir=None) -> tuple[str, float]:
    """(name, target tokens) of the workload a run's ``models.csv.json`` sidecar names.

    The tokens are the continuations' (what a draft is trained on, prompts excluded) of the committed
    workload ``workloads_dir/<name>`` (default: the checkout's ``data/workloads``); NaN when it is not
    committed (a smoke run generates its own into its work folder).
    """
    from sdsl_lib.measurement import workload

    side = json.loads((Path(folder) / "models.csv.json").read_text())
    name = (side.get("config", {}).get("real") or {}).get("workload")
    if not name:
        raise ValueError(f"folder: {folder} records no real-target workload (config.real.workload)")
    wl_dir = Path(workloads_dir) / name if workloads_dir is not None else workload.committed_dir(name)
    if not (wl_dir / "target_tokens.npz").is_file():
        return name, float("nan")
    return name, float(sum(len(s.cont) for s in workload.load_workload(wl_dir).seqs))
