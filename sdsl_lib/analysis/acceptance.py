r"""Acceptance on the measured ladder: alpha three ways, the Eq. 5 plane, Table 4 forms, Eq. 12.

- :func:`alpha_three_ways`, :func:`alpha_disagreement`: the acceptance estimates of ``alpha.csv``
  (teacher-forced sum-min, TAR inverse of App. B, greedy match) side by side;
- :func:`fit_ladder_plane` (Eq. 5, our Table 3) and :func:`plane_draws_by_pair` (its bootstrap,
  resampling pairs), :func:`per_target_forms` (Table 4), :func:`per_target_r2_gain`;
- :func:`position_acceptance`, :func:`iid_check`, :func:`tar_vs_eq12`: how i.i.d. Eq. 12 really is;
- :func:`alpha_log_ppl_line`, :func:`alpha_log_ppl_slope`: one target's plane, the log form of
  Table 4, with drafts resampled.

The laws themselves (Eq. 5, Eq. 12, the Table 4 forms) come from :mod:`sdsl_lib.laws.acceptance`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from sdsl_lib.analysis.stats import Interval, bootstrap_draws, cluster_bootstrap, mean_ci, percentile_interval
from sdsl_lib.analysis.tables import FILES, need_columns
from sdsl_lib.laws.acceptance import fit_alpha_plane, fit_alpha_vs_draft_ppl, tar_model
from sdsl_lib.laws.constants import AlphaPlane
from sdsl_lib.laws.speculation import expected_accepted_drafts

__all__ = [
    "ALPHA_METHODS",
    "alpha_three_ways",
    "alpha_disagreement",
    "mean_difference",
    "LadderPlane",
    "fit_ladder_plane",
    "plane_draws_by_pair",
    "plane_interval",
    "per_target_forms",
    "per_target_r2_gain",
    "position_acceptance",
    "iid_check",
    "tar_vs_eq12",
    "alpha_log_ppl_line",
    "alpha_log_ppl_slope",
]


#: The acceptance estimates of ``alpha.csv``: column stem and what it measures.
ALPHA_METHODS = {
    "alpha_tf": "teacher-forced sum-min: mean over held-out positions of sum_x min(p, q), temperature 1 (Leviathan's alpha = E[beta])",
    "alpha_tar": "TAR inverse: Eq. 12 (accepted drafts, no bonus) fitted over gamma to speculative sampling at T = 1 on generated text (App. B)",
    "greedy_match_tf": "greedy match: share of held-out positions where argmax p = argmax q (temperature-0 acceptance)",
    "greedy_acceptance_run": "greedy acceptance in the timed runs: accepted / proposed drafts (depends on gamma through truncation; no CI)",
}


def alpha_three_ways(alpha: pd.DataFrame) -> pd.DataFrame:
    """The acceptance estimates of every pair in long form: ``draft, target, method, alpha,
    ci95_lower, ci95_upper``.

    Methods are the keys of :data:`ALPHA_METHODS`; ``greedy_acceptance_run`` carries no interval.
    """
    need_columns(alpha, "alpha", FILES["alpha"][1])
    frames = []
    for m in ALPHA_METHODS:
        lo, hi = (f"{m}_ci95_lower", f"{m}_ci95_upper")
        frames.append(
            pd.DataFrame(
                {
                    "draft": alpha["draft"],
                    "target": alpha["target"],
                    "method": m,
                    "alpha": alpha[m].astype(float),
                    "ci95_lower": alpha[lo].astype(float) if lo in alpha else np.nan,
                    "ci95_upper": alpha[hi].astype(float) if hi in alpha else np.nan,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def alpha_disagreement(alpha: pd.DataFrame, a: str = "alpha_tar", b: str = "alpha_tf") -> dict:
    r"""How far two acceptance estimates disagree over the pairs.

    Per pair the difference :math:`a - b` with a 95% interval that adds the two half-widths in
    quadrature (independent estimates, normal approximation); over pairs the mean difference with a
    t-interval, the mean absolute difference, the share of pairs whose two intervals overlap, and
    Spearman's rank correlation (do both rank the drafts the same way?).

    Returns
    -------
    dict with keys ``per_pair`` (DataFrame), ``mean_diff``, ``mean_diff_ci95``, ``mean_abs_diff``,
    ``share_overlapping``, ``spearman_rho``, ``n_pairs``.

    Examples
    --------
    >>> df = pd.DataFrame({"draft": ["a", "b", "c"], "target": "t", "x": [0.5, 0.6, 0.7],
    ...                    "x_ci95_lower": [0.45, 0.55, 0.65], "x_ci95_upper": [0.55, 0.65, 0.75],
    ...                    "y": [0.4, 0.5, 0.6], "y_ci95_lower": [0.35, 0.45, 0.55], "y_ci95_upper": [0.45, 0.55, 0.65]})
    >>> r = alpha_disagreement(df, "x", "y")
    >>> round(r["mean_diff"], 3), r["share_overlapping"], round(r["spearman_rho"], 3)
    (0.1, 1.0, 1.0)
    """
    need_columns(alpha, "alpha", ["draft", "target", a, b])
    da, db = alpha[a].to_numpy(float), alpha[b].to_numpy(float)

    def half(col):
        lo, hi = f"{col}_ci95_lower", f"{col}_ci95_upper"
        if lo in alpha and hi in alpha:
            return (alpha[hi].to_numpy(float) - alpha[lo].to_numpy(float)) / 2.0
        return np.zeros(len(alpha))

    ha, hb = half(a), half(b)
    diff = da - db
    h = np.sqrt(ha**2 + hb**2)
    per = pd.DataFrame(
        {
            "draft": alpha["draft"],
            "target": alpha["target"],
            a: da,
            b: db,
            "diff": diff,
            "diff_ci95_lower": diff - h,
            "diff_ci95_upper": diff + h,
            "overlap": np.abs(diff) <= ha + hb,
        }
    )
    ok = np.isfinite(diff)
    m, lo, hi = mean_ci(diff[ok])
    rho = float(stats.spearmanr(da[ok], db[ok]).statistic) if ok.sum() >= 3 else math.nan
    return {
        "per_pair": per,
        "mean_diff": m,
        "mean_diff_ci95": [lo, hi],
        "mean_abs_diff": float(np.abs(diff[ok]).mean()) if ok.any() else math.nan,
        "share_overlapping": float(per.loc[ok, "overlap"].mean()) if ok.any() else math.nan,
        "spearman_rho": rho,
        "n_pairs": int(ok.sum()),
    }


@dataclass(frozen=True)
class LadderPlane:
    """The acceptance plane fitted on the ladder's pairs (our Table 3).

    ``identified`` is False when the target perplexity did not vary (one target): B is then not
    identifiable, set to 0, and A, C come from a least-squares line in the draft perplexity alone.
    """

    plane: AlphaPlane
    table: pd.DataFrame  # parameter, estimate, std_error, margin_of_error_95, ci95_lower, ci95_upper
    r2: float
    mse: float
    n: int
    identified: bool
    alpha_column: str
    ppl_split: str


def fit_ladder_plane(alpha: pd.DataFrame, alpha_column: str = "alpha_tf", ppl_split: str = "val") -> LadderPlane:
    r"""Fit :math:`\alpha = A x + B y + C` (Eq. 5) on the ladder's pairs (our Table 3).

    Parameters
    ----------
    alpha : DataFrame
        ``alpha.csv``.
    alpha_column : str
        Which estimate plays :math:`\alpha` (``alpha_tf``, ``alpha_tar``, ``greedy_match_tf``...).
    ppl_split : {"val", "test"}
        Which held-out perplexities play x and y.

    Notes
    -----
    Uses :func:`sdsl_lib.laws.acceptance.fit_alpha_plane` (Table 3's conventions) whenever there are at
    least 4 pairs and both perplexities vary. With a single target, :math:`B` multiplies a constant and
    is confounded with :math:`C`: the fit then drops the y term (``identified=False``). The smoke
    profile (one target) takes that branch.

    Examples
    --------
    >>> df = pd.DataFrame({"draft_val_ppl": [20., 25, 30, 20, 25, 30], "target_val_ppl": [10., 10, 10, 15, 15, 15]})
    >>> df["a"] = 0.6 - 0.01 * df.draft_val_ppl + 0.02 * df.target_val_ppl
    >>> p = fit_ladder_plane(df, "a")
    >>> round(p.plane.A, 4), round(p.plane.B, 4), round(p.plane.C, 4), p.identified
    (-0.01, 0.02, 0.6, True)
    """
    if ppl_split not in ("val", "test"):
        raise ValueError(f"ppl_split must be 'val' or 'test', got {ppl_split!r}")
    xcol, ycol = f"draft_{ppl_split}_ppl", f"target_{ppl_split}_ppl"
    need_columns(alpha, "alpha", [xcol, ycol, alpha_column])
    ok = np.isfinite(alpha[alpha_column].to_numpy(float))
    x, y, a = (alpha.loc[ok, c].to_numpy(float) for c in (xcol, ycol, alpha_column))
    if np.unique(x).size < 2:
        raise ValueError(f"alpha needs at least 2 distinct draft perplexities to fit a plane, got {np.unique(x).size}")
    if x.size >= 4 and np.unique(y).size >= 2:
        f = fit_alpha_plane(x, y, a)
        return LadderPlane(f.plane, f.table, f.r2, f.mse, f.n, True, alpha_column, ppl_split)
    # Reduced fit: alpha = A x + C (B = 0, not identifiable from one target perplexity).
    design = np.column_stack([x, np.ones_like(x)])
    res = sm.OLS(a, design).fit()
    dof = res.df_resid
    se = np.asarray(res.bse) if dof > 0 else np.full(2, np.nan)
    t = stats.t.ppf(0.975, dof) if dof > 0 else np.nan
    est = np.asarray(res.params)
    table = pd.DataFrame(
        {
            "parameter": ["A", "B", "C"],
            "estimate": [est[0], 0.0, est[1]],
            "std_error": [se[0], np.nan, se[1]],
            "margin_of_error_95": [t * se[0], np.nan, t * se[1]],
            "ci95_lower": [est[0] - t * se[0], np.nan, est[1] - t * se[1]],
            "ci95_upper": [est[0] + t * se[0], np.nan, est[1] + t * se[1]],
        }
    )
    plane = AlphaPlane(
        A=float(est[0]), B=0.0, C=float(est[1]), source="fit_ladder_plane (reduced: one target perplexity)"
    )
    r2 = float(res.rsquared) if np.ptp(a) > 0 else math.nan
    return LadderPlane(plane, table, r2, float(res.ssr / a.size), int(a.size), False, alpha_column, ppl_split)


def per_target_forms(alpha: pd.DataFrame, alpha_column: str = "alpha_tf", ppl_split: str = "val") -> pd.DataFrame:
    """Table 4 on the ladder: for each target, alpha against draft perplexity in the linear, log and
    power forms (:func:`sdsl_lib.laws.acceptance.fit_alpha_vs_draft_ppl`).

    Targets with fewer than 3 drafts (or no spread in alpha) get no rows: two points fit any
    two-parameter curve exactly. Columns: ``target, form, p1, p1_moe95, ..., mse, r2, n``.
    """
    xcol = f"draft_{ppl_split}_ppl"
    need_columns(alpha, "alpha", ["target", xcol, alpha_column])
    rows = []
    for tgt, g in alpha.groupby("target", sort=False):
        g = g[np.isfinite(g[alpha_column].to_numpy(float))]
        if len(g) < 3 or np.ptp(g[alpha_column].to_numpy(float)) == 0:
            continue
        for form in ("linear", "log", "power"):
            try:
                f = fit_alpha_vs_draft_ppl(g[xcol].to_numpy(float), g[alpha_column].to_numpy(float), form)
            except (RuntimeError, ValueError):  # curve_fit may not converge on a handful of points
                continue
            rows.append({"target": tgt, **f.as_row(), "n": f.n})
    return pd.DataFrame(rows)


def position_acceptance(pos: pd.DataFrame) -> pd.DataFrame:
    """Acceptance by draft position pooled over lookaheads, with Wilson 95% intervals.

    ``acceptance_by_position.csv`` counts, for each (pair, temperature, gamma, position i), how often
    position i was reached (all earlier drafts accepted) and how often it was then accepted. The draft
    at position i does not know gamma, so counts are pooled over gamma. Returns one row per
    (draft, target, temperature, position) with ``attempts, accepts, rate, ci95_lower, ci95_upper``.

    Examples
    --------
    >>> pos = pd.DataFrame({"draft": "d", "target": "t", "temperature": 1.0, "gamma": [1, 2, 2],
    ...                     "position": [1, 1, 2], "attempts": [10, 10, 8], "accepts": [8, 8, 4]})
    >>> position_acceptance(pos)[["position", "attempts", "accepts", "rate"]].to_dict("records")
    [{'position': 1, 'attempts': 20, 'accepts': 16, 'rate': 0.8}, {'position': 2, 'attempts': 8, 'accepts': 4, 'rate': 0.5}]
    """
    from statsmodels.stats.proportion import proportion_confint

    need_columns(pos, "pos", FILES["acceptance_by_position"][1])
    g = pos.groupby(["draft", "target", "temperature", "position"], as_index=False)[["attempts", "accepts"]].sum()
    g = g[g["attempts"] > 0].reset_index(drop=True)
    g["attempts"] = g["attempts"].astype(int)
    g["accepts"] = g["accepts"].astype(int)
    g["rate"] = g["accepts"] / g["attempts"]
    lo, hi = proportion_confint(g["accepts"].to_numpy(), g["attempts"].to_numpy(), alpha=0.05, method="wilson")
    g["ci95_lower"], g["ci95_upper"] = lo, hi
    return g


def iid_check(pos: pd.DataFrame, alpha: pd.DataFrame | None = None, alpha_column: str = "alpha_tf") -> pd.DataFrame:
    r"""How far the i.i.d. assumption behind Eq. 12 is off, per pair and temperature.

    Eq. 12 assumes every draft position is accepted with the same probability :math:`\alpha`,
    independently. Measured conditional rates :math:`a_i` (position i accepted, given it was reached)
    are compared with a constant:

    - ``alpha_pooled``: the maximum-likelihood constant (all accepts / all attempts);
    - ``chi2_p``: homogeneity test of :math:`a_1 = a_2 = \dots` (2 x K contingency table);
    - ``logit_slope`` (with 95% interval): trend of logit :math:`a_i` per position (binomial GLM);
      negative when later positions are accepted less (drafts drift off after an accepted run),
      positive when accepted runs select easy stretches of text;
    - ``max_abs_dev``: largest :math:`|a_i - \alpha_{pooled}|` over positions;
    - ``tokens_positional`` vs ``tokens_iid``: expected accepted drafts per iteration at the largest
      gamma, :math:`\sum_{i\le\gamma}\prod_{j\le i} a_j` against Eq. 12's
      :math:`\alpha(1-\alpha^\gamma)/(1-\alpha)` at ``alpha_pooled``; ``tokens_rel_error`` is their
      relative gap (the error Eq. 12 makes through the i.i.d. assumption alone);
    - with ``alpha`` given: ``alpha_ref`` (that pair's ``alpha_column``) and ``mean_abs_dev_ref``,
      the attempt-weighted mean :math:`|a_i - \alpha_{ref}|`.
    """
    pa = position_acceptance(pos)
    ref = None
    if alpha is not None:
        need_columns(alpha, "alpha", ["draft", "target", alpha_column])
        ref = alpha.set_index(["draft", "target"])[alpha_column]
    rows = []
    for (d, t, temp), g in pa.groupby(["draft", "target", "temperature"], sort=False):
        g = g.sort_values("position")
        att, acc = g["attempts"].to_numpy(float), g["accepts"].to_numpy(float)
        a_pool = acc.sum() / att.sum()
        rates = acc / att
        chi2_p = math.nan
        table = np.vstack([acc, att - acc])
        if g.shape[0] >= 2 and (table.sum(axis=1) > 0).all():
            chi2_p = float(stats.chi2_contingency(table)[1])
        slope, s_lo, s_hi = math.nan, math.nan, math.nan
        if g.shape[0] >= 2 and 0 < acc.sum() < att.sum():
            from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    res = sm.GLM(
                        np.column_stack([acc, att - acc]),
                        sm.add_constant(g["position"].to_numpy(float)),
                        family=sm.families.Binomial(),
                    ).fit()
                    fitted = True
                except (ValueError, np.linalg.LinAlgError):
                    fitted = False
            # Perfect separation (every reached position accepted, say) leaves the slope unidentified.
            if fitted and not any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
                slope = float(res.params[1])
                s_lo, s_hi = (float(v) for v in np.asarray(res.conf_int())[1])
        # Positional chain: a run reaches position i only if 1..i-1 were accepted, so
        # E[accepted drafts] = sum_i prod_{j<=i} a_j (positions never reached count as 0).
        gmax = int(pos.loc[(pos.draft == d) & (pos.target == t) & (pos.temperature == temp), "gamma"].max())
        full = np.zeros(gmax)
        k = min(gmax, rates.size)
        full[:k] = rates[:k]
        tok_pos = float(np.cumprod(full).sum())
        tok_iid = float(expected_accepted_drafts(a_pool, gmax))
        row = {
            "draft": d,
            "target": t,
            "temperature": float(temp),
            "gamma_max": gmax,
            "n_positions": int(g.shape[0]),
            "attempts": int(att.sum()),
            "alpha_pooled": float(a_pool),
            "chi2_p": chi2_p,
            "logit_slope": slope,
            "logit_slope_ci95_lower": s_lo,
            "logit_slope_ci95_upper": s_hi,
            "max_abs_dev": float(np.max(np.abs(rates - a_pool))),
            "tokens_positional": tok_pos,
            "tokens_iid": tok_iid,
            "tokens_rel_error": (tok_iid - tok_pos) / tok_pos if tok_pos > 0 else math.nan,
        }
        if ref is not None and (d, t) in ref.index:
            a_ref = float(ref.loc[(d, t)])
            row["alpha_ref"] = a_ref
            row["mean_abs_dev_ref"] = float(np.sum(att * np.abs(rates - a_ref)) / att.sum())
        rows.append(row)
    return pd.DataFrame(rows)


def tar_vs_eq12(tar: pd.DataFrame, alpha: pd.DataFrame, alpha_column: str = "alpha_tf") -> pd.DataFrame:
    r"""Measured TAR(gamma) (accepted drafts per full iteration, temperature 1) against Eq. 12.

    Eq. 12 without the bonus token, :math:`\alpha(1-\alpha^\gamma)/(1-\alpha)`, is evaluated at the
    pair's ``alpha_column``. ``rel_error`` = predicted / measured - 1; the interval of the measured
    mean is a normal one from ``tar_no_bonus_std`` over ``n_iterations_full`` iterations.
    """
    need_columns(tar, "tar", FILES["tar"][1])
    need_columns(alpha, "alpha", ["draft", "target", alpha_column])
    df = tar.merge(alpha[["draft", "target", alpha_column]], on=["draft", "target"], how="left")
    ok = np.isfinite(df[alpha_column].to_numpy(float))
    df = df[ok].copy()
    df["tar_predicted"] = np.asarray(
        tar_model(df[alpha_column].to_numpy(float).clip(0, 1), df["gamma"].to_numpy(float), counts_bonus=False)
    )
    half = 1.96 * df["tar_no_bonus_std"] / np.sqrt(df["n_iterations_full"].clip(lower=1))
    df["tar_ci95_lower"], df["tar_ci95_upper"] = df["tar_no_bonus"] - half, df["tar_no_bonus"] + half
    df["rel_error"] = df["tar_predicted"] / df["tar_no_bonus"] - 1.0
    return df.reset_index(drop=True)


def mean_difference(
    alpha: pd.DataFrame, a: str = "alpha_tar", b: str = "alpha_tf", n_boot: int = 2000, seed: int = 0
) -> Interval:
    """Mean over pairs of ``a - b`` with a percentile interval that resamples pairs.

    Examples
    --------
    >>> df = pd.DataFrame({"draft": list("abcd"), "target": "t", "x": [0.5, 0.6, 0.7, 0.8], "y": [0.4, 0.5, 0.6, 0.7]})
    >>> iv = mean_difference(df, "x", "y", n_boot=100)
    >>> round(iv.estimate, 6), round(iv.lower, 6), round(iv.upper, 6), iv.unit
    (0.1, 0.1, 0.1, 'pair')
    """
    need_columns(alpha, "alpha", ["draft", "target", a, b])
    ok = alpha[np.isfinite(alpha[a].to_numpy(float)) & np.isfinite(alpha[b].to_numpy(float))]
    return cluster_bootstrap(ok, lambda f: float((f[a] - f[b]).mean()), "pair", n_boot, seed)


def plane_draws_by_pair(
    alpha: pd.DataFrame, alpha_column: str = "alpha_tf", ppl_split: str = "val", n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Bootstrap draws of the Eq. 5 plane, resampling (draft, target) pairs.

    Returns one row per draw with ``A, B, C, r2``; NaN where a resample cannot be fitted (a single
    draft perplexity). A resample with one target perplexity takes :func:`fit_ladder_plane`'s
    reduced branch (B = 0), as the point fit would.
    """

    def stat(sample: pd.DataFrame):
        p = fit_ladder_plane(sample, alpha_column, ppl_split)
        return [p.plane.A, p.plane.B, p.plane.C, p.r2]

    return pd.DataFrame(bootstrap_draws(alpha, stat, "pair", n_boot, seed), columns=["A", "B", "C", "r2"])


def plane_interval(plane: LadderPlane, draws: pd.DataFrame, parameter: str) -> Interval:
    """One plane coefficient (``A``, ``B``, ``C`` or ``r2``) with its pair-bootstrap interval."""
    if parameter not in ("A", "B", "C", "r2"):
        raise ValueError(f"parameter must be one of A, B, C, r2, got {parameter!r}")
    est = plane.r2 if parameter == "r2" else getattr(plane.plane, parameter)
    return percentile_interval(draws[parameter], est, "pair", plane.n)


def per_target_r2_gain(alpha: pd.DataFrame, alpha_column: str = "alpha_tf", ppl_split: str = "val") -> float:
    r"""Median over targets of the per-target linear fit's R² (Table 4's linear form) minus the plane's R².

    Positive when separate lines in draft perplexity explain alpha better than one plane. The
    linear form is used (closed form, so it can be bootstrapped); raises ``ValueError`` when a
    target has fewer than 3 distinct draft perplexities or no spread in alpha.
    """
    xcol = f"draft_{ppl_split}_ppl"
    need_columns(alpha, "alpha", ["target", xcol, alpha_column])
    r2 = []
    for _, g in alpha.groupby("target", sort=False):
        x, y = g[xcol].to_numpy(float), g[alpha_column].to_numpy(float)
        if np.unique(x).size < 3 or np.ptp(y) == 0:
            raise ValueError("a target needs at least 3 distinct drafts and some spread in alpha")
        resid = y - np.polyval(np.polyfit(x, y, 1), x)
        r2.append(1.0 - resid @ resid / np.sum((y - y.mean()) ** 2))
    return float(np.median(r2) - fit_ladder_plane(alpha, alpha_column, ppl_split).r2)


def alpha_log_ppl_line(draft_ppl, alpha) -> tuple[float, float]:
    r"""Table 4's log form by least squares, :math:`\alpha = p_1 \ln x + p_2` over drafts of one target.

    The closed form of :func:`sdsl_lib.laws.acceptance.fit_alpha_vs_draft_ppl` (``"log"``), without its
    margins, so that it can be refitted inside a bootstrap and on two drafts (exact line). Returns
    ``(p1, p2)``; ``ValueError`` with fewer than 2 distinct perplexities.

    Examples
    --------
    >>> p1, p2 = alpha_log_ppl_line([10.0, 20.0, 40.0], 0.9 - 0.1 * np.log([10.0, 20.0, 40.0]))
    >>> round(p1, 6), round(p2, 6)
    (-0.1, 0.9)
    """
    x, a = np.asarray(draft_ppl, dtype=float).ravel(), np.asarray(alpha, dtype=float).ravel()
    if x.size != a.size:
        raise ValueError(f"draft_ppl and alpha must have one length, got {x.size} and {a.size}")
    if (x <= 0).any() or not (np.isfinite(x).all() and np.isfinite(a).all()):
        raise ValueError("draft_ppl must be finite and > 0, alpha finite")
    if np.unique(x).size < 2:
        raise ValueError(f"draft_ppl must hold at least 2 distinct values, got {np.unique(x).size}")
    p1, p2 = np.polyfit(np.log(x), a, 1)
    return float(p1), float(p2)


def alpha_log_ppl_slope(
    drafts: pd.DataFrame,
    alpha_column: str = "alpha_tf",
    ppl_column: str = "val_ppl",
    n_boot: int = 1000,
    seed: int = 0,
    min_models: int = 3,
) -> Interval:
    r"""Slope :math:`p_1` of :func:`alpha_log_ppl_line` with a percentile interval resampling drafts.

    ``drafts`` holds one row per draft against one target (column ``model``): with one target the
    Eq. 5 plane reduces to this line (SDSL §4.2, Table 4), and SDSL predicts :math:`p_1 < 0`
    (acceptance falls as draft perplexity rises). With fewer than ``min_models`` drafts the interval
    is NaN (two drafts fit any line), so a verdict on it is inconclusive.

    Examples
    --------
    >>> d = pd.DataFrame({"model": list("abcde"), "val_ppl": [10.0, 14, 20, 28, 40], "a": [0.62, 0.6, 0.51, 0.47, 0.41]})
    >>> iv = alpha_log_ppl_slope(d, "a", n_boot=200)
    >>> round(iv.estimate, 3), iv.upper < 0, iv.unit
    (-0.159, True, 'model')
    >>> math.isnan(alpha_log_ppl_slope(d.iloc[:2], "a", n_boot=50).upper)
    True
    """
    need_columns(drafts, "drafts", ["model", alpha_column, ppl_column])
    p1, _ = alpha_log_ppl_line(drafts[ppl_column], drafts[alpha_column])
    n_models = drafts["model"].nunique()
    if n_models < min_models:
        return Interval(p1, math.nan, math.nan, "model", n_models, 0)
    draws = bootstrap_draws(
        drafts, lambda f: alpha_log_ppl_line(f[ppl_column], f[alpha_column])[0], "model", n_boot, seed
    )
    return percentile_interval(draws, p1, "model", n_models)
