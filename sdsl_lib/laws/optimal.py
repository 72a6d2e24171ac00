r"""SDSL's pre-training-time predictor: throughput from (N, M, D, D') and the optimal draft size.

Chains the pre-training law (Eq. 7-8), the acceptance plane (Eq. 5) and the optimal-lookahead
throughput (Eq. 4) into Eq. 9, maximises it over the draft size on a grid (Table 5, Table 7), and
fits the draft-size laws Eq. 10 (Table 8) and Eq. 11 (Table 9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from sdsl_lib.laws._validate import as_array, check_draft_smaller, check_positive, scalar_or_array
from sdsl_lib.laws.acceptance import alpha_plane
from sdsl_lib.laws.constants import BESIROGLU_2024, TABLE3_PLANE, TABLE7_GRID, AlphaPlane, ChinchillaLaw, Table7Grid
from sdsl_lib.laws.pretraining import perplexity
from sdsl_lib.laws.speculation import _optimum

__all__ = [
    "predicted_alpha",
    "predicted_throughput",
    "optimal_draft_size",
    "OptimalDraft",
    "nstar_grid",
    "fit_nstar_linear",
    "fit_nstar_full",
    "NstarFit",
]


#: Largest perplexity fed to the plane by :func:`predicted_alpha` (overflowed laws are capped here).
PPL_CAP = 1e300


def predicted_alpha(
    n_draft, m_target, d_draft, d_target, plane: AlphaPlane = TABLE3_PLANE, law: ChinchillaLaw = BESIROGLU_2024
):
    r"""Acceptance rate predicted before training: Eq. 5 evaluated at the perplexities of Eq. 7-8.

    .. math:: \alpha = A\, e^{L(N, D)} + B\, e^{L(M, D')} + C

    The affine plane is clipped to :math:`[0, 1]`, the range of a probability: far outside the
    perplexities it was fitted on it would otherwise give impossible acceptance rates. A law
    evaluated far below its fitted range can overflow :math:`e^{L}` to infinity (tiny N or D);
    such perplexities are capped at :data:`PPL_CAP` (1e300) before the plane, which the clip then
    maps to 0 or 1 as the plane's signs dictate, instead of an error or a NaN.

    Examples
    --------
    >>> round(predicted_alpha(117313808.6, 12853473280, 180e9, 180e9), 4)
    0.6479
    """
    # Validate under the paper's names here: perplexity() would report them as n_params / n_tokens.
    n, m, d, dp = (
        check_positive(k, as_array(k, v))
        for k, v in (("n_draft", n_draft), ("m_target", m_target), ("d_draft", d_draft), ("d_target", d_target))
    )
    with np.errstate(over="ignore"):  # overflow to inf is expected there, and capped
        x = np.minimum(perplexity(n, d, law), PPL_CAP)
        y = np.minimum(perplexity(m, dp, law), PPL_CAP)
    return scalar_or_array(np.clip(np.asarray(alpha_plane(x, y, plane)), 0.0, 1.0))


def predicted_throughput(
    n_draft, m_target, d_draft, d_target, plane: AlphaPlane = TABLE3_PLANE, law: ChinchillaLaw = BESIROGLU_2024
):
    r"""Tokens per FLOP at the optimal lookahead, from sizes and data alone (Eq. 9).

    .. math::
        \mathcal{T} = \frac{-\ln\tilde\alpha}{2N(\tilde\alpha - 1)\,
        W_{-1}\!\left(-\tilde\alpha^{M/N-1}/e\right)},\qquad
        \tilde\alpha = A e^{L(N,D)} + B e^{L(M,D')} + C

    Parameters
    ----------
    n_draft : array_like
        Draft parameters :math:`N`, with :math:`0 < N < M`.
    m_target : array_like
        Target parameters :math:`M`.
    d_draft : array_like
        Draft training tokens :math:`D` (the paper's D is the draft's data).
    d_target : array_like
        Target training tokens :math:`D'`.
    plane : AlphaPlane
        Acceptance plane; default Table 3.
    law : ChinchillaLaw
        Pre-training law; default Besiroglu et al. (2024).

    Returns
    -------
    float or ndarray
        Tokens per FLOP (broadcast over all inputs).

    References
    ----------
    SDSL §4.3, Eq. 9.

    Examples
    --------
    >>> f"{predicted_throughput(117313808.6, 12853473280, 180e9, 180e9):.4e}"
    '1.0089e-10'
    """
    n = check_positive("n_draft", as_array("n_draft", n_draft))
    m = check_positive("m_target", as_array("m_target", m_target))
    check_draft_smaller(n, m)
    a = predicted_alpha(n, m, d_draft, d_target, plane, law)
    return scalar_or_array(_optimum(a, n, m)[1])


@dataclass(frozen=True)
class OptimalDraft:
    """The throughput-optimal draft (one Table 5 row, or arrays of them)."""

    n_star: np.ndarray | float
    throughput: np.ndarray | float  # tokens per FLOP at n_star
    gamma_star: np.ndarray | float  # optimal continuous lookahead there (Eq. 13)
    alpha: np.ndarray | float  # predicted acceptance rate there (Eq. 5)
    gain: np.ndarray | float  # throughput / (1 / 2M): tokens-per-FLOP gain over the target alone


def optimal_draft_size(
    m_target,
    d_draft,
    d_target,
    n_grid=None,
    plane: AlphaPlane = TABLE3_PLANE,
    law: ChinchillaLaw = BESIROGLU_2024,
    refine: bool = True,
) -> OptimalDraft:
    r"""The draft size :math:`N^*` that maximises Eq. 9 over a grid (Table 5).

    Parameters
    ----------
    m_target, d_draft, d_target : array_like
        Target size :math:`M`, draft data :math:`D`, target data :math:`D'`; broadcast together.
    n_grid : array_like, optional
        Candidate draft sizes; default Table 7's 10,000 log-spaced points in :math:`[10^8, 10^{10}]`.
        Points with :math:`N \ge M` are skipped (the model does not apply there).
    plane, law :
        As in :func:`predicted_throughput`.
    refine : bool
        Polish the grid maximum with a golden-section search in :math:`\log N` between its grid
        neighbours (default). The paper's Table 5 values are continuous maximisers, not grid points:
        with refinement they reproduce to about 1e-7 (Qwen1.5-14B rows: 1e-4).

    Returns
    -------
    OptimalDraft
        :math:`N^*`, :math:`\mathcal{T}(N^*)`, :math:`\gamma^*` and :math:`\alpha` there, with the
        leading shape of the broadcast inputs.

    Notes
    -----
    The optimum is flat (within 0.1% over about +-25% of N for OPT-13B), so :math:`N^*` is weakly
    identified; the grid's resolution (0.046% per step by default) is far finer than that.

    Examples
    --------
    >>> opt = optimal_draft_size(12853473280, 180e9, 180e9)   # Table 5: OPT-13B, OPT drafts
    >>> f"{opt.n_star:.6e}", f"{opt.throughput:.4e}", round(opt.gamma_star, 2)
    ('1.173138e+08', '1.0089e-10', 8.11)
    """
    m = check_positive("m_target", as_array("m_target", m_target))
    d = check_positive("d_draft", as_array("d_draft", d_draft))
    dp = check_positive("d_target", as_array("d_target", d_target))
    grid = (
        TABLE7_GRID.n_grid()
        if n_grid is None
        else np.sort(check_positive("n_grid", as_array("n_grid", n_grid)).ravel())
    )
    if grid.size == 0:
        raise ValueError("n_grid must hold at least one draft size")
    m, d, dp = np.broadcast_arrays(m, d, dp)
    shape = m.shape
    m, d, dp = m.ravel(), d.ravel(), dp.ravel()
    if (grid[0] >= m).any():
        raise ValueError(f"n_grid must contain draft sizes below m_target (smallest grid value {grid[0]:g})")
    y = perplexity(m, dp, law)  # target perplexity: one per row

    def evaluate(n, rows):
        """Eq. 9 at draft sizes n (shape rows x k) for the given rows; -inf where N >= M."""
        mm = m[rows][:, None]
        alpha = np.clip(plane.A * perplexity(n, d[rows][:, None], law) + plane.B * y[rows][:, None] + plane.C, 0.0, 1.0)
        ok = n < mm
        gamma, thr = _optimum(alpha, np.where(ok, n, 0.5 * mm), mm)
        return np.where(ok, thr, -np.inf), gamma, alpha

    # 1. Grid search. Rows sharing (M, D, D') are evaluated once (the Table 7 mesh has no repeats,
    #    but Table 5 does), and x(N, D) is shared by every row with the same D.
    key = np.stack([m, d, dp], axis=1)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    mu_, dpu_ = uniq[:, 0:1], uniq[:, 2:3]
    d_vals, d_idx = np.unique(uniq[:, 1], return_inverse=True)
    x_by_d = perplexity(grid[None, :], d_vals[:, None], law)  # (distinct D, grid)
    y_u = perplexity(mu_, dpu_, law)
    best_u = np.empty(uniq.shape[0], dtype=int)
    # Blocks of rows keep the temporaries cache-sized (one 2.88M-point pass is slower, mostly
    # from allocating and first-touching ~25 MB arrays).
    block = max(1, 2**17 // grid.size)
    for lo_row in range(0, uniq.shape[0], block):
        sl = slice(lo_row, lo_row + block)
        mb = mu_[sl]
        alpha = np.clip(plane.A * x_by_d[d_idx.ravel()[sl]] + plane.B * y_u[sl] + plane.C, 0.0, 1.0)
        ok = grid[None, :] < mb
        thr = np.where(ok, _optimum(alpha, np.where(ok, grid[None, :], 0.5 * mb), mb)[1], -np.inf)
        best_u[sl] = np.argmax(thr, axis=1)
    best = best_u[inverse]
    # 2. Refinement: the paper's N* are continuous maximisers (they are not points of the grid), so
    #    finish with a vectorised golden-section search in log N between the grid neighbours.
    lo = np.log(grid[np.maximum(best - 1, 0)])
    hi = np.log(np.minimum(grid[np.minimum(best + 1, grid.size - 1)], np.nextafter(m, 0)))
    rows = np.arange(m.size)
    if refine and grid.size > 2:
        invphi = (np.sqrt(5.0) - 1.0) / 2.0
        for _ in range(60):
            c1 = hi - invphi * (hi - lo)
            c2 = lo + invphi * (hi - lo)
            f = evaluate(np.exp(np.stack([c1, c2], axis=1)), rows)[0]
            left = f[:, 0] >= f[:, 1]
            hi = np.where(left, c2, hi)
            lo = np.where(left, lo, c1)
        n_star = np.exp(0.5 * (lo + hi))
        # Keep the grid point if the refinement did not improve on it (a boundary optimum).
        n_grid_best = grid[best]
        f_ref = evaluate(n_star[:, None], rows)[0][:, 0]
        f_grid = evaluate(n_grid_best[:, None], rows)[0][:, 0]
        n_star = np.where(f_ref >= f_grid, n_star, n_grid_best)
    else:
        n_star = grid[best]
    thr_star, gamma_star, alpha_star = (v[:, 0] for v in evaluate(n_star[:, None], rows))
    out = OptimalDraft(
        n_star=n_star.reshape(shape),
        throughput=thr_star.reshape(shape),
        gamma_star=gamma_star.reshape(shape),
        alpha=alpha_star.reshape(shape),
        gain=(thr_star * 2.0 * m).reshape(shape),
    )
    if len(shape) == 0:
        out = OptimalDraft(
            *(float(np.asarray(v)) for v in (out.n_star, out.throughput, out.gamma_star, out.alpha, out.gain))
        )
    return out


def nstar_grid(
    grid: Table7Grid = TABLE7_GRID, plane: AlphaPlane = TABLE3_PLANE, law: ChinchillaLaw = BESIROGLU_2024
) -> pd.DataFrame:
    r"""The Table 7 mesh: :math:`N^*` for every (M, D, D') as a tidy DataFrame.

    One row per grid point (8 x 6 x 6 = 288 by default) with columns ``m_target, d_draft, d_target,
    n_star, throughput, gamma_star, alpha, gain, nstar_over_m``. The 10,000-point N grid serves only
    the inner maximisation (2.88 million evaluations of Eq. 9).

    The default grid takes D and D' up to :math:`10^{14}`, not the printed :math:`10^{13}`: only that
    range reproduces Tables 8-9 (erratum E4). Pass ``constants.TABLE7_GRID_AS_PRINTED`` for the other.

    Examples
    --------
    >>> from sdsl_lib.laws.constants import Table7Grid
    >>> small = Table7Grid(1e8, 1e10, 500, 13e9, 110e9, 2, 1e12, 1e14, 2)
    >>> nstar_grid(small).shape
    (8, 9)
    """
    m, d, dp = np.meshgrid(grid.m_grid(), grid.d_grid(), grid.d_grid(), indexing="ij")
    opt = optimal_draft_size(m.ravel(), d.ravel(), dp.ravel(), n_grid=grid.n_grid(), plane=plane, law=law)
    return pd.DataFrame(
        {
            "m_target": m.ravel(),
            "d_draft": d.ravel(),
            "d_target": dp.ravel(),
            "n_star": opt.n_star,
            "throughput": opt.throughput,
            "gamma_star": opt.gamma_star,
            "alpha": opt.alpha,
            "gain": opt.gain,
            "nstar_over_m": opt.n_star / m.ravel(),
        }
    )


@dataclass(frozen=True)
class NstarFit:
    """An OLS fit with HC3 errors, laid out like Tables 8-9."""

    table: pd.DataFrame  # parameter, estimate, std_error, margin_of_error_95, ci95_lower, ci95_upper
    r2: float
    r2_adj: float
    n: int

    def estimate(self, name: str) -> float:
        return float(self.table.set_index("parameter").loc[name, "estimate"])


def _ols_hc3(y: np.ndarray, design: np.ndarray, names) -> tuple[pd.DataFrame, object]:
    """OLS with HC3 errors, laid out like Tables 8-9.

    The columns are scaled to unit norm before fitting and the results scaled back (OLS estimates,
    HC3 errors and intervals are all equivariant under column scaling). Unscaled, the design of
    Eq. 10 (columns 1, 1/M, ln D, ln D' with M ~ 1e10) has condition number ~1e12 and the solver
    loses about four digits of every estimate.
    """
    scale = np.linalg.norm(design, axis=0)
    res = sm.OLS(y, design / scale).fit(cov_type="HC3")
    ci = np.asarray(res.conf_int(0.05)) / scale[:, None]
    table = pd.DataFrame(
        {
            "parameter": names,
            "estimate": np.asarray(res.params) / scale,
            "std_error": np.asarray(res.bse) / scale,
            "margin_of_error_95": (ci[:, 1] - ci[:, 0]) / 2.0,
            "ci95_lower": ci[:, 0],
            "ci95_upper": ci[:, 1],
        }
    )
    return table, res


def _check_grid_df(df: pd.DataFrame, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"df is missing columns {missing}; pass the output of nstar_grid()")
    if len(df) < 5:
        raise ValueError(f"df needs at least 5 grid optima, got {len(df)}")
    for c in columns:
        check_positive(f"df[{c!r}]", as_array(f"df[{c!r}]", df[c]))


def fit_nstar_linear(df: pd.DataFrame) -> NstarFit:
    r"""Pooled OLS :math:`N^* = \mu M + M_0` with HC3 errors (Eq. 11, Table 9).

    Data-size variation is left in the residual. Margins are 95% normal half-widths of the HC3
    intervals (statsmodels ``cov_type="HC3"``).

    Parameters
    ----------
    df : DataFrame
        Grid optima with columns ``m_target, n_star`` (the output of :func:`nstar_grid`); at least
        5 rows.

    Returns
    -------
    NstarFit
        Estimates, HC3 standard errors, margins and CIs of ``mu, M0``, with :math:`R^2`.

    References
    ----------
    SDSL §4.3, Eq. 11 and Table 9.

    Examples
    --------
    >>> df = pd.DataFrame({"m_target": [1e10, 2e10, 4e10, 8e10, 1.6e11], "n_star": [1.1e8, 1.4e8, 2.0e8, 3.1e8, 5.5e8]})
    >>> round(fit_nstar_linear(df).estimate("mu"), 5)
    0.00292
    """
    _check_grid_df(df, ["m_target", "n_star"])
    design = np.column_stack([df["m_target"].to_numpy(float), np.ones(len(df))])
    table, res = _ols_hc3(df["n_star"].to_numpy(float), design, ["mu", "M0"])
    return NstarFit(table, float(res.rsquared), float(res.rsquared_adj), len(df))


def fit_nstar_full(df: pd.DataFrame) -> NstarFit:
    r"""OLS :math:`N^*/M = \mu + M_0/M + \gamma\ln D + \gamma'\ln D'` with HC3 errors (Eq. 10, Table 8).

    The logarithms are natural (the base that reproduces Table 8). ``gamma_lnD`` and
    ``gamma_prime_lnDprime`` are regression coefficients, not lookaheads. Margins are 95% normal
    half-widths of the HC3 intervals.

    Parameters
    ----------
    df : DataFrame
        Grid optima with columns ``m_target, d_draft, d_target, n_star`` (the output of
        :func:`nstar_grid`); at least 5 rows.

    Returns
    -------
    NstarFit
        Estimates, HC3 standard errors, margins and CIs of ``mu, M0, gamma_lnD,
        gamma_prime_lnDprime``, with :math:`R^2`.

    References
    ----------
    SDSL §4.3, Eq. 10 and Table 8.

    Examples
    --------
    >>> m, d, dp = (np.array(v) for v in np.meshgrid([1e10, 3e10, 1e11], [1e12, 1e13], [1e12, 1e13]))
    >>> df = pd.DataFrame({"m_target": m.ravel(), "d_draft": d.ravel(), "d_target": dp.ravel()})
    >>> df["n_star"] = df.m_target * (3e-3 - 5e-5 * np.log(df.d_draft)) + 7e7
    >>> fit = fit_nstar_full(df)
    >>> f"{fit.estimate('mu'):.2e} {fit.estimate('M0'):.2e} {fit.estimate('gamma_lnD'):.2e}"
    '3.00e-03 7.00e+07 -5.00e-05'
    """
    _check_grid_df(df, ["m_target", "d_draft", "d_target", "n_star"])
    m = df["m_target"].to_numpy(float)
    design = np.column_stack(
        [np.ones(len(df)), 1.0 / m, np.log(df["d_draft"].to_numpy(float)), np.log(df["d_target"].to_numpy(float))]
    )
    table, res = _ols_hc3(df["n_star"].to_numpy(float) / m, design, ["mu", "M0", "gamma_lnD", "gamma_prime_lnDprime"])
    return NstarFit(table, float(res.rsquared), float(res.rsquared_adj), len(df))
