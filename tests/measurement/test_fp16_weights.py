"""fp16w numerics: fp16 weights packed for fbgemm, fp32 activations; the same model in both forwards."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from sdsl_lib.measurement import fp16_weights, profile_file, real_target  # noqa: E402
from sdsl_lib.measurement.decoding import autoregressive_generate, speculative_generate  # noqa: E402
from sdsl_lib.measurement.lean_llama import LeanLlama  # noqa: E402

pytestmark = pytest.mark.skipif(not fp16_weights.available(), reason="this torch build has no fbgemm fp16 linear")
V = 96


def _llama(seed=0, hidden=48, layers=2, heads=4, kv=2):
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=V, hidden_size=hidden, intermediate_size=2 * hidden + 16, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=512, rope_theta=100000.0,
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )  # fmt: skip
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model


def _fp16_rounded(model):
    """The dense fp32 model whose linears' weights are fp16-rounded (what fp16w multiplies by); the
    tied head gets its own rounded copy, as fp16w's packed head: the embedding lookup stays fp32."""
    with torch.no_grad():
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().half().float())
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(mod.weight.half().float())
    return model


def test_packed_linear_is_the_product_with_fp16_rounded_weights_and_rows_are_independent():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(40, 24, generator=gen) * 3
    x = torch.randn(2, 8, 24, generator=gen)
    x[:, -1] *= 50  # an outlier row: with int8 dynamic quantisation it would move the others
    packed = fp16_weights.pack(w)
    assert fp16_weights.is_packed(packed) and not fp16_weights.is_packed(w)
    got = fp16_weights.linear(x, packed)
    torch.testing.assert_close(got, x @ w.half().float().T, rtol=1e-5, atol=1e-4)
    assert (got - x @ w.T).abs().max() > 0  # the rounding to fp16 is real
    alone = fp16_weights.linear(x[:1, :1], packed)
    torch.testing.assert_close(alone, got[:1, :1], rtol=1e-6, atol=1e-5)
    with pytest.raises(ValueError, match="weight must be a matrix"):
        fp16_weights.pack(torch.zeros(3))


def test_to_fp16_weights_swaps_every_linear_and_refuses_a_bf16_model():
    model = fp16_weights.to_fp16_weights(_llama())
    linears = [m for m in model.modules() if fp16_weights.is_fp16_linear(m)]
    assert len(linears) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and the head
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    with pytest.raises(ValueError, match="model must be fp32"):
        fp16_weights.to_fp16_weights(_llama().to(torch.bfloat16))


def test_lean_and_hf_forwards_of_an_fp16w_model_agree_and_equal_the_rounded_fp32_model():
    ids = torch.randint(0, V, (1, 30), generator=torch.Generator().manual_seed(1))
    packed = fp16_weights.to_fp16_weights(_llama(seed=4))
    rounded = _fp16_rounded(_llama(seed=4))
    with torch.inference_mode():
        hf = packed(input_ids=ids).logits[0]
        ref = rounded(input_ids=ids).logits[0]
    lean = LeanLlama(packed)
    assert lean.fp16_weights and fp16_weights.is_packed(lean.head)
    run = lean.runner()
    got = torch.cat([run(ids[:, :20], keep_last=False), run(ids[:, 20:21], keep_last=True), run(ids[:, 21:], False)])
    torch.testing.assert_close(hf, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    assert not LeanLlama(_llama()).fp16_weights  # a dense model stays dense


def test_greedy_speculative_decoding_on_an_fp16w_target_equals_its_own_greedy_decoding():
    target = LeanLlama(fp16_weights.to_fp16_weights(_llama(seed=11, layers=3)))
    draft = LeanLlama(_llama(seed=12, hidden=32, layers=1, heads=2, kv=1))
    prompt = torch.randint(0, V, (1, 10), generator=torch.Generator().manual_seed(6))
    ar, _ = autoregressive_generate(target, prompt, 30)
    for gamma in (1, 4):
        out, _ = speculative_generate(target, draft, prompt, gamma, 30)
        assert torch.equal(out, ar)


def test_load_checkpoint_packs_on_fp16w_and_names_the_valid_dtypes(tmp_path):
    _llama(seed=2).save_pretrained(tmp_path / "m")
    model = real_target.load_checkpoint(tmp_path / "m", dtype="fp16w")
    assert fp16_weights.is_fp16_linear(model.lm_head) and model.model.embed_tokens.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="fp16w"):
        real_target.load_checkpoint(tmp_path / "m", dtype="int8")


def test_profile_files_accept_fp16w_timing_and_the_committed_recipe_parses(tmp_path):
    from sdsl_lib.io import repo_root

    recipe = profile_file.load_profile_file(repo_root() / "docs/recipes/smollm2_fp16w.toml")["smollm2-fp16w"]
    assert recipe.real.timing_dtype == "fp16w"
    assert [m.name for m in recipe.drafts] == ["s1-128x2", "s2-192x2-1400", "prompt-lookup"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[profiles.x]\nbase = 'smollm2'\n[profiles.x.real]\ntiming_dtype = 'int8'\n")
    with pytest.raises(ValueError, match="timing_dtype"):
        profile_file.load_profile_file(bad)
