r"""The acceptance rate :math:`\alpha`: its plane in perplexities (Eq. 5), the per-target fits of
Table 4, its estimation from token-acceptance rates (Appendix B) and from next-token distributions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.optimize import curve_fit, least_squares

from sdsl_lib.laws._validate import (
    as_array,
    check_broadcast,
    check_design,
    check_finite,
    check_positive,
    check_range,
    scalar_or_array,
)
from sdsl_lib.laws.constants import TABLE3_PLANE, AlphaPlane

__all__ = [
    "alpha_plane",
    "fit_alpha_plane",
    "PlaneFit",
    "fit_alpha_vs_draft_ppl",
    "DraftPplFit",
    "alpha_from_tar",
    "TarFit",
    "acceptance_from_probs",
    "tar_model",
]


def alpha_plane(draft_ppl, target_ppl, coef: AlphaPlane = TABLE3_PLANE, *, clip: bool = False):
    r"""Acceptance rate as an affine plane in draft and target perplexity (Eq. 5).

    .. math:: \alpha = A x + B y + C

    The one implementation of Eq. 5: the chain of Eq. 9 (:mod:`sdsl_lib.laws.optimal`) and the
    planner's draws call it too.

    Parameters
    ----------
    draft_ppl : array_like
        Draft perplexity :math:`1 \le x < \infty`.
    target_ppl : array_like
        Target perplexity :math:`1 \le y < \infty`.
    coef : AlphaPlane
        Plane coefficients; default SDSL's Table 3 (A = -0.0067, B = 0.012971, C = 0.642084). Its
        fields may be arrays that broadcast against the perplexities (one plane per row of
        bootstrap draws, e.g. ``A`` of shape (draws, 1)).
    clip : bool
        Clip the result to :math:`[0, 1]`, the range of a probability (default False: the raw plane).

    Returns
    -------
    float or ndarray
        :math:`\alpha`. The plane is affine, so far outside the fitted range (x in [12.6, 29.8],
        y in [9.5, 15.6] on HellaSwag) it can leave [0, 1] unless ``clip`` is set.

    References
    ----------
    SDSL §4.2, Eq. 5 and Table 3.

    Examples
    --------
    >>> round(alpha_plane(29.79318619, 15.58453751), 4)
    0.6446
    >>> alpha_plane(20.0, [10.0, 12.0], AlphaPlane(np.array([[-0.01], [-0.02]]), 0.0, 0.9)).tolist()
    [[0.7, 0.7], [0.5, 0.5]]
    """
    x = check_range("draft_ppl", as_array("draft_ppl", draft_ppl), 1.0, np.inf, high_open=True)
    y = check_range("target_ppl", as_array("target_ppl", target_ppl), 1.0, np.inf, high_open=True)
    a, b, c = (check_finite(f"coef.{k}", as_array(f"coef.{k}", getattr(coef, k))) for k in "ABC")
    check_broadcast(draft_ppl=x, target_ppl=y, **{"coef.A": a, "coef.B": b, "coef.C": c})
    alpha = a * x + b * y + c
    return scalar_or_array(np.clip(alpha, 0.0, 1.0) if clip else alpha)


@dataclass(frozen=True)
class PlaneFit:
    """Result of :func:`fit_alpha_plane`, laid out like Table 3."""

    plane: AlphaPlane
    table: pd.DataFrame  # parameter, estimate, std_error, margin_of_error_95, ci95_lower, ci95_upper
    mse: float
    r2: float
    n: int


def fit_alpha_plane(draft_ppl, target_ppl, alpha) -> PlaneFit:
    r"""Least-squares fit of :math:`\alpha = A x + B y + C` (Eq. 5), reported like Table 3.

    Parameters
    ----------
    draft_ppl, target_ppl, alpha : array_like
        One entry per draft-target pair: perplexities in :math:`[1, \infty)`, finite :math:`\alpha`
        (measured rates lie in [0, 1]; the fit itself does not need it).

    Returns
    -------
    PlaneFit
        Estimates with classical standard errors, 95% margins of error
        (:math:`t_{0.975,\,n-3}\cdot SE`, which is how Table 3's margins were computed), the MSE
        (:math:`SSE/n`) and :math:`R^2`.

    Examples
    --------
    >>> x = np.array([20., 25, 30, 20, 25, 30]); y = np.array([10., 10, 10, 15, 15, 15])
    >>> fit = fit_alpha_plane(x, y, 0.6 - 0.01 * x + 0.02 * y)
    >>> round(fit.plane.A, 6), round(fit.plane.B, 6), round(fit.plane.C, 6)
    (-0.01, 0.02, 0.6)
    """
    x = check_range("draft_ppl", as_array("draft_ppl", draft_ppl), 1.0, np.inf, high_open=True).ravel()
    y = check_range("target_ppl", as_array("target_ppl", target_ppl), 1.0, np.inf, high_open=True).ravel()
    # alpha is a regression response here: finite is enough (synthetic planes may leave [0, 1]).
    a = check_finite("alpha", as_array("alpha", alpha)).ravel()
    if not (x.size == y.size == a.size):
        raise ValueError(f"draft_ppl, target_ppl and alpha must have equal lengths, got {x.size}, {y.size}, {a.size}")
    if x.size < 4:
        raise ValueError(f"fit_alpha_plane needs at least 4 pairs, got {x.size}")
    # Centred columns: a rank test that does not depend on where x and y sit (y = x + c is collinear).
    check_design("draft_ppl and target_ppl", np.column_stack([x - x.mean(), y - y.mean(), np.ones_like(x)]))
    design = np.column_stack([x, y, np.ones_like(x)])
    res = sm.OLS(a, design).fit()
    t = stats.t.ppf(0.975, res.df_resid)
    est, se = res.params, res.bse
    table = pd.DataFrame(
        {
            "parameter": ["A", "B", "C"],
            "estimate": est,
            "std_error": se,
            "margin_of_error_95": t * se,
            "ci95_lower": est - t * se,
            "ci95_upper": est + t * se,
        }
    )
    plane = AlphaPlane(
        A=float(est[0]),
        B=float(est[1]),
        C=float(est[2]),
        A_se=float(se[0]),
        B_se=float(se[1]),
        C_se=float(se[2]),
        source="fit_alpha_plane",
    )
    return PlaneFit(plane=plane, table=table, mse=float(res.ssr / a.size), r2=float(res.rsquared), n=int(a.size))


_FORMS = ("linear", "log", "power")


@dataclass(frozen=True)
class DraftPplFit:
    """A two-parameter fit of alpha against draft perplexity (one row of Table 4)."""

    form: str
    p1: float
    p2: float
    p1_moe95: float
    p2_moe95: float
    mse: float
    r2: float
    n: int

    def predict(self, draft_ppl):
        """Evaluate the fitted curve at ``draft_ppl``."""
        x = np.asarray(draft_ppl, dtype=float)
        if self.form == "linear":
            return self.p1 * x + self.p2
        if self.form == "log":
            return self.p1 * np.log(x) + self.p2
        return self.p1 * x**self.p2

    def as_row(self) -> dict:
        return {
            "form": self.form,
            "p1": self.p1,
            "p1_moe95": self.p1_moe95,
            "p1_ci95_lower": self.p1 - self.p1_moe95,
            "p1_ci95_upper": self.p1 + self.p1_moe95,
            "p2": self.p2,
            "p2_moe95": self.p2_moe95,
            "p2_ci95_lower": self.p2 - self.p2_moe95,
            "p2_ci95_upper": self.p2 + self.p2_moe95,
            "mse": self.mse,
            "r2": self.r2,
        }


def fit_alpha_vs_draft_ppl(draft_ppl, alpha, form: str) -> DraftPplFit:
    r"""Fit :math:`\alpha` against draft perplexity :math:`x` for one target (Table 4).

    Forms: ``"linear"`` :math:`\alpha = p_1 x + p_2`; ``"log"`` :math:`\alpha = p_1 \ln x + p_2`;
    ``"power"`` :math:`\alpha = p_1 x^{p_2}` (nonlinear least squares).

    Margins of error are :math:`t_{0.975,\,n-2}\cdot SE`, the MSE is :math:`SSE/n` and
    :math:`R^2 = 1 - SSE/SST`: the conventions that reproduce every row of Table 4.

    Parameters
    ----------
    draft_ppl : array_like
        Draft perplexities :math:`x > 0`, one per draft (at least 3, not all equal).
    alpha : array_like
        Acceptance rates :math:`\alpha` (finite) of those drafts against one target.
    form : {"linear", "log", "power"}
        Which curve to fit.

    Returns
    -------
    DraftPplFit
        :math:`p_1, p_2` with 95% margins, MSE and :math:`R^2` (one row of Table 4).

    References
    ----------
    SDSL §4.2 and Appendix D, Table 4.

    Examples
    --------
    >>> x = np.array([12., 15, 18, 22, 26, 30])
    >>> fit = fit_alpha_vs_draft_ppl(x, 1.3 * x ** -0.2, "power")
    >>> round(fit.p1, 4), round(fit.p2, 4)
    (1.3, -0.2)
    """
    if form not in _FORMS:
        raise ValueError(f"form must be one of {_FORMS}, got {form!r}")
    x = check_positive("draft_ppl", as_array("draft_ppl", draft_ppl)).ravel()
    a = check_finite("alpha", as_array("alpha", alpha)).ravel()
    if x.size != a.size:
        raise ValueError(f"draft_ppl and alpha must have equal lengths, got {x.size} and {a.size}")
    if x.size < 3:
        raise ValueError(f"fit_alpha_vs_draft_ppl needs at least 3 points, got {x.size}")
    if np.ptp(a) == 0 or np.ptp(x) == 0:
        raise ValueError("draft_ppl and alpha must each vary (a constant gives no slope and no R^2)")
    if form == "power" and (a <= 0).any():
        # alpha = p1 x^p2 is positive for p1 > 0; a zero or negative rate has no logarithm to start from.
        raise ValueError(f"alpha must be > 0 for the power form, got {a[a <= 0][0]!r}")
    n = x.size
    t = stats.t.ppf(0.975, n - 2)
    if form in ("linear", "log"):
        u = x if form == "linear" else np.log(x)
        res = sm.OLS(a, np.column_stack([u, np.ones_like(u)])).fit()
        params, se = res.params, res.bse
    else:
        # Start from the log-log line, then refine on the original scale as Table 4 does.
        slope, intercept = np.polyfit(np.log(x), np.log(a), 1)
        params, cov = curve_fit(lambda xx, p1, p2: p1 * xx**p2, x, a, p0=[np.exp(intercept), slope])
        se = np.sqrt(np.diag(cov))
    fit = DraftPplFit(form, float(params[0]), float(params[1]), float(t * se[0]), float(t * se[1]), 0.0, 0.0, n)
    resid = a - fit.predict(x)
    sse = float(resid @ resid)
    sst = float(((a - a.mean()) ** 2).sum())
    return DraftPplFit(form, fit.p1, fit.p2, fit.p1_moe95, fit.p2_moe95, sse / n, 1.0 - sse / sst, n)


def tar_model(alpha, gamma, counts_bonus: bool = True):
    r"""Model token-acceptance rate at lookahead :math:`\gamma` (Eq. 12).

    With ``counts_bonus`` (the paper's Eq. 12): :math:`(1 - \alpha^{\gamma+1})/(1 - \alpha)`, tokens
    per iteration. Without: :math:`\alpha(1 - \alpha^{\gamma})/(1 - \alpha)`, the mean accepted
    drafts :math:`n` of Appendix B.1.

    Examples
    --------
    >>> round(tar_model(0.5, 3), 4), round(tar_model(0.5, 3, counts_bonus=False), 4)
    (1.875, 0.875)
    """
    from sdsl_lib.laws.speculation import expected_accepted_drafts, expected_tokens_per_iteration

    f = expected_tokens_per_iteration if counts_bonus else expected_accepted_drafts
    return f(alpha, gamma)


@dataclass(frozen=True)
class TarFit:
    """Result of :func:`alpha_from_tar` (Appendix B.2)."""

    alpha: float
    std_error: float
    ci95_lower: float
    ci95_upper: float
    residual_std: float
    n_points: int
    counts_bonus: bool


def alpha_from_tar(gammas, tar, counts_bonus: bool = True) -> TarFit:
    r"""Estimate :math:`\alpha` from token-acceptance rates at several lookaheads (Appendix B).

    Solves the over-determined system :math:`\mathrm{TAR}(\gamma_i) = b_i` by nonlinear least squares
    on :math:`\alpha \in (0, 1)`, then follows B.2: residuals :math:`r_i = E(\alpha,\gamma_i) - b_i`,
    Jacobian :math:`J_i = \partial r_i/\partial\alpha`, :math:`\sigma^2 = \sum r_i^2/(n_b - 1)`,
    :math:`\mathrm{Var}(\alpha) = \sigma^2 (J^\top J)^{-1}` and the 95% CI
    :math:`\alpha \pm 1.96\,\mathrm{Std}(\alpha)`.

    Parameters
    ----------
    gammas : array_like
        Lookaheads :math:`1 \le \gamma_i < \infty` (the paper uses nine; which ones is not stated).
    tar : array_like
        Observed rates :math:`b_i`: mean tokens per iteration (``counts_bonus=True``, Eq. 12), or
        mean accepted drafts per iteration (``counts_bonus=False``, App. B.1's :math:`n`).
    counts_bonus : bool
        Which convention ``tar`` follows. The paper fits Eq. 12 (bonus counted) but describes
        counting accepted drafts; state yours.

    Returns
    -------
    TarFit

    Notes
    -----
    The interval reflects evaluation noise only (as in the paper), not training randomness, and
    assumes normal residuals.

    Examples
    --------
    >>> g = np.arange(1, 10)
    >>> fit = alpha_from_tar(g, tar_model(0.7, g) + 0.001 * np.sin(g))
    >>> round(fit.alpha, 3), bool(fit.ci95_lower < 0.7 < fit.ci95_upper)
    (0.7, True)
    """
    g = check_range("gammas", as_array("gammas", gammas), 1.0, np.inf, high_open=True).ravel()
    b = as_array("tar", tar).ravel()
    if g.size != b.size:
        raise ValueError(f"gammas and tar must have equal lengths, got {g.size} and {b.size}")
    if g.size < 2:
        raise ValueError(f"alpha_from_tar needs at least 2 lookaheads (dof = n - 1), got {g.size}")
    offset = 1.0 if counts_bonus else 0.0
    check_range("tar", b, offset, np.inf)
    if (b > g + offset).any():
        raise ValueError(
            f"tar must lie in [{offset:g}, gamma + {offset:g}] for each gamma (the most one iteration can yield)"
        )

    def model(a):
        return -np.expm1((g + 1.0) * np.log(a)) / (1.0 - a) - (1.0 - offset)

    def jac(a):
        # d/da (1 - a^(g+1))/(1 - a) = [-(g+1) a^g (1 - a) + (1 - a^(g+1))] / (1 - a)^2
        return (-(g + 1.0) * a**g * (1.0 - a) + (1.0 - a ** (g + 1.0))) / (1.0 - a) ** 2

    lo, hi = 1e-9, 1.0 - 1e-9
    grid = np.linspace(0.01, 0.99, 99)
    start = grid[np.argmin([np.sum((model(a0) - b) ** 2) for a0 in grid])]
    res = least_squares(
        lambda p: model(p[0]) - b,
        [start],
        jac=lambda p: jac(p[0])[:, None],
        bounds=([lo], [hi]),
        xtol=1e-14,
        ftol=1e-14,
        gtol=1e-14,
    )
    a_hat = float(res.x[0])
    r = model(a_hat) - b
    J = jac(a_hat)
    dof = g.size - 1
    sigma2 = float(r @ r) / dof
    std = float(np.sqrt(sigma2 / float(J @ J)))
    z = stats.norm.ppf(0.975)
    return TarFit(a_hat, std, a_hat - z * std, a_hat + z * std, float(np.sqrt(sigma2)), int(g.size), counts_bonus)


def acceptance_from_probs(p, q):
    r"""Per-prefix acceptance probability :math:`\beta = \sum_v \min(p_v, q_v)` (Leviathan et al.).

    :math:`\beta = 1 - \mathrm{TV}(p, q)`: the probability that a token drawn from the draft's
    distribution ``q`` survives the rejection test against the target's ``p``. Average it over
    prefixes to get :math:`\alpha = \mathbb{E}[\beta]`.

    Parameters
    ----------
    p, q : array_like
        Next-token distributions of the target and the draft; probabilities along the last axis
        (the same vocabulary size, non-negative, each summing to 1 within 1e-4). The leading axes
        broadcast, so one target distribution can be scored against a batch of drafts.

    Returns
    -------
    float or ndarray
        :math:`\beta` for every (broadcast) leading index.

    References
    ----------
    Leviathan et al. (2023), arXiv:2211.17192, Definition 3.1 and Corollary 3.6.

    Examples
    --------
    >>> acceptance_from_probs([0.5, 0.5, 0.0], [0.25, 0.25, 0.5])
    0.5
    >>> acceptance_from_probs([0.5, 0.5, 0.0], [[0.25, 0.25, 0.5], [0.5, 0.5, 0.0]])
    array([0.5, 1. ])
    """
    pp = as_array("p", p)
    qq = as_array("q", q)
    if pp.ndim == 0 or qq.ndim == 0 or pp.shape[-1] != qq.shape[-1]:
        raise ValueError(
            f"p and q must have the same vocabulary size along their last axis, got shapes {pp.shape} and {qq.shape}"
        )
    try:
        np.broadcast_shapes(pp.shape, qq.shape)
    except ValueError as exc:
        raise ValueError(f"p and q must broadcast to a common shape, got {pp.shape} and {qq.shape}") from exc
    for name, arr in (("p", pp), ("q", qq)):
        check_range(name, arr, 0.0, 1.0)
        if not np.allclose(arr.sum(axis=-1), 1.0, atol=1e-4):
            raise ValueError(f"{name} must sum to 1 along its last axis (a probability distribution)")
    return scalar_or_array(np.minimum(pp, qq).sum(axis=-1))
