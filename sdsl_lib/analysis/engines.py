r"""Three engines on the same pairs: acceptance that must agree, costs that differ, Eq. 1 for each.

Notebook 14's three-engine section reads the tables of stage ``vllm`` (``vllm_acceptance``,
``vllm_throughput``: vLLM's counters and timings beside our loop's counters on the same prompts),
our loop's timed runs (``throughput_summary``) and step-cost calibration (``cost_calibration``),
Hugging Face assisted generation beside our loop (``hf_baseline``, ``hf_summary``) and the held-out
acceptance (``alpha``).

**Acceptance.** Greedy decoding with the same draft on the same prompts proposes and accepts the
same tokens whatever the engine, so :math:`\alpha` inverted from each engine's own counters must
agree up to numerics: :func:`alpha_agreement`, :func:`agreement_interval` (pairs resampled).

**Cost of one iteration.** One speculative iteration drafts :math:`\gamma` tokens and verifies
:math:`\gamma + 1`; in units of one plain decoding step *of the same engine* it costs

.. math:: C(\gamma) = \gamma c + v(\gamma + 1)

(the denominator of Eq. 1 with measured costs, :func:`sdsl_lib.laws.wallclock.wallclock_speedup`)
and emits :math:`L` tokens on average, so the speed-up over that engine's plain decoding is
:math:`S = L / C`. A timed speed-up and a counted :math:`L` therefore give the cost the engine
actually paid, :math:`C = L/S` (:func:`implied_iteration_cost`), whatever its parts.

**Each engine's costs, measured apart from the speed-up they predict.**

- ours: :math:`c` and :math:`v(\gamma+1)` from the step-cost calibration (a microbenchmark of the
  draft and target steps, not the speculative runs);
- vLLM and HF: no separate microbenchmark exists, so the cost is measured on the engine's own runs
  **at the other lookaheads** of the same pair (and batch size): the line through plain decoding's
  cost 1 at :math:`\gamma = 0`, :math:`C(\gamma) = 1 + s\gamma` (:func:`cost_per_drafted_token`), is
  fitted leaving out the lookahead it predicts (:func:`heldout_cost_slope`). :math:`s = c + \beta`
  is the cost of one more drafted token: a draft step plus the extra verification of one token.
  Under it Eq. 1 is :func:`~sdsl_lib.laws.wallclock.wallclock_speedup` with :math:`c = s`,
  :math:`v = 1`.

Eq. 1 then predicts every engine's speed-up with one shared, held-out :math:`\alpha` per pair
(:func:`engine_cells`); :func:`prediction_error` gives the mean absolute log error per engine and
batch size, pairs resampled.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sdsl_lib.analysis.stats import Interval, cluster_bootstrap
from sdsl_lib.analysis.tables import need_columns
from sdsl_lib.analysis.throughput import verification_cost_curve
from sdsl_lib.laws.wallclock import wallclock_speedup

__all__ = [
    "ENGINES",
    "alpha_agreement",
    "agreement_interval",
    "implied_iteration_cost",
    "cost_per_drafted_token",
    "heldout_cost_slope",
    "engine_cells",
    "cost_slopes",
    "prediction_error",
]

#: The engines, in the order tables and figures show them.
ENGINES = ("ours", "hf", "vllm")
_PAIR = ["draft", "target"]


def _pair_interval(frame: pd.DataFrame, statistic, n_boot: int, seed: int) -> Interval:
    """``statistic`` on ``frame`` with pairs resampled; NaN bounds with fewer than 2 pairs."""
    if frame.empty:
        raise ValueError("frame must hold at least one row")
    n_pairs = frame.groupby(_PAIR).ngroups
    if n_pairs < 2:
        return Interval(float(statistic(frame)), math.nan, math.nan, "pair", n_pairs, 0)
    return cluster_bootstrap(frame, statistic, "pair", n_boot, seed)


def alpha_agreement(acceptance: pd.DataFrame) -> pd.DataFrame:
    """vLLM's :math:`\\alpha` beside our loop's, per (pair, gamma), from ``vllm_acceptance``.

    Returns ``draft, target, gamma`` and, suffixed ``_vllm`` and ``_ours``: ``alpha`` (App. B's mean
    accepted drafts inverted at that gamma), its interval ``alpha_ci95_lower/upper`` (over
    iterations, from the counters), ``alpha_tar`` (all gammas), ``num_drafts``, ``greedy_equal_ar``;
    then ``difference`` (vLLM minus ours) and ``abs_difference``.

    Examples
    --------
    >>> rows = [{"draft": "d", "target": "t", "engine": e, "gamma": 2, "alpha": a, "alpha_ci95_lower": a - 0.01,
    ...          "alpha_ci95_upper": a + 0.01, "alpha_tar": a, "num_drafts": 90, "greedy_equal_ar": True}
    ...         for e, a in (("vllm", 0.41), ("ours", 0.40))]
    >>> round(float(alpha_agreement(pd.DataFrame(rows))["difference"].iloc[0]), 3)
    0.01
    """
    cols = ["alpha", "alpha_ci95_lower", "alpha_ci95_upper", "alpha_tar", "num_drafts", "greedy_equal_ar"]
    need_columns(acceptance, "vllm_acceptance", [*_PAIR, "engine", "gamma", *cols])
    keys = [*_PAIR, "gamma"]
    by = {e: acceptance.loc[acceptance["engine"] == e, keys + cols] for e in ("vllm", "ours")}
    out = by["vllm"].merge(by["ours"], on=keys, suffixes=("_vllm", "_ours"), validate="one_to_one")
    if out.empty:
        raise ValueError("acceptance must hold vllm and ours rows of the same (draft, target, gamma)")
    out["difference"] = out["alpha_vllm"].astype(float) - out["alpha_ours"].astype(float)
    out["abs_difference"] = out["difference"].abs()
    return out.sort_values(keys).reset_index(drop=True)


def agreement_interval(agreement: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> Interval:
    r"""Mean over (pair, gamma) of :math:`|\alpha_\text{vLLM} - \alpha_\text{ours}|`, interval resampling **pairs**.

    The gammas of one pair share its draft and prompts, so the pair is the unit; rows where either
    :math:`\alpha` is missing (no drafts counted) are left out. With one pair the bounds are NaN.
    The absolute value keeps disagreements of opposite sign from cancelling.
    """
    need_columns(agreement, "agreement", [*_PAIR, "alpha_vllm", "alpha_ours", "abs_difference"])
    ok = agreement[np.isfinite(agreement[["alpha_vllm", "alpha_ours"]].to_numpy(float)).all(axis=1)]
    return _pair_interval(ok, lambda f: float(f["abs_difference"].mean()), n_boot, seed)


def implied_iteration_cost(tokens_per_iteration, speedup):
    r"""Cost of one speculative iteration in plain decoding steps, from a timed speed-up: :math:`C = L/S`.

    .. math:: S = \frac{L}{C} \quad\Longrightarrow\quad C = \frac{L}{S} = \gamma c + v(\gamma + 1)

    with :math:`L` the tokens emitted per iteration (bonus included) and :math:`S` the speed-up
    over the same engine's plain decoding. It is what the engine paid per iteration, draft steps
    and verification together; it is not a prediction.

    Parameters
    ----------
    tokens_per_iteration : array_like
        :math:`L \ge 1` (NaN passes through).
    speedup : array_like
        :math:`S > 0` (NaN passes through).

    Examples
    --------
    >>> round(float(implied_iteration_cost(1.8, 0.6)), 3)
    3.0
    """
    L, S = np.asarray(tokens_per_iteration, dtype=float), np.asarray(speedup, dtype=float)
    if (L[np.isfinite(L)] < 1).any():
        raise ValueError("tokens_per_iteration must be >= 1 (every iteration emits the target's token)")
    if (S[np.isfinite(S)] <= 0).any():
        raise ValueError("speedup must be > 0")
    out = L / S
    return float(out) if out.ndim == 0 else out


def cost_per_drafted_token(gamma, cost) -> float:
    r"""Least-squares slope :math:`s` of :math:`C(\gamma) = 1 + s\gamma` (the line through :math:`C(0) = 1`).

    .. math:: s = \frac{\sum_j \gamma_j\,(C_j - 1)}{\sum_j \gamma_j^2}

    Plain decoding (:math:`\gamma = 0`) costs one step per iteration by definition, hence the fixed
    intercept. :math:`s = c + \beta` when :math:`v(\gamma + 1) = 1 + \beta\gamma`.

    Examples
    --------
    >>> cost_per_drafted_token([2, 4], [3.0, 5.0])
    1.0
    """
    g, c = np.asarray(gamma, dtype=float), np.asarray(cost, dtype=float)
    ok = np.isfinite(g) & np.isfinite(c) & (g > 0)
    if not ok.any():
        return math.nan
    return float(np.sum(g[ok] * (c[ok] - 1.0)) / np.sum(g[ok] ** 2))


def heldout_cost_slope(cells: pd.DataFrame, by=("engine", "batch_size", "draft", "target")) -> np.ndarray:
    """For each row, :func:`cost_per_drafted_token` fitted on the *other* gammas of its group.

    ``cells`` holds ``gamma`` and ``cost_implied`` and the columns of ``by``. NaN where the group
    holds no other gamma with a finite cost.

    Examples
    --------
    >>> f = pd.DataFrame({"engine": "vllm", "batch_size": 1, "draft": "d", "target": "t",
    ...                   "gamma": [2, 4], "cost_implied": [3.0, 4.2]})
    >>> heldout_cost_slope(f).round(3).tolist()
    [0.8, 1.0]
    """
    need_columns(cells, "cells", [*by, "gamma", "cost_implied"])
    out = np.full(len(cells), np.nan)
    pos = {ix: i for i, ix in enumerate(cells.index)}
    for _, grp in cells.groupby(list(by), sort=False):
        for ix in grp.index:
            rest = grp.drop(index=ix)
            out[pos[ix]] = cost_per_drafted_token(rest["gamma"], rest["cost_implied"])
    return out


def _ours(tables: dict, pairs: pd.DataFrame) -> pd.DataFrame:
    summ = tables["throughput_summary"]
    need_columns(summ, "throughput_summary", [*_PAIR, "method", "gamma", "speedup_median", "tokens_per_iteration_mean"])
    s = summ[summ["method"] == "speculative"].merge(pairs, on=_PAIR)
    cal = tables["cost_calibration"]
    one = cal[cal["n_new_tokens"] == 1].set_index("model")["latency_median_s"].astype(float)
    rows = []
    for t, grp in s.groupby("target", sort=False):
        v = verification_cost_curve(cal, t).set_index("n_new_tokens")["v"]
        g = grp.assign(
            c_used=grp["draft"].map(one).to_numpy(float) / one[t],
            v_used=v.reindex(grp["gamma"].astype(int) + 1).to_numpy(float),
        )
        rows.append(g)
    s = pd.concat(rows, ignore_index=True)
    return pd.DataFrame(
        {
            "engine": "ours",
            "batch_size": 1,
            "draft": s["draft"],
            "target": s["target"],
            "gamma": s["gamma"].astype(int),
            "tokens_per_iteration": s["tokens_per_iteration_mean"].to_numpy(float),
            "speedup_measured": s["speedup_median"].to_numpy(float),
            "c_used": s["c_used"],
            "v_used": s["v_used"],
            "cost_source": "cost_calibration: draft and target steps timed alone",
        }
    )


def _hf(tables: dict, pairs: pd.DataFrame) -> pd.DataFrame:
    hs, hb, summ = tables["hf_summary"], tables["hf_baseline"], tables["throughput_summary"]
    need_columns(hs, "hf_summary", [*_PAIR, "gamma", "ours_over_hf_speed_ratio_median"])
    need_columns(hb, "hf_baseline", [*_PAIR, "gamma", "engine", "new_tokens", "iterations"])
    hs = hs.merge(pairs, on=_PAIR)
    ours = summ[summ["method"] == "speculative"].set_index([*_PAIR, "gamma"])["speedup_median"]
    # HF's greedy assisted generation with a constant lookahead emits the same tokens in the same
    # iterations as our loop when the outputs are identical, so our counted iterations are HF's too.
    it = hb[hb["engine"] == "ours"].groupby([*_PAIR, "gamma"])[["new_tokens", "iterations"]].sum()
    key = list(zip(hs["draft"], hs["target"], hs["gamma"]))
    s_ours = ours.reindex(key).to_numpy(float)
    tokens = it.reindex(key)
    return pd.DataFrame(
        {
            "engine": "hf",
            "batch_size": 1,
            "draft": hs["draft"].to_numpy(),
            "target": hs["target"].to_numpy(),
            "gamma": hs["gamma"].astype(int).to_numpy(),
            "tokens_per_iteration": (tokens["new_tokens"] / tokens["iterations"]).to_numpy(float),
            # HF over our plain decoding = (our speed-up) x (HF's tokens/s over ours, timed in one block)
            "speedup_measured": s_ours / hs["ours_over_hf_speed_ratio_median"].to_numpy(float),
            "cost_source": "HF's own runs at the other gammas (C = 1 + s gamma)",
        }
    )


def _vllm(tables: dict, pairs: pd.DataFrame) -> pd.DataFrame:
    vt, va = tables["vllm_throughput"], tables["vllm_acceptance"]
    need_columns(
        vt, "vllm_throughput", [*_PAIR, "engine", "method", "gamma", "batch_size", "speedup_vs_autoregressive"]
    )
    need_columns(va, "vllm_acceptance", [*_PAIR, "engine", "gamma", "mean_acceptance_length"])
    spec = vt[(vt["engine"] == "vllm") & (vt["method"] == "speculative")].merge(pairs, on=_PAIR)
    # vLLM's counters come from its smallest batch's pass; greedy decoding accepts the same tokens
    # at every batch size, so that L holds for the batch-8 timing too.
    L = va[va["engine"] == "vllm"][[*_PAIR, "gamma", "mean_acceptance_length"]]
    s = spec.merge(L, on=[*_PAIR, "gamma"], how="left")
    return pd.DataFrame(
        {
            "engine": "vllm",
            "batch_size": s["batch_size"].astype(int),
            "draft": s["draft"],
            "target": s["target"],
            "gamma": s["gamma"].astype(int),
            "tokens_per_iteration": s["mean_acceptance_length"].to_numpy(float),
            "speedup_measured": s["speedup_vs_autoregressive"].to_numpy(float),
            "cost_source": "vLLM's own runs at the other gammas (C = 1 + s gamma)",
        }
    )


def engine_cells(tables: dict, alpha_column: str = "greedy_match_tf") -> pd.DataFrame:
    r"""One row per (engine, batch size, pair, gamma): measured speed-up, implied cost, Eq. 1's prediction.

    Parameters
    ----------
    tables : dict of DataFrame
        ``alpha``, ``vllm_acceptance``, ``vllm_throughput``, ``throughput_summary``,
        ``cost_calibration``; optionally ``hf_baseline`` and ``hf_summary`` (both, or HF is left
        out). The pairs are those with ``vllm`` rows in ``vllm_acceptance``.
    alpha_column : str
        The shared acceptance, a column of ``alpha`` (held out: teacher-forced on the alpha stage's
        text, not counted in any run predicted here). The runs decode greedily, so
        ``greedy_match_tf`` is the matching one.

    Returns
    -------
    DataFrame
        ``engine, batch_size, draft, target, gamma, alpha_shared, tokens_per_iteration,
        speedup_measured, cost_implied`` (:func:`implied_iteration_cost`), ``c_used, v_used`` (ours:
        the calibrated :math:`c, v(\gamma+1)`; vLLM and HF: :math:`s` fitted on the other gammas,
        :func:`heldout_cost_slope`, and 1), ``cost_predicted`` (:math:`\gamma c + v`),
        ``speedup_predicted`` (Eq. 1, :func:`~sdsl_lib.laws.wallclock.wallclock_speedup`),
        ``log_error`` (:math:`\ln(\hat S / S)`), ``cost_source``. Cells without a cost to predict
        with (a gamma+1 not calibrated, a single gamma) have NaN predictions.
    """
    need_columns(tables["alpha"], "alpha", [*_PAIR, alpha_column])
    va = tables["vllm_acceptance"]
    need_columns(va, "vllm_acceptance", [*_PAIR, "engine"])
    pairs = va.loc[va["engine"] == "vllm", _PAIR].drop_duplicates()
    parts = [_ours(tables, pairs), _vllm(tables, pairs)]
    if tables.get("hf_summary") is not None and tables.get("hf_baseline") is not None:
        parts.insert(1, _hf(tables, pairs))
    cells = pd.concat(parts, ignore_index=True)
    cells["cost_implied"] = implied_iteration_cost(cells["tokens_per_iteration"], cells["speedup_measured"])
    other = cells["engine"] != "ours"
    cells.loc[other, "c_used"] = heldout_cost_slope(cells[other])
    cells.loc[other, "v_used"] = 1.0
    alpha = tables["alpha"].set_index(_PAIR)[alpha_column].astype(float)
    cells["alpha_shared"] = alpha.reindex(list(zip(cells["draft"], cells["target"]))).to_numpy()
    g, c, v = (cells[k].to_numpy(float) for k in ("gamma", "c_used", "v_used"))
    cells["cost_predicted"] = g * c + v
    ok = np.isfinite(cells["alpha_shared"].to_numpy(float)) & np.isfinite(c) & np.isfinite(v) & (v > 0) & (c >= 0)
    pred = np.full(len(cells), np.nan)
    # Eq. 12's tokens per iteration is singular at alpha = 1; a measured acceptance never reaches it.
    a = cells["alpha_shared"].to_numpy(float)[ok].clip(0.0, 0.999)
    pred[ok] = np.asarray(wallclock_speedup(a, g[ok], c[ok], v[ok]))
    cells["speedup_predicted"] = pred
    cells["log_error"] = np.log(cells["speedup_predicted"] / cells["speedup_measured"])
    order = {e: i for i, e in enumerate(ENGINES)}
    cells = cells.sort_values(
        ["engine", "batch_size", "draft", "gamma"], key=lambda s: s.map(order) if s.name == "engine" else s
    )
    cols = [
        "engine",
        "batch_size",
        "draft",
        "target",
        "gamma",
        "alpha_shared",
        "tokens_per_iteration",
        "speedup_measured",
        "cost_implied",
        "c_used",
        "v_used",
        "cost_predicted",
        "speedup_predicted",
        "log_error",
        "cost_source",
    ]
    return cells[cols].reset_index(drop=True)


def cost_slopes(cells: pd.DataFrame) -> pd.DataFrame:
    r"""Per (engine, batch size, pair): :math:`s` of :math:`C(\gamma) = 1 + s\gamma` fitted on every gamma (descriptive).

    Returns ``engine, batch_size, draft, target, s, n_gammas``.

    Examples
    --------
    >>> f = pd.DataFrame({"engine": "vllm", "batch_size": 1, "draft": "d", "target": "t",
    ...                   "gamma": [2, 4], "cost_implied": [3.0, 5.0]})
    >>> cost_slopes(f)[["s", "n_gammas"]].to_dict("records")
    [{'s': 1.0, 'n_gammas': 2}]
    """
    by = ["engine", "batch_size", *_PAIR]
    need_columns(cells, "cells", [*by, "gamma", "cost_implied"])
    rows = [
        {
            **dict(zip(by, k)),
            "s": cost_per_drafted_token(g["gamma"], g["cost_implied"]),
            "n_gammas": int(g["gamma"].nunique()),
        }
        for k, g in cells.groupby(by, sort=False)
    ]
    return pd.DataFrame(rows)


def prediction_error(cells: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict:
    r"""Mean over (pair, gamma) of :math:`|\ln(\hat S/S)|` per (engine, batch size), interval resampling **pairs**.

    Returns ``{(engine, batch_size): Interval}`` in :data:`ENGINES` order; cells without a
    prediction are left out; fewer than 2 pairs give NaN bounds.
    """
    need_columns(cells, "cells", ["engine", "batch_size", *_PAIR, "log_error"])
    ok = cells[np.isfinite(cells["log_error"].to_numpy(float))]
    out = {}
    for e in ENGINES:
        for b, grp in ok[ok["engine"] == e].groupby("batch_size"):
            out[(e, int(b))] = _pair_interval(grp, lambda f: float(np.abs(f["log_error"]).mean()), n_boot, seed)
    return out
