r"""Simulated speculative-decoding runs with a known acceptance rate, to test estimators of it.

Appendix B of SDSL estimates :math:`\alpha` from token-acceptance rates measured at several
lookaheads. To check that estimator (and its Appendix B.2 confidence interval) we need runs whose
true :math:`\alpha` is known. Under the i.i.d. model behind Leviathan et al.'s Eq. 1 each drafted
token is accepted independently with probability :math:`\alpha`, and an iteration stops drafting at
its first rejection, so the accepted count of one iteration is

.. math:: n = \min\{\, i - 1 : 1 \le i \le \gamma,\ r_i > \alpha \,\} \cup \{\gamma\},
          \qquad r_i \sim U(0, 1)\ \text{i.i.d.},

the Appendix B.1 rule with :math:`p_i(x)/q_i(x)` replaced by its average :math:`\alpha`. Then
:math:`\mathbb{E}[n] = \alpha(1 - \alpha^{\gamma})/(1 - \alpha)` and :math:`\mathbb{E}[n] + 1` is
Eq. 12 (the bonus or correction token).

The simulator draws the :math:`r_i` explicitly (no closed-form shortcut), vectorised over
iterations and replicates, with a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sdsl_lib.laws._validate import as_array, check_range

__all__ = ["simulate_accepted", "simulate_tar", "tar_coverage"]


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_gammas(gammas) -> np.ndarray:
    g = as_array("gammas", gammas)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"gammas must be a non-empty 1-d sequence of lookaheads, got {gammas!r}")
    if not np.all(np.isfinite(g) & (g >= 1) & (g == np.round(g))):
        raise ValueError(f"gammas must be integers >= 1 (a lookahead counts draft tokens), got {gammas!r}")
    return g.astype(np.int64)


def simulate_accepted(alpha: float, gamma: int, n_iterations: int, replicates: int = 1, seed=0) -> np.ndarray:
    r"""Accepted draft tokens :math:`n` in each of ``n_iterations`` speculative iterations.

    Each iteration drafts up to :math:`\gamma` tokens; token :math:`i` is accepted when
    :math:`r_i \le \alpha` with :math:`r_i \sim U(0,1)` i.i.d., and drafting stops at the first
    rejection (Appendix B.1 with a constant acceptance probability).

    Parameters
    ----------
    alpha : float
        True acceptance rate :math:`\alpha \in [0, 1]`.
    gamma : int
        Lookahead :math:`\gamma \ge 1`.
    n_iterations : int
        Iterations per replicate (>= 1).
    replicates : int
        Independent runs (>= 1).
    seed : int or numpy.random.Generator
        Seed, or a generator to draw from (advanced in place).

    Returns
    -------
    ndarray of int, shape (replicates, n_iterations)
        :math:`n \in \{0, \dots, \gamma\}`, bonus token not counted.

    Examples
    --------
    >>> n = simulate_accepted(0.7, 4, 200_000, seed=1)
    >>> n.shape, int(n.min()), int(n.max())
    ((1, 200000), 0, 4)
    >>> round(float(n.mean()), 2)   # E[n] = 0.7 (1 - 0.7^4) / 0.3 = 1.773
    1.77
    """
    a = float(check_range("alpha", as_array("alpha", alpha), 0.0, 1.0))
    g = _check_count("gamma", gamma, 1)
    n_it = _check_count("n_iterations", n_iterations, 1)
    reps = _check_count("replicates", replicates, 1)
    accepted = _rng(seed).random((reps, n_it, g)) <= a
    # Leading run of acceptances: cumprod is 1 until the first rejection and 0 afterwards.
    return np.cumprod(accepted, axis=-1, dtype=np.int8).sum(axis=-1, dtype=np.int64)


def simulate_tar(
    alpha: float, gammas, n_iterations: int, replicates: int = 1, seed=0, counts_bonus: bool = True
) -> np.ndarray:
    r"""Observed TAR at each lookahead: mean tokens (or accepted drafts) per iteration.

    Every lookahead gets its own independent run of ``n_iterations`` iterations, as when TAR is
    measured in separate decoding runs at each :math:`\gamma`.

    Parameters
    ----------
    alpha : float
        True :math:`\alpha`.
    gammas : sequence of int
        Lookaheads (each >= 1).
    n_iterations, replicates, seed :
        As in :func:`simulate_accepted`.
    counts_bonus : bool
        Add the bonus/correction token (Eq. 12 convention) if True; else report mean :math:`n`.

    Returns
    -------
    ndarray, shape (replicates, len(gammas))

    Examples
    --------
    >>> tar = simulate_tar(0.6, [1, 3, 5], 100_000, seed=2)
    >>> np.round(tar[0], 2)   # Eq. 12: 1.6, 2.176, 2.383
    array([1.6 , 2.18, 2.38])
    """
    g = _check_gammas(gammas)
    rng = _rng(seed)
    means = np.column_stack([simulate_accepted(alpha, int(gi), n_iterations, replicates, rng).mean(axis=1) for gi in g])
    return means + (1.0 if counts_bonus else 0.0)


def tar_coverage(alphas, gammas, n_iterations: int, replicates: int, seed=0, counts_bonus: bool = True) -> pd.DataFrame:
    r"""Fit :func:`sdsl_lib.laws.acceptance.alpha_from_tar` to simulated runs and record whether its CI covers the truth.

    For each true :math:`\alpha` and each replicate: simulate TAR at ``gammas`` with
    :func:`simulate_tar`, estimate :math:`\hat\alpha` with its Appendix B.2 interval, and record the
    estimate, standard error, interval and whether it contains the true :math:`\alpha`.

    Returns
    -------
    DataFrame
        One row per (alpha_true, replicate): ``alpha_true, replicate, alpha_hat, std_error,
        ci95_lower, ci95_upper, covered, z`` where ``z = (alpha_hat - alpha_true) / std_error``.

    Examples
    --------
    >>> df = tar_coverage([0.7], range(1, 10), 500, 20, seed=3)
    >>> len(df), bool(abs(df["alpha_hat"].mean() - 0.7) < 0.01)
    (20, True)
    """
    from sdsl_lib.laws.acceptance import alpha_from_tar

    rng = _rng(seed)
    g = _check_gammas(list(gammas)).astype(float)
    rows = []
    for a in np.atleast_1d(np.asarray(alphas, dtype=float)):
        tar = simulate_tar(float(a), g.astype(int), n_iterations, replicates, rng, counts_bonus)
        for r in range(tar.shape[0]):
            fit = alpha_from_tar(g, tar[r], counts_bonus=counts_bonus)
            rows.append(
                {
                    "alpha_true": float(a),
                    "replicate": r,
                    "alpha_hat": fit.alpha,
                    "std_error": fit.std_error,
                    "ci95_lower": fit.ci95_lower,
                    "ci95_upper": fit.ci95_upper,
                    "covered": bool(fit.ci95_lower <= a <= fit.ci95_upper),
                    "z": (fit.alpha - a) / fit.std_error if fit.std_error > 0 else np.inf,
                }
            )
    return pd.DataFrame(rows)
