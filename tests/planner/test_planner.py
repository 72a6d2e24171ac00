"""The planner and the roofline: point estimates are the library's, intervals behave, hardware sums check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sdsl_lib import paper
from sdsl_lib.laws.acceptance import fit_alpha_plane
from sdsl_lib.laws.constants import BESIROGLU_2024, TABLE3_PLANE
from sdsl_lib.laws.optimal import optimal_draft_size, predicted_alpha
from sdsl_lib.laws.pretraining import perplexity
from sdsl_lib.laws.roofline import speculative_tokens_per_second, step_time, target_only_tokens_per_second
from sdsl_lib.laws.speculation import optimal_lookahead, throughput_per_flop
from sdsl_lib.planner import plan
from sdsl_lib.planner.core import best_integer_lookahead, draft_grid
from sdsl_lib.planner.hardware import PRESETS, calibrate_from_timings, custom_spec, get_preset, load_cpu_measured
from sdsl_lib.planner.report import ESTIMATE_KEYS
from sdsl_lib.planner.uncertainty import bootstrap_planes, law_rows, load_pairs, paper_pairs, sample_laws

LLAMA = dict(m_target=70553706496, d_target=15e12, d_draft=2.4e12)
# A 70B target fits on one H200 only with 1-byte weights and a short context (in bf16 its weights
# alone fill the 141 GB): the hardware tests use that configuration.
FP8 = dict(bytes_per_param=1, context_tokens=512)


# --- point estimates are the library's ---------------------------------------------------------
def test_point_estimate_is_optimal_draft_size_exactly():
    p = plan(**LLAMA, draws=5)
    m = LLAMA["m_target"]
    lib = optimal_draft_size(m, 2.4e12, 15e12, n_grid=draft_grid(m))
    assert p.point("n_draft") == lib.n_star
    assert p.point("gamma_star") == lib.gamma_star
    assert p.point("alpha") == lib.alpha
    assert p.point("gain") == lib.gain
    # ... and the planner's wider grid finds the same optimum as the library's default (Table 7) grid.
    assert p.point("n_draft") == pytest.approx(optimal_draft_size(m, 2.4e12, 15e12).n_star, rel=1e-6)
    assert p.point("gamma_star") == optimal_lookahead(lib.alpha, lib.n_star, m)


def test_table5_reproduced_and_covered_by_the_interval():
    t5 = paper.table5().drop_duplicates(["target_params_M", "target_tokens_Dprime", "draft_tokens_D"])
    for row in t5.itertuples():
        p = plan(row.target_params_M, row.target_tokens_Dprime, row.draft_tokens_D, draws=60, seed=1)
        assert p.point("n_draft") == pytest.approx(row.n_star, rel=1e-4), row.target
        lo, hi = p.interval("n_draft")
        assert lo < row.n_star < hi, row.target
        # The interval is not degenerate: the laws' uncertainty moves N* by more than 10% either way.
        assert lo < 0.9 * row.n_star and hi > 1.1 * row.n_star


def test_best_integer_lookahead_matches_brute_force():
    rng = np.random.default_rng(3)
    alpha = rng.uniform(0.05, 0.95, 200)
    n = 10 ** rng.uniform(7, 9, 200)
    m = n * 10 ** rng.uniform(1, 3, 200)
    got = best_integer_lookahead(alpha, n, m, gamma_max=64)
    grid = np.arange(65)
    brute = np.argmax(throughput_per_flop(alpha[:, None], grid[None, :], n[:, None], m[:, None]), axis=1)
    np.testing.assert_array_equal(got, brute)


def test_one_law_per_row_matches_the_scalar_law():
    # The planner's draws evaluate Eq. 2 with one law per row; each row must be the library's law.
    n = np.array([[1e7, 1e8, 3e9]])
    draws = sample_laws(BESIROGLU_2024, 3, np.random.default_rng(0))
    rows = perplexity(n, 2e12, law_rows(draws))
    assert rows.shape == (3, 3)
    for i in range(3):
        law_i = BESIROGLU_2024.__class__(**{k: float(draws[k][i]) for k in ("E", "A", "B", "nu", "delta")})
        np.testing.assert_array_equal(rows[i], perplexity(n[0], 2e12, law_i))
    np.testing.assert_array_equal(perplexity(n, 2e12, law_rows(BESIROGLU_2024)), perplexity(n, 2e12))


def test_law_path_alpha_equals_predicted_alpha():
    p = plan(**LLAMA, uncertainty="none")
    m = LLAMA["m_target"]
    assert p.point("alpha") == pytest.approx(predicted_alpha(p.point("n_draft"), m, 2.4e12, 15e12), rel=1e-14)


# --- uncertainty -------------------------------------------------------------------------------
def test_bootstrap_with_unit_weights_is_the_least_squares_fit():
    pairs = paper_pairs()

    class Ones:  # a "generator" whose multinomial draw is every pair exactly once
        def multinomial(self, n, pvals, size):
            return np.ones((size, n), dtype=int)

    coef = bootstrap_planes(pairs, 2, Ones())
    fit = fit_alpha_plane(pairs["draft_ppl"], pairs["target_ppl"], pairs["alpha"]).plane
    np.testing.assert_allclose(coef[0], [fit.A, fit.B, fit.C], rtol=1e-10)
    centred = bootstrap_planes(pairs, 2, Ones(), center=TABLE3_PLANE)
    np.testing.assert_allclose(centred[0], [TABLE3_PLANE.A, TABLE3_PLANE.B, TABLE3_PLANE.C], rtol=1e-10)


def test_cluster_bootstrap_agrees_with_cluster_robust_errors_and_exceeds_table3():
    # Resampling targets (13 clusters of 10 pairs) against an independent estimate of the same
    # thing: statsmodels' cluster-robust (CR1) standard errors of the OLS plane.
    import statsmodels.api as sm

    pairs = paper_pairs()
    coef = bootstrap_planes(pairs, 4000, np.random.default_rng(0))
    se = coef.std(axis=0, ddof=1)
    design = np.column_stack([pairs["draft_ppl"], pairs["target_ppl"], np.ones(len(pairs))])
    groups = pd.factorize(pairs["target"])[0]
    robust = sm.OLS(pairs["alpha"].to_numpy(), design).fit(cov_type="cluster", cov_kwds={"groups": groups}).bse
    for got, ref in zip(se, robust):
        assert 0.6 * ref < got < 1.4 * ref  # 13 clusters: the bootstrap SE is itself noisy
    # Most of the residual variance lies between targets: the target slope's SE is several times
    # Table 3's classical one (which treats the 130 pairs as independent).
    assert se[1] > 2.0 * TABLE3_PLANE.B_se


def test_law_draws_positive_and_spread_like_the_standard_errors():
    d = sample_laws(BESIROGLU_2024, 4000, np.random.default_rng(0))
    for k in ("E", "A", "B", "nu", "delta"):
        assert (d[k] > 0).all()
    assert d["nu"].std() == pytest.approx(BESIROGLU_2024.nu_se, rel=0.1)
    # B's SE is 62% of B: truncation at 0 removes about 5% of the mass and shrinks the spread.
    assert d["B"].min() > 0 and d["B"].std() < BESIROGLU_2024.B_se


def test_seeded_runs_are_reproducible_and_seeds_differ():
    a = plan(**LLAMA, draws=50, seed=7)
    b = plan(**LLAMA, draws=50, seed=7)
    c = plan(**LLAMA, draws=50, seed=8)
    pd.testing.assert_frame_equal(a.draws, b.draws)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    assert not np.allclose(a.draws["n_draft"], c.draws["n_draft"])
    assert a.point("n_draft") == c.point("n_draft")  # the point estimate does not depend on the seed


def test_uncertainty_modes_nest():
    spread = {}
    for mode in ("plane", "law", "all"):
        n = plan(**LLAMA, draws=400, seed=0, uncertainty=mode).draws["n_draft"]
        spread[mode] = np.log(n).std()
    lo, hi = plan(**LLAMA, draws=400, uncertainty="none").interval("n_draft")
    assert lo == hi
    # Two independent sources add (roughly) in variance; the spread of log N* shows it more stably
    # than the interval's end points, which move with Monte-Carlo noise.
    assert 0 < spread["plane"] < spread["all"]
    assert 0 < spread["law"] < spread["all"] * 1.05
    assert spread["all"] ** 2 == pytest.approx(spread["plane"] ** 2 + spread["law"] ** 2, rel=0.25)


def test_measured_alpha_path():
    p = plan(13e9, n_draft=125e6, alpha=0.6, uncertainty="all", draws=20)
    assert p.alpha_source == "measured (given)"
    assert p.point("gamma_star") == optimal_lookahead(0.6, 125e6, 13e9)
    assert p.interval("alpha") == (0.6, 0.6)  # no standard error: taken as exact
    q = plan(13e9, n_draft=125e6, alpha=0.6, alpha_se=0.03, draws=400)
    lo, hi = q.interval("alpha")
    assert 0.6 - 0.1 < lo < 0.6 < hi < 0.6 + 0.1
    assert "draft_ppl" not in q.estimates.index


def test_given_perplexities_use_the_plane_directly():
    p = plan(13e9, n_draft=125e6, draft_ppl=20.0, target_ppl=11.0, uncertainty="none")
    expected = TABLE3_PLANE.A * 20 + TABLE3_PLANE.B * 11 + TABLE3_PLANE.C
    assert p.point("alpha") == pytest.approx(expected, rel=1e-14)
    assert "given (measured) perplexities" in p.alpha_source


def test_measured_target_perplexity_with_draft_search():
    p = plan(70e9, d_draft=2.4e12, target_ppl=10.0, uncertainty="none")
    assert "given target perplexity" in p.alpha_source
    # Brute force over a fine grid agrees with the refined search.
    n = np.logspace(7, 10, 20001)
    a = np.clip(TABLE3_PLANE.A * perplexity(n, 2.4e12) + TABLE3_PLANE.B * 10.0 + TABLE3_PLANE.C, 0, 1)
    from sdsl_lib.laws.speculation import optimal_throughput

    best = n[np.argmax(optimal_throughput(a, n, 70e9))]
    assert p.point("n_draft") == pytest.approx(best, rel=1e-3)


def test_user_pairs(tmp_path):
    df = paper_pairs().iloc[::3]
    path = tmp_path / "pairs.csv"
    df.to_csv(path, index=False)
    p = plan(**LLAMA, pairs=path, draws=30)
    fit = fit_alpha_plane(df["draft_ppl"], df["target_ppl"], df["alpha"]).plane
    assert p.inputs["plane"]["A"] == pytest.approx(fit.A)
    lib = optimal_draft_size(LLAMA["m_target"], 2.4e12, 15e12, n_grid=draft_grid(LLAMA["m_target"]), plane=fit)
    assert p.point("n_draft") == lib.n_star


@pytest.mark.parametrize(
    "text, message",
    [
        ("draft_ppl,target_ppl\n12,10\n", "missing alpha"),
        ("draft_ppl,target_ppl,alpha\n12,10,0.5\n13,x,0.5\n", "line 3"),
        ("draft_ppl,target_ppl,alpha\n12,10,0.5\n13,11,0.5\n", "at least 4"),
        ("draft_ppl,target_ppl,alpha\n12,10,1.5\n13,11,0.5\n14,12,.5\n15,13,.5\n", "[0, 1]"),
        ("draft_ppl,target_ppl,alpha\n0.5,10,0.5\n13,11,0.5\n14,12,.5\n15,13,.5\n", ">= 1"),
    ],
)
def test_bad_pairs_files(tmp_path, text, message):
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match="pairs file") as err:
        load_pairs(path)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(m_target=-1, d_target=1e12, d_draft=1e12), "m_target"),
        (dict(m_target=7e9, d_target=1e12, d_draft=0), "d_draft"),
        (dict(m_target=7e9, n_draft=8e9, alpha=0.5), "n_draft"),
        (dict(m_target=7e9, n_draft=1e8, alpha=1.0), "alpha"),
        (dict(m_target=7e9, d_target=1e12, d_draft=1e12, draws=0), "draws"),
        (dict(m_target=7e9, d_target=1e12), "d_draft"),
        (dict(m_target=7e9, alpha=0.5), "alpha"),
        (dict(m_target=7e9, d_target=1e12, d_draft=1e12, uncertainty="some"), "uncertainty"),
        (dict(m_target=7e9, d_target=1e12, d_draft=1e12, hardware="h300"), "hardware"),
        (dict(m_target=7e9, d_target=1e12, d_draft=1e12, batch_size=8), "batch_size"),
    ],
)
def test_plan_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        plan(**kwargs)


# --- hardware ----------------------------------------------------------------------------------
def test_step_times_by_hand_for_the_h200_preset():
    h = get_preset("h200")  # documented: 4.8 TB/s, 989 TFLOP/s dense bf16, 2 bytes/param, 0.5 ms
    m = 70e9
    # Batch 1, one token: 140 GB / 4.8 TB/s = 29.1667 ms, compute 0.1416 ms; + 0.5 ms.
    assert step_time(m, 1, 1, h) == pytest.approx(140e9 / 4.8e12 + 0.5e-3, rel=1e-12)
    # Verifying 8 tokens at batch 64: 2 * 70e9 * 512 / 989e12 = 72.47 ms > 29.17 ms: compute-bound.
    assert step_time(m, 8, 64, h) == pytest.approx(2 * 70e9 * 8 * 64 / 989e12 + 0.5e-3, rel=1e-12)
    # The ridge: 989e12 * 2 / (2 * 4.8e12) = 206 tokens per step (docs/field_notes.md: ~206 FLOP/byte).
    assert h.ridge_tokens == pytest.approx(989e12 / 4.8e12)
    # A 300M draft step: 0.6 GB / 4.8 TB/s = 0.125 ms + 0.5 ms overhead.
    assert step_time(3e8, 1, 1, h) == pytest.approx(0.6e9 / 4.8e12 + 0.5e-3, rel=1e-12)


def test_speculative_tokens_per_second_by_hand():
    h = get_preset("a100")  # 2.039 TB/s, 312 TFLOP/s, 2 bytes/param, 0.5 ms
    alpha, gamma, n, m = 0.7, 5, 2e8, 3e10
    t_draft = 2 * n / 2.039e12 + 0.5e-3
    t_verify = max(2 * m / 2.039e12, 2 * m * 6 / 312e12) + 0.5e-3
    tokens = (1 - alpha**6) / (1 - alpha)
    assert speculative_tokens_per_second(alpha, gamma, n, m, h) == pytest.approx(
        tokens / (gamma * t_draft + t_verify), rel=1e-12
    )
    assert speculative_tokens_per_second(alpha, 0, n, m, h) == pytest.approx(
        target_only_tokens_per_second(m, h), rel=1e-12
    )


def test_presets_match_their_datasheet_numbers():
    assert (PRESETS["h100"].bandwidth_bytes_per_s, PRESETS["h100"].peak_flops) == (3.35e12, 989e12)
    assert (PRESETS["h200"].bandwidth_bytes_per_s, PRESETS["h200"].peak_flops) == (4.8e12, 989e12)
    assert (PRESETS["a100"].bandwidth_bytes_per_s, PRESETS["a100"].peak_flops) == (2.039e12, 312e12)
    for spec in PRESETS.values():
        assert "datasheet" in spec.source
    with pytest.raises(ValueError, match="hardware"):
        get_preset("h300")


def test_cpu_calibration_round_trip(tmp_path):
    truth = custom_spec(12, 0.08, 4, 1.2)
    p, t = np.meshgrid([1.3e6, 5.8e6, 2.1e7], np.arange(1, 49))
    secs = step_time(p.ravel(), t.ravel(), 1, truth) * np.exp(np.random.default_rng(0).normal(0, 0.01, p.size))
    path = tmp_path / "cost_calibration.csv"
    pd.DataFrame(
        {
            "model": [f"m{int(x)}" for x in p.ravel()],
            "role": "draft",
            "n_params": p.ravel(),
            "n_new_tokens": t.ravel(),
            "prefix_len_tokens": 16,
            "latency_median_s": secs,
            "latency_p025_s": secs,
            "latency_p975_s": secs,
            "n_repeats": 1,
            "latency_rel_one_token": 1.0,
        }
    ).to_csv(path, index=False)
    spec = load_cpu_measured(path)
    assert spec.bandwidth_bytes_per_s == pytest.approx(12e9, rel=0.05)
    assert spec.peak_flops == pytest.approx(0.08e12, rel=0.05)
    assert spec.overhead_s == pytest.approx(1.2e-3, rel=0.05)
    assert load_cpu_measured(tmp_path / "absent.csv").source.startswith("documented defaults")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns"):
        load_cpu_measured(bad)
    with pytest.raises(ValueError, match="at least 3"):
        calibrate_from_timings([1e6], [1], [1e-3])


def test_hardware_plan_latency_optimum_beats_the_flop_optimum_and_batch_kills_speculation():
    p = plan(**LLAMA, draws=40, hardware="h200", batch_sweep=True, **FP8)
    hw = p.hardware
    assert hw.flop_optimal["n_draft"] == p.point("n_draft")
    # The latency optimum is a maximum over N and gamma, so it is at least the FLOP-optimal draft's.
    assert hw.latency_optimal["tokens_per_s"] >= hw.flop_optimal["tokens_per_s"] * (1 - 1e-12)
    sweep = hw.batch_sweep
    assert list(sweep["batch_size"]) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    # Past the ridge (103 tokens/step at 1 byte/param) verification is no longer free: the best lookahead
    # shrinks with batch size and, at some batch, drafting stops paying.
    assert sweep["latency_optimal_gamma"].is_monotonic_decreasing
    assert hw.stops_paying_at_batch is not None
    row = sweep.set_index("batch_size").loc[hw.stops_paying_at_batch]
    assert row["latency_optimal_speedup"] == pytest.approx(1.0)
    assert (sweep.loc[sweep["batch_size"] < hw.stops_paying_at_batch, "latency_optimal_speedup"] > 1).all()
    lo = hw.intervals.set_index("quantity").loc["latency_optimal_speedup"]
    assert lo["lower"] <= lo["point"] <= lo["upper"]


def test_overhead_lowers_the_best_lookahead():
    # A per-step overhead makes each draft step dearer, so the best lookahead cannot grow with it.
    gammas = []
    for ms in (0.0, 2.0, 20.0):
        p = plan(**LLAMA, uncertainty="none", hardware=custom_spec(3350, 989, 2, ms))
        gammas.append(p.hardware.flop_optimal["gamma"])
    assert gammas[0] >= gammas[1] >= gammas[2]
    assert gammas[0] > gammas[2]


def test_to_dict_has_documented_keys_and_is_strict_json():
    import json

    d = plan(**LLAMA, draws=30, hardware="h200", **FP8).to_dict()
    assert set(d) == {"inputs", "paths", "uncertainty", "estimates", "hardware", "notes"}
    assert set(d["estimates"]) == set(ESTIMATE_KEYS)
    json.dumps(d, allow_nan=False)


# --- audit additions ------------------------------------------------------------------------------
def test_table5_throughput_is_covered_by_the_interval():
    # Table 5 prints T(N*) as well as N*: the interval of the tokens per FLOP must cover it too.
    t5 = paper.table5().drop_duplicates(["target_params_M", "target_tokens_Dprime", "draft_tokens_D"])
    for row in t5.itertuples():
        p = plan(row.target_params_M, row.target_tokens_Dprime, row.draft_tokens_D, draws=60, seed=2)
        printed = row.throughput_at_n_star_tokens_per_flop
        assert p.point("throughput_tokens_per_flop") == pytest.approx(printed, rel=5e-3), row.target
        lo, hi = p.interval("throughput_tokens_per_flop")
        assert lo < printed < hi, row.target
        assert lo < p.point("throughput_tokens_per_flop") < hi


def test_hardware_plan_tokens_per_second_by_hand():
    # The planner's FLOP-optimal row on an H100 (1-byte weights, 512 tokens of context), recomputed by
    # hand from the preset's datasheet numbers and the documented KV shape (P = 12 L d^2, d = 128 L).
    p = plan(**LLAMA, uncertainty="none", hardware="h100", **FP8)
    fo = p.hardware.flop_optimal
    n, m, a = fo["n_draft"], LLAMA["m_target"], fo["alpha"]
    beta, pi, b, t0 = 3.35e12, 989e12, 1.0, 0.5e-3

    def kv(params):  # bytes per sequence: 2 (K, V) x layers x KV heads x 128 x 1 byte x 512 tokens
        layers = round((params / (12 * 128**2)) ** (1 / 3))
        kv_heads = max(1, round(max(1, round(layers * 128 / 128)) / 8))
        return 2 * layers * kv_heads * 128 * b * 512

    def tokens_per_s(gamma):
        t_draft = max((b * n + kv(n)) / beta, 2 * n / pi) + t0
        t_verify = max((b * m + kv(m)) / beta, 2 * m * (gamma + 1) / pi) + t0
        return (1 - a ** (gamma + 1)) / (1 - a) / (gamma * t_draft + t_verify)

    by_hand = [tokens_per_s(g) for g in range(65)]
    assert kv(m) == p.hardware.kv_cache["target_bytes_per_sequence"] == 2 * 71 * 9 * 128 * 512
    assert fo["gamma"] == int(np.argmax(by_hand))
    assert fo["tokens_per_s"] == pytest.approx(max(by_hand), rel=1e-12)
    t_target = (b * m + kv(m)) / beta + t0
    assert p.hardware.target_only_tokens_per_s == pytest.approx(1 / t_target, rel=1e-12)
    assert fo["speedup"] == pytest.approx(max(by_hand) * t_target, rel=1e-12)


def test_thousand_draws_take_a_few_seconds():
    import time

    t0 = time.perf_counter()
    p = plan(**LLAMA, draws=1000, seed=0, hardware="h200", **FP8)
    elapsed = time.perf_counter() - t0
    assert len(p.draws) == 1000
    # About 0.15 s (FLOP model) and 0.7 s (with hardware) on the project's 2 cores; the bound leaves
    # room for a loaded machine and still fails if the draws stop being vectorised.
    assert elapsed < 10.0, f"1,000 draws took {elapsed:.1f} s"


def test_pairs_dataframe_is_checked_like_a_file():
    flat = pd.DataFrame({"draft_ppl": [12, 13, 14, 15], "target_ppl": [10, 11, 12, 13], "alpha": [0.5, 0.6, 0.5, 0.4]})
    with pytest.raises(ValueError, match="lockstep"):
        plan(**LLAMA, pairs=flat, draws=5)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        plan(**LLAMA, pairs=flat.assign(alpha=[0.5, 2.0, 0.5, 0.4], target_ppl=[10, 9, 12, 11]), draws=5)


def test_implausible_inputs_are_refused_or_flagged():
    # 1,000 target tokens: Eq. 8 gives an astronomic target perplexity, at which the plane would
    # predict alpha > 1 (formerly clipped to a confident 1.0): refused, naming the target's data.
    with pytest.raises(ValueError, match=r"^d_target .* alpha = .* > 1"):
        plan(1e9, 1e3, 1e3, draws=20)
    with pytest.raises(ValueError, match=r"^target_ppl .* > 1"):
        plan(13e9, n_draft=125e6, draft_ppl=20.0, target_ppl=60.0)
    # 1,000 draft tokens: every draft is hopeless, the plane goes below 0 and is clipped to 0: flagged.
    p = plan(70e9, 15e12, 1e3, draws=20)
    assert any("below 0" in n for n in p.notes) and p.point("alpha") == 0.0
    assert p.point("gamma_star") == 0.0
    assert not any("below 0" in n for n in plan(**LLAMA, draws=5).notes)


def test_percentiles_handle_infinite_draws():
    from sdsl_lib.planner.uncertainty import percentiles as _percentiles

    lo, hi = _percentiles(np.array([1.0, 2.0, 3.0, np.inf]), [0.025, 0.975])
    assert lo == 1.0 and hi == np.inf
    np.testing.assert_allclose(_percentiles(np.arange(101.0), [0.025, 0.975]), [2.5, 97.5])
