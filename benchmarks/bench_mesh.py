"""Time the full Table 7 mesh: 10,000 x 8 x 6 x 6 = 2.88 million evaluations of Eq. 9.

Goal (issue 2): under 1 second on 2 cores, by vectorisation. Prints the cold (first call) and warm
(median of repeats) times, the time per evaluation, and the speed-up of the library's real-valued
W_{-1} solver over scipy.special.lambertw on the same inputs, measured in the same run.

    python benchmarks/bench_mesh.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy.special import lambertw

from sdsl_lib.laws.constants import TABLE7_GRID
from sdsl_lib.laws.optimal import nstar_grid
from sdsl_lib.laws.speculation import _neg_w_m1_of_neg_exp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="warm repetitions (default 5)")
    args = parser.parse_args()
    n_eval = TABLE7_GRID.n_points * TABLE7_GRID.m_points * TABLE7_GRID.d_points**2

    t0 = time.perf_counter()
    df = nstar_grid()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        nstar_grid()
        warm.append(time.perf_counter() - t0)
    med = statistics.median(warm)
    print(
        f"Table 7 mesh: {len(df)} optima from {n_eval:,} evaluations of Eq. 9 (plus 60 golden-section steps per optimum)"
    )
    print(
        f"  cold {cold:.3f} s   warm median {med:.3f} s (min {min(warm):.3f}, max {max(warm):.3f}) over {args.repeats} runs"
    )
    print(f"  {med / n_eval * 1e9:.0f} ns per evaluation; goal < 1 s: {'met' if med < 1.0 else 'NOT met'}")

    k = np.random.default_rng(0).uniform(1.001, 600.0, n_eval)
    t0 = time.perf_counter()
    _neg_w_m1_of_neg_exp(k)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    lambertw(-np.exp(-k), k=-1)
    theirs = time.perf_counter() - t0
    print(
        f"W_-1 on {n_eval:,} points: library solver {ours:.3f} s, scipy.special.lambertw {theirs:.3f} s ({theirs / ours:.1f}x)"
    )


if __name__ == "__main__":
    main()
