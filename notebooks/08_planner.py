# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · A planner for practitioners: the draft to train, with intervals, in tokens/FLOP and tokens/s
#
# Beyond the paper: `sdsl plan` (``sdsl_lib.planner``) chains SDSL's laws (Eq. 5, 7-8, 9, 13, 4) into
# the answers a practitioner needs — the throughput-optimal draft size N*, the lookahead γ*, the
# acceptance rate α and the gain over the target alone — and propagates the uncertainty of the two
# fitted laws it rests on: a cluster bootstrap of the α-plane that resamples the 13 targets of
# Tables 1-2 with their pairs (most of the plane's residual variance lies between targets), plus one
# leave-one-target-out residual per draw (the scatter of a new pair about the plane), and the
# pre-training law within Besiroglu et al.'s standard errors (independent truncated normals: an
# assumption that most likely overstates the spread, because the published estimates are correlated).
# A roofline step-time model with the KV cache (``sdsl_lib.laws.roofline``, presets in
# ``sdsl_lib.planner.hardware``) then turns tokens per FLOP into tokens per second, refuses
# configurations that do not fit in the device's memory, and shows where large batches end the free
# verification that speculation relies on.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from sdsl_lib import nbtools, paper, plotting
from sdsl_lib.io import atomic_write_json
from sdsl_lib.planner import RequestError, plan

# %% tags=["parameters"]
TARGET_PARAMS = 70e9  # target size M of the worked example, parameters (a 70B model)
TARGET_TOKENS = 15e12  # target training tokens D', tokens (LLaMA-3-70B's 15T, Table 5)
DRAFT_TOKENS = 2.4e12  # draft training tokens D, tokens (the Qwen1.5 family's 2.4T, Table 5)
DRAWS = 1000  # draws of the two fitted laws per plan (the CLI's default)
SEED = 0  # seed of the draws
CONFIDENCE = 0.95  # level of the percentile intervals
HARDWARE = ["a100", "h100", "h200"]  # roofline presets compared in the batch sweep (datasheet numbers, docs/planner.md)
BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256]  # batch sizes of the sweep, sequences
BYTES_PER_PARAM = 1  # weights' bytes per parameter in the hardware sweep (fp8: a 70B bf16 target does not fit one GPU)
CONTEXT_TOKENS = 512  # tokens of context per sequence held in the KV cache, tokens
NSTAR_REL_TOL = 1e-4  # tolerance of the planner's N* against Table 5's printed N*, relative
THROUGHPUT_REL_TOL = 5e-3  # tolerance of T(N*) against Table 5's printed 4-digit T (Qwen1.5-14B rows differ by 0.14%, erratum E6), relative
FIGURES_DIR = "../figures"  # where figures go, relative to notebooks/
RESULTS_DIR = "../data/results"  # where the results JSON goes, relative to notebooks/

# %%
nbtools.require_count("DRAWS", DRAWS, 20)
nbtools.require_range("CONFIDENCE", CONFIDENCE, 0.5, 0.999)
nbtools.require_choices("HARDWARE", HARDWARE, ["a100", "h100", "h200", "cpu-measured"])
figures_dir, results_dir = Path(FIGURES_DIR), Path(RESULTS_DIR)
plotting.set_style()
figures = []
level = f"{100 * CONFIDENCE:g}%"

# %% [markdown]
# ## The plan for a 70B target: N* ≈ 290M, γ* ≈ 10, α ≈ 0.66, gain ≈ 2.8× tokens per FLOP
#
# N* maximises Eq. 9 over N; γ* is Eq. 13 there, α Eq. 5 at Eq. 7-8's perplexities, and the gain is
#
# $$\text{gain} = 2M\,\mathcal{T}^*(N^*) = \frac{2M\,(-\ln\alpha)}{2N^*(\alpha - 1)\,W_{-1}\!\left(-\alpha^{M/N^*-1}/e\right)} \qquad \text{(Eq. 4 over the target-only } 1/2M\text{)}$$

# %%
example = plan(TARGET_PARAMS, TARGET_TOKENS, DRAFT_TOKENS, draws=DRAWS, seed=SEED, confidence=CONFIDENCE)
print("alpha:", example.alpha_source)
display(example.estimates[["point", "lower", "upper", "unit"]])
for note in example.notes:
    print("note:", note)

# %% [markdown]
# ## The pre-training law dominates the interval of N*; the α-plane dominates the interval of α and the gain
#
# The same draws, with only one law resampled at a time. Under the independence assumption the
# pre-training law's exponents (ν, δ ± 0.02) move the predicted draft perplexity by −15% to +30% at N ≈ 3e8,
# which is what widens N*'s interval; the covariance of the published fit would narrow it. The
# α-plane (resampled by target, with the scatter of a new pair) moves N* little but α and the gain a
# lot: a new pair's α is known to about ±0.1, not ±0.03.

# %%
modes = {}
for mode in ("plane", "law", "all"):
    modes[mode] = plan(TARGET_PARAMS, TARGET_TOKENS, DRAFT_TOKENS, draws=DRAWS, seed=SEED, confidence=CONFIDENCE, uncertainty=mode)
decomposition = pd.DataFrame(
    {
        mode: {
            "N* lower": p.interval("n_draft")[0], "N* upper": p.interval("n_draft")[1],
            "alpha lower": p.interval("alpha")[0], "alpha upper": p.interval("alpha")[1],
            "gain lower": p.interval("gain")[0], "gain upper": p.interval("gain")[1],
        }
        for mode, p in modes.items()
    }
).T
display(decomposition)

fig, ax = plt.subplots(figsize=(5.5, 3.4))
bins = np.logspace(np.log10(example.draws["n_draft"].min()), np.log10(example.draws["n_draft"].max()), 40)
for mode, p in modes.items():
    ax.hist(p.draws["n_draft"], bins=bins, histtype="step", label=f"{mode} resampled")
ax.axvline(example.point("n_draft"), color="k", lw=1, ls="--", label="point estimate")
ax.set_xscale("log")
plotting.count_axis(ax, "x")
ax.set_xlabel("throughput-optimal draft size N* (parameters)")
ax.set_ylabel("draws")
ax.legend(frameon=False, fontsize=8)
figures += [p.name for p in plotting.save(fig, "fig08a_planner_nstar_draws", figures_dir)]
plt.show()

# %% [markdown]
# ## On real hardware: verification is free only below the ridge, so speculation stops paying at large batch
#
# A forward step of P parameters over T tokens for B sequences costs
#
# $$t(P, T, B) = \max\!\left(\frac{bP + BK}{\beta},\ \frac{2PTB}{\pi}\right) + t_0$$
#
# with K the KV-cache bytes of one sequence, and one speculative iteration costs γ draft steps plus one
# target step over γ + 1 tokens, for Eq. 12's (1 − α^{γ+1})/(1 − α) tokens per sequence. A 70B target
# in bf16 fills an H200's 141 GB with its weights alone, so the planner refuses it; the sweep uses
# 1-byte weights and a short context, and leaves out the batch sizes whose KV caches do not fit.

# %%
try:
    plan(TARGET_PARAMS, TARGET_TOKENS, DRAFT_TOKENS, uncertainty="none", hardware="h200", batch_size=256)
except RequestError as exc:
    print("refused:", exc)

# %%
sweeps = {}
for name in HARDWARE:
    p = plan(TARGET_PARAMS, TARGET_TOKENS, DRAFT_TOKENS, draws=DRAWS, seed=SEED, confidence=CONFIDENCE,
             hardware=name, bytes_per_param=BYTES_PER_PARAM, context_tokens=CONTEXT_TOKENS,
             batch_sweep=True, batch_sizes=tuple(BATCH_SIZES))
    sweeps[name] = p.hardware
    print(f"{name}: batch 1 latency-optimal draft {p.hardware.latency_optimal['n_draft']:.3g} params, "
          f"gamma {p.hardware.latency_optimal['gamma']:.0f}, speed-up {p.hardware.latency_optimal['speedup']:.2f}x; "
          f"speculation stops paying at batch {p.hardware.stops_paying_at_batch}")
    for note in p.hardware.notes:
        print("   note:", note)
display(sweeps[HARDWARE[-1]].batch_sweep)

fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.2))
for name, hw in sweeps.items():
    s = hw.batch_sweep
    axes[0].plot(s["batch_size"], s["latency_optimal_speedup"], marker="o", ms=3, label=name)
    axes[1].step(s["batch_size"], s["latency_optimal_gamma"], where="mid", label=name)
axes[0].axhline(1.0, color="k", lw=0.8)
for ax in axes:
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size B (sequences)")
axes[0].set_ylabel("speed-up over the target alone")
axes[1].set_ylabel("best integer lookahead γ")
axes[0].legend(frameon=False, fontsize=8)
fig.tight_layout()
figures += [p.name for p in plotting.save(fig, "fig08b_planner_batch_sweep", figures_dir)]
plt.show()

# %% [markdown]
# ## Check against the paper: the planner's N* and T(N*) are Table 5's, and every interval covers them

# %%
t5 = paper.table5().drop_duplicates(["target_params_M", "target_tokens_Dprime", "draft_tokens_D"])
rows, checks_rows = [], []
for r in t5.itertuples():
    p = plan(r.target_params_M, r.target_tokens_Dprime, r.draft_tokens_D, draws=DRAWS, seed=SEED, confidence=CONFIDENCE)
    lo, hi = p.interval("n_draft")
    t_lo, t_hi = p.interval("throughput_tokens_per_flop")
    t_printed = r.throughput_at_n_star_tokens_per_flop
    rows.append({"target": r.target, "draft family": r.draft_family, "N* Table 5": r.n_star, "N* planner": p.point("n_draft"),
                 "lower": lo, "upper": hi, "covered": lo <= r.n_star <= hi,
                 "T Table 5": t_printed, "T planner": p.point("throughput_tokens_per_flop"), "T covered": t_lo <= t_printed <= t_hi})
    checks_rows.append((f"{r.target} / {r.draft_family}: N*", p.point("n_draft"), r.n_star, NSTAR_REL_TOL, "rel"))
    checks_rows.append((f"{r.target} / {r.draft_family}: T(N*)", p.point("throughput_tokens_per_flop"), t_printed, THROUGHPUT_REL_TOL, "rel"))
coverage = pd.DataFrame(rows)
display(coverage)
checks = nbtools.compare(checks_rows)
display(checks)
print(f"N*: {coverage['covered'].mean():.0%} and T(N*): {coverage['T covered'].mean():.0%} of the {len(coverage)} distinct "
      f"Table 5 settings lie inside their {level} interval.")
print("All within tolerance." if nbtools.all_ok(checks) else "Some checks FAILED: see the table.")

# %%
results = {
    "notebook": "08_planner",
    "figures": sorted(figures),
    "draws": DRAWS,
    "seed": SEED,
    "example": {
        "inputs": {"target_params": TARGET_PARAMS, "target_tokens": TARGET_TOKENS, "draft_tokens": DRAFT_TOKENS},
        "estimates": example.to_dict()["estimates"],
    },
    "decomposition": {mode: {k: float(v) for k, v in row.items()} for mode, row in decomposition.iterrows()},
    "hardware": {
        name: {"latency_optimal": hw.latency_optimal, "flop_optimal": hw.flop_optimal,
               "stops_paying_at_batch": hw.stops_paying_at_batch,
               "speedup_by_batch": dict(zip(hw.batch_sweep["batch_size"].astype(int).astype(str), hw.batch_sweep["latency_optimal_speedup"]))}
        for name, hw in sweeps.items()
    },
    "table5_coverage": float(coverage["covered"].mean()),
    "table5_throughput_coverage": float(coverage["T covered"].mean()),
    "table5_max_rel_nstar_gap": float((coverage["N* planner"] / coverage["N* Table 5"] - 1).abs().max()),
    "checks_ok": nbtools.all_ok(checks),
}
atomic_write_json(results_dir / "08_planner.json", results)
{k: results[k] for k in ("table5_coverage", "table5_throughput_coverage", "table5_max_rel_nstar_gap", "checks_ok")}
