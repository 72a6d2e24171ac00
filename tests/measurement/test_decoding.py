"""Tests of the speculative decoding engine (sdsl_lib.measurement.decoding).

Tiny random-weight Llama models (no training): exactness is a property of the algorithm, not of
how good the models are. Greedy exactness is checked token for token; sampling exactness with a
chi-square goodness-of-fit test against the target's joint distribution computed by enumeration.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from scipy import stats as sps

from sdsl_lib.measurement.decoding import (
    AutoregressiveStats,
    SpeculativeStats,
    autoregressive_generate,
    speculative_generate,
)

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models gain nothing from intra-op threads, and spinning threads on a shared 2-core
    # machine make every forward several times slower.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_llama(seed, vocab=32, hidden=16, layers=2, init=0.5):
    """A seeded random-weight Llama; ``init`` (weight std) sets how peaked its distributions are."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        initializer_range=init,
        # no special tokens: nothing may stop generate() early
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    return LlamaForCausalLM(cfg).eval()


def near_draft(target, seed, noise=0.15):
    """A different, smaller model that agrees often with ``target``: its first layer only, noisy."""
    draft = copy.deepcopy(target)
    draft.model.layers = draft.model.layers[:1]
    draft.config.num_hidden_layers = 1
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in draft.parameters():
            param.add_(noise * param.std() * torch.randn(param.shape, generator=gen))
    return draft.eval()


@pytest.fixture(scope="module")
def target():
    return tiny_llama(0)


@pytest.fixture(scope="module")
def drafts(target):
    return {"near": near_draft(target, seed=1), "far": tiny_llama(2, hidden=8, layers=1)}


def random_prompts(count, vocab, seed):
    rng = np.random.default_rng(seed)
    return [torch.as_tensor(rng.integers(0, vocab, size=rng.integers(1, 9))) for _ in range(count)]


def hf_greedy(model, prompt, max_new_tokens):
    config = copy.deepcopy(model.generation_config)
    config.do_sample = False
    config.max_new_tokens = max_new_tokens
    config.eos_token_id = None
    out = model.generate(prompt.view(1, -1), generation_config=config)
    return out[0, prompt.numel() :]


# --------------------------------------------------------------------------------------------------
# 1 + 6. Greedy exactness
# --------------------------------------------------------------------------------------------------

MAX_NEW = 12


def test_autoregressive_greedy_matches_hf_generate(target):
    for prompt in random_prompts(5, 32, seed=10):
        ours, stats = autoregressive_generate(target, prompt, MAX_NEW)
        assert isinstance(stats, AutoregressiveStats)
        assert stats.new_tokens == MAX_NEW and stats.total_time_s > 0
        assert torch.equal(ours, hf_greedy(target, prompt, MAX_NEW))


@pytest.mark.parametrize("which, n_prompts", [("near", 20), ("far", 6)])
def test_greedy_speculative_equals_target_greedy(target, drafts, which, n_prompts):
    draft = drafts[which]
    n_seen = []  # (n, k) pairs, to check every accept/reject path was exercised
    for prompt in random_prompts(n_prompts, 32, seed=11):
        reference = hf_greedy(target, prompt, MAX_NEW)
        ar, _ = autoregressive_generate(target, prompt, MAX_NEW)
        assert torch.equal(ar, reference)
        for gamma in range(1, 9):
            ours, stats = speculative_generate(target, draft, prompt, gamma, MAX_NEW)
            assert ours.shape == (MAX_NEW,)
            assert torch.equal(ours, reference), (prompt.tolist(), gamma)
            n_seen += zip(stats.accepted_per_iteration, stats.drafted_per_iteration)
    if which == "near":
        # The test only means something if partial acceptance, full acceptance (the draft-cache
        # catch-up path) and immediate rejection all occurred.
        assert any(n == k > 1 for n, k in n_seen)
        assert any(0 < n < k for n, k in n_seen)
        assert any(n == 0 < k for n, k in n_seen)


def test_greedy_accepts_prompt_shapes(target, drafts):
    prompt = torch.tensor([3, 1, 4, 1, 5])
    flat, _ = speculative_generate(target, drafts["near"], prompt, 3, 8)
    batched, _ = speculative_generate(target, drafts["near"], prompt.view(1, -1), 3, 8)
    assert torch.equal(flat, batched)


# --------------------------------------------------------------------------------------------------
# 2. Sampling exactness (chi-square against the enumerated target distribution)
# --------------------------------------------------------------------------------------------------

VOCAB_S = 4
NEW_S = 3
PROMPT_S = torch.tensor([2])


@pytest.fixture(scope="module")
def sampling_pair():
    # init=1.0 gives peaked distributions; a heavily perturbed copy is far from the target's law
    # (total variation about 0.8 over the 64 sequences: power) yet accepts about half its drafts,
    # so that rejection, partial and full acceptance are all common.
    target_s = tiny_llama(20, vocab=VOCAB_S, hidden=8, layers=1, init=1.0)
    return target_s, near_draft(target_s, seed=21, noise=0.5)


def joint_distribution(model, prompt, new_tokens, temperature):
    """Exact P(y_1..y_L | prompt) at ``temperature`` for all V^L sequences, by enumeration.

    :math:`P(y) = \\prod_l p(y_l \\mid \\text{prompt}, y_{<l})`, with the conditionals read off
    one batched forward over every complete continuation.
    """
    vocab = model.config.vocab_size
    seqs = torch.tensor(list(itertools.product(range(vocab), repeat=new_tokens)))  # (V^L, L)
    batch = torch.cat([prompt.expand(len(seqs), -1), seqs], dim=1)
    with torch.inference_mode():
        logits = model(input_ids=batch).logits.float()
    start = prompt.numel() - 1  # the logits at position start + l predict y_{l+1}
    logp = torch.log_softmax(logits[:, start : start + new_tokens] / temperature, dim=-1)
    joint = logp.gather(-1, seqs.unsqueeze(-1)).squeeze(-1).sum(-1).exp().double()
    return seqs, (joint / joint.sum()).numpy()


def chisquare_pvalue(samples, seqs, probs, min_expected=5.0):
    """Goodness of fit of ``samples`` (N, L) to ``probs``; cells with expected < 5 pooled."""
    vocab = int(seqs.max()) + 1
    weights = vocab ** torch.arange(seqs.shape[1] - 1, -1, -1)
    cell_of = {int(c): i for i, c in enumerate((seqs * weights).sum(1))}
    idx = [cell_of[int(c)] for c in (samples * weights).sum(1)]
    observed = np.bincount(idx, minlength=len(probs)).astype(float)
    expected = probs * len(samples)
    small = expected < min_expected
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return sps.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue


@pytest.mark.parametrize("temperature, n_samples, seed", [(1.0, 3000, 0), (0.5, 2000, 1)])
def test_sampling_matches_target_distribution(sampling_pair, temperature, n_samples, seed):
    target_s, draft_s = sampling_pair
    seqs, p_target = joint_distribution(target_s, PROMPT_S, NEW_S, temperature)
    gen = torch.Generator().manual_seed(seed)
    samples, n_full = [], []
    for _ in range(n_samples):
        ids, stats = speculative_generate(target_s, draft_s, PROMPT_S, 2, NEW_S, temperature, gen)
        samples.append(ids)
        n_full += [n for n, k in zip(stats.accepted_per_iteration, stats.drafted_per_iteration) if k == 2]
    samples = torch.stack(samples)
    # Rejection at the first and at the second draft, and full acceptance (bonus token), must all
    # be common for the test to mean anything.
    assert np.bincount(n_full, minlength=3).min() > 0.05 * len(n_full)
    # Fixed seeds make this deterministic; with fresh seeds a correct sampler would fail it with
    # probability 1e-3 (the false-alarm rate).
    assert chisquare_pvalue(samples, seqs, p_target) > 1e-3

    # Power: the same test on as many samples from the draft's own law must reject.
    _, p_draft = joint_distribution(draft_s, PROMPT_S, NEW_S, temperature)
    draw = torch.multinomial(torch.as_tensor(p_draft), n_samples, replacement=True, generator=gen)
    assert chisquare_pvalue(seqs[draw], seqs, p_target) < 1e-3


def test_chisquare_rejects_draft_samples_generated_by_the_engine(sampling_pair):
    # The same check with samples from the draft model run through autoregressive_generate.
    target_s, draft_s = sampling_pair
    seqs, p_target = joint_distribution(target_s, PROMPT_S, NEW_S, 1.0)
    gen = torch.Generator().manual_seed(3)
    samples = torch.stack([autoregressive_generate(draft_s, PROMPT_S, NEW_S, 1.0, gen)[0] for _ in range(1000)])
    assert chisquare_pvalue(samples, seqs, p_target) < 1e-3
    _, p_draft = joint_distribution(draft_s, PROMPT_S, NEW_S, 1.0)
    assert chisquare_pvalue(samples, seqs, p_draft) > 1e-3


def test_draw_has_the_law_of_multinomial_and_never_draws_a_zero_weight():
    from sdsl_lib.measurement.kv_cache import _draw

    gen = torch.Generator().manual_seed(8)
    weights = torch.tensor([0.0, 2.0, 0.0, 5.0, 3.0, 0.0])  # unnormalised, zeros at both ends
    draws = torch.cat([_draw(weights, gen) for _ in range(8000)])
    counts = np.bincount(draws.numpy(), minlength=6)
    assert counts[[0, 2, 5]].sum() == 0
    assert sps.chisquare(counts[[1, 3, 4]], 8000 * np.array([0.2, 0.5, 0.3])).pvalue > 1e-3
    assert _draw(weights, gen).shape == (1,) and _draw(weights[None], gen).shape == (1, 1)


def test_draw_never_runs_past_the_last_weight_when_the_uniform_rounds_up(monkeypatch):
    # u * total can round up to the total; searchsorted would then return V (out of range) or, with
    # trailing zeros, an index of zero weight. Force u = total exactly.
    from sdsl_lib.measurement import kv_cache

    monkeypatch.setattr(kv_cache.torch, "rand", lambda shape, **kw: torch.ones(shape, dtype=kw.get("dtype")))
    assert int(kv_cache._draw(torch.tensor([0.2, 0.8, 0.0, 0.0]))) == 1
    assert int(kv_cache._draw(torch.tensor([0.5, 0.5]))) == 1


# A restricted-head draft (distill) is drawn from in its head's classes (decoding._DraftSpace): the
# class law, the uniform pick among the ids that share UNK, and the full row at a rejection must give
# exactly the law of its expanded logits, and speculative sampling with it the target's law.

VOCAB_R = 7
KEEP_R = [1, 4]  # UNK = class 2 is shared by the 5 other ids


def restricted_draft(seed):
    from sdsl_lib.measurement import distill

    small = tiny_llama(seed, vocab=len(KEEP_R) + 1, hidden=8, layers=1, init=1.0)
    return distill._wrap(small, distill.VocabMap(KEEP_R, full_vocab=VOCAB_R))


def test_draft_space_is_the_law_of_the_expanded_logits():
    from sdsl_lib.measurement import distill
    from sdsl_lib.measurement.decoding import _DraftSpace

    vmap = distill.VocabMap(KEEP_R, full_vocab=VOCAB_R)
    space = _DraftSpace(vmap, torch.device("cpu"))
    gen = torch.Generator().manual_seed(5)
    for trial in range(20):
        small = 2.0 * torch.randn(1, vmap.k, generator=gen)
        if trial % 4 == 0:
            small[0, vmap.unk] += 6.0  # UNK's share wins the argmax: the lowest outside id
        full = vmap.expand_logits(small)
        assert torch.equal(space.greedy(small), full.argmax(-1, keepdim=True))
        for temperature in (0.5, 1.0, 1.7):
            _, row = space.sample(small, temperature, gen)
            torch.testing.assert_close(space.full(row[0]), torch.softmax(full[0] / temperature, -1))
    # The draws themselves, over all seven ids (five of them through UNK), at T = 0.7.
    small = torch.tensor([[0.3, -0.4, 1.1]])
    law = torch.softmax(vmap.expand_logits(small)[0].double() / 0.7, -1).numpy()
    draws = torch.cat([space.sample(small, 0.7, gen)[0].view(1) for _ in range(6000)])
    observed = np.bincount(draws.numpy(), minlength=VOCAB_R)
    assert sps.chisquare(observed, law * observed.sum()).pvalue > 1e-3
    rows = torch.cat([space.sample(small, 0.7, gen)[1] for _ in range(2)])
    torch.testing.assert_close(space.prob_of(rows, torch.tensor([4, 6])), torch.tensor(law[[4, 6]]).float().expand(2))


def test_greedy_with_a_restricted_lean_draft_proposes_what_its_expanded_logits_propose():
    from sdsl_lib.measurement.lean_llama import LeanLlama

    target_r = tiny_llama(30, vocab=VOCAB_R, hidden=8, layers=1, init=1.0)
    draft_r = restricted_draft(31)
    ref, _ = autoregressive_generate(target_r, PROMPT_S, 16)
    for gamma in (1, 3):
        out_hf, st_hf = speculative_generate(target_r, draft_r, PROMPT_S, gamma, 16)  # expanded, full argmax
        out, st = speculative_generate(target_r, LeanLlama(draft_r), PROMPT_S, gamma, 16)  # class space
        assert torch.equal(out, ref) and torch.equal(out_hf, ref)
        assert st.accepted_per_iteration == st_hf.accepted_per_iteration


def test_sampling_with_a_restricted_lean_draft_matches_target_distribution():
    from sdsl_lib.measurement.lean_llama import LeanLlama

    target_r = tiny_llama(30, vocab=VOCAB_R, hidden=8, layers=1, init=1.0)
    draft_r = restricted_draft(31)
    lean = LeanLlama(draft_r)  # its runner hands out class logits: the class-space path
    assert lean.runner().vocab_map is not None
    seqs, p_target = joint_distribution(target_r, PROMPT_S, NEW_S, 0.8)
    gen = torch.Generator().manual_seed(2)
    samples, n_full = [], []
    for _ in range(3000):
        ids, stats = speculative_generate(target_r, lean, PROMPT_S, 2, NEW_S, 0.8, gen)
        samples.append(ids)
        n_full += [n for n, k in zip(stats.accepted_per_iteration, stats.drafted_per_iteration) if k == 2]
    assert np.bincount(n_full, minlength=3).min() > 0.05 * len(n_full)
    samples = torch.stack(samples)
    assert chisquare_pvalue(samples, seqs, p_target) > 1e-3
    # Power: the draft's own law (its HF forward, expanded) is rejected on as many draws.
    _, p_draft = joint_distribution(draft_r, PROMPT_S, NEW_S, 0.8)
    draw = torch.multinomial(torch.as_tensor(p_draft), len(samples), replacement=True, generator=gen)
    assert chisquare_pvalue(seqs[draw], seqs, p_target) < 1e-3


# --------------------------------------------------------------------------------------------------
# 3. Statistics consistency and KV-cache discipline
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("gamma", [1, 3, 5])
def test_stats_are_consistent(target, drafts, gamma, temperature):
    gen = torch.Generator().manual_seed(gamma)
    for prompt in random_prompts(4, 32, seed=12):
        ids, st = speculative_generate(target, drafts["near"], prompt, gamma, 17, temperature, gen)
        assert isinstance(st, SpeculativeStats) and st.gamma == gamma
        n = np.asarray(st.accepted_per_iteration)
        k = np.asarray(st.drafted_per_iteration)
        assert len(n) == len(k) == len(st.truncated) == st.iterations
        assert n.sum() == st.accepted and k.sum() == st.drafted
        assert np.all((0 <= n) & (n <= k))
        assert np.array_equal(np.asarray(st.truncated), k < gamma)
        assert st.truncated_last == bool(st.truncated[-1])
        # each iteration emits its n accepted drafts plus one corrected/bonus token
        assert st.new_tokens == st.accepted + st.iterations == ids.numel() == 17
        assert st.position_attempts.shape == st.position_accepts.shape == (gamma,)
        assert np.all(st.position_accepts <= st.position_attempts)
        assert st.position_accepts.sum() == st.accepted
        assert st.position_attempts[0] == np.count_nonzero(k > 0)
        full = n[k == gamma]
        if full.size:
            assert st.tar_with_bonus == pytest.approx(full.mean() + 1)
            assert st.tar_without_bonus == pytest.approx(full.mean())
        assert st.total_time_s >= st.draft_time_s + st.verify_time_s > 0


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_self_draft_accepts_everything(target, temperature):
    gen = torch.Generator().manual_seed(5)
    for gamma in (1, 4):
        _, st = speculative_generate(target, target, torch.tensor([1, 2]), gamma, 20, temperature, gen)
        assert st.accepted == st.drafted > 0
        assert np.array_equal(st.position_accepts, st.position_attempts)
        # no rejection: one iteration per gamma + 1 tokens
        assert st.iterations == -(-20 // (gamma + 1))


def test_one_target_forward_per_iteration_and_no_reencoding(target, drafts):
    calls = {"target": [], "draft": []}

    def recorder(name):
        def hook(module, args, kwargs):
            calls[name].append(kwargs["input_ids"].shape[1])

        return hook

    handles = [
        target.register_forward_pre_hook(recorder("target"), with_kwargs=True),
        drafts["near"].register_forward_pre_hook(recorder("draft"), with_kwargs=True),
    ]
    try:
        prompt = torch.tensor([5, 6, 7, 8, 9, 10])
        _, st = speculative_generate(target, drafts["near"], prompt, 4, 25)
    finally:
        for h in handles:
            h.remove()
    k = np.asarray(st.drafted_per_iteration)
    # prefill of T-1 tokens, then exactly one target forward over k+1 positions per iteration
    assert calls["target"] == [prompt.numel() - 1] + list(k + 1)
    # the draft runs k times per iteration, and over all its calls sees each position at most once
    assert len(calls["draft"]) == 1 + k.sum()
    assert sum(calls["draft"]) <= prompt.numel() + st.new_tokens


def test_draft_cache_stays_in_sync_with_committed_tokens(target, drafts):
    # Exactness holds for ANY draft, so a draft cache rolled back to the wrong length would not
    # show in the outputs, only in lost acceptance. Check instead that every draft proposal is
    # the draft's own next-token distribution given the committed tokens and the earlier drafts,
    # recomputed without a cache.
    draft = drafts["near"]
    seen = []
    handle = draft.register_forward_hook(lambda m, a, out: seen.append(out.logits[0, -1].clone()))
    try:
        prompt = torch.tensor([9, 8, 7])
        ids, st = speculative_generate(target, draft, prompt, 2, 30)
    finally:
        handle.remove()
    seen = seen[1:]  # drop the prefill call
    assert len(seen) == st.drafted
    # both rollback paths must occur: crop after partial acceptance, catch-up after full acceptance
    pairs = list(zip(st.accepted_per_iteration, st.drafted_per_iteration))
    assert any(0 < n < k for n, k in pairs) and any(n == k > 0 for n, k in pairs)
    committed = torch.cat([prompt, ids])
    call, pos = 0, prompt.numel()
    for n, k in zip(st.accepted_per_iteration, st.drafted_per_iteration):
        proposals = [int(seen[call + i].argmax()) for i in range(k)]
        for i in range(k):
            context = torch.cat([committed[:pos], torch.tensor(proposals[:i], dtype=torch.long)])
            with torch.inference_mode():
                expected = draft(input_ids=context.view(1, -1), use_cache=False).logits[0, -1]
            torch.testing.assert_close(seen[call + i], expected, atol=1e-4, rtol=1e-4)
        call, pos = call + k, pos + n + 1


# --------------------------------------------------------------------------------------------------
# 4. Input validation
# --------------------------------------------------------------------------------------------------


def test_vocab_mismatch_raises(target):
    other = tiny_llama(3, vocab=40, hidden=8, layers=1)
    with pytest.raises(ValueError, match="vocab"):
        speculative_generate(target, other, torch.tensor([1]), 2, 4)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"gamma": 0}, "gamma"),
        ({"gamma": -2}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"input_ids": torch.ones(2, 3, dtype=torch.long)}, "input_ids"),
        ({"input_ids": torch.ones(1, 0, dtype=torch.long)}, "input_ids"),
        ({"input_ids": torch.ones(3)}, "input_ids"),
    ],
)
def test_bad_arguments_raise(target, drafts, kwargs, name):
    args = {"input_ids": torch.tensor([1, 2]), "gamma": 2, "max_new_tokens": 4, "temperature": 0.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        speculative_generate(target, drafts["far"], **args)


def test_autoregressive_bad_arguments_raise(target):
    with pytest.raises(ValueError, match="max_new_tokens"):
        autoregressive_generate(target, torch.tensor([1]), 0)
    with pytest.raises(ValueError, match="temperature"):
        autoregressive_generate(target, torch.tensor([1]), 3, temperature=-1.0)


# --------------------------------------------------------------------------------------------------
# 5. Reproducibility
# --------------------------------------------------------------------------------------------------


def test_same_seed_same_tokens(target, drafts):
    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return speculative_generate(target, drafts["near"], torch.tensor([4, 2]), 3, 30, 1.0, gen)

    (a, sa), (b, sb), (c, _) = run(7), run(7), run(8)
    assert torch.equal(a, b)
    assert sa.accepted_per_iteration == sb.accepted_per_iteration
    assert not torch.equal(a, c)


def test_models_left_in_their_mode(target, drafts):
    target.train()
    try:
        speculative_generate(target, drafts["near"], torch.tensor([1]), 2, 3)
        assert target.training and not drafts["near"].training
    finally:
        target.eval()


# --------------------------------------------------------------------------------------------------
# HF assisted-generation baseline (sdsl_lib.measurement.hf_baseline)
# --------------------------------------------------------------------------------------------------


def test_compare_with_hf_is_token_identical_and_tidy(target, drafts):
    from sdsl_lib.measurement.hf_baseline import compare_with_hf, summarise_comparison

    prompts = random_prompts(3, 32, seed=13)
    config_before = drafts["near"].generation_config.to_dict()
    df = compare_with_hf(target, drafts["near"], prompts, gamma=3, max_new_tokens=10, repeats=2)
    assert len(df) == 3 * 2 * 2
    assert set(df.engine) == {"ours", "hf"} and (df.new_tokens == 10).all()
    assert df.identical.all()
    # interleaved: each prompt's first round starts with a different engine than the next one's
    first = df.groupby("prompt_idx").engine.first().tolist()
    assert first[0] != first[1]
    summary = summarise_comparison(df)
    assert summary["n_prompts"] == 3 and summary["all_identical"]
    assert summary["ratio_ci95_lower"] <= summary["ratio_median"] <= summary["ratio_ci95_upper"]
    # the draft's generation config is restored after the fixed-lookahead calls
    assert drafts["near"].generation_config.to_dict() == config_before
