r"""SDSL's pre-training-time predictor: throughput from (N, M, D, D') and the optimal draft size.

Chains the pre-training law (Eq. 7-8), the acceptance plane (Eq. 5) and the optimal-lookahead
throughput (Eq. 4) into Eq. 9 and maximises it over the draft size on a grid (Table 5, Table 7).
The draft-size laws fitted to the grid optima, Eq. 10 (Table 8) and Eq. 11 (Table 9), are in
:mod:`sdsl_lib.laws.fits` (re-exported here).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdsl_lib.laws._validate import as_array, check_broadcast, check_draft_smaller, check_positive, scalar_or_array
from sdsl_lib.laws.acceptance import alpha_plane
from sdsl_lib.laws.constants import BESIROGLU_2024, TABLE3_PLANE, TABLE7_GRID, AlphaPlane, ChinchillaLaw, Table7Grid
from sdsl_lib.laws.fits import NstarFit, fit_nstar_full, fit_nstar_linear
from sdsl_lib.laws.pretraining import perplexity
from sdsl_lib.laws.speculation import _optimum

__all__ = [
    "PPL_CAP",
    "predicted_alpha",
    "predicted_throughput",
    "optimal_draft_size",
    "refine_draft_size",
    "OptimalDraft",
    "nstar_grid",
    "fit_nstar_linear",
    "fit_nstar_full",
    "NstarFit",
]


#: Largest perplexity fed to the plane by the chain (a law that overflows e^L is capped here).
PPL_CAP = 1e300
#: Draft sizes searched when Table 7's grid puts the optimum at its edge: 1 parameter up to the
#: target, at the Table 7 density (5,000 points per decade).
_WIDE_POINTS_PER_DECADE = 5_000
_EDGE_MODES = ("warn", "raise", "ignore")


def _refuse_above_one(raw, x, y, names: str) -> None:
    """The clipped plane would report certainty (alpha = 1) where Eq. 5 says nothing: refuse."""
    raw = np.asarray(raw)
    if (raw > 1.0).any():
        k = np.unravel_index(np.argmax(raw), raw.shape)
        xs, ys = np.broadcast_to(x, raw.shape)[k], np.broadcast_to(y, raw.shape)[k]
        raise ValueError(
            f"{names}: the plane of Eq. 5 predicts alpha = {raw[k]:.4g} > 1 (draft perplexity x = {xs:.4g}, "
            f"target perplexity y = {ys:.4g}); a target this undertrained lies far outside the pairs the plane "
            "was fitted on (Table 3: y in [9.5, 15.6]), so no acceptance rate can be predicted: measure alpha"
        )


def predicted_alpha(
    n_draft, m_target, d_draft, d_target, plane: AlphaPlane = TABLE3_PLANE, law: ChinchillaLaw = BESIROGLU_2024
):
    r"""Acceptance rate predicted before training: Eq. 5 evaluated at the perplexities of Eq. 7-8.

    .. math:: \alpha = A\, e^{L(N, D)} + B\, e^{L(M, D')} + C

    Parameters
    ----------
    n_draft, m_target : array_like
        Draft and target parameters (> 0).
    d_draft, d_target : array_like
        Their training tokens (> 0).
    plane, law :
        The plane of Eq. 5 and the law of Eq. 2; their fields may be arrays (one per row of draws).

    Returns
    -------
    float or ndarray
        :math:`\alpha` in :math:`[0, 1]`.

    Notes
    -----
    A plane value below 0 (a draft far worse than any fitted: the plane's A < 0) is clipped to 0,
    the rate of a draft whose every token is rejected. A value above 1 raises ``ValueError``: it
    comes from an undertrained target (the plane's B > 0), where a probability of 1 would be an
    artefact of extrapolation, not a prediction. Perplexities whose law overflows a float (tiny
    N or D) are capped at :data:`PPL_CAP` (1e300) first.

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
    check_broadcast(n_draft=n, m_target=m, d_draft=d, d_target=dp)
    x = perplexity(n, d, law, cap=PPL_CAP)
    y = perplexity(m, dp, law, cap=PPL_CAP)
    raw = np.asarray(alpha_plane(x, y, plane))
    _refuse_above_one(raw, x, y, "m_target, d_target")
    return scalar_or_array(np.clip(raw, 0.0, 1.0))


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
    at_grid_edge: np.ndarray | bool = False  # the maximum sits at an end of the searched grid


def refine_draft_size(throughput, grid: np.ndarray, best: np.ndarray, upper=np.inf, iterations: int = 60):
    r"""Golden-section search for :math:`N^*` in :math:`\log N` between the grid neighbours of ``best``.

    The one N* search of the project (:func:`optimal_draft_size` and the planner's draws call it).

    Parameters
    ----------
    throughput : callable
        ``throughput(n)`` with ``n`` of shape (rows, k) returns the objective (Eq. 9, or Eq. 4 at
        the planner's alpha(N)) of the same shape, one row per problem.
    grid : ndarray
        Sorted candidate sizes; ``best`` (rows,) the index of each row's grid maximum.
    upper : array_like
        Exclusive upper bound per row (the target size M; the model needs N < M).

    Returns
    -------
    ndarray
        The refined maximiser per row; the grid point where refining does not improve on it (an
        optimum at the grid's edge).
    """
    lo = np.log(grid[np.maximum(best - 1, 0)])
    hi = np.log(np.minimum(grid[np.minimum(best + 1, grid.size - 1)], np.nextafter(upper, 0)))
    invphi = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(iterations):
        c1 = hi - invphi * (hi - lo)
        c2 = lo + invphi * (hi - lo)
        f = throughput(np.exp(np.stack([c1, c2], axis=1)))
        left = f[:, 0] >= f[:, 1]
        hi = np.where(left, c2, hi)
        lo = np.where(left, lo, c1)
    n_ref = np.exp(0.5 * (lo + hi))
    n_grid_best = grid[best]
    keep = throughput(n_ref[:, None])[:, 0] >= throughput(n_grid_best[:, None])[:, 0]
    return np.where(keep, n_ref, n_grid_best)


def _grid_argmax(m, d, y, grid, plane, law) -> np.ndarray:
    """Index of the Eq. 9 maximum on ``grid`` per row (rows sharing (M, D, y) are evaluated once)."""
    key = np.stack([m, d, y], axis=1)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    mu_, yu_ = uniq[:, 0:1], uniq[:, 2:3]
    d_vals, d_idx = np.unique(uniq[:, 1], return_inverse=True)
    x_by_d = perplexity(grid[None, :], d_vals[:, None], law, cap=PPL_CAP)  # x(N, D) shared by equal D
    best_u = np.empty(uniq.shape[0], dtype=int)
    # Blocks of rows keep the temporaries cache-sized (one 2.88M-point pass is slower, mostly
    # from allocating and first-touching ~25 MB arrays).
    block = max(1, 2**17 // grid.size)
    for lo_row in range(0, uniq.shape[0], block):
        sl = slice(lo_row, lo_row + block)
        mb = mu_[sl]
        alpha = alpha_plane(x_by_d[d_idx.ravel()[sl]], yu_[sl], plane, clip=True)
        ok = grid[None, :] < mb
        thr = np.where(ok, _optimum(alpha, np.where(ok, grid[None, :], 0.5 * mb), mb)[1], -np.inf)
        best_u[sl] = np.argmax(thr, axis=1)
    return best_u[inverse.ravel()]


def _solve(m, d, y, grid, plane, law, refine):
    """N* per row on one grid, and whether it sits at the grid's edge (first or last point below M)."""

    def throughput(n, rows=slice(None)):
        mm = m[rows][:, None]
        alpha = alpha_plane(perplexity(n, d[rows][:, None], law, cap=PPL_CAP), y[rows][:, None], plane, clip=True)
        ok = n < mm
        return np.where(ok, _optimum(alpha, np.where(ok, n, 0.5 * mm), mm)[1], -np.inf)

    best = _grid_argmax(m, d, y, grid, plane, law)
    last = np.searchsorted(grid, m, side="left") - 1  # the last grid point below M
    at_edge = (best == 0) | (best == last)
    n_star = refine_draft_size(throughput, grid, best, upper=m) if refine and grid.size > 2 else grid[best]
    return n_star, at_edge


def optimal_draft_size(
    m_target,
    d_draft,
    d_target,
    n_grid=None,
    plane: AlphaPlane = TABLE3_PLANE,
    law: ChinchillaLaw = BESIROGLU_2024,
    refine: bool = True,
    on_edge: str = "warn",
) -> OptimalDraft:
    r"""The draft size :math:`N^*` that maximises Eq. 9 over a grid (Table 5).

    Parameters
    ----------
    m_target, d_draft, d_target : array_like
        Target size :math:`M`, draft data :math:`D`, target data :math:`D'`; broadcast together.
    n_grid : array_like, optional
        Candidate draft sizes; default Table 7's 10,000 log-spaced points in :math:`[10^8, 10^{10}]`.
        Points with :math:`N \ge M` are skipped (the model does not apply there). With the default,
        rows whose maximum falls on an end of Table 7's grid (targets below about 10B put
        :math:`N^*` under :math:`10^8`) are searched again on a grid from 1 parameter to M at the same
        density, so the default always searches a grid that contains the optimum.
    plane, law :
        As in :func:`predicted_throughput`.
    refine : bool
        Polish the grid maximum with :func:`refine_draft_size` (default). The paper's Table 5 values
        are continuous maximisers, not grid points: with refinement they reproduce to about 1e-7
        (Qwen1.5-14B rows: 1e-4).
    on_edge : {"warn", "raise", "ignore"}
        What to do when a maximum still sits at an end of the searched grid (a user grid that does
        not bracket :math:`N^*`): a ``RuntimeWarning`` (default), a ``ValueError``, or nothing. The
        result's ``at_grid_edge`` marks those rows in every case.

    Returns
    -------
    OptimalDraft
        :math:`N^*`, :math:`\mathcal{T}(N^*)`, :math:`\gamma^*` and :math:`\alpha` there, with the
        leading shape of the broadcast inputs.

    Notes
    -----
    The optimum is flat (within 0.1% over about +-25% of N for OPT-13B), so :math:`N^*` is weakly
    identified; the grid's resolution (0.046% per step by default) is far finer than that. A
    target so undertrained that the plane exceeds 1 at :math:`N^*` raises ``ValueError`` (see
    :func:`predicted_alpha`).

    Examples
    --------
    >>> opt = optimal_draft_size(12853473280, 180e9, 180e9)   # Table 5: OPT-13B, OPT drafts
    >>> f"{opt.n_star:.6e}", f"{opt.throughput:.4e}", round(opt.gamma_star, 2)
    ('1.173138e+08', '1.0089e-10', 8.11)
    >>> f"{optimal_draft_size(1e9, 1e12, 1e12).n_star:.3e}"   # below Table 7's grid: searched wider
    '2.958e+07'
    """
    if on_edge not in _EDGE_MODES:
        raise ValueError(f"on_edge must be one of {_EDGE_MODES}, got {on_edge!r}")
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
    check_broadcast(m_target=m, d_draft=d, d_target=dp)
    m, d, dp = np.broadcast_arrays(m, d, dp)
    shape = m.shape
    m, d, dp = m.ravel(), d.ravel(), dp.ravel()
    if n_grid is not None and (grid[0] >= m).any():
        raise ValueError(f"n_grid must contain draft sizes below m_target (smallest grid value {grid[0]:g})")
    y = perplexity(m, dp, law, cap=PPL_CAP)  # target perplexity: one per row
    # Targets too small for Table 7's grid go straight to the wide one.
    on_table7 = grid[1] < m if n_grid is None else np.ones(m.shape, bool)
    n_star, at_edge = np.empty(m.shape), np.ones(m.shape, bool)
    if on_table7.any():
        n_star[on_table7], at_edge[on_table7] = _solve(
            m[on_table7], d[on_table7], y[on_table7], grid, plane, law, refine
        )
    if n_grid is None and at_edge.any():
        wide = np.logspace(0.0, np.log10(m[at_edge].max()), int(_WIDE_POINTS_PER_DECADE * np.log10(m[at_edge].max())))
        n_star[at_edge], at_edge[at_edge] = _solve(m[at_edge], d[at_edge], y[at_edge], wide, plane, law, refine)
    if at_edge.any() and on_edge != "ignore":
        k = np.flatnonzero(at_edge)[0]
        msg = (
            f"n_grid: N* = {n_star[k]:.4g} sits at an end of the draft grid [{grid[0]:.3g}, {grid[-1]:.3g}] "
            f"for m_target = {m[k]:.4g} ({at_edge.sum()} of {m.size} rows); widen n_grid"
        )
        if on_edge == "raise":
            raise ValueError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    x_star = perplexity(n_star, d, law, cap=PPL_CAP)
    raw = np.asarray(alpha_plane(x_star, y, plane))
    _refuse_above_one(raw, x_star, y, "m_target, d_target")
    alpha_star = np.clip(raw, 0.0, 1.0)
    gamma_star, thr_star = _optimum(alpha_star, n_star, m)
    out = OptimalDraft(
        *(v.reshape(shape) for v in (n_star, thr_star, gamma_star, alpha_star, thr_star * 2.0 * m, at_edge))
    )
    if len(shape) == 0:
        out = OptimalDraft(
            *(float(np.asarray(v)) for v in (out.n_star, out.throughput, out.gamma_star, out.alpha, out.gain)),
            bool(at_edge[0]),
        )
    return out


def nstar_grid(
    grid: Table7Grid = TABLE7_GRID, plane: AlphaPlane = TABLE3_PLANE, law: ChinchillaLaw = BESIROGLU_2024
) -> pd.DataFrame:
    r"""The Table 7 mesh: :math:`N^*` for every (M, D, D') as a tidy DataFrame.

    One row per grid point (8 x 6 x 6 = 288 by default) with columns ``m_target, d_draft, d_target,
    n_star, throughput, gamma_star, alpha, gain, nstar_over_m``. The 10,000-point N grid serves only
    the inner maximisation (2.88 million evaluations of Eq. 9).

    The default grid takes D and D' up to :math:`10^{14}`, not the printed :math:`10^{13}`, which does
    not reproduce Tables 8-9; upper limits from about :math:`9\cdot10^{13}` to :math:`1.2\cdot10^{14}` do
    (erratum E4). Pass ``constants.TABLE7_GRID_AS_PRINTED`` for the printed grid.

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
