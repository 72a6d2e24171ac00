r"""SDSL's chain run on the ladder: N* from the handed-on law and plane (our Table 5), and its
wall-clock counterpart.

The Eq. 2 law (notebook 10) and the Eq. 5 plane (notebook 11) are fitted once and handed on
(:mod:`sdsl_lib.analysis.results`); this module only evaluates the chain with them:

- :func:`predicted_nstar`, :func:`predict_chain`: N* per target (Eq. 9);
- :func:`nstar_draws`: N* under the law's model-bootstrap draws paired with the plane's
  pair-bootstrap draws;
- :func:`latency_optimal_draft`: the draft maximising predicted wall-clock speed-up under the
  affine step time and the measured verification cost (:mod:`sdsl_lib.laws.wallclock`);
  :func:`wallclock_optimum` is its step that takes the acceptance along N as given;
- :func:`draft_chain`, :func:`draft_chain_draws`: the same optimum for one target and a draft ladder
  trained for it (a real target: size law and Table 4 log line fitted on the drafts, drafts resampled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdsl_lib.analysis.acceptance import alpha_log_ppl_line
from sdsl_lib.analysis.pretraining import SizeLaw, fit_size_law
from sdsl_lib.analysis.stats import bootstrap_draws
from sdsl_lib.analysis.tables import MeasuredData, need_columns
from sdsl_lib.laws.constants import AlphaPlane, ChinchillaLaw
from sdsl_lib.laws.optimal import OptimalDraft, optimal_draft_size, predicted_alpha
from sdsl_lib.laws.wallclock import best_integer_lookahead, step_cost_ratio

__all__ = [
    "nstar_grid_for",
    "predicted_nstar",
    "nstar_draws",
    "ChainPrediction",
    "predict_chain",
    "latency_optimal_draft",
    "wallclock_optimum",
    "draft_chain_alpha",
    "draft_chain",
    "draft_chain_draws",
]


def nstar_grid_for(m_max: float, n_min: float = 1e3, n_points: int = 2000) -> np.ndarray:
    """Log-spaced draft sizes from ``n_min`` up to (not including) ``m_max``: the N* search grid."""
    if not (0 < n_min < m_max):
        raise ValueError(f"n_min must lie in (0, m_max={m_max:g}), got {n_min!r}")
    if n_points < 3:
        raise ValueError(f"n_points must be >= 3, got {n_points}")
    return np.logspace(np.log10(n_min), np.log10(m_max), n_points + 1)[:-1]


def predicted_nstar(
    m_target, d_draft, d_target, plane: AlphaPlane, law: ChinchillaLaw, n_min: float = 1e3, n_points: int = 2000
) -> tuple[OptimalDraft, np.ndarray]:
    r"""SDSL's predicted optimal draft size from laws fitted on the ladder (our Table 5).

    .. math:: N^* = \arg\max_N \mathcal{T}(N; M, D, D'),\quad
              \tilde\alpha = A\,e^{L(N, D)} + B\,e^{L(M, D')} + C \qquad \text{(Eq. 9)}

    Calls :func:`sdsl_lib.laws.optimal.optimal_draft_size` with the fitted ``plane`` and ``law`` on
    :func:`nstar_grid_for` (``n_min`` up to the largest target). Returns the optimum and a boolean
    array, True where N* sits on an edge of the grid searched, not at an interior maximum:

    * the lower edge: the law sees no acceptance gain from a bigger draft worth its FLOPs, and N*
      is "as small as the grid allows";
    * the upper edge of the plane's domain: a plane fitted on a small ladder can reach
      :math:`\tilde\alpha = 1` inside the grid, where Eq. 9 has no optimum (at
      :math:`\alpha = 1` the best lookahead diverges) and the library refuses to predict. The
      search is then confined to the drafts where the plane stays below 1, and an N* at the top of
      that range is marked as an edge: "as large as the plane can speak for".

    Raises ``ValueError`` when fewer than 3 grid points keep the plane below 1.
    """
    from sdsl_lib.laws.acceptance import alpha_plane
    from sdsl_lib.laws.optimal import PPL_CAP
    from sdsl_lib.laws.pretraining import perplexity

    m = np.atleast_1d(np.asarray(m_target, dtype=float))
    grid = nstar_grid_for(float(m.max()), n_min, n_points)
    y = np.atleast_1d(perplexity(m, np.broadcast_to(np.asarray(d_target, dtype=float), m.shape), law, cap=PPL_CAP))
    d = np.broadcast_to(np.asarray(d_draft, dtype=float), m.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        raw = np.asarray(alpha_plane(perplexity(grid[None, :], d[:, None], law, cap=PPL_CAP), y[:, None], plane))
    valid = (raw < 1.0).all(axis=0)
    if valid.sum() < 3:
        raise ValueError(
            f"plane: the fitted plane predicts alpha >= 1 on all but {int(valid.sum())} of {grid.size} draft sizes; "
            "no N* can be predicted from it"
        )
    grid = grid[valid]
    # The edge is reported to the caller (``edge``), so the law's own warning would only repeat it.
    opt = optimal_draft_size(m_target, d_draft, d_target, n_grid=grid, plane=plane, law=law, on_edge="ignore")
    n_star = np.asarray(opt.n_star)
    edge = (n_star <= grid[1]) | ((n_star >= grid[-2]) & (not valid.all()))
    return opt, edge


def nstar_draws(
    law_draws: pd.DataFrame,
    plane_draws: pd.DataFrame,
    m_target,
    d_draft,
    d_target,
    n_min: float = 1e3,
    n_points: int = 600,
) -> np.ndarray:
    r"""N* under paired bootstrap draws of both fitted laws: law draw k with plane draw k.

    ``law_draws`` (``E, A, B, nu, delta``: notebook 10, models resampled) and ``plane_draws``
    (``A, B, C``: notebook 11, pairs resampled) are handed on by the notebooks that own them. The
    two are resampled independently (different tables), so pairing draw k with draw k is a draw of
    the joint distribution. Draws where either is NaN give NaN.

    Returns
    -------
    ndarray, shape (min(len(law_draws), len(plane_draws)), n_targets)
    """
    need_columns(law_draws, "law_draws", ["E", "A", "B", "nu", "delta"])
    need_columns(plane_draws, "plane_draws", ["A", "B", "C"])
    m = np.atleast_1d(np.asarray(m_target, dtype=float))
    k = min(len(law_draws), len(plane_draws))
    out = np.full((k, m.size), np.nan)
    for i in range(k):
        lw, pl = law_draws.iloc[i], plane_draws.iloc[i]
        if not (np.isfinite(lw.to_numpy(float)).all() and np.isfinite(pl[["A", "B", "C"]].to_numpy(float)).all()):
            continue
        law = ChinchillaLaw(E=lw["E"], A=lw["A"], B=lw["B"], nu=lw["nu"], delta=lw["delta"], source="bootstrap draw")
        plane = AlphaPlane(A=pl["A"], B=pl["B"], C=pl["C"], source="bootstrap draw")
        try:
            opt, _ = predicted_nstar(m, d_draft, d_target, plane, law, n_min, n_points)
        except ValueError:  # a draw whose law gives a non-finite perplexity on the grid
            continue
        out[i] = np.atleast_1d(opt.n_star)
    return out


@dataclass(frozen=True)
class ChainPrediction:
    """SDSL's chain on the ladder: the handed-on law and plane, and N* per target."""

    law: ChinchillaLaw
    plane: AlphaPlane
    targets: (
        pd.DataFrame
    )  # target, m_target, d_draft, d_target, n_star, throughput, gamma_star, alpha, gain, at_grid_edge
    n_grid: np.ndarray


def predict_chain(
    data: MeasuredData,
    plane: AlphaPlane,
    law: ChinchillaLaw,
    params_column: str = "n_params",
    n_min: float = 1e3,
    n_points: int = 2000,
) -> ChainPrediction:
    r"""Run SDSL's predictor on the ladder (our Table 5) with a law and a plane already fitted.

    Eq. 9 via :func:`predicted_nstar` for every target, with :math:`D` = the drafts' training
    tokens (their median: the ladder trains every draft on the same budget) and :math:`D'` = the
    target's.
    """
    if data.models is None:
        raise ValueError("data must hold models (load_measured with that table)")
    m = data.models.set_index("model")
    tg = data.targets
    m_t = m.loc[tg, params_column].to_numpy(float)
    d_draft = float(np.median(m.loc[data.drafts, "n_tokens"].to_numpy(float)))
    d_t = m.loc[tg, "n_tokens"].to_numpy(float)
    opt, edge = predicted_nstar(m_t, d_draft, d_t, plane, law, n_min, n_points)
    df = pd.DataFrame(
        {
            "target": tg,
            "m_target": m_t,
            "d_draft": d_draft,
            "d_target": d_t,
            "n_star": np.atleast_1d(opt.n_star),
            "throughput": np.atleast_1d(opt.throughput),
            "gamma_star": np.atleast_1d(opt.gamma_star),
            "alpha": np.atleast_1d(opt.alpha),
            "gain": np.atleast_1d(opt.gain),
            "at_grid_edge": np.atleast_1d(edge),
        }
    )
    return ChainPrediction(law, plane, df, nstar_grid_for(float(m_t.max()), n_min, n_points))


def _alpha_where_defined(n, m_target, d_draft, d_target, plane, law) -> np.ndarray:
    # The law library refuses a plane that predicts alpha > 1 (far outside the pairs it was fitted
    # on). Along a search grid that can happen at one end only; those sizes drop out (NaN) rather
    # than the whole curve.
    try:
        return np.asarray(predicted_alpha(n, m_target, d_draft, d_target, plane, law), dtype=float)
    except ValueError:
        out = np.full(n.shape, np.nan)
        for i, x in enumerate(n):
            try:
                out[i] = float(predicted_alpha(x, m_target, d_draft, d_target, plane, law))
            except ValueError:
                pass
        return out


def latency_optimal_draft(
    m_target: float,
    d_draft: float,
    d_target: float,
    plane: AlphaPlane,
    law: ChinchillaLaw,
    t0_s: float,
    k_s_per_param: float,
    t_target_s: float,
    v_curve: pd.DataFrame,
    gammas,
    n_grid,
) -> tuple[dict, pd.DataFrame]:
    r"""The draft size that maximises predicted wall-clock speed-up (not tokens per FLOP).

    Same acceptance chain as Eq. 9 (:func:`sdsl_lib.laws.optimal.predicted_alpha` with the fitted plane and
    law), but the cost of a draft step is the affine :math:`t(N) = t_0 + kN` of
    :func:`step_cost_model` relative to the target's measured step, and verifying :math:`\gamma + 1`
    tokens costs :math:`v(\gamma+1)` target steps (:func:`verification_cost_curve`); the lookahead is
    the best integer among ``gammas`` with a measured :math:`v`.

    Returns
    -------
    best : dict
        ``n_star``, ``speedup``, ``gamma``, ``alpha``, ``c`` at the maximum, ``at_grid_edge``.
    curve : DataFrame
        ``n_draft, alpha, c, gamma, speedup`` along ``n_grid``.
    """
    n = np.asarray(n_grid, dtype=float)
    n = n[n < m_target]
    if n.size == 0:
        raise ValueError(f"n_grid must hold draft sizes below m_target={m_target:g}")
    a = _alpha_where_defined(n, m_target, d_draft, d_target, plane, law)
    return wallclock_optimum(n, a, t0_s, k_s_per_param, t_target_s, v_curve, gammas)


def wallclock_optimum(
    n_grid, alpha, t0_s: float, k_s_per_param: float, t_target_s: float, v_curve: pd.DataFrame, gammas
) -> tuple[dict, pd.DataFrame]:
    r"""The draft size maximising predicted wall-clock speed-up, given the acceptance rate along ``n_grid``.

    .. math:: S_\text{wall}(N, \gamma) = \frac{1 - \alpha(N)^{\gamma+1}}{(1 - \alpha(N))\,(\gamma\, c(N) + v(\gamma+1))},
              \qquad c(N) = \frac{t_0 + kN}{t_M(1)}

    The step of :func:`latency_optimal_draft` that does not depend on where :math:`\alpha(N)` comes
    from (the Eq. 5 plane and Eq. 2 law there, :func:`draft_chain` for one target). Sizes where
    ``alpha`` is NaN (outside [0, 1]: the acceptance law has left the range of probabilities) drop
    out; the lookahead is the best integer among ``gammas`` with a measured :math:`v(\gamma + 1)`.

    Returns
    -------
    best : dict
        ``n_star``, ``speedup``, ``gamma``, ``alpha``, ``c`` at the maximum, ``at_grid_edge``.
    curve : DataFrame
        ``n_draft, alpha, c, gamma, speedup`` along the sizes where ``alpha`` is defined.

    Examples
    --------
    >>> v = pd.DataFrame({"n_new_tokens": [1, 2, 3], "v": [1.0, 1.1, 1.2]})
    >>> n = np.array([1e5, 1e6, 1e7])
    >>> best, _ = wallclock_optimum(n, [0.3, 0.6, 0.7], 1e-4, 1e-10, 1e-3, v, [1, 2])
    >>> best["n_star"], best["gamma"], round(best["speedup"], 3)
    (1000000.0, 1.0, 1.231)
    """
    n = np.asarray(n_grid, dtype=float)
    a = np.asarray(alpha, dtype=float)
    if n.shape != a.shape or n.ndim != 1:
        raise ValueError(f"n_grid and alpha must be 1-d of one length, got shapes {n.shape} and {a.shape}")
    v_map = dict(zip(v_curve["n_new_tokens"].astype(int), v_curve["v"].astype(float)))
    g = np.array([x for x in gammas if int(x) + 1 in v_map], dtype=float)
    if g.size == 0:
        raise ValueError("gammas must include a lookahead whose gamma + 1 has a measured verification cost")
    v = np.array([v_map[int(x) + 1] for x in g])
    ok = np.isfinite(a) & (a >= 0.0) & (a <= 1.0)
    n, a = n[ok], a[ok]
    if n.size == 0:
        raise ValueError("alpha must lie in [0, 1] somewhere on n_grid")
    c = np.asarray(step_cost_ratio(n, t0_s, k_s_per_param, t_target_s))
    best_g, best_s = best_integer_lookahead(a, c, g, v)
    i = int(np.argmax(best_s))
    curve = pd.DataFrame({"n_draft": n, "alpha": a, "c": c, "gamma": best_g, "speedup": best_s})
    best = {
        "n_star": float(n[i]),
        "speedup": float(best_s[i]),
        "gamma": float(best_g[i]),
        "alpha": float(a[i]),
        "c": float(c[i]),
        "at_grid_edge": bool(i == 0 or i == n.size - 1),
    }
    return best, curve


def draft_chain_alpha(n_draft, size_law: SizeLaw, p1: float, p2: float) -> np.ndarray:
    r"""Acceptance along draft sizes for one target: the log form of Table 4 fed by the ladder's size law.

    .. math:: \alpha(N) = p_1 \ln \mathrm{PPL}(N) + p_2 = p_1\, a N^{-b} + p_2,
              \qquad \ln \mathrm{PPL}(N) = L(N) = a N^{-b}

    (:func:`sdsl_lib.analysis.acceptance.alpha_log_ppl_line`, :func:`sdsl_lib.analysis.pretraining.fit_size_law`;
    the loss is in nats, so it is the log perplexity). NaN where the line leaves [0, 1].

    Examples
    --------
    >>> law = SizeLaw(a=4.0, b=0.1, r2=1.0, n=3)
    >>> np.round(draft_chain_alpha([1e5, 1e6], law, -0.2, 0.9), 4).tolist()
    [0.647, 0.699]
    """
    a = p1 * np.asarray(size_law.loss(n_draft), dtype=float) + p2
    return np.where((a >= 0.0) & (a <= 1.0), a, np.nan)


def draft_chain(
    drafts: pd.DataFrame,
    alpha_column: str,
    params_column: str,
    n_grid,
    t0_s: float,
    k_s_per_param: float,
    t_target_s: float,
    v_curve: pd.DataFrame,
    gammas,
    ppl_column: str = "val_ppl",
    loss_column: str = "val_loss_nats",
) -> tuple[dict, pd.DataFrame]:
    r"""SDSL's chain for one target and one draft ladder: laws fitted on the drafts, optimum over N.

    The size law :math:`L(N)` and the acceptance line :math:`\alpha(\ln\mathrm{PPL})` are fitted on
    ``drafts`` (one row per trained draft: ``model``, ``params_column``, ``loss_column``,
    ``ppl_column``, ``alpha_column``), composed by :func:`draft_chain_alpha`, and the wall-clock
    speed-up with measured costs is maximised over ``n_grid`` and the integer lookaheads
    (:func:`wallclock_optimum`). Returns ``best`` (with the fitted ``p1, p2, a, b`` added) and the curve.
    """
    need_columns(drafts, "drafts", ["model", params_column, loss_column, ppl_column, alpha_column])
    law = fit_size_law(drafts[params_column], drafts[loss_column])
    p1, p2 = alpha_log_ppl_line(drafts[ppl_column], drafts[alpha_column])
    n = np.asarray(n_grid, dtype=float)
    best, curve = wallclock_optimum(
        n, draft_chain_alpha(n, law, p1, p2), t0_s, k_s_per_param, t_target_s, v_curve, gammas
    )
    return {**best, "p1": p1, "p2": p2, "a": law.a, "b": law.b}, curve


def draft_chain_draws(
    drafts: pd.DataFrame,
    alpha_column: str,
    params_column: str,
    n_grid,
    t0_s: float,
    k_s_per_param: float,
    t_target_s: float,
    v_curve: pd.DataFrame,
    gammas,
    n_boot: int = 1000,
    seed: int = 0,
    min_models: int = 3,
    ppl_column: str = "val_ppl",
    loss_column: str = "val_loss_nats",
) -> np.ndarray:
    """N* of :func:`draft_chain` on ``n_boot`` resamples of the drafts (unit: model; both laws refitted per draw).

    The costs (``t0_s``, ``k_s_per_param``, ``v_curve``) stay at their measured values. A draw that
    cannot be fitted (one distinct draft) or predicts no acceptance in [0, 1] on the grid gives NaN;
    with fewer than ``min_models`` drafts every draw is NaN (two drafts fit both laws exactly).

    Returns
    -------
    ndarray, shape (n_boot,)
    """
    if drafts["model"].nunique() < min_models:
        return np.full(n_boot, np.nan)

    def stat(sample: pd.DataFrame) -> float:
        best, _ = draft_chain(
            sample, alpha_column, params_column, n_grid, t0_s, k_s_per_param, t_target_s, v_curve, gammas,
            ppl_column, loss_column,
        )  # fmt: skip
        return best["n_star"]

    return bootstrap_draws(drafts, stat, "model", n_boot, seed)
