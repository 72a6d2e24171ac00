"""Honest intervals: coverage of a known truth, no interval from too few draws, the flatness note,
the memory check and the one set of input rules shared by Python and the CLI."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from sdsl_lib.planner import PlanRequest, RequestError, plan
from sdsl_lib.planner.request import MIN_DRAWS, OPTIONS

LLAMA = dict(m_target=70553706496, d_target=15e12, d_draft=2.4e12)
TRUE_PLANE = (-0.0067, 0.013, 0.642)


def _paper_like(rng, targets=13, drafts=10, between=0.03, within=0.015):
    """Pairs like Tables 1-2: every target has its own perplexity and its own offset from the plane."""
    y = np.repeat(rng.uniform(9.5, 15.6, targets), drafts)
    x = rng.uniform(12.6, 29.8, targets * drafts)
    a, b, c = TRUE_PLANE
    alpha = a * x + b * y + c + np.repeat(rng.normal(0, between, targets), drafts) + rng.normal(0, within, x.size)
    return pd.DataFrame(
        {"draft_ppl": x, "target_ppl": y, "alpha": alpha, "target": np.repeat(np.arange(targets), drafts)}
    )


def test_alpha_interval_covers_a_new_pair_in_synthetic_paper_like_data():
    # Rule stated before the data: the planner's 95% interval for alpha must contain the alpha of a
    # new (draft, target) pair drawn from the same process (a new target's offset plus the pair's
    # scatter) in at least 90% of 200 synthetic data sets.
    t0 = time.perf_counter()
    rng = np.random.default_rng(2024)
    x0, y0 = 20.0, 12.0
    hits, hits_mean = [], []
    for k in range(200):
        pairs = _paper_like(rng)
        truth_mean = TRUE_PLANE[0] * x0 + TRUE_PLANE[1] * y0 + TRUE_PLANE[2]
        truth = truth_mean + rng.normal(0, 0.03) + rng.normal(0, 0.015)
        p = plan(13e9, n_draft=125e6, draft_ppl=x0, target_ppl=y0, pairs=pairs, uncertainty="plane", draws=200, seed=k)
        lo, hi = p.interval("alpha")
        hits.append(lo <= truth <= hi)
        hits_mean.append(lo <= truth_mean <= hi)
    coverage = np.mean(hits)
    assert 0.90 <= coverage <= 0.995, coverage
    assert np.mean(hits_mean) >= 0.95  # the plane's own value is covered a fortiori
    assert time.perf_counter() - t0 < 20.0


def test_too_few_draws_give_a_warning_and_no_interval():
    p = plan(**LLAMA, draws=MIN_DRAWS - 1)
    assert any("fewer than" in n and "only point estimates" in n for n in p.notes)
    assert p.uncertainty["draws"] == 0 and "fewer than" in p.uncertainty["interval"]
    lo, hi = p.interval("n_draft")
    assert np.isnan(lo) and np.isnan(hi)
    assert p.point("n_draft") == plan(**LLAMA, draws=MIN_DRAWS).point("n_draft")
    q = plan(**LLAMA, draws=MIN_DRAWS)
    lo, hi = q.interval("n_draft")
    assert lo <= q.point("n_draft") <= hi
    d = p.to_dict()
    assert d["estimates"]["alpha"]["lower"] is None  # strict JSON: no interval is null, not a number


def test_flatness_note_is_computed_for_the_plan_at_hand():
    note = next(n for n in plan(**LLAMA, uncertainty="none").notes if n.startswith("the optimum is flat"))
    # Brute force: the range of N whose Eq. 9 throughput is within 0.1% of the optimum.
    from sdsl_lib.laws.optimal import predicted_throughput

    n = np.logspace(6, np.log10(0.5 * LLAMA["m_target"]), 200_001)
    t = predicted_throughput(n, LLAMA["m_target"], LLAMA["d_draft"], LLAMA["d_target"])
    inside = n[t >= 0.999 * t.max()]
    lo, hi = (float(v) for v in note.split("within 0.1% for N in [")[1].split("]")[0].split(", "))
    assert lo == pytest.approx(inside.min(), rel=2e-3) and hi == pytest.approx(inside.max(), rel=2e-3)
    # Another plan, another range: the note is not a fixed sentence.
    other = next(n for n in plan(13e9, 180e9, 180e9, uncertainty="none").notes if n.startswith("the optimum"))
    assert other != note


def test_memory_check_refuses_impossible_configurations():
    with pytest.raises(RequestError, match="^hardware h200 cannot hold this plan") as err:
        plan(**LLAMA, hardware="h200", batch_size=256, uncertainty="none")
    assert err.value.field == "hardware"
    with pytest.raises(RequestError, match="^batch_size 256 does not fit") as err:
        plan(**LLAMA, hardware="h200", bytes_per_param=1, batch_size=256, uncertainty="none")
    assert "KV caches of 2048 tokens" in str(err.value)
    ok = plan(**LLAMA, hardware="h200", bytes_per_param=1, batch_size=64, uncertainty="none").hardware
    assert ok.memory["needed_bytes"] <= ok.memory["available_bytes"] == 141e9
    # A longer context costs bandwidth: the target alone slows down.
    short = plan(**LLAMA, hardware="h200", bytes_per_param=1, context_tokens=128, uncertainty="none").hardware
    assert short.target_only_tokens_per_s > ok.target_only_tokens_per_s / 64  # per-batch normalised elsewhere
    long = plan(**LLAMA, hardware="h200", bytes_per_param=1, context_tokens=8192, uncertainty="none").hardware
    assert long.target_only_tokens_per_s < short.target_only_tokens_per_s


def test_overhead_effect_is_reported():
    hw = plan(**LLAMA, hardware="h200", bytes_per_param=1, uncertainty="none").hardware
    free = hw.overhead_effect["without_overhead"]
    assert free["speedup"] > hw.latency_optimal["speedup"]  # the overhead can only cost
    assert free["gamma"] >= hw.latency_optimal["gamma"]
    assert any(n.startswith("per-step overhead 0.5 ms") for n in hw.notes)


def test_one_set_of_rules_for_python_and_the_cli():
    # The same broken rule, rendered with argument names or with options: no message rewriting.
    with pytest.raises(RequestError) as err:
        PlanRequest(7e9, 1e12, 1e12, n_draft=8e9)
    assert err.value.field == "n_draft"
    assert str(err.value).startswith("n_draft must be smaller than m_target")
    assert err.value.render(OPTIONS).startswith("--draft-params must be smaller than --target-params")
    assert set(OPTIONS) <= {f for f in PlanRequest.__dataclass_fields__}
    req = PlanRequest(7e9, 1e12, 1e12)
    assert req.n_max == 3.5e9 and req.spec is None
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        req.draws = 5


def test_leave_one_target_out_residuals_by_brute_force():
    from sdsl_lib.laws.acceptance import alpha_plane, fit_alpha_plane
    from sdsl_lib.planner.uncertainty import paper_pairs, plane_residuals

    pairs = paper_pairs()
    got = plane_residuals(pairs)
    for target in pairs["target"].unique()[:4]:
        out = pairs["target"] == target
        rest = pairs[~out]
        plane = fit_alpha_plane(rest["draft_ppl"], rest["target_ppl"], rest["alpha"]).plane
        ref = pairs.loc[out, "alpha"] - alpha_plane(pairs.loc[out, "draft_ppl"], pairs.loc[out, "target_ppl"], plane)
        np.testing.assert_allclose(got[out.to_numpy()], ref, rtol=1e-9, atol=1e-12)
    # Held-out errors are larger than in-sample ones (the fit has not seen the target).
    x, y, a = (pairs[c].to_numpy() for c in ("draft_ppl", "target_ppl", "alpha"))
    inside = a - alpha_plane(x, y, fit_alpha_plane(x, y, a).plane)
    assert np.std(got) > np.std(inside)
