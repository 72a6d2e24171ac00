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
# # 01 · Speculative decoding in one page: tokens per iteration and speed-up (SDSL §2, Eq. 1 and Eq. 12)
#
# Reproduces the background of SDSL (arXiv:2603.11053) §2.1, taken from Leviathan, Kalman & Matias
# (2023): the expected number of tokens one speculative iteration yields (Eq. 12, the call-reduction
# factor), the wall-clock speed-up (Eq. 1), and the condition "α > c" under which speculation pays.
# Three knobs: the acceptance rate **α** (how often the target accepts a draft token), the lookahead
# **γ** (draft tokens per iteration) and the cost ratio **c** (time of a draft step over a target step).
# The paper prints no figure for this section; the figures here are for learning.
#
# Every number comes from `sdsl_lib.laws.speculation`; a Monte Carlo run of the i.i.d. acceptance model
# (`sdsl_lib.laws.simulate`) checks Eq. 12 independently.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

import sdsl_lib as sd
from sdsl_lib import nbtools, plotting
from sdsl_lib.io import atomic_write_json
from sdsl_lib.laws.simulate import simulate_accepted

# %% tags=["parameters"]
ALPHAS = [0.5, 0.6, 0.7, 0.8, 0.9]  # acceptance rates drawn in panel (a), unitless; Tables 1-2 span 0.52-0.79
GAMMA_MAX = 12  # largest lookahead drawn, draft tokens per iteration
ALPHA_EXAMPLE = 0.8  # acceptance rate of the speed-up panel (b), unitless
COST_RATIOS = [0.0, 0.01, 0.05, 0.2, 0.5]  # cost ratio c = draft step / target step time; Leviathan et al. report c < 0.05
MAP_POINTS = 201  # grid points per axis of the (alpha, c) map of panel (c)
SIM_ITERATIONS = 20000  # simulated speculative iterations per (alpha, gamma) for the Monte Carlo check
SEED = 0  # seed of the simulation
FIGURES_DIR = "../figures"  # where figures go, relative to notebooks/
RESULTS_DIR = "../data/results"  # where the results JSON goes, relative to notebooks/

# %% [markdown]
# Derived settings. Bad parameters stop here with a message naming the parameter.

# %%
nbtools.require_range("ALPHAS", ALPHAS, 0.0, 0.999)
nbtools.require_range("ALPHA_EXAMPLE", ALPHA_EXAMPLE, 0.0, 0.999)
nbtools.require_range("COST_RATIOS", COST_RATIOS, 0.0, 10.0)
nbtools.require_count("GAMMA_MAX", GAMMA_MAX, 1)
nbtools.require_count("MAP_POINTS", MAP_POINTS, 3)
nbtools.require_count("SIM_ITERATIONS", SIM_ITERATIONS, 10)
figures_dir, results_dir = Path(FIGURES_DIR), Path(RESULTS_DIR)
plotting.set_style()
figures = []  # every file written, for the results JSON
gammas = np.arange(GAMMA_MAX + 1)
alphas = np.asarray(ALPHAS, dtype=float)

# %% [markdown]
# ## (a) Each extra draft token is worth α^γ more: tokens per iteration saturate at 1/(1 − α)
#
# Under Leviathan's i.i.d. model each draft token is accepted with probability α, drafting stops at
# the first rejection, and the target always contributes one token (the correction, or the bonus
# token after a full acceptance). The expected number of tokens per iteration is (Eq. 12)
#
# $$\mathbb{E}[\#\text{tokens}] = \frac{1 - \alpha^{\gamma + 1}}{1 - \alpha} = \sum_{k=0}^{\gamma} \alpha^k
#   \;\xrightarrow{\;\gamma\to\infty\;}\; \frac{1}{1 - \alpha}.$$

# %%
tokens = sd.expected_tokens_per_iteration(alphas[:, None], gammas[None, :])

# Monte Carlo: n accepted drafts per iteration from explicit U(0,1) acceptance tests, plus the target's token.
rng = np.random.default_rng(SEED)
mc_mean = np.empty((alphas.size, GAMMA_MAX))
mc_se = np.empty_like(mc_mean)
for i, a in enumerate(alphas):
    for j, g in enumerate(range(1, GAMMA_MAX + 1)):
        n = simulate_accepted(a, g, SIM_ITERATIONS, seed=rng)[0] + 1
        mc_mean[i, j], mc_se[i, j] = n.mean(), n.std(ddof=1) / np.sqrt(n.size)
mc_z = (mc_mean - tokens[:, 1:]) / mc_se
print(f"Monte Carlo vs Eq. 12: largest |z| over {mc_z.size} (alpha, gamma) cells = {np.abs(mc_z).max():.2f}")

fig, ax = plt.subplots(figsize=(4.6, 3.2))
for i, a in enumerate(alphas):
    colour = plotting.sequential_colours(alphas.size)[i]
    ax.plot(gammas, tokens[i], color=colour, label=f"α = {a:g}")
    ax.plot(gammas[1:], mc_mean[i], "o", ms=3, color=colour)
    ax.axhline(1 / (1 - a), color=colour, ls=":", lw=0.8)
ax.set_xlabel("lookahead γ (draft tokens per iteration)")
ax.set_ylabel("expected tokens per iteration")
ax.set_title("Eq. 12: lines; simulation: dots; dotted: 1/(1−α)", fontsize=8)
ax.legend(fontsize=7, ncol=1, loc="upper left")
figures += [p.name for p in plotting.save(fig, "nb01a_tokens_per_iteration", figures_dir)]
plt.show()

# %% [markdown]
# ## (b) A cheaper draft affords a longer lookahead: the best γ grows as c falls
#
# Each iteration costs γ draft steps and one target step, i.e. (γc + 1) target-step times, so the
# wall-clock speed-up over the target alone is (Eq. 1)
#
# $$S(\alpha, \gamma, c) = \frac{1 - \alpha^{\gamma + 1}}{(1 - \alpha)(\gamma c + 1)}.$$

# %%
speed = sd.speedup(ALPHA_EXAMPLE, gammas[None, :], np.asarray(COST_RATIOS)[:, None])
best_gamma = gammas[np.argmax(speed, axis=1)]
table_b = pd.DataFrame({"c": COST_RATIOS, "best integer gamma (<= GAMMA_MAX)": best_gamma, "speed-up there": speed.max(axis=1)})
display(table_b.round(3))

fig, ax = plt.subplots(figsize=(4.6, 3.2))
for k, c in enumerate(COST_RATIOS):
    colour = plotting.sequential_colours(len(COST_RATIOS), "magma")[k]
    ax.plot(gammas, speed[k], "-o", ms=2.5, color=colour, label=f"c = {c:g}")
    if c > 0:
        ax.plot(best_gamma[k], speed[k].max(), "*", ms=10, color=colour, mec="black", mew=0.5)
ax.axhline(1.0, color="grey", lw=0.8)
ax.set_xlabel("lookahead γ")
ax.set_ylabel("speed-up over the target alone (Eq. 1)")
ax.set_title(f"α = {ALPHA_EXAMPLE:g}; star: best integer γ", fontsize=8)
ax.legend(fontsize=7)
figures += [p.name for p in plotting.save(fig, "nb01b_speedup_vs_lookahead", figures_dir)]
plt.show()

# %% [markdown]
# ## (c) For an integer lookahead, speculation pays exactly when α > c; the continuous relaxation claims more
#
# Leviathan's corollary: if α > c, then γ = 1 already gives
#
# $$S(\alpha, 1, c) = \frac{1 + \alpha}{1 + c} > 1 .$$
#
# The converse also holds for integer γ: S > 1 ⇔ α + α² + … + α^γ > γc, and the left side is at most
# γα. SDSL treats γ as continuous (Eq. 3, with c = N/M). There `speculation_pays` tests
# ∂𝒯/∂γ > 0 at γ = 0, i.e. (M/N)(−α ln α) > 1 − α, a **weaker** condition: α^γ falls steeply near
# γ = 0, so a fractional lookahead looks profitable even where no integer lookahead is. (Randomising
# the lookahead between 0 and 1, as the paper suggests for fractional γ, interpolates linearly and
# gains nothing there.)

# %%
alpha_axis = np.linspace(0.005, 0.995, MAP_POINTS)
c_axis = np.linspace(0.005, 0.995, MAP_POINTS)
A, C = np.meshgrid(alpha_axis, c_axis)  # rows: c, columns: alpha
best_speed = sd.speedup(A[..., None], np.arange(1, GAMMA_MAX + 1), C[..., None]).max(axis=-1)
integer_pays = best_speed > 1.0 + 1e-12  # on the line alpha = c, S(gamma = 1) is 1 up to rounding
# speculation_pays takes sizes: c = N/M with M = 1.
continuous_pays = sd.speculation_pays(A, C, 1.0)
corollary_gap = sd.speedup(A, 1, C) - (1 + A) / (1 + C)

agree = float(np.mean(integer_pays == (A > C)))
extra = float(np.mean(continuous_pays & ~integer_pays))
print(f"integer gamma pays  <=>  alpha > c on {agree:.1%} of the map")
print(f"continuous relaxation says 'pays' where no integer gamma does on {extra:.1%} of the map")
print(f"max |S(alpha, 1, c) - (1 + alpha)/(1 + c)| = {np.abs(corollary_gap).max():.1e}")
example = {"alpha": 0.3, "c": 0.4}
s_int = sd.speedup(example["alpha"], 1, example["c"])
s_frac = sd.throughput_per_flop(example["alpha"], 0.1, example["c"], 1.0) * 2.0  # Eq. 3 relative to 1/(2M), M = 1
print(f"example alpha = 0.3, c = 0.4: S(gamma = 1) = {s_int:.3f}; Eq. 3 at gamma = 0.1 relative to the target = {s_frac:.4f}")

fig, ax = plt.subplots(figsize=(4.6, 3.8))
mesh = ax.pcolormesh(A, C, np.log2(best_speed), cmap="RdBu_r", vmin=-3, vmax=3, shading="auto", rasterized=True)
fig.colorbar(mesh, ax=ax, label=f"log₂ best speed-up, γ ∈ {{1…{GAMMA_MAX}}}")
ax.plot(alpha_axis, alpha_axis, "k-", lw=1.2, label="α = c: an integer γ pays below this line")
ax.contour(A, C, continuous_pays.astype(float), levels=[0.5], colors="black", linestyles="--", linewidths=1.0)
ax.plot([], [], "k--", lw=1.0, label="continuous γ: speculation_pays boundary")
ax.set_xlabel("acceptance rate α")
ax.set_ylabel("cost ratio c")
ax.legend(fontsize=6.5, loc="upper left")
figures += [p.name for p in plotting.save(fig, "nb01c_when_speculation_pays", figures_dir)]
plt.show()

# %% [markdown]
# ## Check against the paper
#
# §2 prints no numbers of its own; the checks are Leviathan's statements as SDSL quotes them.

# %%
checks = nbtools.compare(
    [
        ("S(alpha, 1, c) = (1 + alpha)/(1 + c), max abs gap", np.abs(corollary_gap).max(), 0.0, 1e-12, "abs"),
        ("integer gamma pays <=> alpha > c (share of map)", agree, 1.0, 0.0, "abs"),
        ("Monte Carlo vs Eq. 12, max |z| (should be < 4.5)", np.abs(mc_z).max(), 0.0, 4.5, "abs"),
        ("S(0.8, gamma = 0) = 1", sd.speedup(0.8, 0, 0.05), 1.0, 0.0, "abs"),
    ]
)
display(checks)
print("All within tolerance." if nbtools.all_ok(checks) else "Some checks FAILED: see the table.")

# %%
results = {
    "notebook": "01_speculative_decoding",
    "figures": sorted(figures),
    "monte_carlo_max_abs_z": float(np.abs(mc_z).max()),
    "corollary_max_abs_gap": float(np.abs(corollary_gap).max()),
    "integer_pays_iff_alpha_gt_c_share": agree,
    "continuous_only_share": extra,
    "example_alpha03_c04": {"speedup_gamma1": float(s_int), "eq3_gamma01_relative": float(s_frac)},
    "best_integer_gamma_at_alpha_example": dict(zip(map(str, COST_RATIOS), map(int, best_gamma))),
    "checks_ok": nbtools.all_ok(checks),
}
atomic_write_json(results_dir / "01_speculative_decoding.json", results)
results
