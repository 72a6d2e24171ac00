"""Properties of the laws: limits, monotonicity, broadcasting, brute-force cross-checks, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import lambertw

import sdsl_lib as sd
from sdsl_lib.speculation import _neg_w_m1_of_neg_exp

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
        lambda g: -sd.throughput_per_flop(alpha, g, n, m), bounds=(0.0, 2000.0), method="bounded",
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
    assert sd.optimal_throughput(a, n_small, m_big) == pytest.approx(sd.throughput_per_flop(a, g, n_small, m_big).max(), rel=1e-9)


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
        (lambda: sd.alpha_plane(0.5, 10.0), r"draft_ppl must lie in \[1, inf\]"),
        (lambda: sd.alpha_from_tar([1, 2], [1.5]), "equal lengths"),
        (lambda: sd.alpha_from_tar([1, 2], [0.5, 1.5]), "tar must lie in"),
        (lambda: sd.alpha_from_tar([0, 2], [1.0, 1.5]), "gammas must lie in"),
        (lambda: sd.acceptance_from_probs([0.5, 0.5], [1.0]), "same shape"),
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
    from sdsl_lib.acceptance import DraftPplFit

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
    from sdsl_lib.constants import Table7Grid

    df = sd.nstar_grid(Table7Grid(1e8, 1e10, 200, 13e9, 110e9, 3, 1e12, 1e14, 2))
    assert len(df) == 3 * 2 * 2
    assert {"m_target", "d_draft", "d_target", "n_star", "throughput", "gamma_star", "alpha"} <= set(df.columns)
    # N* grows with the target.
    assert df.groupby("m_target")["n_star"].mean().is_monotonic_increasing
