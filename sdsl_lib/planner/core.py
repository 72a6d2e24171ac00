r"""A planner for practitioners: the draft to train, its lookahead and its gain, with 95% intervals.

Given a target (parameters :math:`M`, training tokens :math:`D'`) and the data a draft family is
trained on (:math:`D`), :func:`plan` answers the questions SDSL's laws answer, each with an interval
that propagates the uncertainty of the two fitted laws it chains:

* the throughput-optimal draft size :math:`N^*` (Eq. 9 maximised over :math:`N`, as in Table 5);
* the optimal lookahead :math:`\gamma^*` (Eq. 13) and the best integer lookahead (Eq. 3);
* the acceptance rate :math:`\alpha` there (Eq. 5 at the perplexities of Eq. 7-8);
* the tokens-per-FLOP gain over decoding with the target alone, :math:`2M\,\mathcal{T}(N^*)` (Eq. 4);
* optionally, on a given accelerator (:mod:`sdsl_lib.planner.hardware_plan`), the tokens per second
  of the FLOP-optimal draft beside the latency-optimal one, per batch size.

The parts: :mod:`~sdsl_lib.planner.request` (the inputs and their rules),
:mod:`~sdsl_lib.planner.uncertainty` (the draws), :mod:`~sdsl_lib.planner.hardware` and
:mod:`~sdsl_lib.planner.hardware_plan` (presets, tokens per second, memory),
:mod:`~sdsl_lib.planner.report` (the answer). Every law is the law library's own function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sdsl_lib.laws.acceptance import alpha_plane, fit_alpha_plane
from sdsl_lib.laws.constants import TABLE3_PLANE, AlphaPlane, ChinchillaLaw
from sdsl_lib.laws.optimal import PPL_CAP, optimal_draft_size, refine_draft_size
from sdsl_lib.laws.pretraining import perplexity
from sdsl_lib.laws.speculation import optimal_lookahead, optimal_throughput, throughput_per_flop
from sdsl_lib.planner.hardware_plan import hardware_plan
from sdsl_lib.planner.report import ESTIMATE_KEYS, ESTIMATE_META, Plan, finite
from sdsl_lib.planner.request import MIN_DRAWS, PlanRequest, RequestError
from sdsl_lib.planner.uncertainty import (
    LAW_KEYS,
    bootstrap_planes,
    clusters,
    law_rows,
    paper_pairs,
    percentiles,
    plane_residuals,
    sample_laws,
)

__all__ = ["plan", "draft_grid", "best_integer_lookahead"]

_POINT_GRID_POINTS = 10_000  # like Table 7's N grid; the golden-section refinement makes it exact
_DRAW_GRID_POINTS = 400  # coarse grid for the draws; refined the same way
_LATENCY_GRID_POINTS = 2_000  # N grid of the tokens-per-second search (0.5% steps over 4.5 decades)
_FLAT = (1e-3, 1e-2)  # throughput losses for which the flatness note gives the range of N


@dataclass
class _AlphaModel:
    """alpha(N) for R rows: each row has its own plane, law and residual (or a given alpha/perplexity)."""

    m: float
    plane: AlphaPlane  # fields of shape (R, 1)
    law: ChinchillaLaw  # fields of shape (R, 1)
    d_draft: float | None
    d_target: float | None
    draft_ppl: float | None
    target_ppl: float | None
    alpha_given: np.ndarray | None  # (R,)
    offset: np.ndarray  # (R,) per-pair residual added to the plane (0 for the point estimate)

    @property
    def rows(self) -> int:
        return self.offset.shape[0]

    def x(self, n):
        if self.draft_ppl is not None:
            return np.full(np.broadcast_shapes(np.shape(n), (self.rows, 1)), self.draft_ppl)
        return perplexity(n, self.d_draft, self.law, cap=PPL_CAP)

    def y(self):
        if self.target_ppl is not None:
            return np.full((self.rows, 1), self.target_ppl)
        return perplexity(self.m, self.d_target, self.law, cap=PPL_CAP)

    def raw(self, n):
        """Eq. 5 plus the row's residual, unclipped; shape (R, k)."""
        return alpha_plane(self.x(n), self.y(), self.plane) + self.offset[:, None]

    def alpha(self, n):
        """The clipped acceptance rate at draft sizes ``n`` (R or 1, k); shape (R, k)."""
        n = np.asarray(n, float)
        if self.alpha_given is not None:
            return np.broadcast_to(self.alpha_given[:, None], np.broadcast_shapes(n.shape, (self.rows, 1)))
        return np.clip(self.raw(n), 0.0, 1.0)


def draft_grid(m_target: float, n_min: float = 1e6, n_max: float | None = None, points: int = _POINT_GRID_POINTS):
    """Log-spaced candidate draft sizes in ``[n_min, n_max]`` (default ``n_max = M/2``).

    Examples
    --------
    >>> g = draft_grid(70e9, points=5)
    >>> f"{g[0]:.0e}", f"{g[-1]:.1e}"
    ('1e+06', '3.5e+10')
    """
    n_max = 0.5 * m_target if n_max is None else n_max
    if not (0 < n_min < n_max < m_target):
        raise ValueError(
            f"the draft search range needs 0 < n_min < n_max < m_target, got n_min={n_min:g}, n_max={n_max:g}, "
            f"m_target={m_target:g}"
        )
    return np.logspace(np.log10(n_min), np.log10(n_max), points)


def _search(model: _AlphaModel, grid: np.ndarray) -> np.ndarray:
    """N* per row: grid argmax of Eq. 4 at alpha(N), refined by the library's one N* search."""

    def throughput(n):
        return optimal_throughput(model.alpha(n), n, model.m)

    best = np.argmax(throughput(grid[None, :]), axis=1)
    return refine_draft_size(throughput, grid, best)


def best_integer_lookahead(alpha, n_draft, m_target, gamma_max: int = 64):
    r"""The integer :math:`\gamma \in \{0, \dots, \gamma_{max}\}` that maximises Eq. 3.

    Eq. 3 is unimodal in :math:`\gamma`, so the integer optimum is the floor or the ceiling of
    Eq. 13's :math:`\gamma^*` (capped at ``gamma_max``; :math:`\alpha = 1` gives ``gamma_max``).

    Examples
    --------
    >>> int(best_integer_lookahead(0.6479, 117313808.6, 12853473280))   # gamma* = 8.11
    8
    """
    a = np.asarray(alpha, float)
    g_star = np.minimum(np.asarray(optimal_lookahead(a, n_draft, m_target), float), gamma_max)
    lo = np.floor(g_star)
    hi = np.minimum(lo + 1.0, gamma_max)
    take_hi = throughput_per_flop(a, hi, n_draft, m_target) > throughput_per_flop(a, lo, n_draft, m_target)
    out = np.where(take_hi, hi, lo).astype(int)
    return out.item() if out.ndim == 0 else out


def _summaries(model: _AlphaModel, n, gamma_max, uses_plane) -> dict[str, np.ndarray]:
    """Eq. 13, Eq. 4, the best integer lookahead and the perplexities at N per row."""
    n = np.asarray(n, float)
    m = model.m
    alpha = model.alpha(n[:, None])[:, 0]
    thr = np.asarray(optimal_throughput(alpha, n, m), float)
    gamma_int = np.asarray(best_integer_lookahead(alpha, n, m, gamma_max))
    nan = np.full(n.shape, np.nan)
    return {
        "n_draft": n,
        "m_over_n": m / n,
        "gamma_star": np.asarray(optimal_lookahead(alpha, n, m), float),
        "gamma_int": gamma_int.astype(float),
        "alpha": alpha,
        "gain": thr * 2.0 * m,
        "gain_int": np.asarray(throughput_per_flop(alpha, gamma_int, n, m), float) * 2.0 * m,
        "throughput_tokens_per_flop": thr,
        "draft_ppl": model.x(n[:, None])[:, 0] if uses_plane else nan,
        "target_ppl": np.broadcast_to(model.y()[:, 0], n.shape) if uses_plane else nan,
    }


def _paths(req: PlanRequest):
    """Which laws the plan uses: (law for x, law for y, plane)."""
    return (
        req.alpha is None and req.draft_ppl is None,
        req.alpha is None and req.target_ppl is None,
        req.alpha is None,
    )


def _alpha_source(req: PlanRequest) -> str:
    if req.alpha is not None:
        return "measured (given)"
    if req.draft_ppl is not None and req.target_ppl is not None:
        return "predicted from Eq. 5 at the given (measured) perplexities"
    if req.draft_ppl is not None:
        return "predicted from Eq. 5 with the given draft perplexity and the Eq. 8 target perplexity"
    if req.target_ppl is not None:
        return "predicted from Eq. 5 with Eq. 7 draft perplexities and the given target perplexity"
    return "predicted from Eq. 5 with Eq. 7-8 perplexities"


def _model(req, planes: np.ndarray, law: ChinchillaLaw, alphas, offset) -> _AlphaModel:
    plane = AlphaPlane(planes[:, 0:1], planes[:, 1:2], planes[:, 2:3])
    return _AlphaModel(
        req.m_target, plane, law, req.d_draft, req.d_target, req.draft_ppl, req.target_ppl, alphas, offset
    )


def _refuse_certainty(req: PlanRequest, model: _AlphaModel, n) -> None:
    """The plane above 1 on the searched drafts: an undertrained target, where Eq. 5 predicts nothing."""
    raw = model.raw(np.atleast_2d(n))
    if (raw > 1.0).any():
        field = "target_ppl" if req.target_ppl is not None else "d_target"
        raise RequestError(
            field,
            f"gives a target perplexity y = {float(model.y()[0, 0]):.4g} at which the plane of Eq. 5 predicts "
            f"alpha = {raw.max():.4g} > 1: a target this undertrained lies far outside the pairs the plane was fitted "
            "on (y in [9.5, 15.6]), so no acceptance rate can be predicted; give a measured {alpha}",
        )


def _point(req: PlanRequest, point_plane: AlphaPlane):
    """The point estimate: the model, N* (or the given N) and how it was found."""
    uses_x, uses_y, uses_plane = _paths(req)
    vec = np.array([[point_plane.A, point_plane.B, point_plane.C]])
    alphas = None if req.alpha is None else np.array([req.alpha])
    model = _model(req, vec, law_rows(req.law), alphas, np.zeros(1))
    grid = draft_grid(req.m_target, req.n_min, req.n_max, _POINT_GRID_POINTS)
    if uses_plane:
        _refuse_certainty(req, model, grid if req.n_draft is None else [req.n_draft])
    span = f"N in [{req.n_min:.3g}, {req.n_max:.3g}]"
    if req.n_draft is not None:
        return model, np.array([req.n_draft]), "given", grid
    if uses_x and uses_y:
        # On the all-law path the point IS the library's Table 5 computation, on the planner's grid.
        opt = optimal_draft_size(
            req.m_target, req.d_draft, req.d_target, n_grid=grid, plane=point_plane, law=req.law, on_edge="ignore"
        )
        return (
            model,
            np.array([opt.n_star]),
            f"searched: Eq. 9 maximised over {span} (sdsl_lib.laws.optimal.optimal_draft_size)",
            grid,
        )
    return model, _search(model, grid), f"searched: Eq. 4 at Eq. 5's alpha maximised over {span}", grid


def _draw_models(req: PlanRequest, pair_df, point_plane: AlphaPlane):
    """The draws' alpha model and the sentences that say what was resampled; None when nothing is."""
    uses_x, uses_y, uses_plane = _paths(req)
    flags = {
        "plane": uses_plane and req.uncertainty in ("all", "plane"),
        "law": (uses_x or uses_y) and req.uncertainty in ("all", "law"),
        "alpha": req.alpha is not None and bool(req.alpha_se) and req.uncertainty != "none",
    }
    if not any(flags.values()) or req.draws < MIN_DRAWS:
        return None, flags
    r = req.draws
    # Independent child generators per source: switching one source off leaves the others' draws
    # unchanged, so the decomposition by uncertainty mode is comparable run to run.
    plane_rng, law_rng, alpha_rng, resid_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(req.seed).spawn(4)
    )
    vec = np.array([[point_plane.A, point_plane.B, point_plane.C]])
    planes, offset = np.repeat(vec, r, axis=0), np.zeros(r)
    if flags["plane"]:
        planes = bootstrap_planes(pair_df, r, plane_rng, center=point_plane if req.pairs is None else None)
        offset = resid_rng.choice(plane_residuals(pair_df), size=r, replace=True)
    laws = (
        sample_laws(req.law, r, law_rng)
        if flags["law"]
        else {k: np.full(r, float(getattr(req.law, k))) for k in LAW_KEYS}
    )
    alphas = None
    if req.alpha is not None:
        alphas = np.full(r, req.alpha)
        if flags["alpha"]:
            a0, se = req.alpha, req.alpha_se
            alphas = stats.truncnorm.rvs(-a0 / se, (1.0 - a0) / se, loc=a0, scale=se, size=r, random_state=alpha_rng)
    return _model(req, planes, law_rows(laws), alphas, offset), flags


def _uncertainty_text(req, flags, pair_df, pair_source, any_draws) -> dict:
    n_targets = int(clusters(pair_df).max()) + 1
    if any_draws:
        interval = "percentile interval of the draws"
    elif req.draws < MIN_DRAWS and any(flags.values()):
        interval = f"none: {req.draws} draws are fewer than the {MIN_DRAWS} a percentile interval needs"
    else:
        interval = "none: nothing is resampled"
    return {
        "draws": req.draws if any_draws else 0,
        "seed": req.seed,
        "confidence": req.confidence,
        "mode": req.uncertainty,
        "plane": (
            f"cluster bootstrap over the {n_targets} targets of {pair_source} (resampling targets with all their pairs), "
            "refitting Eq. 5 per draw"
            + (" (deviations added to Table 3's coefficients)" if req.pairs is None else "")
            + ", plus one leave-one-target-out residual per draw (the scatter of a new pair about the plane)"
        )
        if flags["plane"] and any_draws
        else "fixed",
        "law": (
            "independent normals with Besiroglu et al. (2024) standard errors, truncated to positive values; "
            "the published estimates are correlated and their covariance is not used, so this likely overstates the spread"
        )
        if flags["law"] and any_draws
        else "fixed",
        "alpha": "truncated normal on (0, 1) with the given standard error"
        if flags["alpha"] and any_draws
        else ("taken as exact (no --alpha-se)" if req.alpha is not None else "from the plane"),
        "interval": interval,
    }


def _estimates(point: dict, draw_df: pd.DataFrame, req: PlanRequest, any_draws: bool, flags) -> pd.DataFrame:
    q = [(1.0 - req.confidence) / 2.0, 1.0 - (1.0 - req.confidence) / 2.0]
    no_interval = not any_draws and req.draws < MIN_DRAWS and any(flags.values())
    rows = {}
    for k in ESTIMATE_KEYS:
        p = float(point[k][0])
        lo = hi = np.nan if no_interval else p  # nothing resampled: the point is exact by assumption
        if any_draws and not np.isnan(draw_df[k].to_numpy()).all():
            lo, hi = (float(v) for v in percentiles(draw_df[k].to_numpy(), q))
        rows[k] = {
            "point": p,
            "lower": lo,
            "upper": hi,
            "unit": ESTIMATE_META[k][0],
            "description": ESTIMATE_META[k][1],
        }
    est = pd.DataFrame.from_dict(rows, orient="index")
    est.index.name = "quantity"
    return est if req.alpha is None else est.drop(index=["draft_ppl", "target_ppl"])


def _flatness(model: _AlphaModel, grid: np.ndarray, n_star: float) -> str:
    """The range of N whose throughput is within 0.1% (and 1%) of the plan's optimum, in words."""
    thr = optimal_throughput(model.alpha(grid[None, :])[0], grid, model.m)
    best = float(optimal_throughput(model.alpha(np.array([[n_star]]))[0, 0], n_star, model.m))
    parts = []
    for loss in _FLAT:
        inside = grid[thr >= (1.0 - loss) * best]
        lo, hi = inside.min(), inside.max()
        edge = " (to the end of the search range)" if lo <= grid[0] or hi >= grid[-1] else ""
        parts.append(
            f"within {100 * loss:g}% for N in [{lo:.3g}, {hi:.3g}] "
            f"({100 * (lo / n_star - 1):+.0f}% to {100 * (hi / n_star - 1):+.0f}% of N*){edge}"
        )
    return "the optimum is flat: throughput stays " + "; ".join(parts)


def _notes(req, est, pair_df, model, grid, point) -> list[str]:
    notes = []
    uses_x, uses_y, uses_plane = _paths(req)
    if req.draws < MIN_DRAWS and req.uncertainty != "none":
        notes.append(
            f"only {req.draws} draws requested: fewer than {MIN_DRAWS} give no meaningful {100 * req.confidence:g}% "
            "interval, so only point estimates are reported"
        )
    if uses_plane:
        lo_x, hi_x = pair_df["draft_ppl"].min(), pair_df["draft_ppl"].max()
        lo_y, hi_y = pair_df["target_ppl"].min(), pair_df["target_ppl"].max()
        x0, y0 = est.loc["draft_ppl", "point"], est.loc["target_ppl", "point"]
        if not lo_x <= x0 <= hi_x or not lo_y <= y0 <= hi_y:
            notes.append(
                f"extrapolation: the plane was fitted on draft perplexities {lo_x:.1f}-{hi_x:.1f} and target "
                f"perplexities {lo_y:.1f}-{hi_y:.1f}; this plan uses x = {x0:.4g}, y = {y0:.4g}"
                + (
                    " (Eq. 7-8 give perplexities on the pre-training law's data, not on the plane's evaluation set: "
                    "SDSL does the same)"
                    if uses_x or uses_y
                    else ""
                )
            )
        raw = float(model.raw(np.array([[point["n_draft"][0]]]))[0, 0])
        if raw < 0.0:
            notes.append(
                f"the plane predicts alpha = {raw:.4g} here, below 0; it is clipped to 0 (no draft token would be "
                "accepted), so check the token counts or give measured inputs"
            )
    n0 = point["n_draft"][0]
    if req.n_draft is None and (n0 >= 0.999 * req.n_max or n0 <= 1.001 * req.n_min):
        notes.append("N* lies at an end of the search range; widen it (n_min/n_max)")
    if point["gamma_star"][0] == 0:
        notes.append("speculation does not pay for this pair in the FLOP model (gamma* = 0)")
    elif req.n_draft is None:
        notes.append(_flatness(model, grid, n0))
    return notes


def _inputs(req: PlanRequest, point_plane: AlphaPlane) -> dict:
    uses_x, uses_y, _ = _paths(req)
    return finite(
        {
            "target_params": req.m_target,
            "target_tokens": req.d_target,
            "draft_tokens": req.d_draft,
            "draft_params": req.n_draft,
            "alpha": req.alpha,
            "alpha_se": req.alpha_se,
            "draft_ppl": req.draft_ppl,
            "target_ppl": req.target_ppl,
            "pairs": req.pairs_label,
            "plane": {"A": point_plane.A, "B": point_plane.B, "C": point_plane.C},
            "law": {k: getattr(req.law, k) for k in LAW_KEYS} if uses_x or uses_y else None,
            "n_min": req.n_min,
            "n_max": req.n_max,
            "gamma_max": req.gamma_max,
            "batch_size": req.batch_size,
            "context_tokens": req.context_tokens,
        }
    )


def plan(m_target=None, d_target=None, d_draft=None, *, request: PlanRequest | None = None, **options) -> Plan:
    r"""Plan a draft for a target: :math:`N^*`, :math:`\gamma^*`, :math:`\alpha` and the gain, with intervals.

    Parameters
    ----------
    m_target : float
        Target parameters :math:`M > 0`.
    d_target : float, optional
        Target training tokens :math:`D'`; needed unless ``target_ppl`` or ``alpha`` is given.
    d_draft : float, optional
        Draft training tokens :math:`D`; needed unless ``draft_ppl`` or ``alpha`` is given.
    request : PlanRequest, optional
        A ready request (the CLI builds one); otherwise the arguments and ``options`` build it.
    **options
        Any other field of :class:`~sdsl_lib.planner.request.PlanRequest`: ``n_draft`` (evaluate
        this draft instead of searching), ``alpha``/``alpha_se`` (measured), ``draft_ppl``/
        ``target_ppl`` (measured perplexities into Eq. 5), ``pairs`` (your pairs: DataFrame or CSV
        path, optional ``target`` column), ``plane``, ``law``, ``draws``, ``seed``, ``confidence``,
        ``uncertainty`` ({"all", "plane", "law", "none"}), ``n_min``, ``n_max``, ``gamma_max``,
        ``hardware`` (preset name, "custom" or a HardwareSpec) with its overrides, ``batch_size``,
        ``batch_sweep``, and the KV cache (``context_tokens``, ``n_layers``, ``kv_heads``,
        ``head_dim``, ``kv_bytes``).

    Returns
    -------
    Plan

    Raises
    ------
    RequestError
        (a ``ValueError``) naming the field of any input that breaks a rule, an undertrained target
        for which the plane would predict alpha > 1, or a configuration that does not fit in memory.

    Examples
    --------
    >>> p = plan(12853473280, 180e9, 180e9, draws=50)            # Table 5: OPT-13B with OPT drafts
    >>> f"{p.point('n_draft'):.6e}", round(p.point('gamma_star'), 2), int(p.point('gamma_int'))
    ('1.173138e+08', 8.11, 8)
    """
    req = request if request is not None else PlanRequest(m_target, d_target, d_draft, **options)
    if req.pair_table is None:
        pair_df, pair_source = paper_pairs(), "the paper's 130 pairs (Tables 1-2)"
        point_plane = req.plane if req.plane is not None else TABLE3_PLANE
    else:
        pair_df = req.pair_table
        pair_source = f"{len(pair_df)} user pairs" + (
            "" if isinstance(req.pairs, pd.DataFrame) else f" from {req.pairs}"
        )
        point_plane = req.plane or fit_alpha_plane(pair_df["draft_ppl"], pair_df["target_ppl"], pair_df["alpha"]).plane
    uses_plane = req.alpha is None
    model, n_point, draft_source, grid = _point(req, point_plane)
    point = _summaries(model, n_point, req.gamma_max, uses_plane)
    draw_model, flags = _draw_models(req, pair_df, point_plane)
    draw_df, n_draws = pd.DataFrame(columns=list(ESTIMATE_KEYS)), None
    coarse = draft_grid(req.m_target, req.n_min, req.n_max, _DRAW_GRID_POINTS)
    if draw_model is not None:
        n_draws = np.full(req.draws, req.n_draft) if req.n_draft is not None else _search(draw_model, coarse)
        vals = _summaries(draw_model, n_draws, req.gamma_max, uses_plane)
        draw_df = pd.DataFrame({k: np.asarray(vals[k], float) for k in ESTIMATE_KEYS})
    est = _estimates(point, draw_df, req, draw_model is not None, flags)
    unc = _uncertainty_text(req, flags, pair_df, pair_source, draw_model is not None)
    notes = _notes(req, est, pair_df, model, grid, point)
    hw = None
    if req.spec is not None:
        hw = hardware_plan(
            req,
            model.alpha,
            None if draw_model is None else draw_model.alpha,
            n_point,
            n_draws,
            draft_grid(req.m_target, req.n_min, req.n_max, _LATENCY_GRID_POINTS),
            coarse,
        )
    return Plan(_inputs(req, point_plane), _alpha_source(req), draft_source, est, draw_df, unc, tuple(notes), hw)
