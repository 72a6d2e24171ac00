"""What a drafted token costs the loop: a restricted-head draft read over the full vocabulary or in its head's classes.

The decoding loop (``sdsl_lib.measurement.decoding``) draws a restricted-head draft's tokens in its
head's K classes (``_DraftSpace``), which is the same law as drawing over the V ids of its expanded
logits (tests/measurement/test_decoding.py checks both). This script times one drafted token both
ways, for the smollm2 drafts' shapes (random weights: a step's cost does not depend on them), with
V = 49,152 and K = 8,192 as in the committed runs:

* ``before``: the loop before 2026-12-03: the runner expands the K class logits to V
  (``VocabMap.expand_logits``), then argmax, or softmax at T and ``torch.multinomial`` over V;
* ``full``: the same expanded logits, drawn with ``kv_cache._draw`` (inverse transform) instead;
* ``head``: the runner returns the K class logits, then ``_DraftSpace.greedy`` / ``.sample`` (the
  loop now). Greedy, ``before`` and ``full`` are the same call.

Each call is one draft step after a 64-token prefix (the cache cropped back after every call, so
every step sees the same context), the three ways interleaved within each repeat so that drifting
load spreads over them; it prints the median milliseconds, the head/before ratio and the other processes'
load (a ratio taken under load is worthless: run it alone).

    .venv/bin/python benchmarks/bench_draft_sampling.py [--repeats 300] [--dtype fp32 --dtype fp16w]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

SHAPES = {"s1-128x2": (128, 2, 4, 352), "s2-192x2": (192, 2, 6, 512)}  # d_model, layers, heads, d_ff
FULL_VOCAB, HEAD_CLASSES = 49152, 8192


def restricted_draft(d_model, n_layers, n_heads, d_ff, dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    from sdsl_lib.measurement import distill, fp16_weights
    from sdsl_lib.measurement.lean_llama import LeanLlama

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=HEAD_CLASSES,
        hidden_size=d_model,
        intermediate_size=d_ff,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_heads,
        tie_word_embeddings=True,
    )
    keep = np.random.default_rng(0).choice(FULL_VOCAB, HEAD_CLASSES - 1, replace=False)
    model = distill._wrap(LlamaForCausalLM(cfg).eval(), distill.VocabMap(keep, FULL_VOCAB))
    if dtype == "fp16w":
        model = fp16_weights.to_fp16_weights(model)
    return LeanLlama(model)


def step_costs(lean, temperature: float, repeats: int) -> dict[str, float]:
    """Median seconds of one drafted token, each way (``before``, ``full``, ``head``)."""
    from sdsl_lib.measurement.decoding import _DraftSpace

    run = lean.runner()
    full, head = _DraftSpace(None, torch.device("cpu")), _DraftSpace(run.vocab_map, torch.device("cpu"))
    gen = torch.Generator().manual_seed(1)
    prefix = torch.randint(0, FULL_VOCAB, (1, 64), generator=gen)
    token = torch.tensor([[int(lean.vocab_map.keep[0])]])
    run(prefix, keep_last=True)

    def before(logits):
        if temperature == 0.0:
            return logits.argmax(dim=-1, keepdim=True)
        return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=gen)

    def through(space):
        if temperature == 0.0:
            return space.greedy
        return lambda logits: space.sample(logits, temperature, gen)[0]

    variants = (("before", before, True), ("full", through(full), True), ("head", through(head), False))
    times = {name: [] for name, _, _ in variants}
    with torch.inference_mode():
        for r in range(repeats + 5):  # the first 5 rounds warm up
            for name, pick, expand in variants:
                t0 = time.perf_counter()
                pick(run(token, keep_last=True, expand=expand))[0, 0].item()
                run.crop_to(prefix.shape[1])
                if r >= 5:
                    times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv=None) -> None:
    from sdsl_lib.measurement import timing

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--dtype", action="append", choices=("fp32", "fp16w"), help="default: fp32 and fp16w")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, V = {FULL_VOCAB}, K = {HEAD_CLASSES}, "
          f"median of {args.repeats} draft steps after a 64-token prefix")  # fmt: skip
    print(f"{'draft':10s} {'numerics':8s} {'T':>4s} {'before ms':>9s} {'full ms':>8s} {'head ms':>8s} "
          f"{'head/before':>11s} {'other load':>10s}")  # fmt: skip
    for dtype in args.dtype or ["fp32", "fp16w"]:
        for name, shape in SHAPES.items():
            lean = restricted_draft(*shape, dtype)
            for temperature in (0.0, 0.7):
                with timing.CpuLoad() as load:
                    t = step_costs(lean, temperature, args.repeats)
                print(f"{name:10s} {dtype:8s} {temperature:4.1f} {1e3 * t['before']:9.3f} {1e3 * t['full']:8.3f} "
                      f"{1e3 * t['head']:8.3f} {t['head'] / t['before']:11.2f} {load.other_cores:8.2f} cores")  # fmt: skip


if __name__ == "__main__":
    main()
