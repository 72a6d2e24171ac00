"""The lean Llama forward: the same logits as transformers', the same decoding, clear refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from sdsl_lib.measurement import distill, timing  # noqa: E402
from sdsl_lib.measurement.decoding import autoregressive_generate, speculative_generate  # noqa: E402
from sdsl_lib.measurement.kv_cache import _Runner, runner_for  # noqa: E402
from sdsl_lib.measurement.lean_llama import (  # noqa: E402
    LeanLlama,
    LeanRunner,
    hf_model,
    lean_unsupported,
    with_forward,
)

V = 96


def _llama(seed=0, hidden=48, layers=2, heads=4, kv=2, vocab=V, **extra):
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden + 16,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=1024,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        **extra,
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # larger weights than the init's, so that rounding differences would show
        for p in model.parameters():
            p.mul_(3.0)
    return model


def _hf_logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=ids).logits[0].float()


def test_lean_logits_equal_hf_in_fp32_on_every_path():
    """Prefill, one token, several tokens, after a crop and past the first cache capacity (256)."""
    model = _llama()
    lean = LeanLlama(model)
    gen = torch.Generator().manual_seed(1)
    seq = torch.randint(0, V, (1, 300), generator=gen)
    full = _hf_logits(model, seq)  # no cache: every position at once
    run = lean.runner()
    assert isinstance(run, LeanRunner)
    got = [run(seq[:, :20], keep_last=False), run(seq[:, 20:21], keep_last=True), run(seq[:, 21:25], keep_last=False)]
    torch.testing.assert_close(got[0], full[:20], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], full[20:21], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[2], full[21:25], rtol=1e-5, atol=1e-5)
    run.crop_to(22)  # forget 22..24, then feed them again plus more
    again = run(seq[:, 22:40], keep_last=False)
    torch.testing.assert_close(again, full[22:40], rtol=1e-5, atol=1e-5)
    long = run(seq[:, 40:300], keep_last=False)  # grows the cache beyond 256 positions
    assert run.capacity >= 300 and run.length == 300
    torch.testing.assert_close(long, full[40:300], rtol=1e-4, atol=1e-4)


def test_lean_matches_the_hf_cached_runner_step_by_step():
    model = _llama(seed=3, heads=2, kv=2)  # no grouped-query heads
    lean, hf = runner_for(LeanLlama(model)), runner_for(model)
    assert isinstance(hf, _Runner)
    ids = torch.randint(0, V, (1, 12), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(lean(ids, True), hf(ids, True), rtol=1e-5, atol=1e-5)
    for t in range(5):
        step = ids[:, t : t + 1]
        torch.testing.assert_close(lean(step, True), hf(step, True), rtol=1e-5, atol=1e-5)


def test_lean_bf16_agrees_to_bf16_rounding():
    model = _llama(seed=5).to(torch.bfloat16)
    ids = torch.randint(0, V, (1, 40), generator=torch.Generator().manual_seed(2))
    ref = _hf_logits(model, ids)
    got = LeanLlama(model).runner()(ids, keep_last=False)
    scale = ref.abs().max().item()
    assert (got - ref).abs().max().item() <= 0.05 * scale  # bf16 keeps 8 bits of mantissa
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean().item() >= 0.9


def test_restricted_head_draft_runs_lean_with_the_full_vocabulary():
    counts = np.arange(V)[::-1].astype(float)  # token 0 most frequent
    vmap = distill.VocabMap.from_counts(counts, 17)
    small = _llama(seed=7, vocab=vmap.k, heads=2, kv=2)
    draft = distill._wrap(small, vmap)
    ids = torch.randint(0, V, (1, 15), generator=torch.Generator().manual_seed(4))
    ref = _hf_logits(draft, ids)
    got = LeanLlama(draft).runner()(ids, keep_last=False)
    assert got.shape == (15, V)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_decoding_with_lean_models_is_the_same_decoding():
    target, draft = _llama(seed=11, layers=3), _llama(seed=12, hidden=32, layers=1, heads=2, kv=1)
    lt, ld = LeanLlama(target), LeanLlama(draft)
    prompt = torch.randint(0, V, (1, 10), generator=torch.Generator().manual_seed(6))
    ar, _ = autoregressive_generate(target, prompt, 30)
    ar_lean, _ = autoregressive_generate(lt, prompt, 30)
    assert torch.equal(ar, ar_lean)
    for gamma in (1, 4):
        out_hf, st_hf = speculative_generate(target, draft, prompt, gamma, 30)
        out_lean, st_lean = speculative_generate(lt, ld, prompt, gamma, 30)
        assert torch.equal(out_lean, ar)  # greedy SD equals greedy AR (fp32)
        assert torch.equal(out_lean, out_hf)
        assert st_lean.accepted_per_iteration == st_hf.accepted_per_iteration
    # Sampling: identical logits and generator give identical draws.
    sampled = [
        speculative_generate(t, d, prompt, 3, 25, temperature=0.8, generator=torch.Generator().manual_seed(9))[0]
        for t, d in ((target, draft), (lt, ld))
    ]
    assert torch.equal(*sampled)


def test_forward_latency_times_the_lean_runner():
    lean = LeanLlama(_llama(seed=2))
    lat = timing.forward_latency(lean, torch.arange(8)[None], max_tokens=3, repeats=2, warmup=1)
    assert lat.shape == (2, 3) and np.all(lat > 0)


@pytest.mark.parametrize(
    "extra, name",
    [
        ({"mlp_bias": True}, "mlp_bias"),
        ({"attention_bias": True}, "attention_bias"),
        ({"hidden_act": "gelu"}, "hidden_act"),
    ],
)
def test_unsupported_llamas_are_refused_by_name(extra, name):
    model = _llama(**extra)
    assert name in lean_unsupported(model)
    with pytest.raises(ValueError, match=name):
        LeanLlama(model)
    with pytest.raises(ValueError, match=name):
        with_forward(model, "lean")
    assert with_forward(model, "auto") is model  # auto keeps it on the HF forward


def test_with_forward_choices():
    model = _llama()
    assert with_forward(model, "hf") is model
    lean = with_forward(model, "auto")
    assert isinstance(lean, LeanLlama) and hf_model(lean) is model and hf_model(model) is model
    assert with_forward(lean, "lean") is lean
    assert lean_unsupported(torch.nn.Linear(2, 2)) is not None
    with pytest.raises(ValueError, match="forward must be one of"):
        with_forward(model, "fast")
    run = lean.runner()
    run(torch.arange(4)[None], keep_last=True)
    with pytest.raises(ValueError, match=r"length must be in \[0, 4\]"):
        run.crop_to(5)


def test_profile_forward_is_validated():
    from sdsl_lib.measurement.profile_file import validate_profile
    from sdsl_lib.measurement.profiles import get_profile

    p = get_profile("smollm2-smoke")
    assert p.measure.forward == "auto" and get_profile("smollm2").measure.forward == "auto"
    bad = dataclasses.replace(p, measure=dataclasses.replace(p.measure, forward="fast"))
    with pytest.raises(ValueError, match=r"measure\.forward must be one of"):
        validate_profile(bad)
