"""Speed of our speculative decoding engine against Hugging Face assisted generation.

Same target, same draft, same prompts, greedy, the same constant lookahead gamma on both sides
(HF: ``num_assistant_tokens=gamma``, ``num_assistant_tokens_schedule="constant"``,
``assistant_confidence_threshold=0``). Warm-up, interleaved A/B runs, median and 95% interval of
the per-prompt throughput ratio over prompts; the two outputs must be token-identical.
Goal: ours >= 1.2x HF.

Standalone it builds a random-weight Llama pair (target about 23M parameters, draft about 1.4M,
vocab 4,096) with a planted bigram map so that greedy acceptance is realistic
(:func:`sdsl_lib.measurement.hf_baseline.build_benchmark_pair`). The measurement pipeline reuses
:func:`sdsl_lib.measurement.hf_baseline.compare_with_hf` on trained models.

    .venv/bin/python benchmarks/bench_decoding_vs_hf.py [--gamma 4] [--out build/bench_hf.csv]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from sdsl_lib.measurement.hf_baseline import build_benchmark_pair, compare_with_hf, summarise_comparison


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gamma", type=int, default=4, help="lookahead, draft tokens per iteration")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--prompts", type=int, default=10, help="number of random prompts")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per engine and prompt")
    ap.add_argument("--agreement", type=float, default=0.8, help="planted greedy agreement")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: batch-1 decoding of small models gains nothing from more on a shared machine)",
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--target-shape", default="512,6,1536", help="hidden,layers,intermediate")
    ap.add_argument("--draft-shape", default="128,2,384", help="hidden,layers,intermediate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="optional CSV of every timed run (+ JSON sidecar)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    shape = lambda text: tuple(int(v) for v in text.split(","))  # noqa: E731
    target, draft = build_benchmark_pair(
        agreement=args.agreement,
        seed=args.seed,
        target_shape=shape(args.target_shape),
        draft_shape=shape(args.draft_shape),
    )
    target, draft = target.to(args.device), draft.to(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    vocab = target.config.vocab_size
    prompts = [torch.randint(0, vocab, (args.prompt_len,), generator=gen) for _ in range(args.prompts)]

    n_t = sum(p.numel() for p in target.parameters())
    n_d = sum(p.numel() for p in draft.parameters())
    print(
        f"target {n_t / 1e6:.1f}M params, draft {n_d / 1e6:.2f}M, vocab {vocab}, device {args.device}, "
        f"threads {args.threads}, gamma {args.gamma}, {args.prompts} prompts x {args.repeats} repeats, "
        f"{args.max_new_tokens} new tokens"
    )
    t0 = time.perf_counter()
    df = compare_with_hf(target, draft, prompts, args.gamma, args.max_new_tokens, args.repeats)
    s = summarise_comparison(df)
    print(f"ours: {s['ours_tokens_per_s_median']:.1f} tokens/s (median over prompts)")
    print(f"HF  : {s['hf_tokens_per_s_median']:.1f} tokens/s")
    print(
        f"ratio ours/HF: {s['ratio_median']:.2f}x  (95% interval over prompts "
        f"{s['ratio_ci95_lower']:.2f} to {s['ratio_ci95_upper']:.2f}; goal >= 1.2)"
    )
    print(
        f"greedy acceptance (accepted/drafted): {s['acceptance']:.3f}; "
        f"outputs token-identical: {s['all_identical']}; wall {time.perf_counter() - t0:.0f} s"
    )
    if args.out:
        from sdsl_lib.io import atomic_write_csv, write_sidecar

        atomic_write_csv(args.out, df)
        write_sidecar(args.out, config=vars(args), summary=s)
    return 0 if s["all_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
