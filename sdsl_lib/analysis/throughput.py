r"""Throughput on the measured ladder: the measured optimum, Eq. 1 and Eq. 13 against timed runs.

- the measured optimum: :func:`best_gamma_by_pair`, :func:`measured_optimal_draft`,
  :func:`fastest_draft_draws` / :func:`bootstrap_optimal_draft` (prompt resamples);
- Eq. 1 against the timed speed-ups: :func:`speedup_predictions`, :func:`log_error` (intervals
  resample pairs, not the correlated (pair, gamma) cells);
- Eq. 13 against the best timed lookahead: :func:`optimal_gamma_table`;
- the FLOP metric from measured tokens per iteration: :func:`flop_gain_measured`;
- why wall clock differs from FLOPs: :func:`one_token_latency`, :func:`step_cost_model`,
  :func:`verification_cost_curve`;
- the per-prompt rows behind the summaries: :func:`drop_load_flagged`; our loop against Hugging Face
  assisted generation: :func:`hf_speed_ratio`;
- the best speed-up among configurations: :func:`best_speedup` (chosen and scored on the same
  prompts: optimistic) and :func:`heldout_best_speedup` (chosen on one fold of prompts, scored on
  the other, the selection redone in every bootstrap draw).

The cost-model laws (Eq. 1 with measured c and v, Eq. 13 with measured c, the affine step time)
live in :mod:`sdsl_lib.laws.wallclock`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import statsmodels.api as sm

from sdsl_lib.analysis.stats import Interval, cluster_bootstrap, percentile_interval
from sdsl_lib.analysis.tables import FILES, need_columns
from sdsl_lib.laws.speculation import optimal_lookahead, speedup
from sdsl_lib.laws.wallclock import optimal_lookahead_cost_ratio, wallclock_speedup

__all__ = [
    "best_gamma_by_pair",
    "measured_optimal_draft",
    "fastest_draft_draws",
    "bootstrap_optimal_draft",
    "speedup_predictions",
    "log_error",
    "optimal_gamma_table",
    "flop_gain_measured",
    "one_token_latency",
    "step_cost_model",
    "verification_cost_curve",
    "drop_load_flagged",
    "hf_speed_ratio",
    "best_speedup",
    "HeldOutSpeedup",
    "prompt_folds",
    "heldout_best_speedup",
]


def best_gamma_by_pair(summary: pd.DataFrame) -> pd.DataFrame:
    """For each pair, the lookahead with the highest median speed-up and that speed-up.

    Returns ``draft, target, best_gamma, speedup, speedup_p025, speedup_p975`` (the percentiles are
    over prompts, as in ``throughput_summary.csv``).

    Examples
    --------
    >>> s = pd.DataFrame({"draft": "d", "target": "t", "method": "speculative", "gamma": [1, 2, 3],
    ...                   "speedup_median": [1.1, 1.4, 1.2], "speedup_p025": 1.0, "speedup_p975": 1.5})
    >>> best_gamma_by_pair(s)[["best_gamma", "speedup"]].to_dict("records")
    [{'best_gamma': 2, 'speedup': 1.4}]
    """
    need_columns(
        summary, "summary", ["draft", "target", "method", "gamma", "speedup_median", "speedup_p025", "speedup_p975"]
    )
    s = summary[summary["method"] == "speculative"]
    idx = s.groupby(["draft", "target"], sort=False)["speedup_median"].idxmax()
    out = s.loc[idx, ["draft", "target", "gamma", "speedup_median", "speedup_p025", "speedup_p975"]]
    out = out.rename(columns={"gamma": "best_gamma", "speedup_median": "speedup"}).reset_index(drop=True)
    out["best_gamma"] = out["best_gamma"].astype(int)
    return out


def measured_optimal_draft(summary: pd.DataFrame, models: pd.DataFrame, size_column: str = "n_params") -> pd.DataFrame:
    """Per target, the draft with the highest measured speed-up (at its best lookahead).

    Sizes (``m_target``, ``n_draft``) are read from ``models[size_column]``.

    Returns ``target, m_target, draft, n_draft, best_gamma, speedup, speedup_p025, speedup_p975,
    runner_up, runner_up_speedup``.
    """
    best = best_gamma_by_pair(summary)
    size = models.set_index("model")[size_column].astype(float)
    rows = []
    for t, g in best.groupby("target", sort=False):
        g = g.sort_values("speedup", ascending=False)
        top = g.iloc[0]
        rows.append(
            {
                "target": t,
                "m_target": size[t],
                "draft": top["draft"],
                "n_draft": size[top["draft"]],
                "best_gamma": int(top["best_gamma"]),
                "speedup": top["speedup"],
                "speedup_p025": top["speedup_p025"],
                "speedup_p975": top["speedup_p975"],
                "runner_up": g.iloc[1]["draft"] if len(g) > 1 else None,
                "runner_up_speedup": g.iloc[1]["speedup"] if len(g) > 1 else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _prompt_cube(g: pd.DataFrame):
    cube = g.pivot_table(
        index=["draft", "gamma"], columns="prompt_idx", values="speedup_vs_autoregressive", aggfunc="mean"
    )
    return cube, cube.to_numpy(float), cube.index.get_level_values("draft").to_numpy()


def fastest_draft_draws(throughput: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    r"""The fastest draft of each target in each of ``n_boot`` prompt resamples.

    Every pair is timed on the same prompts, so one draw resamples prompt indices once and applies
    them to every (draft, gamma) of a target: each draft scores its best median speed-up over gamma,
    and the fastest draft wins the draw. Returns ``target, draw, draft, speedup`` (the winner's
    score) and, per draw, ``speedup_of_observed_best`` (the median speed-up of the configuration
    that is fastest on the observed prompts).
    """
    need_columns(
        throughput, "throughput", ["draft", "target", "method", "gamma", "prompt_idx", "speedup_vs_autoregressive"]
    )
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    spec = throughput[throughput["method"] == "speculative"]
    frames = []
    for t, g in spec.groupby("target", sort=False):
        cube, vals, drafts = _prompt_cube(g)
        names = list(dict.fromkeys(drafts))
        idx = rng.integers(0, vals.shape[1], size=(n_boot, vals.shape[1]))
        med = np.nanmedian(vals[:, idx], axis=2)  # (configs, draws)
        per_draft = np.stack([np.nanmax(med[drafts == d], axis=0) for d in names])  # (drafts, draws)
        win = np.argmax(per_draft, axis=0)
        k = int(np.nanargmax(np.nanmedian(vals, axis=1)))
        frames.append(
            pd.DataFrame(
                {
                    "target": t,
                    "draw": np.arange(n_boot),
                    "draft": np.asarray(names)[win],
                    "speedup": per_draft[win, np.arange(n_boot)],
                    "speedup_of_observed_best": med[k],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def bootstrap_optimal_draft(
    throughput: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""How firmly the prompts identify the fastest draft and its speed-up (:func:`fastest_draft_draws`).

    Returns
    -------
    shares : DataFrame
        ``target, draft, share``: the fraction of draws each draft is fastest.
    best : DataFrame
        ``target, draft, gamma, speedup, speedup_ci95_lower, speedup_ci95_upper``: the fastest
        configuration on the observed prompts and the percentile interval (unit: prompt) of its
        median speed-up across draws.
    """
    draws = fastest_draft_draws(throughput, n_boot, seed)
    spec = throughput[throughput["method"] == "speculative"]
    shares, best_rows = [], []
    for t, g in spec.groupby("target", sort=False):
        cube, vals, drafts = _prompt_cube(g)
        dw = draws[draws["target"] == t]
        for d in dict.fromkeys(drafts):
            shares.append({"target": t, "draft": d, "share": float(np.mean(dw["draft"] == d))})
        observed = np.nanmedian(vals, axis=1)
        k = int(np.nanargmax(observed))
        lo, hi = np.percentile(dw["speedup_of_observed_best"], [2.5, 97.5])
        best_rows.append(
            {
                "target": t,
                "draft": cube.index[k][0],
                "gamma": int(cube.index[k][1]),
                "speedup": float(observed[k]),
                "speedup_ci95_lower": float(lo),
                "speedup_ci95_upper": float(hi),
            }
        )
    return pd.DataFrame(shares), pd.DataFrame(best_rows)


def speedup_predictions(
    summary: pd.DataFrame,
    alpha: pd.DataFrame,
    alpha_column: str = "greedy_match_tf",
    calibration: pd.DataFrame | None = None,
) -> pd.DataFrame:
    r"""Measured speed-up of every (pair, gamma) beside Eq. 1 under two cost models.

    .. math:: S = \frac{1 - \alpha^{\gamma + 1}}{(1 - \alpha)(\gamma c + 1)} \qquad \text{(Eq. 1)}

    - ``speedup_eq1_measured_c``: Eq. 1 with the pair's measured acceptance (``alpha_column``) and the
      measured step-cost ratio ``c_measured`` (one draft step / one target step, cost calibration);
    - ``speedup_flop_model``: Eq. 1 with the paper's :math:`c = N/M` (``c_flops``).

    - with ``calibration`` (``cost_calibration.csv``): ``speedup_wallclock_measured_cv``, Eq. 1 with the
      measured c and the target's measured verification cost :math:`v(\gamma+1)`
      (:func:`wallclock_speedup`, :func:`verification_cost_curve`); NaN where :math:`\gamma + 1`
      tokens were not calibrated.

    ``log_ratio_*`` = ln(predicted / measured median): 0 is perfect, 0.1 is about 10% too high.
    The throughput runs decode greedily, so the matching acceptance is a temperature-0 one
    (``greedy_match_tf``, or ``greedy_acceptance_run`` which comes from these very runs and so
    isolates the cost model); ``alpha_tf`` (temperature 1) answers a different question.
    """
    need_columns(
        alpha, "alpha", ["draft", "target", alpha_column, "c_measured", "c_flops", "n_params_draft", "n_params_target"]
    )
    s = summary[summary["method"] == "speculative"].merge(
        alpha[["draft", "target", alpha_column, "c_measured", "c_flops", "n_params_draft", "n_params_target"]],
        on=["draft", "target"],
        how="left",
    )
    a = s[alpha_column].to_numpy(float).clip(0.0, 1.0)
    g = s["gamma"].to_numpy(float)
    s["alpha_used"] = a
    s["speedup_eq1_measured_c"] = np.asarray(speedup(np.nan_to_num(a), g, s["c_measured"].to_numpy(float)))
    s["speedup_flop_model"] = np.asarray(speedup(np.nan_to_num(a), g, s["c_flops"].to_numpy(float)))
    cols = ["speedup_eq1_measured_c", "speedup_flop_model"]
    if calibration is not None:
        v = np.full(len(s), np.nan)
        for t in s["target"].unique():
            curve = verification_cost_curve(calibration, t).set_index("n_new_tokens")["v"]
            rows = (s["target"] == t).to_numpy()
            v[rows] = curve.reindex(s.loc[rows, "gamma"].astype(int) + 1).to_numpy(float)
        ok = np.isfinite(v)
        out = np.full(len(s), np.nan)
        out[ok] = np.asarray(wallclock_speedup(np.nan_to_num(a[ok]), g[ok], s["c_measured"].to_numpy(float)[ok], v[ok]))
        s["v_verify"] = v
        s["speedup_wallclock_measured_cv"] = out
        cols.append("speedup_wallclock_measured_cv")
    bad = ~np.isfinite(a)
    s.loc[bad, cols] = np.nan
    for col in cols:
        s[f"log_ratio_{col.removeprefix('speedup_')}"] = np.log(s[col] / s["speedup_median"])
    return s.reset_index(drop=True)


def log_error(pred: pd.DataFrame, column: str, minus: str | None = None, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Mean over (pair, gamma) cells of a ``log_ratio_*`` column, interval resampling **pairs**.

    The 9 lookaheads of one pair share its acceptance and its cost ratio, so the cells are not
    independent; the pair is the unit. With ``minus``, the mean of ``column - minus`` cell by cell:
    a like-for-like contrast of two predictions that differ in one ingredient.
    """
    cols = [column] + ([minus] if minus else [])
    need_columns(pred, "pred", ["draft", "target", *cols])
    ok = pred[np.isfinite(pred[cols].to_numpy(float)).all(axis=1)]

    def stat(f: pd.DataFrame) -> float:
        v = f[column].to_numpy(float)
        return float(np.mean(v - f[minus].to_numpy(float) if minus else v))

    return cluster_bootstrap(ok, stat, "pair", n_boot, seed)


def optimal_gamma_table(
    summary: pd.DataFrame, alpha: pd.DataFrame, alpha_column: str = "greedy_match_tf"
) -> pd.DataFrame:
    r"""Measured best lookahead of each pair against Eq. 13.

    Columns: ``best_gamma`` (measured, integer, among the gammas timed); ``gamma_eq13_flops``
    (Eq. 13 with :math:`c = N/M`, continuous, the paper's model); ``gamma_eq13_measured_c`` (Eq. 13
    with the measured step-cost ratio); ``gamma_eq1_measured_c_int`` (the best timed gamma under Eq. 1
    with the measured c: the integer counterpart of the previous one).
    """
    best = best_gamma_by_pair(summary)
    a = alpha.set_index(["draft", "target"])
    key = list(zip(best["draft"], best["target"]))
    al = a.loc[key, alpha_column].to_numpy(float)
    c_meas, n, m = (a.loc[key, col].to_numpy(float) for col in ("c_measured", "n_params_draft", "n_params_target"))
    best["alpha_used"] = al
    best["c_measured"] = c_meas
    best["c_flops"] = n / m
    ok = np.isfinite(al)
    g13 = np.full(len(best), np.nan)
    g13[ok] = np.asarray(optimal_lookahead(al[ok].clip(0, 1), n[ok], m[ok]))
    best["gamma_eq13_flops"] = g13
    best["gamma_eq13_measured_c"] = np.where(
        np.isfinite(al) & np.isfinite(c_meas),
        optimal_lookahead_cost_ratio(
            np.nan_to_num(al).clip(0, 1), np.where(np.isfinite(c_meas) & (c_meas > 0), c_meas, 1.0)
        ),
        np.nan,
    )
    gammas = np.sort(summary.loc[summary["method"] == "speculative", "gamma"].unique()).astype(float)
    sp = np.asarray(speedup(np.nan_to_num(al)[:, None].clip(0, 1), gammas[None, :], np.nan_to_num(c_meas)[:, None]))
    best["gamma_eq1_measured_c_int"] = np.where(ok, gammas[np.argmax(sp, axis=1)], np.nan)
    return best


def flop_gain_measured(summary: pd.DataFrame, alpha: pd.DataFrame) -> pd.DataFrame:
    r"""The paper's FLOP metric evaluated with measured tokens per iteration (Eq. 3 without the alpha law).

    .. math:: \text{gain} = \mathcal{T}\cdot 2M = \frac{\overline{\text{tokens/iteration}}\; M}{M + \gamma N}

    per (pair, gamma), and per pair its maximum over gamma. Comparing its argmax draft with the
    wall-clock fastest one separates the cost model (FLOPs vs seconds) from the acceptance law.
    """
    need_columns(summary, "summary", ["draft", "target", "method", "gamma", "tokens_per_iteration_mean"])
    s = summary[summary["method"] == "speculative"].merge(
        alpha[["draft", "target", "n_params_draft", "n_params_target"]], on=["draft", "target"]
    )
    n, m, g = (s[c].to_numpy(float) for c in ("n_params_draft", "n_params_target", "gamma"))
    s["flop_gain"] = s["tokens_per_iteration_mean"].to_numpy(float) * m / (m + g * n)
    return s


def one_token_latency(calibration: pd.DataFrame) -> pd.DataFrame:
    """Each model's decode-step latency (one new token on a warm KV cache): ``model, role, n_params,
    latency_s, latency_p025_s, latency_p975_s``."""
    need_columns(calibration, "calibration", FILES["cost_calibration"][1])
    one = calibration[calibration["n_new_tokens"] == 1]
    return (
        one[["model", "role", "n_params"]]
        .assign(
            latency_s=one["latency_median_s"].to_numpy(float),
            latency_p025_s=one["latency_p025_s"].to_numpy(float),
            latency_p975_s=one["latency_p975_s"].to_numpy(float),
        )
        .sort_values("n_params")
        .reset_index(drop=True)
    )


def step_cost_model(calibration: pd.DataFrame) -> dict:
    r"""Affine model of the decode-step time across the ladder: :math:`t(N) = t_0 + k N`.

    SDSL's :math:`c = N/M` assumes :math:`t_0 = 0`. A fixed per-step cost :math:`t_0` (Python,
    framework dispatch, kernel launches; at batch 1 it is not amortised) keeps the draft's step from
    getting cheaper than :math:`t_0` however small the draft, so the measured
    :math:`c = t(N)/t(M) \ge t_0/t(M)`. Ordinary least squares over the models' one-token latencies.

    Returns
    -------
    dict with ``t0_s``, ``t0_ci95``, ``k_s_per_param``, ``k_ci95``, ``r2``, ``n_models`` and
    ``c_floor_by_target`` (:math:`t_0 / t(M)` per target: the smallest c any draft can reach).
    """
    lat = one_token_latency(calibration)
    if len(lat) < 3:
        raise ValueError(f"calibration needs at least 3 models for an affine fit with an interval, got {len(lat)}")
    res = sm.OLS(lat["latency_s"].to_numpy(float), sm.add_constant(lat["n_params"].to_numpy(float))).fit()
    ci = np.asarray(res.conf_int(0.05))
    t0, k = (float(v) for v in res.params)
    targets = lat[lat["role"] == "target"]
    floor = {r["model"]: t0 / r["latency_s"] for _, r in targets.iterrows()}
    return {
        "t0_s": t0,
        "t0_ci95": [float(ci[0, 0]), float(ci[0, 1])],
        "k_s_per_param": k,
        "k_ci95": [float(ci[1, 0]), float(ci[1, 1])],
        "r2": float(res.rsquared),
        "n_models": int(len(lat)),
        "c_floor_by_target": floor,
    }


def verification_cost_curve(calibration: pd.DataFrame, model: str) -> pd.DataFrame:
    r"""Cost of scoring T tokens in one pass relative to one: :math:`v(T) = t(T)/t(1)` for ``model``.

    Eq. 1 takes :math:`v(\gamma + 1) = 1` (verification as cheap as one decode step). Returns
    ``n_new_tokens, v, v_p025, v_p975`` (the percentiles are those of t(T) divided by the median t(1)).
    """
    need_columns(calibration, "calibration", FILES["cost_calibration"][1])
    c = calibration[calibration["model"] == model].sort_values("n_new_tokens")
    if c.empty:
        raise ValueError(f"model must be one of {sorted(calibration['model'].unique())}, got {model!r}")
    t1 = float(c.loc[c["n_new_tokens"] == 1, "latency_median_s"].iloc[0])
    return pd.DataFrame(
        {
            "n_new_tokens": c["n_new_tokens"].astype(int).to_numpy(),
            "v": c["latency_median_s"].to_numpy(float) / t1,
            "v_p025": c["latency_p025_s"].to_numpy(float) / t1,
            "v_p975": c["latency_p975_s"].to_numpy(float) / t1,
        }
    )


def drop_load_flagged(throughput: pd.DataFrame) -> pd.DataFrame:
    """The per-prompt rows the summaries use: a prompt with any load-flagged call is left out of its pair.

    The rule of the throughput stage's summaries (``n_prompts_rejected_load``): every call of a prompt
    is dropped when one of them ran while other processes used more than the profile's
    ``load_limit_cores``, unless every prompt of the pair was flagged (then all are kept). A table
    without ``load_flagged`` is returned as it is.

    Examples
    --------
    >>> t = pd.DataFrame({"draft": "d", "target": "t", "prompt_idx": [0, 0, 1, 1], "load_flagged": [False, True, False, False]})
    >>> drop_load_flagged(t)["prompt_idx"].tolist()
    [1, 1]
    """
    if "load_flagged" not in throughput.columns:
        return throughput
    need_columns(throughput, "throughput", ["draft", "target", "prompt_idx", "load_flagged"])
    flag = throughput["load_flagged"].astype(bool)
    bad = flag.groupby([throughput["draft"], throughput["target"], throughput["prompt_idx"]]).transform("any")
    every = bad.groupby([throughput["draft"], throughput["target"]]).transform("all")
    return throughput[~bad | every]


def hf_speed_ratio(
    hf_baseline: pd.DataFrame, draft: str, target: str, gamma: int, n_boot: int = 1000, seed: int = 0
) -> Interval:
    r"""Our tokens/s over Hugging Face assisted generation's on one (pair, gamma), prompts resampled.

    Per prompt each engine's time is its median over repeats and the ratio is
    :math:`t_\text{HF} / t_\text{ours}` (the same tokens are emitted, so it is tokens/s ours over HF's:
    :func:`sdsl_lib.measurement.hf_baseline.summarise_comparison`); the estimate is the median over
    prompts, the interval a percentile bootstrap over prompts. ``hf_summary``'s ``_p025`` / ``_p975``
    are the spread of the per-prompt ratios, not an interval of the median. With one prompt the
    interval is NaN.

    Examples
    --------
    >>> rows = [{"draft": "d", "target": "t", "gamma": 2, "prompt_idx": p, "repeat": 0, "engine": e,
    ...          "time_s": (1.0 if e == "ours" else 1.5 + 0.1 * p)} for p in range(4) for e in ("ours", "hf")]
    >>> iv = hf_speed_ratio(pd.DataFrame(rows), "d", "t", 2, n_boot=100)
    >>> round(iv.estimate, 3), iv.unit, iv.n_units
    (1.65, 'prompt', 4)
    """
    need_columns(hf_baseline, "hf_baseline", ["draft", "target", "gamma", "prompt_idx", "engine", "time_s"])
    g = hf_baseline[
        (hf_baseline["draft"] == draft) & (hf_baseline["target"] == target) & (hf_baseline["gamma"] == gamma)
    ]
    if g.empty:
        raise ValueError(f"hf_baseline holds no rows of draft {draft!r}, target {target!r}, gamma {gamma!r}")
    t = g.groupby(["prompt_idx", "engine"])["time_s"].median().unstack("engine")
    per_prompt = pd.DataFrame({"prompt_idx": t.index, "ratio": (t["hf"] / t["ours"]).to_numpy(float)}).dropna()
    est = float(per_prompt["ratio"].median())
    if len(per_prompt) < 2:
        return Interval(est, math.nan, math.nan, "prompt", len(per_prompt), 0)
    return cluster_bootstrap(per_prompt, lambda f: float(f["ratio"].median()), "prompt", n_boot, seed)


def best_speedup(throughput: pd.DataFrame, drafts, n_boot: int = 1000, seed: int = 0) -> tuple[str, int, Interval]:
    """The (draft, gamma) among ``drafts`` with the highest median per-prompt speed-up, and its interval.

    ``throughput`` is a per-prompt table (``draft``, ``gamma``, ``method``, ``prompt_idx``,
    ``speedup_vs_autoregressive``; pass it through :func:`drop_load_flagged` first). The interval
    resamples prompts. It is the interval of the configuration *chosen* on the same prompts, so it
    carries the winner's-curse bias of a maximum over configurations (read it as optimistic;
    :func:`heldout_best_speedup` chooses and scores on different prompts). With fewer than 2
    prompts left the estimate comes without an interval (NaN bounds).

    Examples
    --------
    >>> t = pd.DataFrame({"draft": ["a"] * 4 + ["b"] * 4, "gamma": [1, 1, 2, 2] * 2, "method": "speculative",
    ...                   "prompt_idx": [0, 1] * 4, "speedup_vs_autoregressive": [1.1, 1.3, 1.4, 1.6, 0.9, 1.0, 1.2, 1.2]})
    >>> d, g, iv = best_speedup(t, ["a", "b"], n_boot=50)
    >>> d, g, round(iv.estimate, 2)
    ('a', 2, 1.5)
    """
    need_columns(throughput, "throughput", ["draft", "gamma", "method", "prompt_idx", "speedup_vs_autoregressive"])
    spec = throughput[(throughput["method"] == "speculative") & throughput["draft"].isin(list(drafts))]
    if spec.empty:
        raise ValueError(f"drafts must name drafts with speculative rows in throughput, got {list(drafts)}")
    draft, gamma = spec.groupby(["draft", "gamma"])["speedup_vs_autoregressive"].median().idxmax()
    rows = spec[(spec["draft"] == draft) & (spec["gamma"] == gamma)]
    if rows["prompt_idx"].nunique() < 2:
        med = float(rows["speedup_vs_autoregressive"].median())
        return draft, int(gamma), Interval(med, np.nan, np.nan, "prompt", int(rows["prompt_idx"].nunique()), 0)
    iv = cluster_bootstrap(rows, lambda f: f["speedup_vs_autoregressive"].median(), "prompt", n_boot, seed)
    return draft, int(gamma), iv


@dataclass(frozen=True)
class HeldOutSpeedup:
    """The best configuration's speed-up held out (:func:`heldout_best_speedup`) beside the in-sample one.

    ``heldout``: the cross-fitted median over prompts and its interval (selection redone per draw);
    ``chosen``: the (draft, gamma) chosen on fold 0 and on fold 1 (``None`` for an empty fold);
    ``folds``: the ``prompt_idx`` of each fold; ``in_sample`` and ``in_sample_choice``: what
    :func:`best_speedup` reports (chosen and scored on the same prompts: optimistic).
    """

    heldout: Interval
    chosen: tuple
    folds: tuple
    in_sample: Interval
    in_sample_choice: tuple

    def to_dict(self) -> dict:
        return {
            "heldout": self.heldout.to_dict(),
            "chosen_by_fold": [list(c) if c is not None else None for c in self.chosen],
            "folds_prompt_idx": [list(f) for f in self.folds],
            "in_sample": self.in_sample.to_dict(),
            "in_sample_choice": list(self.in_sample_choice),
        }


def prompt_folds(prompt_idx) -> tuple[np.ndarray, np.ndarray]:
    """The two folds of :func:`heldout_best_speedup`: distinct prompt indices sorted, ranks alternating.

    Fold 0 holds the 1st, 3rd, 5th, ... smallest ``prompt_idx``, fold 1 the 2nd, 4th, ...: a rule
    fixed before the data (it reads only the indices), with fold sizes differing by at most one.

    Examples
    --------
    >>> [f.tolist() for f in prompt_folds([7, 3, 3, 10, 4])]
    [[3, 7], [4, 10]]
    """
    u = np.unique(np.asarray(prompt_idx))
    return u[0::2], u[1::2]


def _fold_choice(vals: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Index of the configuration (row of ``vals``) with the highest median over ``cols``.

    ``cols`` is 1-d (one choice) or (draws, n) (one choice per draw); a configuration with no value
    on the chosen prompts never wins; ties go to the first row, as in :func:`best_speedup`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: a configuration missing there
        med = np.nanmedian(vals[:, cols], axis=-1)  # (configs,) or (configs, draws)
    return np.argmax(np.where(np.isnan(med), -np.inf, med), axis=0)


def _crossfit(vals: np.ndarray, i0: np.ndarray, i1: np.ndarray) -> tuple:
    """Cross-fitted median: each fold's prompts scored under the configuration chosen on the other."""
    c0, c1 = _fold_choice(vals, i0), _fold_choice(vals, i1)
    held = np.concatenate([vals[np.expand_dims(c1, -1), i0], vals[np.expand_dims(c0, -1), i1]], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(held, axis=-1), c0, c1


def heldout_best_speedup(throughput: pd.DataFrame, drafts, n_boot: int = 1000, seed: int = 0) -> HeldOutSpeedup:
    r"""The speed-up of the best (draft, gamma) among ``drafts``, chosen on other prompts than it is scored on.

    :func:`best_speedup` picks the configuration with the highest median per-prompt speed-up and
    reports that median: a maximum over configurations of noisy medians, biased upward (the winner's
    curse), the more so the more configurations and the fewer prompts. Here the rule is fixed before
    the data:

    1. **folds**: the distinct ``prompt_idx``, sorted, alternate between fold 0 and fold 1
       (:func:`prompt_folds`);
    2. **cross-fitting**: on each fold, choose :math:`\hat k_f = rg\max_k \operatorname{median}_{p
       \in f} S_{k,p}`; score every prompt under the configuration chosen on the *other* fold;
    3. **estimate**: :math:`\hat S = \operatorname{median}_p S_{\hat k_{-f(p)},\,p}` over all prompts,
       the speed-up that "choose the best configuration on some prompts" delivers on new ones;
    4. **interval**: each bootstrap draw resamples prompts with replacement *within* each fold,
       re-chooses on the resampled folds and re-scores, so the interval carries the selection's own
       variability; percentile interval, unit ``prompt``.

    Parameters
    ----------
    throughput : DataFrame
        Per-prompt rows (``draft``, ``gamma``, ``method``, ``prompt_idx``,
        ``speedup_vs_autoregressive``); pass it through :func:`drop_load_flagged` first.
    drafts : iterable of str
        The drafts whose speculative rows compete (every gamma of each).
    n_boot : int
        Bootstrap draws (>= 1).
    seed : int
        Seed of the draws (the in-sample interval uses it too).

    Returns
    -------
    HeldOutSpeedup
        With fewer than 4 prompts the held-out interval is NaN (``n_boot`` 0): a fold of one prompt
        cannot be resampled; the estimate is still the cross-fitted median with 2 or 3 prompts, and
        NaN with 1 (nothing to score on). The in-sample part is :func:`best_speedup`'s.

    Notes
    -----
    A (configuration, prompt) without a value (its row dropped by the load filter) counts in no
    median. Under equal configurations the held-out estimate is unbiased for their common median
    while the in-sample one is not (``tests/analysis/test_heldout_speedup.py``: 12 equal
    configurations, 16 prompts: in-sample +0.15, held-out within 0.01). The interval is
    conservative there: about 1.25 times the estimate's spread across simulated data sets (every
    draw's choice among near-equal configurations adds their fold-to-fold spread), so it covered the
    truth in 150 of 150 (nominal 95%). Halving the prompts to choose makes the choice noisier, so
    when one configuration is truly best the held-out estimate is a slightly conservative reading
    of it.

    Examples
    --------
    >>> t = pd.DataFrame({"draft": "a", "method": "speculative", "gamma": np.repeat([1, 2], 6),
    ...                   "prompt_idx": np.tile(range(6), 2),
    ...                   "speedup_vs_autoregressive": [1.1, 1.2, 1.0, 1.3, 1.1, 1.2, 1.5, 1.6, 1.4, 1.7, 1.5, 1.6]})
    >>> r = heldout_best_speedup(t, ["a"], n_boot=50)
    >>> r.chosen, round(r.heldout.estimate, 2), r.heldout.unit, r.in_sample_choice
    ((('a', 2), ('a', 2)), 1.55, 'prompt', ('a', 2))
    """
    d, g, in_sample = best_speedup(throughput, drafts, n_boot, seed)  # validates columns, drafts and n_boot
    spec = throughput[(throughput["method"] == "speculative") & throughput["draft"].isin(list(drafts))]
    cube = spec.pivot_table(
        index=["draft", "gamma"], columns="prompt_idx", values="speedup_vs_autoregressive", aggfunc="mean"
    ).sort_index()
    vals = cube.to_numpy(float)
    prompts = cube.columns.to_numpy()
    f0, f1 = prompt_folds(prompts)
    i0, i1 = np.searchsorted(prompts, f0), np.searchsorted(prompts, f1)
    configs = [(str(dr), int(ga)) for dr, ga in cube.index]
    folds = (tuple(int(p) for p in f0), tuple(int(p) for p in f1))
    method = "percentile bootstrap, prompts resampled within 2 folds, selection redone per draw"
    if i1.size == 0:
        nan = Interval(math.nan, math.nan, math.nan, "prompt", len(prompts), 0, method=method)
        return HeldOutSpeedup(nan, (configs[int(_fold_choice(vals, i0))], None), folds, in_sample, (d, g))
    est, c0, c1 = _crossfit(vals, i0, i1)
    chosen = (configs[int(c0)], configs[int(c1)])
    if min(i0.size, i1.size) < 2:
        iv = Interval(float(est), math.nan, math.nan, "prompt", len(prompts), 0, method=method)
        return HeldOutSpeedup(iv, chosen, folds, in_sample, (d, g))
    rng = np.random.default_rng(seed)
    b0 = i0[rng.integers(0, i0.size, (n_boot, i0.size))]
    b1 = i1[rng.integers(0, i1.size, (n_boot, i1.size))]
    draws = _crossfit(vals, b0, b1)[0]
    iv = replace(percentile_interval(draws, float(est), "prompt", len(prompts)), method=method)
    return HeldOutSpeedup(iv, chosen, folds, in_sample, (d, g))
