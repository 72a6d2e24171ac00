"""Time the planner's uncertainty propagation: 1,000 draws of both laws, N* recomputed per draw.

Goal (issue 6): 1,000 draws "in a few seconds" on 2 cores. Prints, for the 70B example of the issue,
the cold (first call, imports excluded) and warm (median of repeats) time of ``plan`` with and
without the hardware mode, and the time of the whole ``sdsl plan`` command (process start included).

    python benchmarks/bench_planner.py [--draws 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sdsl_lib.planner import plan

EXAMPLE = dict(m_target=70e9, d_target=15e12, d_draft=2.4e12)
# A 70B target fits on one H200 only with 1-byte weights (bf16 weights alone fill its 141 GB).
FITS = dict(hardware="h200", bytes_per_param=1)


def timed(fn, repeats: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    return cold, statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000, help="draws per plan (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="warm repetitions (default 5)")
    args = parser.parse_args()
    cases = {
        "plan (FLOP model)": lambda: plan(**EXAMPLE, draws=args.draws, seed=0),
        "plan + hardware h200 (1 byte/param)": lambda: plan(**EXAMPLE, draws=args.draws, seed=0, **FITS),
        "plan + hardware h200 + batch sweep": lambda: plan(
            **EXAMPLE, draws=args.draws, seed=0, batch_sweep=True, **FITS
        ),
    }
    print(f"{args.draws} draws, 70B target (D' = 15T), draft data 2.4T; warm = median of {args.repeats}")
    for name, fn in cases.items():
        cold, warm = timed(fn, args.repeats)
        print(f"  {name:<36} cold {cold:7.3f} s   warm {warm:7.3f} s   ({1e3 * warm / args.draws:.3f} ms/draw)")
    script = Path(sys.executable).with_name("sdsl")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "sdsl_lib.cli"]
    cmd += [
        "plan",
        "--target-params",
        "70e9",
        "--target-tokens",
        "15e12",
        "--draft-tokens",
        "2.4e12",
        "--draws",
        str(args.draws),
        "--json",
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    print(f"  {'sdsl plan command (process start incl.)':<36} {time.perf_counter() - t0:7.3f} s")


if __name__ == "__main__":
    main()
