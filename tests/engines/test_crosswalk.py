"""The crosswalk: counters -> every engine's acceptance numbers and Leviathan's alpha."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from sdsl_lib.engines.crosswalk import (
    NGRAM_NOTE,
    SpecCounters,
    acceptance_report,
    alpha_across_lookaheads,
    alpha_from_mean_accepted,
    counters_from_accept_counts,
    from_hf_assisted,
    from_llamacpp,
    from_sglang,
    from_trtllm,
    iid_departure_test,
)
from sdsl_lib.engines.parsing import dump_metrics, parse_metrics_dump, parse_prometheus
from sdsl_lib.laws.acceptance import tar_model


def simulate_iid(alpha: float, k: int, n: int, seed: int) -> np.ndarray:
    """Accepted drafts per step under the i.i.d. model: leading successes of k Bernoulli(alpha) trials."""
    rng = np.random.default_rng(seed)
    trials = rng.random((n, k)) < alpha
    return np.cumprod(trials, axis=1).sum(axis=1)


def prom_text(c: SpecCounters, engine: str = "0") -> str:
    lab = f'engine="{engine}",model_name="m"'
    lines = [
        "# TYPE vllm:spec_decode_num_drafts_total counter",
        f"vllm:spec_decode_num_drafts_total{{{lab}}} {float(c.num_drafts)}",
        f"vllm:spec_decode_num_drafts_created{{{lab}}} 1.7e9",
        f"vllm:spec_decode_num_draft_tokens_total{{{lab}}} {float(c.num_draft_tokens)}",
        f"vllm:spec_decode_num_accepted_tokens_total{{{lab}}} {float(c.accepted)}",
    ]
    lines += [
        f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{{lab},position="{i}"}} {float(v)}'
        for i, v in enumerate(c.accepted_per_pos)
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("alpha,k", [(0.3, 2), (0.7, 4), (0.9, 6)])
def test_synthetic_iid_recovers_alpha(alpha, k):
    c = counters_from_accept_counts(simulate_iid(alpha, k, 40_000, seed=k), k)
    rep = acceptance_report(c)
    assert rep["alpha_ci_lower"] < alpha < rep["alpha_ci_upper"]
    assert abs(rep["alpha"] - alpha) < 0.01
    # Under i.i.d. the conditional rates agree with alpha and the pooled MLE agrees with the inversion.
    assert np.allclose([r for r in rep["conditional_rate"] if r is not None], alpha, atol=0.02)
    assert abs(rep["iid_test"]["alpha_mle"] - rep["alpha"]) < 0.01
    assert rep["iid_test"]["p_value"] > 1e-3
    assert rep["mean_acceptance_length"] == pytest.approx(1 + c.accepted / c.num_drafts)
    assert rep["per_position_rate"][0] == pytest.approx(c.accepted_per_pos[0] / c.num_drafts)


def test_alpha_interval_covers_at_nominal_rate():
    alpha, k, hits, reps = 0.6, 3, 0, 300
    for s in range(reps):
        rep = acceptance_report(counters_from_accept_counts(simulate_iid(alpha, k, 400, seed=1000 + s), k))
        hits += rep["alpha_ci_lower"] <= alpha <= rep["alpha_ci_upper"]
    # 95% nominal; binomial noise over 300 repetitions is about +-2.5 points.
    assert 0.90 <= hits / reps <= 0.99


def test_inversion_is_the_inverse_of_eq12_minus_one():
    for k in (1, 2, 5, 10):
        for a in (0.01, 0.2, 0.5, 0.8, 0.99):
            assert alpha_from_mean_accepted(float(tar_model(a, k, counts_bonus=False)), k) == pytest.approx(a, abs=1e-9)
    assert alpha_from_mean_accepted(0.0, 3) == 0.0 and alpha_from_mean_accepted(3.0, 3) == 1.0
    with pytest.raises(ValueError, match="mean_accepted"):
        alpha_from_mean_accepted(3.5, 3)


def test_k1_alpha_is_draft_acceptance_rate():
    # With one draft token the model says E[a] = alpha: the inversion must return accepted / drafts.
    c = counters_from_accept_counts(simulate_iid(0.42, 1, 5000, seed=3), 1)
    assert acceptance_report(c)["alpha"] == pytest.approx(c.accepted / c.num_drafts, abs=1e-9)


def test_across_lookaheads_uses_tar_inverse():
    cs = [counters_from_accept_counts(simulate_iid(0.65, k, 30_000, seed=k), k) for k in (1, 2, 4, 6)]
    fit = alpha_across_lookaheads([1, 2, 4, 6], cs)
    # App. B.2's interval reflects the residual spread across lookaheads only (4 points here), so it
    # is not a coverage guarantee; the point estimate is what must be right.
    assert abs(fit["alpha"] - 0.65) < 0.01 and fit["ci95_lower"] <= fit["alpha"] <= fit["ci95_upper"]


def test_iid_test_detects_decaying_positions():
    rng = np.random.default_rng(7)
    kappa = np.array([0.9, 0.6, 0.3])  # conditional rates fall with position: not i.i.d.
    a = np.cumprod(rng.random((5000, 3)) < kappa, axis=1).sum(axis=1)
    t = acceptance_report(counters_from_accept_counts(a, 3))["iid_test"]
    assert t["p_value"] < 1e-6 and t["dof"] == 2


def test_g_statistic_matches_binomial_likelihood_ratio():
    pos, d = (700, 480, 300), 1000
    t = iid_departure_test(pos, d)
    reached, acc = np.array([d, *pos[:-1]]), np.array(pos)
    p0 = acc.sum() / reached.sum()
    ll1 = stats.binom.logpmf(acc, reached, acc / reached).sum()
    ll0 = stats.binom.logpmf(acc, reached, p0).sum()
    assert t["statistic"] == pytest.approx(2 * (ll1 - ll0), rel=1e-9)
    assert t["p_value"] == pytest.approx(stats.chi2.sf(2 * (ll1 - ll0), 2), rel=1e-6)


def test_selfdraft_all_accepted_is_degenerate_not_an_error():
    c = SpecCounters(50, 150, 150, (50, 50, 50))
    rep = acceptance_report(c)
    assert rep["alpha"] == 1.0 and rep["per_position_rate"] == [1.0, 1.0, 1.0]
    assert rep["iid_test"]["p_value"] == 1.0 and rep["mean_acceptance_length"] == 4.0


def test_prometheus_and_dump_agree_and_engines_sum():
    c = counters_from_accept_counts(simulate_iid(0.5, 3, 200, seed=1), 3)
    text = prom_text(c, "0") + prom_text(c, "1")
    both = parse_prometheus(text)
    assert (both.num_drafts, both.accepted) == (2 * c.num_drafts, 2 * c.accepted)
    assert both.accepted_per_pos == tuple(2 * v for v in c.accepted_per_pos)

    class M:  # duck-types vllm.v1.metrics.reader.Counter / Vector
        def __init__(self, name, **kw):
            self.name, self.labels = name, {"engine": "0"}
            self.__dict__.update(kw)

    metrics = [
        M("vllm:spec_decode_num_drafts", value=c.num_drafts),
        M("vllm:spec_decode_num_draft_tokens", value=c.num_draft_tokens),
        M("vllm:spec_decode_num_accepted_tokens", value=c.accepted),
        M("vllm:spec_decode_num_accepted_tokens_per_pos", values=list(c.accepted_per_pos)),
        M("vllm:num_requests_running", value=0.0),
    ]
    dump = json.loads(json.dumps(dump_metrics(metrics)))
    assert parse_metrics_dump(dump) == parse_prometheus(prom_text(c))


def test_snapshot_subtraction():
    before = SpecCounters(10, 30, 12, (6, 4, 2))
    after = SpecCounters(25, 75, 30, (14, 10, 6))
    d = after - before
    assert (d.num_drafts, d.num_draft_tokens, d.accepted, d.accepted_per_pos) == (15, 45, 18, (8, 6, 4))
    with pytest.raises(ValueError, match="fell from"):
        before - after


@pytest.mark.parametrize(
    "text,match",
    [
        ("vllm:spec_decode_num_drafts_total 3\n", "missing"),
        ("vllm:spec_decode_num_drafts_total{engine=0} 3\n", "malformed label"),
        ("vllm:spec_decode_num_drafts_total 2.5\n", "integer"),
        ('vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0"} 3\n', "position"),
    ],
)
def test_malformed_prometheus_raises(text, match):
    with pytest.raises(ValueError, match=match):
        parse_prometheus(text)


def test_inconsistent_counters_raise():
    with pytest.raises(ValueError, match="sum to accepted"):
        SpecCounters(10, 30, 12, (6, 4, 1))
    with pytest.raises(ValueError, match="non-increasing"):
        SpecCounters(10, 30, 12, (4, 6, 2))
    with pytest.raises(ValueError, match="exceed num_draft_tokens"):
        SpecCounters(10, 3, 12)


def test_ngram_note_and_variable_length_note():
    c = SpecCounters(10, 25, 12, (6, 4, 2), method="ngram")
    notes = acceptance_report(c)["notes"]
    assert NGRAM_NOTE in notes and any("variable length" in n for n in notes)


def test_converters_keep_each_bonus_convention():
    # SGLang counts the bonus in its accept length: 100 verify steps, 250 tokens incl. bonus, 3 drafts/round.
    sg = acceptance_report(from_sglang(250, 100, 3), k=3)
    assert sg["mean_acceptance_length"] == pytest.approx(2.5)  # == SGLang's "accept len"
    assert sg["draft_acceptance_rate"] == pytest.approx(150 / 300)  # == SGLang's "accept rate"
    assert sg["alpha"] == pytest.approx(alpha_from_mean_accepted(1.5, 3))
    # TRT-LLM excludes it from numAcceptedTokens; acceptanceLength = 1 + A/D.
    tr = acceptance_report(from_trtllm(400, 220, 100), k=4)
    assert tr["mean_acceptance_length"] == pytest.approx(3.2)
    # llama.cpp gives no draft count: rate yes, alpha no.
    ll = acceptance_report(from_llamacpp(8636, 7217))
    assert ll["draft_acceptance_rate"] == pytest.approx(7217 / 8636) and ll["alpha"] is None
    # HF: n_matches excludes the bonus; each iteration emits n_matches + 1 tokens.
    hf = from_hf_assisted([0, 2, 3, 1], [3, 3, 3, 3])
    assert (hf.num_drafts, hf.accepted, hf.accepted_per_pos) == (4, 6, (3, 2, 1))
    assert acceptance_report(hf)["mean_acceptance_length"] == pytest.approx((1 + 3 + 4 + 2) / 4)
