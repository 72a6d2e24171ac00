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
# # 02 · The optimal lookahead in closed form: Appendix C with sympy (Eq. 3, 4, 13)
#
# Reproduces SDSL (arXiv:2603.11053) §3.2 and Appendix C. Throughput in tokens per FLOP at lookahead
# γ (Eq. 3) is maximised over a continuous γ; the stationary point involves the **lower branch
# W₋₁ of the Lambert W function** (Eq. 13), and substituting it back gives the throughput at the
# optimum as a function of (α, N, M) only (Eq. 4). Here sympy redoes each step of the derivation,
# checks it against the formulas the paper prints, explains why W₋₁ (not W₀) is the right branch,
# and a numeric argmax of Eq. 3 confirms the library's `optimal_lookahead` / `optimal_throughput`.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sympy as sp
from IPython.display import Math, display
from scipy.optimize import minimize_scalar
from scipy.special import lambertw

import sdsl_lib as sd
from sdsl_lib import nbtools, plotting
from sdsl_lib.io import atomic_write_json

# %% tags=["parameters"]
M_TARGET = 12853473280  # target parameters M: OPT-13B, SDSL Table 5
D_DRAFT = 180e9  # draft training tokens D: OPT family, SDSL Table 5
D_TARGET = 180e9  # target training tokens D': OPT-13B, SDSL Table 5
DRAFT_SIZES = [117313808.6, 331196416, 1315758080]  # draft parameters N: Table 5's N* for OPT-13B/OPT, then OPT-350M and OPT-1.3B
GAMMA_MAX = 30.0  # largest lookahead drawn, draft tokens per iteration
GAMMA_POINTS = 601  # points of the gamma axis in panel (b)
CHECK_ALPHAS = [0.3, 0.5, 0.65, 0.8, 0.95]  # acceptance rates of the numeric-argmax check, unitless
CHECK_RATIOS = [0.001, 0.01, 0.05, 0.2]  # draft/target size ratios N/M of the numeric-argmax check
CHECK_M = 1e10  # target parameters M of the numeric-argmax check
FIGURES_DIR = "../figures"  # where figures go, relative to notebooks/
RESULTS_DIR = "../data/results"  # where the results JSON goes, relative to notebooks/

# %%
nbtools.require_range("DRAFT_SIZES", DRAFT_SIZES, 1.0, M_TARGET * (1 - 1e-9))
nbtools.require_range("CHECK_ALPHAS", CHECK_ALPHAS, 1e-6, 1 - 1e-6)
nbtools.require_range("CHECK_RATIOS", CHECK_RATIOS, 1e-9, 1 - 1e-9)
nbtools.require_range("GAMMA_MAX", GAMMA_MAX, 1.0, 1e6)
nbtools.require_count("GAMMA_POINTS", GAMMA_POINTS, 3)
figures_dir, results_dir = Path(FIGURES_DIR), Path(RESULTS_DIR)
plotting.set_style()
figures = []
symbolic_checks = {}

# %% [markdown]
# ## Step 1. The derivative of Eq. 3 matches Appendix C as printed
#
# $$\mathcal{T}(\gamma) = \frac{1 - \alpha^{\gamma + 1}}{2(M + \gamma N)(1 - \alpha)} \qquad \text{(Eq. 3)}$$
#
# Appendix C prints
# $\dfrac{d\mathcal{T}}{d\gamma} = \dfrac{N - N\alpha^{1+\gamma} + (M + N\gamma)\,\alpha^{1+\gamma}\log\alpha}{2(M + N\gamma)^2(-1 + \alpha)}$.

# %%
alpha, gamma, M, N = sp.symbols("alpha gamma M N", positive=True)
s, k = sp.symbols("s k", positive=True)
W = sp.Symbol("W", negative=True)

T = (1 - alpha ** (gamma + 1)) / (2 * (M + gamma * N) * (1 - alpha))
dT = sp.diff(T, gamma)
dT_printed = (N - N * alpha ** (1 + gamma) + (M + N * gamma) * alpha ** (1 + gamma) * sp.log(alpha)) / (
    2 * (M + N * gamma) ** 2 * (-1 + alpha)
)
symbolic_checks["derivative_matches_appendix_c"] = sp.simplify(dT - dT_printed) == 0
display(Math(r"\frac{d\mathcal{T}}{d\gamma} = " + sp.latex(sp.factor(dT))))
print("equals the printed derivative:", symbolic_checks["derivative_matches_appendix_c"])

# %% [markdown]
# ## Step 2. The stationarity condition becomes s·e^{−s} = α^{M/N−1}/e
#
# The denominator never vanishes, so dT/dγ = 0 iff the numerator does; divided by N:
#
# $$1 - \alpha^{\gamma+1} + \left(\tfrac{M}{N} + \gamma\right)\alpha^{\gamma+1}\ln\alpha = 0 .$$
#
# sympy's `solve` finds no closed form in γ directly (γ sits both in a power and outside it).
# Substitute $t = M/N + \gamma$ and $s = 1 - t\ln\alpha$ (so $s > 1$, as $\ln\alpha < 0$):
# then $\alpha^{\gamma+1} = e^{1-s}\alpha^{1-M/N}$ and the condition reads $1 - s\,e^{1-s}\alpha^{1-M/N} = 0$.

# %%
stationarity = 1 - alpha ** (gamma + 1) + (M / N + gamma) * alpha ** (gamma + 1) * sp.log(alpha)
# The numerator of dT/dgamma is the condition times -N or N (its sign depends on how sympy orders terms).
ratio_to_condition = sp.simplify(sp.numer(sp.together(dT)) / (N * stationarity))
symbolic_checks["numerator_is_stationarity"] = ratio_to_condition in (1, -1)
in_s = stationarity.subs(gamma, (1 - s) / sp.log(alpha) - M / N)
claimed = 1 - s * sp.exp(1 - s) * alpha ** (1 - M / N)
symbolic_checks["substitution_gives_s_exp"] = sp.simplify(sp.expand_power_exp(sp.expand(in_s - claimed))) == 0
print("numerator of dT/dgamma is the stationarity condition:", symbolic_checks["numerator_is_stationarity"])
print("after the substitution it reads 1 - s e^(1-s) alpha^(1-M/N) = 0:", symbolic_checks["substitution_gives_s_exp"])

# %% [markdown]
# ## Step 3. Lambert W solves it, and only the W₋₁ branch gives a feasible lookahead
#
# With $k = \alpha^{M/N-1}/e$ the condition is $s e^{-s} = k$, i.e. $(-s)e^{-s} = -k$, so
# $-s = W(-k)$: sympy's `solve` returns exactly this (on the principal branch, which it always
# picks). Both real branches exist for $-1/e \le -k < 0$: $W_0 \in [-1, 0)$ and $W_{-1} \le -1$.
# Since $s > 1$ we need $W = -s < -1$: **the W₋₁ branch**. W₀ would give $s \le 1$, hence
# $\gamma = (1 - s)/\ln\alpha - M/N \le -M/N < 0$, infeasible.
#
# $$\gamma^* = \frac{1 + W_{-1}(-\alpha^{M/N-1}/e)}{\ln\alpha} - \frac{M}{N}
#   = \frac{-M\ln\alpha + N\,W_{-1}(-\alpha^{M/N-1}/e) + N}{N\ln\alpha} \qquad \text{(Eq. 13)}$$

# %%
print("sympy: s =", sp.solve(s * sp.exp(-s) - k, s))
gamma_star_expr = (1 + W) / sp.log(alpha) - M / N
eq13_printed = (-M * sp.log(alpha) + N * W + N) / (N * sp.log(alpha))
symbolic_checks["gamma_star_matches_eq13"] = sp.simplify(gamma_star_expr - eq13_printed) == 0
print("gamma* from the derivation equals Eq. 13 as printed:", symbolic_checks["gamma_star_matches_eq13"])

# Both branches at the OPT-13B / N* example of Table 5 (alpha from Eq. 5 with Eq. 7-8).
n_ex = DRAFT_SIZES[0]
alpha_ex = sd.predicted_alpha(n_ex, M_TARGET, D_DRAFT, D_TARGET)
z_ex = -(alpha_ex ** (M_TARGET / n_ex - 1)) / np.e
branches = pd.DataFrame(
    {
        "branch": ["W_0", "W_-1"],
        "W(z)": [lambertw(z_ex, 0).real, lambertw(z_ex, -1).real],
    }
)
branches["gamma = (1 + W)/ln(alpha) - M/N"] = (1 + branches["W(z)"]) / np.log(alpha_ex) - M_TARGET / n_ex
print(f"OPT-13B with N = {n_ex:.4g}: alpha = {alpha_ex:.4f}, z = -alpha^(M/N-1)/e = {z_ex:.3e}")
display(branches)

z = -np.exp(-np.linspace(1.0, 12.0, 400))  # arguments in [-1/e, 0), denser near the branch point
fig, ax = plt.subplots(figsize=(4.6, 3.2))
ax.plot(z, lambertw(z, 0).real, color=plotting.FAMILY_COLOURS["OPT"], label="W₀ (γ ≤ −M/N: infeasible)")
ax.plot(z, lambertw(z, -1).real, color=plotting.FAMILY_COLOURS["Qwen2.5"], label="W₋₁ (the paper's branch)")
ax.axhline(-1, color="grey", lw=0.8, ls=":")
ax.plot([-1 / np.e], [-1], "ko", ms=3)
ax.annotate("branch point (−1/e, −1)", (-1 / np.e, -1), xytext=(-0.30, -3.5), fontsize=7, arrowprops={"arrowstyle": "->", "lw": 0.6, "color": "black"})
ax.set_xlabel("z = −α^(M/N − 1)/e")
ax.set_ylabel("W(z)")
ax.set_ylim(-12, 0.5)
ax.legend(fontsize=7, loc="lower left")
figures += [p.name for p in plotting.save(fig, "nb02a_lambert_w_branches", figures_dir)]
plt.show()

# %% [markdown]
# ## Step 4. Substituting γ* back into Eq. 3 gives Eq. 4
#
# At the optimum $\alpha^{\gamma^*+1} = 1/s$ and $M + \gamma^* N = N t = N(1-s)/\ln\alpha$, so
#
# $$\mathcal{T}^* = \frac{1 - 1/s}{2N\,\frac{1-s}{\ln\alpha}\,(1-\alpha)}
#   = \frac{-\ln\alpha}{2N(\alpha - 1)\,W_{-1}\!\left(-\alpha^{M/N-1}/e\right)} \qquad \text{(Eq. 4)}$$

# %%
T_at_star = (1 - 1 / s) / (2 * N * ((1 - s) / sp.log(alpha)) * (1 - alpha))
eq4_printed = -sp.log(alpha) / (2 * N * (-1 + alpha) * W)
symbolic_checks["throughput_matches_eq4"] = sp.simplify(T_at_star.subs(s, -W) - eq4_printed) == 0
print("T at gamma* equals Eq. 4 as printed:", symbolic_checks["throughput_matches_eq4"])
display(Math(r"\mathcal{T}^* = " + sp.latex(eq4_printed)))

# %% [markdown]
# ## The closed form agrees with a numeric argmax of Eq. 3 to about 1e-9
#
# The sympy expression of Eq. 13 (evaluated with scipy's `lambertw` on branch −1), the library's
# `optimal_lookahead` (which solves s − ln s = K in real arithmetic) and a bounded scalar maximisation
# of `throughput_per_flop` over γ must agree.

# %%
gamma13 = sp.lambdify((alpha, N, M), eq13_printed.subs(W, sp.LambertW(-(alpha ** (M / N - 1)) / sp.E, -1)), modules=["scipy", "numpy"])


def sympy_gamma(a, n):
    # Outside the argument range of W_-1 (drafting cannot pay) the printed formula has no real value;
    # its NaN is expected there and excluded below by `pays`, so numpy's warning would be noise.
    with np.errstate(invalid="ignore"):
        return float(np.real(gamma13(a, n, CHECK_M)))


rows = []
for a in CHECK_ALPHAS:
    for ratio in CHECK_RATIOS:
        n = ratio * CHECK_M
        res = minimize_scalar(lambda g, a=a, n=n: -sd.throughput_per_flop(a, g, n, CHECK_M), bounds=(0.0, 500.0), method="bounded", options={"xatol": 1e-10})
        rows.append(
            {
                "alpha": a,
                "N/M": ratio,
                "gamma* sympy Eq. 13": sympy_gamma(a, n),
                "gamma* library": sd.optimal_lookahead(a, n, CHECK_M),
                "gamma* numeric argmax": float(res.x),
                "T* library (Eq. 4)": sd.optimal_throughput(a, n, CHECK_M),
                "T max numeric (Eq. 3)": float(-res.fun),
            }
        )
argmax = pd.DataFrame(rows)
# Where drafting does not pay, Eq. 13 is negative and the optimum over gamma >= 0 is 0 (library's choice).
pays = argmax["gamma* sympy Eq. 13"] > 0
gap_sympy = float(np.max(np.abs(argmax["gamma* library"] - argmax["gamma* sympy Eq. 13"])[pays]))
gap_gamma = float(np.max(np.abs(argmax["gamma* library"] - argmax["gamma* numeric argmax"])))
gap_T = float(np.max(np.abs(argmax["T* library (Eq. 4)"] / argmax["T max numeric (Eq. 3)"] - 1)))
display(argmax)
print(f"max |gamma*_library - gamma*_sympy| = {gap_sympy:.1e}; vs numeric argmax = {gap_gamma:.1e}; max rel. T gap = {gap_T:.1e}")

# %% [markdown]
# ## Throughput rises, peaks at γ* and falls slowly: over-drafting costs little, under-drafting a lot
#
# Eq. 3 for an OPT-13B target with three OPT-style drafts, α from the acceptance plane (Eq. 5) at the
# perplexities of Eq. 7-8, relative to the target alone (1/(2M) tokens per FLOP). Stars: γ* of
# Eq. 13; dotted lines: Eq. 4.

# %%
g_axis = np.linspace(0.0, GAMMA_MAX, GAMMA_POINTS)
fig, ax = plt.subplots(figsize=(4.6, 3.2))
curve_rows = []
for i, n in enumerate(DRAFT_SIZES):
    a = sd.predicted_alpha(n, M_TARGET, D_DRAFT, D_TARGET)
    gain = sd.throughput_per_flop(a, g_axis, n, M_TARGET) * 2 * M_TARGET
    g_star = sd.optimal_lookahead(a, n, M_TARGET)
    t_star = sd.optimal_throughput(a, n, M_TARGET)
    colour = plotting.model_colour("OPT", len(DRAFT_SIZES) - 1 - i, len(DRAFT_SIZES))
    ax.plot(g_axis, gain, color=colour, label=f"N = {plotting.format_count(n)}, α = {a:.3f}")
    ax.plot(g_star, t_star * 2 * M_TARGET, "*", ms=10, color=colour, mec="black", mew=0.5)
    ax.axhline(t_star * 2 * M_TARGET, color=colour, ls=":", lw=0.8)
    curve_rows.append({"n_draft": n, "alpha": a, "gamma_star": g_star, "throughput_star": t_star, "gain_star": t_star * 2 * M_TARGET})
ax.axhline(1.0, color="grey", lw=0.8)
ax.set_xlabel("lookahead γ (continuous)")
ax.set_ylabel("throughput / target-only throughput")
ax.set_title("Eq. 3 for an OPT-13B target; ★ = γ* (Eq. 13)", fontsize=8)
ax.legend(fontsize=7)
figures += [p.name for p in plotting.save(fig, "nb02b_throughput_vs_lookahead", figures_dir)]
plt.show()
curves = pd.DataFrame(curve_rows)
display(curves)

# %% [markdown]
# ## Check against the paper
#
# Table 5 prints 𝒯(N*) = 1.009e-10 tokens/FLOP for OPT-13B with OPT drafts; the paper prints no γ*
# (8.11 is the value Eq. 13 gives there).

# %%
checks = nbtools.compare(
    [
        ("T(N*) for OPT-13B / OPT drafts [tokens/FLOP] (Table 5)", curves.loc[0, "throughput_star"], 1.009e-10, 5e-3, "rel"),
        ("gamma* library vs sympy Eq. 13 (abs)", gap_sympy, 0.0, 1e-8, "abs"),
        ("gamma* library vs numeric argmax (abs)", gap_gamma, 0.0, 1e-5, "abs"),
        ("Eq. 4 vs max of Eq. 3 (rel)", gap_T, 0.0, 1e-9, "abs"),
    ]
    + [(f"sympy: {name}", float(ok), 1.0, 0.0, "abs") for name, ok in symbolic_checks.items()]
)
display(checks)
print("All within tolerance." if nbtools.all_ok(checks) else "Some checks FAILED: see the table.")

# %%
results = {
    "notebook": "02_optimal_lookahead",
    "figures": sorted(figures),
    "symbolic_checks": {k: bool(v) for k, v in symbolic_checks.items()},
    "max_abs_gamma_gap_library_vs_sympy": gap_sympy,
    "max_abs_gamma_gap_library_vs_argmax": gap_gamma,
    "max_rel_throughput_gap_eq4_vs_argmax": gap_T,
    "opt13b_example": curves.iloc[0].to_dict(),
    "w_branches_at_example": {"W0": float(branches.loc[0, "W(z)"]), "Wm1": float(branches.loc[1, "W(z)"])},
    "checks_ok": nbtools.all_ok(checks),
}
atomic_write_json(results_dir / "02_optimal_lookahead.json", results)
results
