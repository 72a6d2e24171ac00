"""The lean Llama forward against the transformers forward on the real target and a distilled draft.

Same weights, same loop (:func:`sdsl_lib.measurement.decoding.speculative_generate`), two forwards
(:mod:`sdsl_lib.measurement.lean_llama`). Prints, for the target in bf16 (the timing dtype) and
fp32, the one-step and four-token scoring costs of each forward, and then greedy tokens/s of the
target alone and of speculative decoding with the draft at one lookahead, each as HF / lean, the
runs alternating (HF, lean, lean, HF, ...) so that drifting load hits both alike. Every timed
call's concurrent load (other processes' cores, /proc/stat) is printed beside it: a ratio taken
under load is worthless on two cores.

Needs the dequantised SmolLM2 checkpoints (``python -m sdsl_lib.measurement --profile smollm2
--stage train`` makes them) and a draft checkpoint folder.

    .venv/bin/python benchmarks/bench_lean_forward.py --draft cache/runs/smollm2/models/s2-192x2/model
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def _median_ms(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(out)


def step_costs(model, prefix, repeats: int) -> dict:
    """Median ms of scoring 1 and 4 tokens after ``prefix``, through each forward."""
    from sdsl_lib.measurement.kv_cache import runner_for
    from sdsl_lib.measurement.lean_llama import LeanLlama

    out = {}
    for name, m in (("hf", model), ("lean", LeanLlama(model))):
        run = runner_for(m)
        run(prefix, keep_last=True)
        for t in (1, 4):
            new = prefix[:, :t]

            def once(new=new, run=run):
                run(new, keep_last=False)
                run.crop_to(prefix.shape[1])

            once()
            out[f"{name}_T{t}_ms"] = _median_ms(once, repeats)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draft", required=True, help="a draft checkpoint folder (Llama, the target's tokenizer)")
    ap.add_argument("--gamma", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=4, help="workload eval prompts")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=15, help="timed calls per step cost")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from sdsl_lib.measurement import real_target, workload
    from sdsl_lib.measurement.decoding import autoregressive_generate, speculative_generate
    from sdsl_lib.measurement.lean_llama import LeanLlama
    from sdsl_lib.measurement.timing import CpuLoad

    prompts = workload.load_workload(workload.committed_dir("smollm2")).eval_prompts()[: args.prompts]
    prompts = [torch.as_tensor(p, dtype=torch.long)[None, :] for p in prompts]
    draft = real_target.load_checkpoint(args.draft, "fp32")
    print(
        f"threads {args.threads}; draft {args.draft}; gamma {args.gamma}; {len(prompts)} prompts x {args.new_tokens} tokens"
    )
    for dtype in ("bf16", "fp32"):
        target = real_target.load_checkpoint(real_target.checkpoint_dir(dtype, download=False), dtype)
        with CpuLoad() as load:
            costs = step_costs(target, prompts[0], args.repeats)
        print(
            f"[{dtype}] step cost ms " + ", ".join(f"{k} {v:.1f}" for k, v in costs.items()),
            f"(other load {load.other_cores:.2f} cores)",
        )
        pairs = {"hf": (target, draft), "lean": (LeanLlama(target), LeanLlama(draft))}
        times = {(e, kind): [] for e in pairs for kind in ("ar", "sd")}
        worst = 0.0
        for k, prompt in enumerate(prompts):
            for e in ("hf", "lean") if k % 2 == 0 else ("lean", "hf"):
                t, d = pairs[e]
                with CpuLoad() as load:
                    _, ar = autoregressive_generate(t, prompt, args.new_tokens)
                    _, sd = speculative_generate(t, d, prompt, args.gamma, args.new_tokens)
                worst = max(worst, load.other_cores)
                times[(e, "ar")].append(ar.total_time_s)
                times[(e, "sd")].append(sd.total_time_s)
        tps = {key: args.new_tokens / statistics.median(v) for key, v in times.items()}
        print(
            f"[{dtype}] tokens/s  AR: hf {tps[('hf', 'ar')]:.1f}, lean {tps[('lean', 'ar')]:.1f} "
            f"(lean/hf {tps[('lean', 'ar')] / tps[('hf', 'ar')]:.2f});  SD gamma {args.gamma}: hf {tps[('hf', 'sd')]:.1f}, "
            f"lean {tps[('lean', 'sd')]:.1f} (lean/hf {tps[('lean', 'sd')] / tps[('hf', 'sd')]:.2f});  "
            f"SD/AR hf {tps[('hf', 'sd')] / tps[('hf', 'ar')]:.2f}, lean {tps[('lean', 'sd')] / tps[('lean', 'ar')]:.2f}  "
            f"(largest other load {worst:.2f} cores)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
