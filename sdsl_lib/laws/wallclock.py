r"""Wall-clock forms of SDSL's cost model: measured step-cost ratio, verification cost, fixed step cost.

SDSL's Eq. 1 and Eq. 13 charge a draft step :math:`c = N/M` target steps and verification one target
step. Measured on real hardware both are off: a decode step costs :math:`t(N) = t_0 + kN` (a fixed
per-step cost :math:`t_0` that batch 1 never amortises), and scoring :math:`\gamma + 1` tokens in one
pass costs :math:`v(\gamma + 1) \ge 1` target steps. This module holds those extensions, each written
through the paper's own law (:func:`sdsl_lib.laws.speculation.speedup`,
:func:`sdsl_lib.laws.speculation.optimal_lookahead`) so that no equation is computed twice:

``wallclock_speedup``            Eq. 1 with a verification pass costing :math:`v` target steps
``optimal_lookahead_cost_ratio`` Eq. 13 with a measured cost ratio :math:`c` in place of :math:`N/M`
``affine_step_time``             :math:`t(N) = t_0 + kN`, the decode step of a model with N parameters
``step_cost_ratio``              :math:`c(N) = t(N) / t_M`, the cost ratio that model implies
``best_integer_lookahead``       the integer :math:`\gamma` maximising ``wallclock_speedup``

numpy only, no I/O. Symbols as in :mod:`sdsl_lib.laws.speculation`.
"""

from __future__ import annotations

import numpy as np

from sdsl_lib.laws._validate import as_array, check_finite, check_positive, check_range, scalar_or_array
from sdsl_lib.laws.speculation import optimal_lookahead, speedup

__all__ = [
    "wallclock_speedup",
    "optimal_lookahead_cost_ratio",
    "affine_step_time",
    "step_cost_ratio",
    "best_integer_lookahead",
]


def _verify_cost(v) -> np.ndarray:
    # A verification pass scores at least the one token a plain decode step scores, so v >= 1 in
    # principle; measured medians can dip a hair below 1 through timer noise, hence only v > 0.
    return check_positive("v", as_array("v", v))


def wallclock_speedup(alpha, gamma, c, v=1.0):
    r"""Eq. 1 with a verification pass that costs :math:`v` target steps instead of one.

    .. math:: S = \frac{1 - \alpha^{\gamma+1}}{(1 - \alpha)(\gamma c + v)}
              = \frac{1}{v}\, S_{\text{Eq. 1}}\!\left(\alpha, \gamma, \frac{c}{v}\right)

    Parameters
    ----------
    alpha : array_like
        Acceptance rate in [0, 1].
    gamma : array_like
        Lookahead, finite and >= 0.
    c : array_like
        Cost ratio (one draft step over one target step), finite and >= 0.
    v : array_like
        Cost of scoring :math:`\gamma + 1` tokens in one target pass, in target steps (> 0);
        ``v = 1`` is Eq. 1.

    Returns
    -------
    float or ndarray
        The speed-up over the target decoding alone.

    Examples
    --------
    >>> round(wallclock_speedup(0.8, 4, 0.05), 4) == round(speedup(0.8, 4, 0.05), 4)
    True
    >>> round(wallclock_speedup(0.8, 4, 0.05, 1.5), 4)
    1.9774
    """
    vv = _verify_cost(v)
    cc = check_range("c", as_array("c", c), 0.0, np.inf, high_open=True)
    return scalar_or_array(np.asarray(speedup(alpha, gamma, cc / vv)) / vv)


def optimal_lookahead_cost_ratio(alpha, c):
    r"""Eq. 13 with a measured cost ratio :math:`c` in place of :math:`N/M`.

    Eq. 3 depends on the sizes only through :math:`c = N/M`, so its maximiser over real
    :math:`\gamma \ge 0` is Eq. 13 evaluated at :math:`(N, M) = (c, 1)`:

    .. math:: \gamma^* = \frac{-\ln\alpha + c\, W_{-1}\!\left(-\alpha^{1/c-1}/e\right) + c}{c \ln\alpha}

    Parameters
    ----------
    alpha : array_like
        Acceptance rate in [0, 1].
    c : array_like
        Cost ratio, finite and > 0. For :math:`c \ge 1` (a draft step as slow as a target step)
        drafting never pays and the optimum is 0.

    Returns
    -------
    float or ndarray
        :math:`\gamma^* \ge 0` (``inf`` at :math:`\alpha = 1`).

    Examples
    --------
    >>> from sdsl_lib.laws.speculation import optimal_lookahead
    >>> n, m = 117313808.6, 12853473280
    >>> round(optimal_lookahead_cost_ratio(0.6479, n / m), 8) == round(optimal_lookahead(0.6479, n, m), 8)
    True
    >>> optimal_lookahead_cost_ratio(0.9, 1.5)
    0.0
    """
    a = check_range("alpha", as_array("alpha", alpha), 0.0, 1.0)
    cc = check_positive("c", as_array("c", c))
    a, cc = np.broadcast_arrays(a, cc)
    out = np.zeros(a.shape)
    pays = cc < 1.0
    if pays.any():
        out[pays] = np.asarray(optimal_lookahead(a[pays], cc[pays], 1.0))
    return scalar_or_array(out)


def affine_step_time(n_params, t0_s, k_s_per_param):
    r"""Decode-step time of a model with :math:`N` parameters: :math:`t(N) = t_0 + kN`.

    SDSL's :math:`c = N/M` is the special case :math:`t_0 = 0`.

    Parameters
    ----------
    n_params : array_like
        Parameter count N > 0.
    t0_s : float
        Fixed per-step cost (seconds), finite.
    k_s_per_param : float
        Seconds per parameter per step, finite.

    Returns
    -------
    float or ndarray
        Seconds per decode step.

    Examples
    --------
    >>> round(affine_step_time(1e6, 1e-3, 2e-10), 12)
    0.0012
    """
    n = check_positive("n_params", as_array("n_params", n_params))
    t0 = check_finite("t0_s", as_array("t0_s", t0_s))
    k = check_finite("k_s_per_param", as_array("k_s_per_param", k_s_per_param))
    return scalar_or_array(t0 + k * n)


def step_cost_ratio(n_draft, t0_s, k_s_per_param, t_target_s):
    r"""Cost ratio of a draft under the affine step time: :math:`c(N) = (t_0 + kN) / t_M`.

    Clipped at 0 from below: an affine fit with a negative :math:`t_0` can extrapolate below zero for
    tiny drafts, and no step takes negative time.

    Parameters
    ----------
    n_draft : array_like
        Draft parameters N > 0.
    t0_s, k_s_per_param : float
        The affine step-time model (:func:`affine_step_time`).
    t_target_s : float
        The target's measured decode step (seconds), > 0.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> round(step_cost_ratio(1e6, 1e-3, 2e-10, 0.004), 6)
    0.3
    """
    t_m = check_positive("t_target_s", as_array("t_target_s", t_target_s))
    return scalar_or_array(np.maximum(np.asarray(affine_step_time(n_draft, t0_s, k_s_per_param)) / t_m, 0.0))


def best_integer_lookahead(alpha, c, gammas, v):
    r"""The integer lookahead maximising :func:`wallclock_speedup`, row by row.

    Parameters
    ----------
    alpha, c : array_like, shape (n,)
        Acceptance rate and cost ratio per row (broadcast together).
    gammas : array_like, shape (k,)
        Candidate lookaheads (integers >= 1, e.g. those that were timed).
    v : array_like, shape (k,)
        Verification cost :math:`v(\gamma + 1)` of each candidate.

    Returns
    -------
    gamma, speedup : ndarray, shape (n,)
        The best candidate and its speed-up per row (first candidate on ties).

    Examples
    --------
    >>> g, s = best_integer_lookahead([0.9, 0.2], [0.05, 0.05], [1, 2, 3, 4], [1.0, 1.0, 1.0, 1.0])
    >>> g.tolist()
    [4.0, 1.0]
    """
    a, cc = np.broadcast_arrays(np.atleast_1d(as_array("alpha", alpha)), np.atleast_1d(as_array("c", c)))
    g = np.atleast_1d(as_array("gammas", gammas)).ravel()
    vv = np.atleast_1d(_verify_cost(v)).ravel()
    if g.size == 0 or g.size != vv.size:
        raise ValueError(f"gammas and v must be non-empty and of one length, got {g.size} and {vv.size}")
    check_range("gammas", g, 1.0, np.inf, high_open=True)
    if not np.array_equal(g, np.round(g)):
        raise ValueError(f"gammas must be integers, got {g[g != np.round(g)][0]!r}")
    s = np.asarray(wallclock_speedup(a.ravel()[:, None], g[None, :], cc.ravel()[:, None], vv[None, :]))
    j = np.argmax(s, axis=1)
    return g[j], s[np.arange(s.shape[0]), j]
