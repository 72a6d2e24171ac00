r"""Speculative decoding from first principles: Leviathan's laws and SDSL's optimal lookahead.

Symbols follow the paper: :math:`\alpha` the expected acceptance rate, :math:`\gamma` the lookahead
(draft tokens per iteration), :math:`c` the cost ratio (draft step / target step), :math:`N` the
draft's and :math:`M` the target's parameter count.

The library's equation numbers are those of SDSL (arXiv:2603.11053).
"""

from __future__ import annotations

import numpy as np

from sdsl_lib.laws._validate import (
    as_array,
    check_broadcast,
    check_draft_smaller,
    check_positive,
    check_range,
    check_result,
    scalar_or_array,
)

__all__ = [
    "expected_tokens_per_iteration",
    "expected_accepted_drafts",
    "speedup",
    "throughput_per_flop",
    "optimal_lookahead",
    "optimal_throughput",
    "speculation_pays",
]


def _alpha(alpha, *, open_interval: bool = False) -> np.ndarray:
    a = as_array("alpha", alpha)
    return check_range("alpha", a, 0.0, 1.0, low_open=open_interval, high_open=open_interval)


def _gamma(gamma, *, finite: bool = False) -> np.ndarray:
    # Eq. 12 has a finite limit as gamma -> inf (1 / (1 - alpha)), so it accepts inf; the cost
    # models (Eq. 1, Eq. 3) would form inf * 0 or inf / inf there, so they need a finite gamma.
    g = as_array("gamma", gamma)
    return check_range("gamma", g, 0.0, np.inf, high_open=finite)


def _sizes(n_draft, m_target) -> tuple[np.ndarray, np.ndarray]:
    n = check_positive("n_draft", as_array("n_draft", n_draft))
    m = check_positive("m_target", as_array("m_target", m_target))
    check_draft_smaller(n, m)
    return n, m


def _tokens(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    # (1 - a^(g+1)) / (1 - a) written with expm1 so it stays accurate as a -> 1; exact limits at the
    # ends: a = 1 gives g + 1 (every draft accepted) and a = 0 gives 1 (only the target's token).
    a, g = np.broadcast_arrays(a, g)
    out = np.empty(a.shape)
    one = a == 1.0
    zero = a == 0.0
    mid = ~(one | zero)
    am, gm = a[mid], g[mid]
    out[mid] = -np.expm1((gm + 1.0) * np.log(am)) / (1.0 - am)
    out[one] = g[one] + 1.0
    out[zero | (g == 0.0)] = 1.0  # gamma = 0: exactly one (target) token, whatever alpha
    return out


def expected_tokens_per_iteration(alpha, gamma):
    r"""Expected tokens produced per speculative iteration, bonus token included (Eq. 12).

    .. math:: \mathbb{E}[\#\text{tokens}] = \frac{1 - \alpha^{\gamma + 1}}{1 - \alpha}

    This is Leviathan et al.'s call-reduction factor and the paper's TAR(:math:`\gamma`): the
    accepted draft tokens plus the one token the target always contributes (the correction after a
    rejection, or the bonus token after a full acceptance).

    Parameters
    ----------
    alpha : array_like
        Expected acceptance rate :math:`\alpha \in [0, 1]`.
    gamma : array_like
        Lookahead :math:`\gamma \ge 0` (real values allowed: a randomised lookahead; ``inf`` gives the
        limit :math:`1/(1-\alpha)`).

    Returns
    -------
    float or ndarray
        Tokens per iteration, in :math:`[1, \gamma + 1]`.

    Notes
    -----
    Limits are returned exactly: :math:`\alpha = 1` gives :math:`\gamma + 1`, :math:`\alpha = 0`
    and :math:`\gamma = 0` give 1.

    References
    ----------
    Leviathan, Kalman & Matias (2023), arXiv:2211.17192, Eq. 1; SDSL Appendix B, Eq. 12.

    Examples
    --------
    >>> round(expected_tokens_per_iteration(0.8, 4), 4)
    3.3616
    >>> expected_tokens_per_iteration(1.0, 4)
    5.0
    """
    a, g = _alpha(alpha), _gamma(gamma)
    check_broadcast(alpha=a, gamma=g)
    return scalar_or_array(_tokens(a, g))


def expected_accepted_drafts(alpha, gamma):
    r"""Expected accepted draft tokens per iteration, bonus token excluded (App. B's mean of n).

    .. math:: \mathbb{E}[n] = \frac{\alpha (1 - \alpha^{\gamma})}{1 - \alpha}
              = \frac{1 - \alpha^{\gamma + 1}}{1 - \alpha} - 1

    Parameters
    ----------
    alpha : array_like
        Expected acceptance rate :math:`\alpha \in [0, 1]`.
    gamma : array_like
        Lookahead :math:`\gamma \ge 0` (``inf`` allowed: the limit :math:`\alpha/(1-\alpha)`).

    Returns
    -------
    float or ndarray
        Accepted drafts per iteration, in :math:`[0, \gamma]`.

    Notes
    -----
    Appendix B of SDSL counts :math:`n` without the bonus token but fits Eq. 12, which includes
    it; :func:`sdsl_lib.laws.acceptance.alpha_from_tar` takes either convention explicitly.

    Examples
    --------
    >>> round(expected_accepted_drafts(0.8, 4), 4)
    2.3616
    """
    a, g = _alpha(alpha), _gamma(gamma)
    check_broadcast(alpha=a, gamma=g)
    return scalar_or_array(_tokens(a, g) - 1.0)


def speedup(alpha, gamma, c):
    r"""Wall-clock speed-up of speculative decoding over the target alone (Eq. 1).

    .. math:: S = \frac{1 - \alpha^{\gamma + 1}}{(1 - \alpha)(\gamma c + 1)}

    Parameters
    ----------
    alpha : array_like
        Expected acceptance rate :math:`\alpha \in [0, 1]`.
    gamma : array_like
        Lookahead :math:`0 \le \gamma < \infty`.
    c : array_like
        Cost ratio :math:`0 \le c < \infty`: time of one draft step over time of one target step
        (SDSL sets :math:`c = N/M`).

    Returns
    -------
    float or ndarray
        Speed-up factor; above 1 when speculation pays.

    Notes
    -----
    Assumes verifying :math:`\gamma + 1` tokens costs one target step (memory-bound regime).
    :math:`\gamma = 0` gives exactly 1.

    References
    ----------
    Leviathan et al. (2023), arXiv:2211.17192, Theorem 3.8; SDSL Eq. 1.

    Examples
    --------
    >>> round(speedup(0.8, 4, 0.05), 4)
    2.8013
    >>> speedup(0.5, 0, 0.1)
    1.0
    """
    a, g = _alpha(alpha), _gamma(gamma, finite=True)
    cc = check_range("c", as_array("c", c), 0.0, np.inf, high_open=True)
    check_broadcast(alpha=a, gamma=g, c=cc)
    with np.errstate(over="ignore"):
        cost = check_result("the iteration cost gamma c + 1", g * cc + 1.0, "gamma, c")
    return scalar_or_array(_tokens(a, g) / cost)


def throughput_per_flop(alpha, gamma, n_draft, m_target):
    r"""Throughput in tokens per inference FLOP at lookahead :math:`\gamma` (Eq. 3).

    .. math:: \mathcal{T} = \frac{1 - \alpha^{\gamma + 1}}{2 (M + \gamma N)(1 - \alpha)}

    One iteration costs :math:`\gamma` draft passes (:math:`2N` FLOPs each) and one target pass over
    the guesses (:math:`2M`).

    Parameters
    ----------
    alpha : array_like
        Expected acceptance rate :math:`\alpha \in [0, 1]`.
    gamma : array_like
        Lookahead :math:`0 \le \gamma < \infty`.
    n_draft : array_like
        Draft parameters :math:`N > 0`.
    m_target : array_like
        Target parameters :math:`M > N`.

    Returns
    -------
    float or ndarray
        Tokens per FLOP (up to an architecture constant). Target-only decoding gives
        :math:`1/(2M)`.

    Notes
    -----
    The target's verification of :math:`\gamma + 1` positions is charged :math:`2M`, not
    :math:`2M(\gamma + 1)`: the "FLOP" is really a sequential-pass cost, valid in the memory-bound,
    small-batch regime. SDSL does not discuss this.

    Examples
    --------
    >>> f"{throughput_per_flop(0.8, 4, 1e8, 1e10):.4e}"
    '1.6162e-10'
    """
    a, g = _alpha(alpha), _gamma(gamma, finite=True)
    n, m = _sizes(n_draft, m_target)
    check_broadcast(alpha=a, gamma=g, n_draft=n, m_target=m)
    with np.errstate(over="ignore"):
        flops = check_result("the FLOPs per iteration 2 (M + gamma N)", 2.0 * (m + g * n), "gamma, n_draft, m_target")
    return scalar_or_array(_tokens(a, g) / flops)


def _neg_w_m1_of_neg_exp(k: np.ndarray) -> np.ndarray:
    r"""Return :math:`s = -W_{-1}(-e^{-K})` for :math:`K \ge 1`: the root :math:`s \ge 1` of
    :math:`s - \ln s = K` (see :func:`_w_excess`, which returns :math:`s - 1`)."""
    return 1.0 + _w_excess(k - 1.0)


def _w_excess(eps: np.ndarray) -> np.ndarray:
    r"""Return :math:`u = s - 1` where :math:`s = -W_{-1}(-e^{-K})`, given :math:`\varepsilon = K - 1
    \ge 0`: the root :math:`s \ge 1` of :math:`s - \ln s = K`. Taking :math:`\varepsilon` and
    returning :math:`u` keeps their digits next to the branch point (:math:`\alpha \to 1`), where
    :math:`K` itself would round :math:`\varepsilon` to a few digits.

    ``scipy.special.lambertw`` gives the same values (the tests check it to 1e-12 on
    :math:`K \in [1 + 10^{-6}, 700]`), but it works in complex arithmetic, is the bottleneck of the
    Table 7 mesh (about 0.3 us per point), and fails at both ends of the range this project needs:
    its argument :math:`-e^{-K}` underflows for tiny drafts (:math:`\alpha^{M/N}` below 1e-308) and
    loses digits next to the branch point :math:`K \to 1` (:math:`\alpha \to 1`). So this solves
    for :math:`u = s - 1` in real arithmetic: :math:`u - \ln(1 + u) = K - 1`, starting from the
    branch-point series of :math:`W_{-1}` (small :math:`K - 1`) or its asymptotic expansion
    :math:`s \approx K + \ln K + \ln K / K` (large), then three Halley steps on
    :math:`u - \ln(1+u) - \varepsilon` (evaluated by :func:`_u_minus_log1p`, which keeps its digits
    for tiny :math:`u`).

    Accuracy (checked against mpmath at 60+ digits in ``tests/laws/test_contract.py``): relative error
    of :math:`u` below 1e-14 for :math:`\varepsilon \in [10^{-300}, 10^{3}]`, i.e. also next to the
    branch point, and of :math:`s = 1 + u` below 1e-15.
    """
    u = np.empty_like(eps)  # eps = K - 1 is the distance from the branch point
    near = eps < 2.0
    # Series: -W_{-1}(z) = 1 + p + p^2/3 + 11 p^3/72 + 43 p^4/540 + ..., p = sqrt(2 (1 + e z)),
    # and 1 + e z = 1 - e^{-eps} for z = -e^{-K}.
    p = np.sqrt(-2.0 * np.expm1(-eps[near]))
    u[near] = p * (1.0 + p * (1.0 / 3.0 + p * (11.0 / 72.0 + p * (43.0 / 540.0))))
    kf = 1.0 + eps[~near]
    lk = np.log(kf)
    u[~near] = kf + lk + lk / kf - 1.0
    moving = eps > 0.0  # eps = 0 is exactly the branch point, u = 0
    for _ in range(3):
        v = 1.0 + u
        g = _u_minus_log1p(u) - eps  # g(u), with g' = u / v and g'' = 1 / v^2
        g1 = np.where(moving, u / v, 1.0)
        step = 2.0 * g * g1 / (2.0 * g1 * g1 - g / (v * v))
        u = np.where(moving, u - step, 0.0)
    return u


def _u_minus_log1p(u: np.ndarray) -> np.ndarray:
    r""":math:`u - \ln(1 + u)` to full relative precision, also for tiny :math:`u`.

    The difference of two nearly equal numbers loses all but :math:`u` of its digits for small
    :math:`u` (it is :math:`u^2/2 + \dots`); below 0.1 the alternating series
    :math:`\sum_{k \ge 2} (-1)^k u^k / k` (terms to :math:`k = 24`, truncation below 1e-18 relative) is used instead.
    """
    small = np.abs(u) < 0.1
    us = np.where(small, u, 0.0)
    series = np.zeros_like(us)
    for k in range(24, 1, -1):  # Horner in u: u^2 (1/2 - u (1/3 - u (1/4 - ...)))
        series = 1.0 / k - us * series
    series = series * us * us
    with np.errstate(invalid="ignore"):
        direct = u - np.log1p(u)
    return np.where(small, series, direct)


def _lookahead_terms(a: np.ndarray, n: np.ndarray, m: np.ndarray):
    """Shared core of Eq. 13 and Eq. 4 for alpha strictly inside (0, 1)."""
    ln_a = np.log(a)
    ratio = m / n
    # s = -W_{-1}(-alpha^(M/N - 1) / e), computed from K = 1 - (M/N - 1) ln(alpha) so that
    # alpha^(M/N - 1) never has to be formed (it underflows for small drafts).
    u = _w_excess(-(ratio - 1.0) * ln_a)  # u = s - 1, from eps = K - 1 = -(M/N - 1) ln(alpha)
    # Eq. 13 with W = -s is gamma* = (1 - s) / ln(alpha) - M/N. Substituting s - 1 = ln s
    # - (M/N - 1) ln(alpha) (the equation s solves) cancels M/N exactly: gamma* = ln(s) / (-ln alpha) - 1,
    # i.e. alpha^(gamma* + 1) = 1/s. The printed form subtracts two numbers of size M/N and loses
    # log10(M/N) digits (all of them for N = 1, M = 1e12); this form loses none.
    gamma_star = np.log1p(u) / -ln_a - 1.0
    throughput = -ln_a / (2.0 * n * (1.0 - a) * (1.0 + u))  # Eq. 4 with W = -s
    return gamma_star, throughput


def speculation_pays(alpha, n_draft, m_target):
    r"""Whether drafting beats the target alone in the continuous-:math:`\gamma` model of Eq. 3.

    True iff :math:`\partial \mathcal{T} / \partial \gamma > 0` at :math:`\gamma = 0`, i.e.

    .. math:: \frac{M}{N}\,(-\alpha \ln \alpha) > 1 - \alpha ,

    which is exactly when Eq. 13 is positive. Compare Leviathan's condition :math:`\alpha > c`
    (:math:`c = N/M`), under which the integer lookahead :math:`\gamma = 1` beats :math:`\gamma = 0`.
    The continuous condition is weaker (:math:`-\alpha\ln\alpha/(1-\alpha) > \alpha` for
    :math:`\alpha < 1`) because :math:`\alpha^{\gamma}` falls steeply near :math:`\gamma = 0`: a
    lookahead randomised between 0 and 1 interpolates linearly and gains less, so the continuous
    relaxation flatters small lookaheads.

    Examples
    --------
    >>> bool(speculation_pays(0.6, 1e8, 1e10)), bool(speculation_pays(0.005, 1e8, 1e10))
    (True, True)
    >>> bool(speculation_pays(0.001, 1e8, 1e10))
    False
    """
    a = _alpha(alpha)
    n, m = _sizes(n_draft, m_target)
    check_broadcast(alpha=a, n_draft=n, m_target=m)
    inner = (a > 0.0) & (a < 1.0)
    safe = np.where(inner, a, 0.5)
    out = np.where(inner, (m / n) * (-safe * np.log(safe)) > 1.0 - safe, a == 1.0)
    return out.item() if out.ndim == 0 else out


def _optimum(alpha, n_draft, m_target):
    """(gamma*, T*) of Eq. 13 and Eq. 4, validated; the one implementation both public laws call."""
    a = _alpha(alpha)
    n, m = _sizes(n_draft, m_target)
    check_broadcast(alpha=a, n_draft=n, m_target=m)
    a, n, m = np.broadcast_arrays(a, n, m)
    with np.errstate(over="ignore", divide="ignore"):
        gamma_star, throughput = _optimum_unchecked(a, n, m)
    check_result("the optimal throughput", throughput, "alpha, n_draft, m_target", positive=True)
    check_result("the optimal lookahead", gamma_star, "alpha, n_draft, m_target", allow_inf=a == 1.0)
    return gamma_star, throughput


def _optimum_unchecked(a, n, m):
    """Eq. 13 and Eq. 4 on already validated, broadcast arrays (the mesh's inner loop calls this)."""
    gamma_star = np.zeros(a.shape)
    throughput = 1.0 / (2.0 * m)  # gamma = 0: the target alone
    inner = (a > 0.0) & (a < 1.0)
    g_in, t_in = _lookahead_terms(a[inner], n[inner], m[inner])
    # Eq. 13 is the stationary point of Eq. 3, which is unimodal in gamma. A negative stationary
    # point means Eq. 3 decreases on gamma >= 0: drafting does not pay, and the optimum is gamma = 0.
    pays = g_in > 0.0
    gamma_star[inner] = np.where(pays, g_in, 0.0)
    throughput = np.array(throughput, dtype=float)
    throughput[inner] = np.where(pays, t_in, throughput[inner])
    # alpha = 1: every draft is accepted, gamma* -> infinity and T* -> 1 / (2N).
    one = a == 1.0
    gamma_star[one] = np.inf
    throughput[one] = 1.0 / (2.0 * n[one])
    return gamma_star, throughput


def optimal_lookahead(alpha, n_draft, m_target):
    r"""Throughput-optimal (continuous) lookahead :math:`\gamma^*` (Eq. 13, the :math:`W_{-1}` branch).

    .. math:: \gamma^* = \frac{-M \ln\alpha + N\, W_{-1}\!\left(-\alpha^{M/N - 1}/e\right) + N}{N \ln\alpha}

    Parameters
    ----------
    alpha : array_like
        Expected acceptance rate :math:`\alpha \in [0, 1]`.
    n_draft : array_like
        Draft parameters :math:`N > 0`.
    m_target : array_like
        Target parameters :math:`M > N`.

    Returns
    -------
    float or ndarray
        :math:`\gamma^* \ge 0`, the maximiser of Eq. 3 over real :math:`\gamma \ge 0`.

    Notes
    -----
    * Branch: setting :math:`\partial\mathcal{T}/\partial\gamma = 0` gives
      :math:`s e^{-s} = \alpha^{M/N-1}/e` with :math:`s = 1 - (M/N + \gamma)\ln\alpha > 1`, so
      :math:`-s = W(-\alpha^{M/N-1}/e) \le -1` selects :math:`W_{-1}`; :math:`W_0` would give
      :math:`\gamma < -M/N`, which is infeasible.
    * Deviation from the paper as printed: Eq. 13 goes negative when drafting does not pay
      (:func:`speculation_pays` is false); the optimum over :math:`\gamma \ge 0` is then 0, which is
      what this returns.
    * Limits: :math:`\alpha = 0` gives 0; :math:`\alpha = 1` gives ``inf`` (draft forever).
    * Numerics: computed without forming :math:`\alpha^{M/N-1}`, which underflows for small drafts,
      and as the equivalent :math:`\gamma^* = \ln s / (-\ln\alpha) - 1` with
      :math:`s = -W_{-1}(\cdot)`, which avoids the cancellation of two terms of size :math:`M/N` in
      the printed form.

    References
    ----------
    SDSL Appendix C, Eq. 13.

    Examples
    --------
    >>> round(optimal_lookahead(0.6479, 117313808.6, 12853473280), 2)   # Table 5, OPT-13B
    8.11
    """
    return scalar_or_array(_optimum(alpha, n_draft, m_target)[0])


def optimal_throughput(alpha, n_draft, m_target):
    r"""Tokens per FLOP at the optimal lookahead (Eq. 4).

    .. math:: \mathcal{T}^* = \frac{-\ln\alpha}{2N(\alpha - 1)\, W_{-1}\!\left(-\alpha^{M/N-1}/e\right)}

    Parameters
    ----------
    alpha : array_like
        Expected acceptance rate :math:`\alpha \in [0, 1]`.
    n_draft : array_like
        Draft parameters :math:`N > 0`.
    m_target : array_like
        Target parameters :math:`M > N`.

    Returns
    -------
    float or ndarray
        :math:`\max_{\gamma \ge 0} \mathcal{T}(\gamma)`, tokens per FLOP.

    Notes
    -----
    Equals Eq. 3 at :func:`optimal_lookahead`. Where drafting does not pay this is the target-only
    rate :math:`1/(2M)`; at :math:`\alpha = 1` it is the limit :math:`1/(2N)`.

    References
    ----------
    SDSL §3.2, Eq. 4, derived in Appendix C.

    Examples
    --------
    >>> f"{optimal_throughput(0.6479, 117313808.6, 12853473280):.4e}"   # Table 5: 1.009e-10
    '1.0089e-10'
    """
    return scalar_or_array(_optimum(alpha, n_draft, m_target)[1])
