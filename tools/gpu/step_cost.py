"""Time one decode step of SmolLM2-135M's shape (random weights) and of a small draft, on any device.

Needs no checkpoint, so the first GPU call (which only carries a chunk of the target) can size the
rest: ``python -m tools.gpu.step_cost --device cuda`` prints ms per step at batch 1 in bf16 with the
project's own KV-cache decoding, and the cost ratio c of the draft. ``--tiny`` shrinks both (tests).
"""

from __future__ import annotations

import argparse
import statistics
import time

__all__ = ["step_ms", "main"]


def _model(d: int, layers: int, heads: int, kv: int, ff: int, vocab: int, device, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv, intermediate_size=ff, tie_word_embeddings=True, max_position_embeddings=2048,
    )  # fmt: skip
    return LlamaForCausalLM(cfg).to(device=device, dtype=dtype).eval()


def step_ms(model, device, new_tokens: int = 64, prompt_len: int = 64, repeats: int = 3) -> float:
    """Median milliseconds per generated token (greedy, batch 1, KV cache), after one warm-up run."""
    import torch

    from sdsl_lib.measurement.decoding import autoregressive_generate

    prompt = torch.randint(0, model.config.vocab_size, (1, prompt_len), device=device)
    autoregressive_generate(model, prompt, 4)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        autoregressive_generate(model, prompt, new_tokens)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) * 1000 / new_tokens)
    return statistics.median(times)


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(prog="python -m tools.gpu.step_cost", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--tiny", action="store_true", help="tiny shapes (a test of the script, not a timing)")
    args = ap.parse_args(argv)
    device, dtype = torch.device(args.device), torch.bfloat16 if args.dtype == "bf16" else torch.float32
    if args.tiny:
        target, draft = (64, 2, 4, 2, 128, 512), (16, 1, 2, 2, 64, 512)
    else:  # SmolLM2-135M (30 x 576, 9 heads, 3 KV heads) and the smollm2 draft s1-128x2 (full head)
        target, draft = (576, 30, 9, 3, 1536, 49152), (128, 2, 4, 4, 352, 49152)
    with torch.inference_mode():
        t = step_ms(_model(*target, device, dtype), device, args.new_tokens)
        d = step_ms(_model(*draft, device, dtype), device, args.new_tokens)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"step_cost on {name} ({args.dtype}, batch 1): target {t:.2f} ms/token, draft {d:.2f} ms/token, c = {d / t:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
