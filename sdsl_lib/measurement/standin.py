"""A tiny random stand-in for the real target, with the same tokenizer interface (no wheel needed).

Used by the ``smollm2-smoke`` profile and the tests: a byte-level BPE (vocabulary 512) trained on the
workload's own prompt texts, with SmolLM2's special tokens at the same ids (``<|endoftext|>`` 0,
``<|im_start|>`` 1, ``<|im_end|>`` 2 = EOS = padding) and a chat template of the same form, and a
randomly initialised 2-layer ``LlamaForCausalLM`` over it, saved as a Hugging Face checkpoint folder.
Its outputs mean nothing; the code paths are those of the real target.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STANDIN_VOCAB", "CHAT_TEMPLATE", "ensure_standin"]

STANDIN_VOCAB = 512
_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
#: The same form as SmolLM2's template (a default system turn, ``<|im_start|>role\\n...<|im_end|>\\n``).
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from sdsl_lib.measurement.workload import all_prompts

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=STANDIN_VOCAB,
        special_tokens=list(_SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [p["text"] for p in all_prompts()] + ["system user assistant You are a helpful assistant."]
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )


def ensure_standin(cache: Path, seed: int = 0) -> Path:
    """``<cache>/standin/target``: the stand-in checkpoint and tokenizer (made once, in about a second)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(cache) / "standin" / "target"
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    tok = _tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    tmp = out.with_name("target.part")
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    tmp.replace(out)
    return out
