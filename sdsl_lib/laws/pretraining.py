r"""Chinchilla-form pre-training laws: evaluate them (Eq. 2, 7, 8) and fit them (Hoffmann approach 3).

SDSL feeds the Besiroglu et al. (2024) refit of Chinchilla into its acceptance plane to predict the
perplexities of drafts and targets that have not been trained yet.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import logsumexp

from sdsl_lib.laws._validate import (
    as_array,
    check_broadcast,
    check_finite,
    check_positive,
    check_result,
    scalar_or_array,
)
from sdsl_lib.laws.constants import BESIROGLU_2024, ChinchillaLaw

__all__ = ["loss", "perplexity", "fit_chinchilla", "ChinchillaFit"]


def loss(n_params, n_tokens, law: ChinchillaLaw = BESIROGLU_2024):
    r"""Pre-training cross-entropy in nats (Eq. 2, with the exponent signs of Eq. 7-8 corrected).

    .. math:: L(N, D) = E + \frac{A}{N^{\nu}} + \frac{B}{D^{\delta}}

    Parameters
    ----------
    n_params : array_like
        Model parameters :math:`N > 0` (a draft's :math:`N` or a target's :math:`M`).
    n_tokens : array_like
        Training tokens :math:`D > 0` (:math:`D` for a draft, :math:`D'` for a target).
    law : ChinchillaLaw
        Constants; default Besiroglu et al. (2024), as SDSL uses. The fields may be arrays that
        broadcast against the inputs (one law per row of the planner's draws, e.g. ``E`` of shape
        (draws, 1)); this is the one implementation of Eq. 2.

    Returns
    -------
    float or ndarray
        Loss in nats per token.

    Notes
    -----
    SDSL prints Eq. 7-8 as :math:`e^{1.8172 + 482.01/N^{-0.3478} + 2085.43/D^{-0.3658}}`: read
    literally, the loss would grow with model and data size. The signs are a typo; the positive
    exponents used here reproduce every row of SDSL's Table 5 (erratum E3 in ``data/paper/errata.csv``).

    References
    ----------
    Hoffmann et al. (2022), arXiv:2203.15556; Besiroglu et al. (2024), arXiv:2404.10102;
    SDSL Eq. 2, 7, 8.

    Examples
    --------
    >>> round(loss(70e9, 15e12), 4)
    1.9303
    """
    n = check_positive("n_params", as_array("n_params", n_params))
    d = check_positive("n_tokens", as_array("n_tokens", n_tokens))
    c = {k: check_finite(f"law.{k}", as_array(f"law.{k}", getattr(law, k))) for k in ("E", "A", "B", "nu", "delta")}
    check_broadcast(n_params=n, n_tokens=d, **{f"law.{k}": v for k, v in c.items()})
    with np.errstate(over="ignore"):
        out = c["E"] + c["A"] * n ** (-c["nu"]) + c["B"] * d ** (-c["delta"])
    return scalar_or_array(check_result("the loss", out, "n_params, n_tokens"))


#: ln of the largest float: a loss above it has no representable perplexity.
_LN_MAX = float(np.log(np.finfo(float).max))


def perplexity(n_params, n_tokens, law: ChinchillaLaw = BESIROGLU_2024, *, cap: float | None = None):
    r"""Perplexity :math:`x(N, D) = e^{L(N, D)}` (Eq. 7 for a draft, Eq. 8 for a target).

    Parameters
    ----------
    n_params, n_tokens, law :
        As in :func:`loss` (``law`` may hold arrays, one law per row).
    cap : float, optional
        Return ``min(e^L, cap)``, computed in log space so that it never overflows. Without it a
        loss above ln(1.8e308) = 709.8 nats (a model far below the law's range: a few parameters or
        tokens) raises ``ValueError`` instead of returning inf.

    Examples
    --------
    >>> round(perplexity(70e9, 15e12), 3)
    6.891
    >>> perplexity(10.0, 10.0, cap=1e300)
    1e+300
    """
    ln_x = np.asarray(loss(n_params, n_tokens, law))
    if cap is not None:
        ln_x = np.minimum(ln_x, np.log(cap))
    elif (ln_x > _LN_MAX).any():
        raise ValueError(
            f"n_params, n_tokens: the perplexity e^L overflows a float (L = {ln_x.max():.4g} nats > {_LN_MAX:.1f}); "
            "the law is far outside its fitted range here"
        )
    return scalar_or_array(np.exp(ln_x))


@dataclass(frozen=True)
class ChinchillaFit:
    """Result of :func:`fit_chinchilla`: the fitted law, the objective, and optional bootstrap CIs."""

    law: ChinchillaLaw
    objective: float
    n_points: int
    bootstrap: pd.DataFrame | None = None  # one row per parameter: estimate, ci95_lower, ci95_upper, std
    draws: pd.DataFrame | None = None  # one row per bootstrap draw

    def summary(self) -> pd.DataFrame:
        """Estimates (and bootstrap intervals when present) as a tidy table."""
        est = pd.DataFrame(
            {
                "parameter": ["E", "A", "B", "nu", "delta"],
                "estimate": [self.law.E, self.law.A, self.law.B, self.law.nu, self.law.delta],
            }
        )
        if self.bootstrap is None:
            return est
        return est.merge(self.bootstrap.drop(columns="estimate", errors="ignore"), on="parameter")


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative."""
    absr = np.abs(r)
    quad = absr <= delta
    value = np.where(quad, 0.5 * r**2, delta * (absr - 0.5 * delta))
    grad = np.where(quad, r, delta * np.sign(r))
    return value, grad


def _objective(theta, log_n, log_d, log_l, delta):
    # theta = (a, b, e, nu, delta_exp) with A = e^a, B = e^b, E = e^e (Hoffmann et al. approach 3):
    # log L_hat = LSE(a - nu log N, b - delta log D, e).
    a, b, e, nu, de = theta
    terms = np.stack([a - nu * log_n, b - de * log_d, np.full_like(log_n, e)])
    lse = logsumexp(terms, axis=0)
    r = lse - log_l
    value, dr = _huber(r, delta)
    w = np.exp(terms - lse)  # softmax weights: d lse / d term
    grad = np.array(
        [
            np.sum(dr * w[0]),
            np.sum(dr * w[1]),
            np.sum(dr * w[2]),
            np.sum(dr * w[0] * -log_n),
            np.sum(dr * w[1] * -log_d),
        ]
    )
    return value.sum(), grad


def _fit_once(log_n, log_d, log_l, delta, starts):
    best = None
    for x0 in starts:
        res = minimize(_objective, x0, args=(log_n, log_d, log_l, delta), jac=True, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    return best


def fit_chinchilla(
    n_params,
    n_tokens,
    loss_nats,
    *,
    huber_delta: float = 1e-3,
    grid: dict | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    source: str = "fitted with sdsl_lib.laws.pretraining.fit_chinchilla",
) -> ChinchillaFit:
    r"""Fit :math:`L(N, D) = E + A/N^{\nu} + B/D^{\delta}` with Hoffmann et al.'s approach 3.

    Minimises :math:`\sum_i \mathrm{Huber}_\delta\big(\mathrm{LSE}(a - \nu\log N_i, b - \delta\log D_i, e)
    - \log L_i\big)` over :math:`(a, b, e, \nu, \delta)` with L-BFGS from every point of a grid of
    initialisations, keeping the best; :math:`A = e^a, B = e^b, E = e^e`.

    Parameters
    ----------
    n_params, n_tokens, loss_nats : array_like
        One entry per observed (model size, training tokens, held-out loss in nats).
    huber_delta : float
        Huber threshold on log-loss residuals (Hoffmann et al.: 1e-3).
    grid : dict, optional
        Initial values per parameter, keys ``a, b, e, nu, delta``; the default is a 3x3x3x3x3 grid
        spanning Hoffmann et al.'s ranges.
    bootstrap : int
        Number of resampling draws (pairs bootstrap over observations) for 95% percentile
        intervals; 0 for none. Each draw restarts from the point estimate and its neighbours.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    ChinchillaFit

    References
    ----------
    Hoffmann et al. (2022), arXiv:2203.15556, §3.3 and Appendix D.2; Besiroglu et al. (2024).

    Examples
    --------
    >>> from sdsl_lib.laws.constants import HOFFMANN_2022
    >>> n, d = np.meshgrid(np.logspace(7, 10, 6), np.logspace(9, 12, 6))
    >>> fit = fit_chinchilla(n.ravel(), d.ravel(), loss(n.ravel(), d.ravel(), HOFFMANN_2022))
    >>> round(fit.law.E, 3), round(fit.law.nu, 3), round(fit.law.delta, 3)
    (1.69, 0.34, 0.28)
    """
    n = check_positive("n_params", as_array("n_params", n_params)).ravel()
    d = check_positive("n_tokens", as_array("n_tokens", n_tokens)).ravel()
    l = check_positive("loss_nats", as_array("loss_nats", loss_nats)).ravel()
    if not (n.size == d.size == l.size):
        raise ValueError(
            f"n_params, n_tokens and loss_nats must have the same length, got {n.size}, {d.size}, {l.size}"
        )
    if n.size < 5:
        raise ValueError(f"fit_chinchilla needs at least 5 observations (5 parameters), got {n.size}")
    if not (np.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(f"huber_delta must be a finite number > 0, got {huber_delta}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise ValueError(f"bootstrap must be an integer >= 0, got {bootstrap!r}")
    grid = grid or {
        "a": [0.0, 5.0, 10.0],
        "b": [0.0, 5.0, 10.0],
        "e": [-1.0, 0.0, 1.0],
        "nu": [0.1, 0.4, 1.0],
        "delta": [0.1, 0.4, 1.0],
    }
    keys = ("a", "b", "e", "nu", "delta")
    if set(grid) != set(keys) or any(len(np.atleast_1d(grid[k])) == 0 for k in keys):
        raise ValueError(
            f"grid must give a non-empty list of initial values for exactly the keys {keys}, got {sorted(grid)}"
        )
    for k in keys:
        check_finite(f"grid[{k!r}]", as_array(f"grid[{k!r}]", grid[k]))
    starts = [np.array(p, dtype=float) for p in itertools.product(*(np.atleast_1d(grid[k]) for k in keys))]
    log_n, log_d, log_l = np.log(n), np.log(d), np.log(l)
    best = _fit_once(log_n, log_d, log_l, huber_delta, starts)

    def to_law(theta) -> ChinchillaLaw:
        a, b, e, nu, de = theta
        return ChinchillaLaw(
            E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), nu=float(nu), delta=float(de), source=source
        )

    law = to_law(best.x)
    boot_df = draws_df = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        local = [best.x] + [best.x + rng.normal(0, 0.5, 5) * np.array([1, 1, 0.2, 0.05, 0.05]) for _ in range(3)]
        rows = []
        for _ in range(bootstrap):
            idx = rng.integers(0, n.size, n.size)
            res = _fit_once(log_n[idx], log_d[idx], log_l[idx], huber_delta, local)
            lw = to_law(res.x)
            rows.append({"E": lw.E, "A": lw.A, "B": lw.B, "nu": lw.nu, "delta": lw.delta})
        draws_df = pd.DataFrame(rows)
        boot_df = pd.DataFrame(
            {
                "parameter": list(draws_df.columns),
                "std": draws_df.std(ddof=1).to_numpy(),
                "ci95_lower": draws_df.quantile(0.025).to_numpy(),
                "ci95_upper": draws_df.quantile(0.975).to_numpy(),
            }
        )
    return ChinchillaFit(law=law, objective=float(best.fun), n_points=int(n.size), bootstrap=boot_df, draws=draws_df)
