"""sdsl_lib.laws.wallclock: each law against an independent computation (brute force, first principles).

(Kept under tests/analysis with the analysis that introduced them; they belong in tests/laws.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdsl_lib.laws import wallclock as wc
from sdsl_lib.laws.speculation import optimal_lookahead, speedup


def _speedup_by_hand(a, g, c, v):
    # Expected tokens per iteration sum_{i=0..g} a^i over the time of one iteration g*c + v.
    return sum(a**i for i in range(int(g) + 1)) / (g * c + v)


@given(
    a=st.floats(0.0, 0.999),
    g=st.integers(0, 12),
    c=st.floats(0.0, 2.0),
    v=st.floats(0.2, 5.0),
)
@settings(max_examples=200, deadline=None)
def test_wallclock_speedup_is_tokens_over_iteration_time(a, g, c, v):
    assert wc.wallclock_speedup(a, g, c, v) == pytest.approx(_speedup_by_hand(a, g, c, v), rel=1e-9)


def test_wallclock_speedup_at_v_1_is_eq1_and_rejects_bad_v():
    assert wc.wallclock_speedup(0.7, 3, 0.1) == pytest.approx(speedup(0.7, 3, 0.1), rel=1e-14)
    with pytest.raises(ValueError, match="v must be > 0"):
        wc.wallclock_speedup(0.7, 3, 0.1, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        wc.wallclock_speedup(1.2, 3, 0.1)
    with pytest.raises(ValueError, match="c must"):
        wc.wallclock_speedup(0.7, 3, -0.1)


@pytest.mark.parametrize("a", [0.3, 0.6, 0.85, 0.95])
@pytest.mark.parametrize("c", [0.01, 0.05, 0.2, 0.6])
def test_optimal_lookahead_cost_ratio_is_the_brute_force_maximiser(a, c):
    # Eq. 3 up to a constant: tokens per iteration over (gamma c + 1); maximise on a fine real grid.
    g = np.linspace(0.0, 80.0, 800_001)
    t = (1 - a ** (g + 1)) / (1 - a) / (g * c + 1)
    expected = g[np.argmax(t)]
    assert wc.optimal_lookahead_cost_ratio(a, c) == pytest.approx(expected, abs=2e-4)


def test_optimal_lookahead_cost_ratio_is_eq13_at_c_equal_n_over_m_and_0_when_c_at_least_1():
    n, m = 117313808.6, 12853473280.0
    assert wc.optimal_lookahead_cost_ratio(0.6479, n / m) == pytest.approx(optimal_lookahead(0.6479, n, m), rel=1e-9)
    assert np.all(wc.optimal_lookahead_cost_ratio(np.array([0.5, 0.99]), np.array([1.0, 3.0])) == 0.0)
    with pytest.raises(ValueError, match="c must be > 0"):
        wc.optimal_lookahead_cost_ratio(0.5, 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_best_integer_lookahead_is_the_brute_force_argmax(seed):
    rng = np.random.default_rng(seed)
    a, c = rng.uniform(0.05, 0.98, 20), rng.uniform(0.01, 0.9, 20)
    gammas = np.arange(1, 10)
    v = np.cumprod(np.r_[1.0, rng.uniform(1.0, 1.15, 8)])
    g, s = wc.best_integer_lookahead(a, c, gammas, v)
    for i in range(a.size):
        scores = [_speedup_by_hand(a[i], gg, c[i], vv) for gg, vv in zip(gammas, v)]
        assert g[i] == gammas[int(np.argmax(scores))]
        assert s[i] == pytest.approx(max(scores), rel=1e-9)


def test_best_integer_lookahead_rejects_bad_candidates():
    with pytest.raises(ValueError, match="gammas must be integers"):
        wc.best_integer_lookahead(0.5, 0.1, [1.5], [1.0])
    with pytest.raises(ValueError, match="one length"):
        wc.best_integer_lookahead(0.5, 0.1, [1, 2], [1.0])
    with pytest.raises(ValueError, match="gammas must lie in"):
        wc.best_integer_lookahead(0.5, 0.1, [0], [1.0])


def test_affine_step_time_and_cost_ratio():
    n = np.array([1e5, 1e6, 1e7])
    assert np.allclose(wc.affine_step_time(n, 1e-3, 2e-10), 1e-3 + 2e-10 * n)
    c = wc.step_cost_ratio(n, 1e-3, 2e-10, 4e-3)
    assert np.allclose(c, (1e-3 + 2e-10 * n) / 4e-3)
    # t0 = 0 is SDSL's c = N/M when the target's step is k M.
    assert wc.step_cost_ratio(1e6, 0.0, 2e-10, 2e-10 * 5e7) == pytest.approx(1e6 / 5e7)
    assert wc.step_cost_ratio(1e3, -1e-3, 1e-10, 1e-3) == 0.0  # clipped, no negative time
    with pytest.raises(ValueError, match="t_target_s must be > 0"):
        wc.step_cost_ratio(1e6, 1e-3, 2e-10, 0.0)
    with pytest.raises(ValueError, match="n_params must be > 0"):
        wc.affine_step_time(-1.0, 1e-3, 2e-10)
