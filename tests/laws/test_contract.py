"""The law library's contract, over its whole input space, and its accuracy claims against mpmath.

Contract: every public law either returns values that are finite (inf only at a documented exact
limit) and inside the law's range, or raises ``ValueError`` whose message starts with the name of
one of its arguments. Checked by hypothesis on inputs mixing valid values with every bad class:
NaN, infinities, signs, zero, extreme magnitudes, complex numbers, integers too large for a float,
strings, ragged lists and shapes that do not broadcast.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sdsl_lib as sd
from sdsl_lib.laws import roofline
from sdsl_lib.laws.speculation import _w_excess

mpmath = pytest.importorskip("mpmath")

BAD = st.sampled_from(
    [
        np.nan,
        np.inf,
        -np.inf,
        -1.0,
        0.0,
        -1e-300,
        1e308,
        0.5 + 0.5j,
        np.array([1 + 1j]),
        10**400,
        "x",
        [1, [2, 3]],
        None,
    ]
)
MISSHAPED = st.just(np.array([0.5, 0.6, 0.7, 0.8]))  # broadcasts against a (3,) argument: never


def _sizes():
    return st.floats(-300, 300).map(lambda e: 10.0**e)


def _vec3(strategy):
    return st.lists(strategy, min_size=3, max_size=3).map(np.array)


def _arg(valid):
    return st.one_of(valid, valid.map(lambda v: np.full(3, v)), BAD, MISSHAPED)


HW = roofline.Roofline(3.35e12, 989e12, 2.0, 0.5e-3)

# law -> (callable, {argument: strategy of valid values}, check of a valid output given the inputs)
LAWS = {
    "expected_tokens_per_iteration": (
        sd.expected_tokens_per_iteration,
        {"alpha": st.floats(0, 1), "gamma": st.floats(0, 1e6)},
        lambda out, kw: (out >= 1.0 - 1e-12) & (out <= np.asarray(kw["gamma"], float) * (1 + 1e-12) + 1.0 + 1e-12),
    ),
    "speedup": (
        sd.speedup,
        {"alpha": st.floats(0, 1), "gamma": st.floats(0, 1e6), "c": st.floats(0, 1e300)},
        lambda out, kw: out >= 0.0,
    ),
    "throughput_per_flop": (
        sd.throughput_per_flop,
        {"alpha": st.floats(0, 1), "gamma": st.floats(0, 1e6), "n_draft": _sizes(), "m_target": _sizes()},
        lambda out, kw: out >= 0.0,
    ),
    "optimal_lookahead": (
        sd.optimal_lookahead,
        {"alpha": st.floats(0, 1), "n_draft": _sizes(), "m_target": _sizes()},
        lambda out, kw: out >= 0.0,
    ),
    "optimal_throughput": (
        sd.optimal_throughput,
        {"alpha": st.floats(0, 1), "n_draft": _sizes(), "m_target": _sizes()},
        lambda out, kw: out > 0.0,
    ),
    "alpha_plane": (
        sd.alpha_plane,
        {"draft_ppl": st.floats(1, 1e300), "target_ppl": st.floats(1, 1e300)},
        lambda out, kw: np.isfinite(out),
    ),
    "loss": (sd.loss, {"n_params": _sizes(), "n_tokens": _sizes()}, lambda out, kw: out > sd.BESIROGLU_2024.E - 1e-9),
    "perplexity": (sd.perplexity, {"n_params": _sizes(), "n_tokens": _sizes()}, lambda out, kw: out >= 1.0),
    "predicted_alpha": (
        sd.predicted_alpha,
        {"n_draft": _sizes(), "m_target": _sizes(), "d_draft": _sizes(), "d_target": _sizes()},
        lambda out, kw: (out >= 0.0) & (out <= 1.0),
    ),
    "step_time": (
        roofline.step_time,
        {"n_params": _sizes(), "tokens": st.floats(1, 1e6), "batch_size": st.floats(1, 1e6)},
        lambda out, kw: out > 0.0,
    ),
}


def _exact_infinity(name, kw):
    """Where the law's value is an exact infinite limit (documented): gamma* at alpha = 1, Eq. 12 at
    alpha = 1 with an infinite lookahead."""
    a = np.asarray(kw.get("alpha", 0.0), dtype=float)
    return (a == 1.0) if name in ("optimal_lookahead", "expected_tokens_per_iteration") else np.zeros_like(a, bool)


@pytest.mark.parametrize("name", list(LAWS))
def test_every_output_is_finite_in_range_or_a_named_value_error(name):
    f, args, in_range = LAWS[name]
    extra = {"step_time": {"hw": HW}}.get(name, {})

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.fixed_dictionaries({k: _arg(v) for k, v in args.items()}))
    def check(kw):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow notices; the result is checked
                out = np.asarray(f(**kw, **extra), dtype=float)
        except ValueError as exc:
            assert str(exc).split(" ")[0].rstrip(":,").split(".")[0] in args | {"coef": 0, "law": 0}, str(exc)
            return
        inf_ok = np.broadcast_to(_exact_infinity(name, kw), out.shape) if out.ndim else _exact_infinity(name, kw)
        assert (np.isfinite(out) | inf_ok).all(), (kw, out)
        assert np.asarray(in_range(out, kw) | ~np.isfinite(out)).all(), (kw, out)

    check()


# --- the named holes of the old contract, one by one -----------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sd.speedup(0.5 + 0.1j, 3, 0.1), "^alpha must be real"),
        (lambda: sd.speedup(np.array([0.5 + 0.1j]), 3, 0.1), "^alpha must be real"),
        (lambda: sd.loss(10**400, 1e12), "^n_params must fit in a float"),
        (lambda: sd.optimal_throughput(0.5, 1e-300, 1e300), "^m_target / n_draft must be a finite float"),
        (lambda: sd.throughput_per_flop(0.5, 1e300, 1e300, 1.7e308), "^gamma, n_draft, m_target: .* float range"),
        (lambda: sd.speedup([0.5, 0.6], [1, 2, 3], 0.1), "^alpha, gamma, c must broadcast"),
        (lambda: sd.perplexity(10.0, 10.0), "^n_params, n_tokens: the perplexity e\\^L overflows"),
        (lambda: sd.fit_alpha_vs_draft_ppl([10, 20, 30, 40], [0.5, 0.4, 0.0, 0.3], "power"), "^alpha must be > 0"),
        (lambda: sd.fit_alpha_plane([10, 20, 30, 40], [11, 21, 31, 41], [0.5, 0.6, 0.7, 0.6]), "collinear"),
        (lambda: sd.predicted_alpha(1e8, 1e9, 1e12, 1e3), "^m_target, d_target: .* alpha = .* > 1"),
        (lambda: sd.optimal_draft_size(1e9, 1e12, 1e3), "^m_target, d_target: .* > 1"),
        (lambda: sd.optimal_draft_size(1e9, 1e12, 1e12, n_grid=np.logspace(8, 8.5, 50), on_edge="raise"), "^n_grid"),
    ],
)
def test_old_contract_holes_are_closed(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_collinear_nstar_fit_refuses():
    df = pd.DataFrame({"m_target": [1e10] * 6, "d_draft": [1e12] * 6, "d_target": [1e12] * 6, "n_star": [1e8] * 6})
    with pytest.raises(ValueError, match="collinear"):
        sd.fit_nstar_linear(df)


@pytest.mark.parametrize("m_target", [1e8, 1e9, 3e9, 13e9, 110e9, 1e12])
def test_default_grid_contains_the_optimum(m_target):
    # Below about 10B the optimum lies under Table 7's grid (1e8); the default search widens itself
    # instead of returning the grid's lower edge. Brute force on a fine grid from 1 to M.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        opt = sd.optimal_draft_size(m_target, 1e12, 1e13)
    assert not opt.at_grid_edge
    n = np.logspace(0, np.log10(m_target) - 1e-9, 400_001)
    t = sd.predicted_throughput(n, m_target, 1e12, 1e13)
    assert opt.n_star == pytest.approx(n[np.argmax(t)], rel=1e-3)
    assert opt.throughput >= t.max() * (1 - 1e-12)


def test_user_grid_at_its_edge_warns():
    with pytest.warns(RuntimeWarning, match="sits at an end of the draft grid"):
        opt = sd.optimal_draft_size(1e9, 1e12, 1e12, n_grid=np.logspace(8, 8.5, 50))
    assert opt.at_grid_edge


# --- accuracy claims, against mpmath -----------------------------------------------------------------


def _u_reference(eps: float):
    """u = s - 1 with s - ln s = 1 + eps (s >= 1), to more digits than double precision has."""
    e = mpmath.mpf(eps)
    with mpmath.workdps(40 + int(2 * max(0.0, -float(mpmath.log10(e))))):
        e = mpmath.mpf(eps)
        start = mpmath.sqrt(2 * e) if e < 1 else e + mpmath.log(1 + e)
        return mpmath.findroot(lambda u: u - mpmath.log1p(u) - e, start)


def test_w_minus_one_accuracy_next_to_the_branch_point_and_beyond():
    # The docstring of _w_excess claims: relative error of u below 1e-14 for eps in [1e-300, 1e3]
    # (u ~ sqrt(2 eps) next to the branch point, alpha -> 1), and of s = 1 + u below 1e-15.
    eps = np.concatenate([np.logspace(-300, -20, 15), np.logspace(-20, 0, 60), np.logspace(0, 3, 15)])
    u = _w_excess(eps)
    for e, got in zip(eps, u):
        ref = _u_reference(float(e))
        assert abs(mpmath.mpf(float(got)) / ref - 1) < 1e-14, e
        assert abs((1 + mpmath.mpf(float(got))) / (1 + ref) - 1) < 1e-15, e


def test_speedup_and_eq12_near_alpha_one_against_mpmath():
    for a, g in ((1 - 1e-12, 7), (1 - 1e-6, 50), (0.999999, 1000), (1e-300, 5), (0.3, 0)):
        with mpmath.workdps(50):
            A = mpmath.mpf(a)
            ref = (1 - A ** (g + 1)) / (1 - A) if g else mpmath.mpf(1)
        assert sd.expected_tokens_per_iteration(a, g) == pytest.approx(float(ref), rel=1e-12)
