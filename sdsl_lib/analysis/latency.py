r"""Latency against distance to N* on the measured ladder (Table 6, Figure 4).

- :func:`latency_table`: TTFT, TTOT and TPOT per pair with t-intervals over prompts;
- :func:`paired_time_difference`: a paired (by prompt) timing difference of two configurations;
- :func:`ttot_by_prompt`, :func:`nearest_vs_fastest`, :func:`distance_rank_correlation`: the
  claims of Appendix F with intervals that resample prompts (every configuration of a target is
  timed on the same prompts, so one draw resamples them once for all drafts).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from sdsl_lib.analysis.stats import Interval, cluster_bootstrap, mean_ci
from sdsl_lib.analysis.tables import FILES, need_columns
from sdsl_lib.analysis.throughput import best_gamma_by_pair

__all__ = [
    "latency_table",
    "paired_time_difference",
    "ttot_by_prompt",
    "nearest_vs_fastest",
    "distance_rank_correlation",
]


def latency_table(
    throughput: pd.DataFrame,
    models: pd.DataFrame,
    n_star: dict,
    gamma_by_pair: pd.DataFrame | None = None,
    size_column: str = "n_params",
) -> pd.DataFrame:
    r"""Table 6 on the ladder: TTFT, TTOT and TPOT per pair with 95% intervals over prompts.

    Parameters
    ----------
    throughput : DataFrame
        ``throughput.csv`` (per prompt).
    models : DataFrame
        ``models.csv`` (parameter counts).
    n_star : dict
        Target name -> predicted N* (the x axis is :math:`|N - N^*|/M`).
    gamma_by_pair : DataFrame, optional
        ``draft, target, best_gamma``: which lookahead represents each pair (default: its
        best-median-speed-up gamma, :func:`best_gamma_by_pair` on the per-prompt data).
    size_column : str
        Column of ``models`` holding N and M (the one the law and N* used).

    Notes
    -----
    TTOT is the whole generation call (``time_s``), TPOT = TTOT / new tokens. TTFT is the prefill
    time (``prefill_time_s``) when the measurement recorded it; otherwise it is derived as
    ``time_s - draft_time_s - verify_time_s`` (prefill plus the loop's bookkeeping outside the timed
    draft and verify regions: an upper bound on the prefill) and ``ttft_source`` says so.
    The autoregressive target runs are listed as ``draft = "(none)"`` rows for reference.
    """
    need_columns(throughput, "throughput", FILES["throughput"][1])
    size = models.set_index("model")[size_column].astype(float)
    tp = throughput.copy()
    if gamma_by_pair is None:
        s = (
            tp[tp["method"] == "speculative"]
            .groupby(["draft", "target", "gamma"], as_index=False)["speedup_vs_autoregressive"]
            .median()
        )
        s = s.rename(columns={"speedup_vs_autoregressive": "speedup_median"}).assign(
            method="speculative", speedup_p025=np.nan, speedup_p975=np.nan
        )
        gamma_by_pair = best_gamma_by_pair(s)
    if "prefill_time_s" in tp.columns and tp["prefill_time_s"].notna().any():
        tp["ttft_s"] = tp["prefill_time_s"]
        source = "prefill_time_s"
    else:
        tp["ttft_s"] = tp["time_s"] - tp.get("draft_time_s", np.nan) - tp.get("verify_time_s", np.nan)
        source = "time_s - draft_time_s - verify_time_s"
    tp["ttot_s"] = tp["time_s"]
    tp["tpot_s"] = tp["time_s"] / tp["new_tokens"]
    rows = []
    sel = tp[tp["method"] == "speculative"].merge(
        gamma_by_pair[["draft", "target", "best_gamma"]], on=["draft", "target"]
    )
    sel = sel[sel["gamma"] == sel["best_gamma"]]
    groups = [(k, g) for k, g in sel.groupby(["target", "draft"], sort=False)]
    ar = tp[tp["method"] == "autoregressive"]
    groups += [((t, "(none)"), g) for t, g in ar.groupby("target", sort=False)]
    for (t, d), g in groups:
        m = size[t]
        n = size[d] if d in size.index else math.nan
        row = {
            "target": t,
            "draft": d,
            "m_target": m,
            "n_draft": n,
            "gamma": int(g["gamma"].iloc[0]),
            "n_prompts": int(len(g)),
            "n_star": float(n_star.get(t, math.nan)),
            "distance": abs(n - n_star.get(t, math.nan)) / m if d != "(none)" else math.nan,
            "ttft_source": source if d != "(none)" else "time_s - (no loop timers)",
        }
        for metric in ("ttft_s", "ttot_s", "tpot_s"):
            vals = g[metric].to_numpy(float) if not (d == "(none)" and metric == "ttft_s") else np.array([])
            mu, lo, hi = mean_ci(vals)
            row[metric], row[f"{metric}_ci95_lower"], row[f"{metric}_ci95_upper"] = mu, lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


def paired_time_difference(
    throughput: pd.DataFrame, target: str, a: tuple, b: tuple, metric: str = "time_s"
) -> tuple[float, float, float]:
    """Mean per-prompt difference of a timing between two configurations of one target, with a t-interval.

    Every configuration of a target is timed on the same prompts, so the difference is paired by
    ``prompt_idx`` (machine-load drift between prompts cancels). ``a`` and ``b`` are
    ``(draft, gamma)``; returns ``(mean of a - b, ci95_lower, ci95_upper)`` in the metric's unit.

    Examples
    --------
    >>> tp = pd.DataFrame({"target": "t", "draft": ["x"] * 3 + ["y"] * 3, "gamma": 2, "method": "speculative",
    ...                    "prompt_idx": [0, 1, 2] * 2, "time_s": [1.0, 2.0, 3.0, 0.9, 1.8, 2.9]})
    >>> [round(v, 3) for v in paired_time_difference(tp, "t", ("x", 2), ("y", 2))]
    [0.133, -0.01, 0.277]
    """
    need_columns(throughput, "throughput", ["target", "draft", "gamma", "prompt_idx", metric])
    t = throughput[throughput["target"] == target]

    def one(cfg):
        d, g = cfg
        s = t[(t["draft"] == d) & (t["gamma"] == g)].groupby("prompt_idx")[metric].mean()
        if s.empty:
            raise ValueError(f"no timed runs of draft {d!r} at gamma {g} for target {target!r}")
        return s

    sa, sb = one(a), one(b)
    common = sa.index.intersection(sb.index)
    return mean_ci((sa.loc[common] - sb.loc[common]).to_numpy(float))


def ttot_by_prompt(throughput: pd.DataFrame, target: str, gamma_by_pair: pd.DataFrame) -> pd.DataFrame:
    """Wide table of one target's total generation time: one row per ``prompt_idx``, one column per
    draft (at its representative lookahead ``gamma_by_pair.best_gamma``)."""
    need_columns(throughput, "throughput", ["target", "draft", "gamma", "method", "prompt_idx", "time_s"])
    sel = throughput[(throughput["target"] == target) & (throughput["method"] == "speculative")].merge(
        gamma_by_pair[["draft", "target", "best_gamma"]], on=["draft", "target"]
    )
    sel = sel[sel["gamma"] == sel["best_gamma"]]
    if sel.empty:
        raise ValueError(f"target must have timed speculative runs, got {target!r}")
    wide = sel.pivot_table(index="prompt_idx", columns="draft", values="time_s", aggfunc="mean")
    return wide.dropna().reset_index()


def nearest_vs_fastest(wide: pd.DataFrame, nearest: str, n_boot: int = 2000, seed: int = 0) -> Interval:
    r"""How much slower the draft nearest N* is than the fastest other draft, resampling prompts.

    Statistic: :math:`\ln(\overline{T}_{\text{nearest}} / \min_{d \ne \text{nearest}} \overline{T}_d)`
    (mean TTOT over the resampled prompts; the competitor is chosen anew in every draw, so the
    selection of "the fastest" is part of the interval). Negative when the nearest draft is fastest.
    """
    if nearest not in wide.columns:
        raise ValueError(
            f"nearest must be one of the drafts {[c for c in wide.columns if c != 'prompt_idx']}, got {nearest!r}"
        )
    others = [c for c in wide.columns if c not in ("prompt_idx", nearest)]
    if not others:
        raise ValueError("wide must hold at least one draft besides the nearest")

    def stat(f: pd.DataFrame) -> float:
        return float(np.log(f[nearest].mean() / f[others].mean().min()))

    return cluster_bootstrap(wide, stat, "prompt", n_boot, seed)


def distance_rank_correlation(wide: pd.DataFrame, distance: dict, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Spearman correlation between each draft's distance to N* and its mean TTOT, resampling prompts."""
    drafts = [c for c in wide.columns if c != "prompt_idx"]
    if len(drafts) < 3:
        raise ValueError(f"wide must hold at least 3 drafts for a rank correlation, got {len(drafts)}")
    dist = np.array([distance[d] for d in drafts], dtype=float)

    def stat(f: pd.DataFrame) -> float:
        return float(stats.spearmanr(dist, f[drafts].mean().to_numpy(float)).statistic)

    return cluster_bootstrap(wide, stat, "prompt", n_boot, seed)
