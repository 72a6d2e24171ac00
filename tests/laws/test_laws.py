"""Properties of the laws: limits, monotonicity, broadcasting, brute-force cross-checks, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import lambertw

import sdsl_lib as sd
from sdsl_lib.laws import simulate
from sdsl_lib.laws.speculation import _neg_w_m1_of_neg_exp

alphas = st.floats(0.02, 0.98)
log_sizes = st.floats(5.0, 11.0)  # 1e5 .. 1e11 parameters
ratios = st.floats(1.5, 1e4)


# --- Eq. 12, Eq. 1 ---------------------------------------------------------------------------


@given(alphas, st.integers(0, 20))
def test_expected_tokens_equals_geometric_sum(alpha, gamma):
    # Independent form: the first gamma draft positions are accepted i.i.d. with probability alpha,
    # plus one target token: E = sum_{k=0}^{gamma} alpha^k.
    brute = sum(alpha**k for k in range(gamma + 1))
    assert sd.expected_tokens_per_iteration(alpha, gamma) == pytest.approx(brute, rel=1e-12)
    assert sd.expected_accepted_drafts(alpha, gamma) == pytest.approx(brute - 1.0, rel=1e-9, abs=1e-12)


def test_expected_tokens_limits():
    assert sd.expected_tokens_per_iteration(1.0, 7) == 8.0
    assert sd.expected_tokens_per_iteration(0.0, 7) == 1.0
    assert sd.expected_tokens_per_iteration(0.3, 0) == 1.0
    # Continuity at alpha -> 1 (expm1 keeps precision where the naive form cancels).
    assert sd.expected_tokens_per_iteration(1 - 1e-12, 7) == pytest.approx(8.0, rel=1e-9)


@given(st.floats(0.01, 0.99), st.floats(0.01, 0.99), st.integers(1, 15))
def test_expected_tokens_monotone_in_alpha(a1, a2, gamma):
    lo, hi = sorted((a1, a2))
    assert sd.expected_tokens_per_iteration(lo, gamma) <= sd.expected_tokens_per_iteration(hi, gamma) + 1e-12


def test_speedup_gamma_zero_is_one_and_leviathan_corollary():
    a = np.linspace(0.05, 0.95, 19)
    assert np.all(sd.speedup(a, 0, 0.1) == 1.0)
    # Leviathan's corollary: if alpha > c, gamma = 1 already gives (1 + alpha) / (1 + c) > 1.
    c = a / 2
    assert np.allclose(sd.speedup(a, 1, c), (1 + a) / (1 + c))
    assert np.all(sd.speedup(a, 1, c) > 1)


def test_speedup_simulated():
    # Monte Carlo of the i.i.d. model behind Eq. 1: count tokens per iteration directly.
    rng = np.random.default_rng(0)
    alpha, gamma, c = 0.7, 4, 0.05
    accepts = rng.random((200_000, gamma)) < alpha
    n = np.where(accepts.all(axis=1), gamma, np.argmin(accepts, axis=1))
    tokens = (n + 1).mean()
    assert tokens / (gamma * c + 1) == pytest.approx(sd.speedup(alpha, gamma, c), rel=5e-3)


def test_broadcasting_and_scalar_out():
    out = sd.speedup(np.array([0.5, 0.7])[:, None], np.arange(4)[None, :], 0.1)
    assert out.shape == (2, 4)
    assert isinstance(sd.speedup(0.5, 3, 0.1), float)
    assert isinstance(sd.optimal_lookahead(0.5, 1e8, 1e10), float)
    assert sd.optimal_throughput(np.full((3, 2), 0.6), 1e8, 1e10).shape == (3, 2)


# --- Lambert W: Eq. 4 and Eq. 13 against brute force ---------------------------------------


def test_w_minus_one_solver_matches_scipy():
    k = np.concatenate([1 + np.logspace(-6, 0, 2000), np.logspace(0.01, np.log10(700), 5000)])
    ref = -lambertw(-np.exp(-k), k=-1).real
    assert np.allclose(_neg_w_m1_of_neg_exp(k), ref, rtol=1e-12, atol=0)
    # Beyond scipy's reach (argument underflows): the defining equation s - ln s = K still holds.
    big = np.array([800.0, 1e4, 1e8])
    s = _neg_w_m1_of_neg_exp(big)
    assert np.allclose(s - np.log(s), big, rtol=1e-14)


@settings(max_examples=60, deadline=None)
@given(alphas, log_sizes, st.floats(0.5, 4.0))
def test_eq4_is_max_and_eq13_argmax_of_eq3(alpha, log_n, log_ratio):
    n, m = 10.0**log_n, 10.0 ** (log_n + log_ratio)
    res = minimize_scalar(
        lambda g: -sd.throughput_per_flop(alpha, g, n, m),
        bounds=(0.0, 2000.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert sd.optimal_throughput(alpha, n, m) == pytest.approx(-res.fun, rel=1e-9)
    assert sd.optimal_throughput(alpha, n, m) >= -res.fun * (1 - 1e-12)
    g_star = sd.optimal_lookahead(alpha, n, m)
    assert sd.throughput_per_flop(alpha, g_star, n, m) == pytest.approx(sd.optimal_throughput(alpha, n, m), rel=1e-12)
    # The argmax itself, where the optimum is not flat enough to hide it.
    assert g_star == pytest.approx(res.x, abs=1e-3 * max(1.0, g_star))


def test_eq13_matches_paper_formula_with_scipy_lambertw():
    # The paper's printed Eq. 13 and Eq. 4, evaluated literally with scipy's W_{-1}.
    rng = np.random.default_rng(1)
    a = rng.uniform(0.3, 0.95, 500)
    n = 10 ** rng.uniform(6, 9, 500)
    m = n * 10 ** rng.uniform(1, 3, 500)
    with np.errstate(all="ignore"):
        w = lambertw(-(a ** (m / n - 1)) / np.e, k=-1).real
        gamma_paper = (-m * np.log(a) + n * w + n) / (n * np.log(a))
        t_paper = -np.log(a) / (2 * n * (-1 + a) * w)
    # Where alpha^(M/N - 1) is representable, the literal formulas and the library agree...
    ok = a ** (m / n - 1) > 1e-290
    assert ok.sum() > 300
    assert np.allclose(sd.optimal_lookahead(a, n, m)[ok], gamma_paper[ok], rtol=1e-9)
    assert np.allclose(sd.optimal_throughput(a, n, m)[ok], t_paper[ok], rtol=1e-10)
    # ...and where it underflows the literal formula breaks down, while the library stays finite.
    assert np.all(np.isfinite(sd.optimal_lookahead(a, n, m)))
    assert not np.allclose(gamma_paper[~ok], sd.optimal_lookahead(a, n, m)[~ok], rtol=1e-6)


def test_optimum_limits_and_clipping():
    n, m = 1e8, 1e10
    assert sd.optimal_lookahead(0.0, n, m) == 0.0
    assert sd.optimal_throughput(0.0, n, m) == 1 / (2 * m)
    assert sd.optimal_lookahead(1.0, n, m) == np.inf
    assert sd.optimal_throughput(1.0, n, m) == 1 / (2 * n)
    assert sd.optimal_throughput(1 - 1e-9, n, m) == pytest.approx(1 / (2 * n), rel=1e-3)
    # When drafting does not pay, gamma* = 0 and the rate is the target's own.
    assert not sd.speculation_pays(0.001, n, m)
    assert sd.optimal_lookahead(0.001, n, m) == 0.0
    assert sd.optimal_throughput(0.001, n, m) == 1 / (2 * m)
    # Tiny drafts: alpha^(M/N) underflows, yet the result stays finite and is the brute-force max.
    a, n_small, m_big = 0.7, 1e5, 1e12
    g = np.linspace(0, 200, 200_001)
    assert sd.optimal_throughput(a, n_small, m_big) == pytest.approx(
        sd.throughput_per_flop(a, g, n_small, m_big).max(), rel=1e-9
    )


@settings(max_examples=40, deadline=None)
@given(st.floats(0.05, 0.9), st.floats(0.05, 0.9), log_sizes, st.floats(1.0, 3.0))
def test_optimal_throughput_monotone_in_alpha(a1, a2, log_n, log_ratio):
    lo, hi = sorted((a1, a2))
    n, m = 10.0**log_n, 10.0 ** (log_n + log_ratio)
    assert sd.optimal_throughput(lo, n, m) <= sd.optimal_throughput(hi, n, m) * (1 + 1e-12)
    assert sd.optimal_lookahead(lo, n, m) <= sd.optimal_lookahead(hi, n, m) + 1e-9


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sd.speedup(1.2, 3, 0.1), r"alpha must lie in \[0, 1\]"),
        (lambda: sd.speedup(np.nan, 3, 0.1), "alpha must not be NaN"),
        (lambda: sd.speedup(0.5, -1, 0.1), "gamma must lie in"),
        (lambda: sd.speedup(0.5, 2, -0.1), "c must lie in"),
        (lambda: sd.throughput_per_flop(0.5, 2, 1e10, 1e9), "n_draft must be smaller than m_target"),
        (lambda: sd.optimal_lookahead(0.5, 1e9, 1e9), "n_draft must be smaller than m_target"),
        (lambda: sd.optimal_throughput(0.5, -1.0, 1e9), "n_draft must be > 0"),
        (lambda: sd.optimal_throughput(0.5, 1e8, 0.0), "m_target must be > 0"),
        (lambda: sd.optimal_lookahead(-0.1, 1e8, 1e9), "alpha must lie in"),
        (lambda: sd.loss(0.0, 1e9), "n_params must be > 0"),
        (lambda: sd.perplexity(1e9, np.nan), "n_tokens must not be NaN"),
        (lambda: sd.alpha_plane(0.5, 10.0), r"draft_ppl must lie in \[1, inf\)"),
        (lambda: sd.alpha_from_tar([1, 2], [1.5]), "equal lengths"),
        (lambda: sd.alpha_from_tar([1, 2], [0.5, 1.5]), "tar must lie in"),
        (lambda: sd.alpha_from_tar([0, 2], [1.0, 1.5]), "gammas must lie in"),
        (lambda: sd.acceptance_from_probs([0.5, 0.5], [1.0]), "same vocabulary size"),
        (lambda: sd.acceptance_from_probs(np.full((2, 2), 0.5), np.full((3, 2), 0.5)), "broadcast to a common shape"),
        (lambda: sd.acceptance_from_probs([1.5, -0.5], [0.5, 0.5]), r"p must lie in \[0, 1\]"),
        (lambda: sd.speedup(0.5, np.inf, 0.0), r"gamma must lie in \[0, inf\)"),
        (lambda: sd.speedup(0.5, 0, np.inf), r"c must lie in \[0, inf\)"),
        (lambda: sd.throughput_per_flop(1.0, np.inf, 1e8, 1e9), r"gamma must lie in \[0, inf\)"),
        (lambda: sd.alpha_plane(np.inf, np.inf), r"draft_ppl must lie in \[1, inf\)"),
        (lambda: sd.alpha_from_tar([1, np.inf], [1.5, 2.0]), r"gammas must lie in \[1, inf\)"),
        (lambda: sd.alpha_from_tar([1, 2], [1.5, 3.5]), r"tar must lie in \[1, gamma \+ 1\]"),
        (
            lambda: sd.fit_alpha_plane([20, 25, 30, 22], [10, 12, 14, 11], [0.5, 0.6, np.inf, 0.6]),
            "alpha must be finite",
        ),
        (
            lambda: sd.fit_alpha_plane([0.5, 25, 30, 22], [10, 12, 14, 11], [0.5, 0.6, 0.7, 0.6]),
            r"draft_ppl must lie in \[1, inf\)",
        ),
        (lambda: sd.fit_alpha_vs_draft_ppl([10, 20, 30], [0.5, 0.6, np.nan], "linear"), "alpha must not be NaN"),
        (lambda: sd.fit_alpha_vs_draft_ppl([10, 10, 10], [0.5, 0.6, 0.7], "log"), "must each vary"),
        (
            lambda: sd.fit_chinchilla(
                np.logspace(6, 9, 6), np.logspace(9, 12, 6), np.linspace(3, 2, 6), grid={"a": [1.0]}
            ),
            "grid must give",
        ),
        (
            lambda: sd.fit_chinchilla(np.logspace(6, 9, 6), np.logspace(9, 12, 6), np.linspace(3, 2, 6), bootstrap=-1),
            "bootstrap must be an integer >= 0",
        ),
        (
            lambda: sd.fit_chinchilla(
                np.logspace(6, 9, 6), np.logspace(9, 12, 6), np.linspace(3, 2, 6), huber_delta=0.0
            ),
            "huber_delta must be",
        ),
        (
            lambda: sd.fit_chinchilla(np.logspace(6, 9, 6), np.logspace(9, 12, 6), [3, 2, 2, 2, 2, -1.0]),
            "loss_nats must be > 0",
        ),
        (lambda: sd.fit_nstar_linear(pd.DataFrame({"m_target": [1e10] * 5})), "missing columns"),
        (
            lambda: sd.fit_nstar_full(
                pd.DataFrame(
                    {
                        "m_target": [1e10] * 5,
                        "d_draft": [1e12] * 5,
                        "d_target": [1e12] * 5,
                        "n_star": [1e8, 2e8, np.nan, 1e8, 1e8],
                    }
                )
            ),
            r"df\['n_star'\] must not be NaN",
        ),
        (lambda: sd.optimal_draft_size(1e10, 1e12, 1e12, n_grid=[]), "n_grid must hold at least one"),
        (lambda: sd.optimal_draft_size(1e10, 1e12, 1e12, n_grid=[1e8, -1e8]), "n_grid must be > 0"),
        (lambda: sd.throughput_per_flop(0.5, 2, [1e8, 1e10], 1e9), "n_draft must be smaller than m_target"),
        (lambda: simulate.simulate_tar(0.5, [1, 2.5], 10), "gammas must be integers >= 1"),
        (lambda: simulate.simulate_tar(0.5, [], 10), "gammas must be a non-empty"),
        (lambda: simulate.simulate_accepted(1.5, 2, 10), r"alpha must lie in \[0, 1\]"),
        (lambda: simulate.simulate_accepted(0.5, 2, 0), "n_iterations must be an integer >= 1"),
        (lambda: simulate.tar_coverage([0.5], [1, 2.5], 10, 2), "gammas must be integers >= 1"),
        (lambda: sd.acceptance_from_probs([0.5, 0.6], [0.5, 0.5]), "sum to 1"),
        (lambda: sd.fit_alpha_vs_draft_ppl([10, 20, 30], [0.5, 0.6, 0.7], "cubic"), "form must be one of"),
        (lambda: sd.optimal_draft_size(1e9, 1e12, 1e12, n_grid=[2e9, 3e9]), "n_grid must contain draft sizes below"),
        (lambda: sd.optimal_draft_size(-1e9, 1e12, 1e12), "m_target must be > 0"),
        (lambda: sd.fit_chinchilla([1e6] * 3, [1e9] * 3, [3.0] * 3), "at least 5"),
        (lambda: sd.speedup("abc", 1, 0.1), "alpha must be numeric"),
    ],
)
def test_bad_input_raises_named_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- acceptance --------------------------------------------------------------------------------


def test_acceptance_from_probs_is_one_minus_total_variation():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(50), size=(4, 7))
    q = rng.dirichlet(np.ones(50), size=(4, 7))
    beta = sd.acceptance_from_probs(p, q)
    assert beta.shape == (4, 7)
    assert np.allclose(beta, 1 - 0.5 * np.abs(p - q).sum(-1))
    assert np.allclose(sd.acceptance_from_probs(p, p), 1.0)


def test_acceptance_from_probs_equals_rejection_sampling_rate():
    # Leviathan's test accepts x ~ q with probability min(1, p(x)/q(x)): simulate it.
    rng = np.random.default_rng(3)
    p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
    x = rng.choice(6, size=400_000, p=q)
    accepted = rng.random(x.size) < np.minimum(1.0, p[x] / q[x])
    assert accepted.mean() == pytest.approx(sd.acceptance_from_probs(p, q), abs=3e-3)


@pytest.mark.parametrize("counts_bonus", [True, False])
def test_alpha_from_tar_recovers_known_alpha(counts_bonus):
    rng = np.random.default_rng(4)
    g = np.arange(1, 10)
    truth = 0.63
    tar = sd.tar_model(truth, g, counts_bonus) + rng.normal(0, 0.002, g.size)
    fit = sd.alpha_from_tar(g, tar, counts_bonus=counts_bonus)
    assert fit.alpha == pytest.approx(truth, abs=2e-3)
    assert fit.ci95_lower < truth < fit.ci95_upper
    assert fit.ci95_upper - fit.ci95_lower == pytest.approx(2 * 1.959964 * fit.std_error)


def test_alpha_from_tar_conventions():
    # Feeding mean accepted drafts (no bonus) as if it counted the bonus would bias alpha down:
    # the convention is an explicit argument because the paper is ambiguous (erratum E7).
    g = np.arange(1, 10)
    n_mean = sd.expected_accepted_drafts(0.7, g)
    assert sd.alpha_from_tar(g, n_mean, counts_bonus=False).alpha == pytest.approx(0.7, abs=1e-9)
    assert sd.alpha_from_tar(g, n_mean + 1.0, counts_bonus=True).alpha == pytest.approx(0.7, abs=1e-9)


def test_alpha_from_tar_on_simulated_runs():
    # Simulated speculative decoding with a known alpha: the B.2 interval covers it.
    rng = np.random.default_rng(5)
    truth, g = 0.55, np.arange(1, 10)
    tar = []
    for gamma in g:
        acc = rng.random((5000, gamma)) < truth
        n = np.where(acc.all(axis=1), gamma, np.argmin(acc, axis=1))
        tar.append(n.mean() + 1.0)
    fit = sd.alpha_from_tar(g, tar)
    assert abs(fit.alpha - truth) < 0.01


def test_fit_alpha_plane_recovers_plane():
    rng = np.random.default_rng(6)
    x, y = rng.uniform(12, 30, 200), rng.uniform(9, 16, 200)
    a = -0.007 * x + 0.013 * y + 0.64 + rng.normal(0, 0.01, 200)
    fit = sd.fit_alpha_plane(x, y, a)
    row = fit.table.set_index("parameter")
    for name, truth in (("A", -0.007), ("B", 0.013), ("C", 0.64)):
        assert row.loc[name, "ci95_lower"] < truth < row.loc[name, "ci95_upper"]
    assert 0 < fit.r2 < 1


@pytest.mark.parametrize("form", ["linear", "log", "power"])
def test_fit_alpha_vs_draft_ppl_recovers_each_form(form):
    x = np.linspace(12, 30, 10)
    truth = {"linear": (-0.008, 0.83), "log": (-0.16, 1.15), "power": (1.38, -0.25)}[form]
    from sdsl_lib.laws.acceptance import DraftPplFit

    a = DraftPplFit(form, *truth, 0, 0, 0, 0, 10).predict(x)
    fit = sd.fit_alpha_vs_draft_ppl(x, a, form)
    assert (fit.p1, fit.p2) == pytest.approx(truth, rel=1e-6)
    assert fit.r2 == pytest.approx(1.0)


# --- pre-training law --------------------------------------------------------------------------


def test_loss_decreases_with_size_and_data():
    n = np.logspace(7, 11, 9)
    assert np.all(np.diff(sd.loss(n, 1e12)) < 0)
    assert np.all(np.diff(sd.loss(1e9, n * 100)) < 0)
    assert sd.loss(1e30, 1e30) == pytest.approx(sd.BESIROGLU_2024.E, abs=1e-6)


def test_fit_chinchilla_recovers_law_with_noise_and_bootstrap():
    rng = np.random.default_rng(7)
    n, d = np.meshgrid(np.logspace(6, 9, 7), np.logspace(8, 11, 7))
    n, d = n.ravel(), d.ravel()
    l_true = sd.loss(n, d, sd.HOFFMANN_2022)
    l_obs = l_true * np.exp(rng.normal(0, 0.002, n.size))
    fit = sd.fit_chinchilla(n, d, l_obs, bootstrap=20, seed=0)
    assert fit.law.E == pytest.approx(1.69, rel=0.05)
    assert fit.law.nu == pytest.approx(0.34, rel=0.1)
    # The fitted law predicts held-in losses to the noise level.
    assert np.max(np.abs(sd.loss(n, d, fit.law) / l_obs - 1)) < 0.01
    s = fit.summary().set_index("parameter")
    assert (s["ci95_lower"] <= s["ci95_upper"]).all()


# --- optimal draft size ------------------------------------------------------------------------


def test_optimal_draft_size_is_the_brute_force_maximum():
    m, d, dp = 3e10, 1e12, 1e13
    fine = np.logspace(7, 10, 200_001)
    t = sd.predicted_throughput(fine, m, d, dp)
    opt = sd.optimal_draft_size(m, d, dp, n_grid=np.logspace(7, 10, 300))
    assert opt.n_star == pytest.approx(fine[np.argmax(t)], rel=2e-4)
    assert opt.throughput >= t.max() * (1 - 1e-12)
    assert opt.gain == pytest.approx(opt.throughput * 2 * m)


def test_nstar_grid_shape_and_columns():
    from sdsl_lib.laws.constants import Table7Grid

    df = sd.nstar_grid(Table7Grid(1e8, 1e10, 200, 13e9, 110e9, 3, 1e12, 1e14, 2))
    assert len(df) == 3 * 2 * 2
    assert {"m_target", "d_draft", "d_target", "n_star", "throughput", "gamma_star", "alpha"} <= set(df.columns)
    # N* grows with the target.
    assert df.groupby("m_target")["n_star"].mean().is_monotonic_increasing


# --- every bad-input class, for every law that takes the argument --------------------------------

_P = np.array([0.5, 0.3, 0.2])
# Each public law with valid arguments; the tests below spoil one argument at a time.
_LAWS = {
    "expected_tokens_per_iteration": (sd.expected_tokens_per_iteration, dict(alpha=0.6, gamma=3)),
    "expected_accepted_drafts": (sd.expected_accepted_drafts, dict(alpha=0.6, gamma=3)),
    "tar_model": (sd.tar_model, dict(alpha=0.6, gamma=3)),
    "speedup": (sd.speedup, dict(alpha=0.6, gamma=3, c=0.1)),
    "throughput_per_flop": (sd.throughput_per_flop, dict(alpha=0.6, gamma=3, n_draft=1e8, m_target=1e10)),
    "optimal_lookahead": (sd.optimal_lookahead, dict(alpha=0.6, n_draft=1e8, m_target=1e10)),
    "optimal_throughput": (sd.optimal_throughput, dict(alpha=0.6, n_draft=1e8, m_target=1e10)),
    "speculation_pays": (sd.speculation_pays, dict(alpha=0.6, n_draft=1e8, m_target=1e10)),
    "alpha_plane": (sd.alpha_plane, dict(draft_ppl=20.0, target_ppl=10.0)),
    "acceptance_from_probs": (sd.acceptance_from_probs, dict(p=_P, q=_P[::-1])),
    "loss": (sd.loss, dict(n_params=1e9, n_tokens=1e11)),
    "perplexity": (sd.perplexity, dict(n_params=1e9, n_tokens=1e11)),
    "predicted_throughput": (sd.predicted_throughput, dict(n_draft=1e8, m_target=1e10, d_draft=1e12, d_target=1e12)),
    "optimal_draft_size": (
        sd.optimal_draft_size,
        dict(m_target=1e10, d_draft=1e12, d_target=1e12, n_grid=np.logspace(7, 9.5, 50)),
    ),
}
_SIZES = {"n_draft", "m_target", "n_params", "n_tokens", "d_draft", "d_target", "n_grid"}


def _cases(args, value):
    return [
        pytest.param(name, arg, value, id=f"{name}-{arg}")
        for name, (_, kw) in _LAWS.items()
        for arg in kw
        if arg in args
    ]


def _call(name, **override):
    f, kw = _LAWS[name]
    return f(**{**kw, **override})


def test_valid_arguments_of_the_bad_input_table_are_valid():
    # Otherwise every test below would pass for the wrong reason.
    for name in _LAWS:
        _call(name)


@pytest.mark.parametrize("name, arg, value", _cases(set().union(*(kw for _, kw in _LAWS.values())), np.nan))
def test_nan_in_any_argument_raises(name, arg, value):
    f, kw = _LAWS[name]
    bad = np.where(np.arange(np.size(kw[arg])) == 0, value, kw[arg]) if np.ndim(kw[arg]) else value
    with pytest.raises(ValueError, match=rf"^{arg} must not be NaN"):
        _call(name, **{arg: bad})


@pytest.mark.parametrize("value", [-0.01, 1.01, np.inf, -np.inf])
@pytest.mark.parametrize("name, arg, _v", _cases({"alpha"}, None))
def test_alpha_outside_unit_interval_raises(name, arg, _v, value):
    with pytest.raises(ValueError, match=r"^alpha must lie in \[0, 1\]"):
        _call(name, alpha=value)


@pytest.mark.parametrize("value", [-1.0, -1e-9, -np.inf])
@pytest.mark.parametrize("name, arg, _v", _cases({"gamma"}, None))
def test_negative_gamma_raises(name, arg, _v, value):
    with pytest.raises(ValueError, match=r"^gamma must lie in \[0, inf"):
        _call(name, gamma=value)


@pytest.mark.parametrize("value", [0.0, -1e9, np.inf])
@pytest.mark.parametrize("name, arg, _v", _cases(_SIZES, None))
def test_non_positive_or_infinite_size_raises(name, arg, _v, value):
    f, kw = _LAWS[name]
    bad = np.where(np.arange(np.size(kw[arg])) == 0, value, kw[arg]) if np.ndim(kw[arg]) else value
    with pytest.raises(ValueError, match=rf"^{arg} must be (> 0|finite)"):
        _call(name, **{arg: bad})


@pytest.mark.parametrize("n_draft", [1e10, 2e10])
@pytest.mark.parametrize("name", [k for k, (_, kw) in _LAWS.items() if {"n_draft", "m_target"} <= set(kw)])
def test_draft_not_smaller_than_target_raises(name, n_draft):
    with pytest.raises(ValueError, match=r"^n_draft must be smaller than m_target"):
        _call(name, n_draft=n_draft, m_target=1e10)


# --- limits and broadcasting as properties -------------------------------------------------------


@settings(deadline=None)
@given(st.floats(0.0, 200.0), st.floats(0.0, 1.0), st.floats(0.0, 10.0))
def test_exact_limits_on_random_inputs(gamma, alpha, c):
    assert sd.expected_tokens_per_iteration(1.0, gamma) == gamma + 1.0  # every draft accepted
    assert sd.expected_tokens_per_iteration(0.0, gamma) == 1.0  # only the target's own token
    assert sd.expected_tokens_per_iteration(alpha, 0.0) == 1.0
    assert sd.expected_accepted_drafts(alpha, 0.0) == 0.0
    assert sd.speedup(alpha, 0.0, c) == 1.0
    # Continuity: the closed form approaches the exact limits from inside (0, 1).
    assert sd.expected_tokens_per_iteration(1.0 - 1e-13, gamma) == pytest.approx(gamma + 1.0, rel=1e-9)
    assert sd.expected_tokens_per_iteration(1e-300, gamma) == pytest.approx(1.0, rel=1e-12)


@settings(deadline=None)
@given(st.floats(0.0, 0.999))
def test_infinite_lookahead_limit_of_eq12(alpha):
    assert sd.expected_tokens_per_iteration(alpha, np.inf) == pytest.approx(1.0 / (1.0 - alpha), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(log_sizes, st.floats(0.2, 4.0))
def test_optimum_limits_on_random_sizes(log_n, log_ratio):
    n, m = 10.0**log_n, 10.0 ** (log_n + log_ratio)
    # alpha -> 1: gamma* grows without bound and T* -> 1/(2N), the finite limit returned at alpha = 1.
    assert sd.optimal_throughput(1.0, n, m) == 1.0 / (2.0 * n)
    assert sd.optimal_throughput(1.0 - 1e-12, n, m) == pytest.approx(1.0 / (2.0 * n), rel=1e-3)
    assert sd.optimal_lookahead(1.0 - 1e-12, n, m) > sd.optimal_lookahead(1.0 - 1e-6, n, m) > 0
    # alpha -> 0: drafting stops paying (M/N <= 1e4 here), so gamma* = 0 and T* = 1/(2M), as at alpha = 0.
    for a in (0.0, 1e-12, 1e-300):
        assert sd.optimal_lookahead(a, n, m) == 0.0
        assert sd.optimal_throughput(a, n, m) == 1.0 / (2.0 * m)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 4))
def test_broadcasting_equals_elementwise_evaluation(seed, rows, cols):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 1.0, (rows, 1))
    g = rng.uniform(0.0, 12.0, (1, cols))
    n = 10 ** rng.uniform(6, 9, (rows, cols))
    m = n * 10 ** rng.uniform(0.1, 3, cols)
    c = n / m
    for f, args in (
        (sd.expected_tokens_per_iteration, (a, g)),
        (sd.speedup, (a, g, c)),
        (sd.throughput_per_flop, (a, g, n, m)),
        (sd.optimal_lookahead, (a, n, m)),
        (sd.optimal_throughput, (a, n, m)),
        (sd.loss, (n, m)),
    ):
        out = f(*args)
        assert out.shape == (rows, cols)
        b = np.broadcast_arrays(*args)
        for idx in np.ndindex(rows, cols):
            scalar = f(*(float(x[idx]) for x in b))
            assert isinstance(scalar, float)
            assert out[idx] == pytest.approx(scalar, rel=1e-14, abs=0)


@settings(deadline=None)
@given(st.floats(0.01, 0.99), st.integers(0, 30), st.integers(0, 30))
def test_expected_tokens_monotone_in_gamma(alpha, g1, g2):
    lo, hi = sorted((g1, g2))
    assert sd.expected_tokens_per_iteration(alpha, lo) <= sd.expected_tokens_per_iteration(alpha, hi)


@settings(deadline=None)
@given(st.floats(6, 12), st.floats(6, 12), st.floats(9, 14), st.floats(9, 14))
def test_loss_monotone_decreasing_in_size_and_data(ln1, ln2, ld1, ld2):
    (n1, n2), (d1, d2) = sorted((10**ln1, 10**ln2)), sorted((10**ld1, 10**ld2))
    assert sd.loss(n2, d1) <= sd.loss(n1, d1)
    assert sd.loss(n1, d2) <= sd.loss(n1, d1)
    assert sd.loss(n1, d1) > sd.BESIROGLU_2024.E


# --- high-precision cross-checks of Eq. 4 and Eq. 13 -------------------------------------------


def test_eq13_and_eq4_against_50_digit_lambert_w():
    # The paper's Eq. 13 and Eq. 4 evaluated literally with mpmath's W_{-1} at 50 digits, in the
    # regimes where double precision is hardest: huge M/N (alpha^(M/N-1) underflows, Eq. 13 subtracts
    # two numbers of size M/N) and alpha next to 1 (the branch point).
    mpmath = pytest.importorskip("mpmath")
    cases = [
        (0.6479, 117313808.6, 12853473280),
        (1e-6, 1.0, 1e12),
        (0.5, 1e3, 1e12),
        (0.9, 1e5, 1e11),
        (1 - 1e-9, 1e8, 1e10),
        (1 - 1e-14, 1e8, 1e11),
        (0.999, 1e6, 1.5e6),
        (0.3, 1e7, 1e9),
    ]
    for a, n, m in cases:
        with mpmath.workdps(50):
            A, N, M = mpmath.mpf(a), mpmath.mpf(n), mpmath.mpf(m)
            w = mpmath.lambertw(-(A ** (M / N - 1)) / mpmath.e, -1).real
            gamma_ref = (-M * mpmath.log(A) + N * w + N) / (N * mpmath.log(A))
            t_ref = -mpmath.log(A) / (2 * N * (A - 1) * w)
        assert sd.optimal_lookahead(a, n, m) == pytest.approx(float(gamma_ref), rel=1e-10, abs=1e-12), (a, n, m)
        assert sd.optimal_throughput(a, n, m) == pytest.approx(float(t_ref), rel=1e-12), (a, n, m)


def test_predicted_throughput_is_the_brute_force_maximum_over_gamma():
    # Eq. 9 chains Eq. 7-8, Eq. 5 and Eq. 4: recompute it from the pieces and maximise Eq. 3 on a grid.
    n, m, d, dp = 2e8, 3e10, 1e12, 5e12
    law, plane = sd.BESIROGLU_2024, sd.TABLE3_PLANE
    x = np.exp(law.E + law.A / n**law.nu + law.B / d**law.delta)
    y = np.exp(law.E + law.A / m**law.nu + law.B / dp**law.delta)
    alpha = plane.A * x + plane.B * y + plane.C
    g = np.linspace(0.0, 60.0, 600_001)
    brute = sd.throughput_per_flop(alpha, g, n, m).max()
    assert sd.predicted_alpha(n, m, d, dp) == pytest.approx(alpha, rel=1e-13)
    assert sd.predicted_throughput(n, m, d, dp) == pytest.approx(brute, rel=1e-10)
    assert sd.predicted_throughput(n, m, d, dp) >= brute * (1 - 1e-13)


# --- the fits: HC3 and the Hoffmann recipe -------------------------------------------------------


def _hc3_by_hand(X, yv):
    # MacKinnon & White's HC3: (X'X)^-1 X' diag(e_i^2 / (1 - h_ii)^2) X (X'X)^-1. Columns are scaled
    # to unit norm first (the columns 1/M and 1 differ by 1e10), and the errors scaled back.
    scale = np.linalg.norm(X, axis=0)
    Xs = X / scale
    beta_s = np.linalg.lstsq(Xs, yv, rcond=None)[0]
    e = yv - Xs @ beta_s
    bread = np.linalg.inv(Xs.T @ Xs)
    h = np.einsum("ij,jk,ik->i", Xs, bread, Xs)  # leverages
    meat = Xs.T @ (Xs * (e / (1 - h))[:, None] ** 2)
    return beta_s / scale, np.sqrt(np.diag(bread @ meat @ bread)) / scale


def test_fit_nstar_errors_are_hc3_by_hand():
    rng = np.random.default_rng(8)
    m = 10 ** rng.uniform(10, 11, 40)
    d, dp = 10 ** rng.uniform(12, 14, 40), 10 ** rng.uniform(12, 14, 40)
    # Heteroscedastic noise, so HC3 differs from the classical and the HC0/HC1 errors.
    n_star = m * (4e-3 - 5e-5 * np.log(d)) + 7e7 + rng.normal(0, 1, 40) * 1e-4 * m
    df = pd.DataFrame({"m_target": m, "d_draft": d, "d_target": dp, "n_star": n_star})
    lin = sd.fit_nstar_linear(df).table
    beta, se = _hc3_by_hand(np.column_stack([m, np.ones_like(m)]), n_star)
    assert np.allclose(lin["estimate"], beta, rtol=1e-9)
    assert np.allclose(lin["std_error"], se, rtol=1e-9)
    assert np.allclose(lin["margin_of_error_95"], 1.959963985 * se, rtol=1e-8)
    full = sd.fit_nstar_full(df).table
    X = np.column_stack([np.ones_like(m), 1 / m, np.log(d), np.log(dp)])
    beta, se = _hc3_by_hand(X, n_star / m)
    assert np.allclose(full["estimate"], beta, rtol=1e-8)
    assert np.allclose(full["std_error"], se, rtol=1e-8)
    # The design of Eq. 10 has condition number ~1e12: check the estimates against the normal
    # equations solved in 50-digit arithmetic (an unscaled double-precision fit is off by ~1e-4).
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(50):
        Xm, ym = mpmath.matrix(X.tolist()), mpmath.matrix((n_star / m).tolist())
        exact = np.array([float(v) for v in mpmath.lu_solve(Xm.T * Xm, Xm.T * ym)])
    assert np.allclose(full["estimate"], exact, rtol=1e-9)


def test_chinchilla_objective_gradient_matches_finite_differences():
    from scipy.optimize import approx_fprime

    from sdsl_lib.laws.pretraining import _objective

    rng = np.random.default_rng(9)
    log_n, log_d = np.log(10 ** rng.uniform(6, 9, 30)), np.log(10 ** rng.uniform(9, 12, 30))
    log_l = np.log(sd.loss(np.exp(log_n), np.exp(log_d), sd.HOFFMANN_2022)) + rng.normal(0, 0.01, 30)
    theta = np.array([6.0, 6.0, 0.5, 0.35, 0.3])
    for delta in (1e-3, 1.0):  # Hoffmann's delta (mostly linear part) and a purely quadratic one
        value, grad = _objective(theta, log_n, log_d, log_l, delta)
        num = approx_fprime(theta, lambda t, delta=delta: _objective(t, log_n, log_d, log_l, delta)[0], 1e-7)
        assert np.allclose(grad, num, rtol=1e-4, atol=1e-7)
        # The Huber loss: quadratic below delta, linear above.
        r = (
            np.log(
                sd.loss(
                    np.exp(log_n), np.exp(log_d), sd.ChinchillaLaw(np.exp(0.5), np.exp(6.0), np.exp(6.0), 0.35, 0.3)
                )
            )
            - log_l
        )
        huber = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).sum()
        assert value == pytest.approx(huber, rel=1e-10)


def test_fit_chinchilla_resists_an_outlier():
    # The point of the Huber loss (delta = 1e-3 on log-loss residuals): one corrupted observation
    # barely moves the fit, whereas least squares (a huge delta) is dragged away.
    n, d = np.meshgrid(np.logspace(6, 9, 6), np.logspace(8, 11, 6))
    n, d = n.ravel(), d.ravel()
    l_obs = sd.loss(n, d, sd.HOFFMANN_2022)
    l_obs[7] *= 1.5
    grid = {"a": [5.0], "b": [5.0], "e": [0.0, 1.0], "nu": [0.3, 0.6], "delta": [0.3, 0.6]}  # 8 starts keep it fast
    huber = sd.fit_chinchilla(n, d, l_obs, grid=grid).law
    squares = sd.fit_chinchilla(n, d, l_obs, grid=grid, huber_delta=1e3).law
    clean = np.arange(n.size) != 7
    err_h = np.abs(sd.loss(n, d, huber) / sd.loss(n, d, sd.HOFFMANN_2022) - 1)[clean].max()
    err_s = np.abs(sd.loss(n, d, squares) / sd.loss(n, d, sd.HOFFMANN_2022) - 1)[clean].max()
    assert err_h < 2e-3
    assert err_s > 10 * err_h


def test_predicted_alpha_survives_overflowing_perplexity():
    # Far below the law's fitted range e^L overflows; the plane then clips instead of raising or NaN.
    a = sd.predicted_alpha([10.0, 1e8], 1e10, 10.0, 1e12)
    assert np.isfinite(a).all() and ((a == 0.0) | (a == 1.0) | ((a > 0) & (a < 1))).all()
    assert sd.predicted_alpha(10.0, 1e10, 10.0, 1e12) == 0.0  # draft perplexity infinite, A < 0
