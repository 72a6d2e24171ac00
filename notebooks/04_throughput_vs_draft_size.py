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
# # 04 · Throughput against draft size before training anything: Eq. 6-9, Figure 2 and Table 5
#
# Reproduces SDSL (arXiv:2603.11053) §4.3 and §5: the acceptance plane (Eq. 5, Table 3) is fed the
# perplexities a Chinchilla-form law predicts from size and data (Eq. 7-8, Besiroglu et al. 2024), and
# the optimal-lookahead throughput (Eq. 4) becomes a function of the draft size N, the target size M
# and the two data sizes D, D′ alone (Eq. 9). Figure 2 draws it against N for every target and each
# draft family; Table 5 lists the maximiser N* and 𝒯(N*). Every row of Table 5 is regenerated and
# compared; two misprints are shown with their evidence (E2: "1.4T"; E6: Qwen1.5-14B's 𝒯 column).

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

import sdsl_lib as sd
from sdsl_lib import nbtools, paper, plotting
from sdsl_lib.io import atomic_write_json

# %% tags=["parameters"]
DRAFT_FAMILIES = ["OPT", "Qwen1.5", "Qwen2.5"]  # draft families drawn and tabulated (Figure 2 panels a, b, c); D from Table 5
N_CURVE_MIN = 3e7  # smallest draft size drawn, parameters
N_CURVE_MAX = 1e10  # largest draft size drawn, parameters (Table 7's upper limit)
N_CURVE_POINTS = 400  # log-spaced draft sizes per curve
N_SEARCH_MIN = 1e8  # lower end of the N* search grid, parameters (Table 7)
N_SEARCH_MAX = 1e10  # upper end of the N* search grid, parameters (Table 7)
N_SEARCH_POINTS = 10000  # points of the N* search grid (Table 7), refined by golden-section search
LLAMA3_MISPRINTED_D = 1.4e12  # the draft data Table 5 prints for LLaMa3-70B with Qwen2.5 drafts, tokens (erratum E2)
TOL_NSTAR_REL = 1e-3  # tolerance on N* against Table 5, relative
TOL_T_REL = 5e-3  # tolerance on T(N*) against Table 5, relative
FIGURES_DIR = "../figures"  # where figures go, relative to notebooks/
RESULTS_DIR = "../data/results"  # where the results JSON goes, relative to notebooks/

# %%
families = nbtools.require_choices("DRAFT_FAMILIES", DRAFT_FAMILIES, paper.DRAFT_FAMILY_TOKENS)
nbtools.require_count("N_CURVE_POINTS", N_CURVE_POINTS, 2)
nbtools.require_count("N_SEARCH_POINTS", N_SEARCH_POINTS, 3)
nbtools.require_range("N_CURVE_MIN", N_CURVE_MIN, 1.0, N_CURVE_MAX)
nbtools.require_range("N_SEARCH_MIN", N_SEARCH_MIN, 1.0, N_SEARCH_MAX)
figures_dir, results_dir = Path(FIGURES_DIR), Path(RESULTS_DIR)
plotting.set_style()
figures = []
PANEL = {"OPT": "a", "Qwen1.5": "b", "Qwen2.5": "c"}  # the paper's panel letter of each draft family
models = paper.models()
t5 = paper.table5()  # with draft_tokens_D: the family's data size (fixes E2)
t5 = t5[t5["draft_family"].isin(families)].reset_index(drop=True)
targets = t5.drop_duplicates("target")[["target", "target_params_M", "target_tokens_Dprime"]].reset_index(drop=True)
search_grid = np.logspace(np.log10(N_SEARCH_MIN), np.log10(N_SEARCH_MAX), N_SEARCH_POINTS)
n_axis = np.logspace(np.log10(N_CURVE_MIN), np.log10(N_CURVE_MAX), N_CURVE_POINTS)

# %% [markdown]
# ## Perplexities from size and data: the law predicts lower perplexities than HellaSwag measures
#
# $$x(N, D) = e^{L(N, D)},\quad y(M, D') = e^{L(M, D')},\qquad
#   L(N, D) = 1.8172 + \frac{482.01}{N^{0.3478}} + \frac{2085.43}{D^{0.3658}} \qquad \text{(Eq. 7-8, signs corrected: E3)}$$
#
# Eq. 9 plugs these into the plane fitted on HellaSwag perplexities (x ∈ [12.6, 29.8],
# y ∈ [9.5, 15.6]). For the real models the law's values sit well below those measured: the plane
# is used outside the range it was fitted on.

# %%
pairs = paper.alpha_pairs()
measured = pairs.drop_duplicates("draft").set_index("draft")["draft_ppl"]
drafts = models[models.role == "draft"].set_index("model")
ppl_table = pd.DataFrame(
    {
        "N": drafts["n_params"],
        "D": drafts["training_tokens"],
        "x from Eq. 7": sd.perplexity(drafts["n_params"].to_numpy(float), drafts["training_tokens"].to_numpy(float)),
        "x on HellaSwag (Tables 1-2)": measured.reindex(drafts.index),
    }
)
display(ppl_table)
tgt = models[models.role == "target"].set_index("model")
y_law = pd.Series(sd.perplexity(tgt["n_params"].to_numpy(float), tgt["training_tokens"].to_numpy(float)), index=tgt.index)
print(f"targets: y from Eq. 8 spans {y_law.min():.2f}-{y_law.max():.2f}; HellaSwag y spans 9.55-15.58")

# %% [markdown]
# ## Table 5: N* reproduces to about 1e-7 and 𝒯(N*) to the printed digits, except the Qwen1.5-14B rows (E6)
#
# $$\mathcal{T}(N) = \frac{-\ln\tilde\alpha}{2N(\tilde\alpha - 1)\,W_{-1}\!\left(-\tilde\alpha^{M/N-1}/e\right)},\qquad
#   \tilde\alpha = A\,x(N, D) + B\,y(M, D') + C \qquad \text{(Eq. 6 and Eq. 9)}$$
#
# $$N^* = \arg\max_{N} \mathcal{T}(N)\ \text{over Table 7's grid (10,000 log-spaced N in }[10^8, 10^{10}]\text{)}$$

# %%
opt = sd.optimal_draft_size(
    t5["target_params_M"].to_numpy(float), t5["draft_tokens_D"].to_numpy(float), t5["target_tokens_Dprime"].to_numpy(float), n_grid=search_grid
)
table5 = pd.DataFrame(
    {
        "target": t5["target"],
        "draft family": t5["draft_family"],
        "N* ours": opt.n_star,
        "N* paper": t5["n_star"],
        "rel diff N*": np.abs(opt.n_star / t5["n_star"] - 1),
        "T(N*) ours": opt.throughput,
        "T(N*) paper": t5["throughput_at_n_star_tokens_per_flop"],
        "rel diff T": np.abs(opt.throughput / t5["throughput_at_n_star_tokens_per_flop"] - 1),
        "gamma*": opt.gamma_star,
        "alpha(N*)": opt.alpha,
        "gain over target": opt.gain,
        "M/N*": t5["target_params_M"] / opt.n_star,
    }
)
display(table5)
qwen14 = table5["target"] == "Qwen1.5-14B"
worst = {
    "nstar_all": float(table5["rel diff N*"].max()),
    "nstar_excluding_qwen15_14b": float(table5.loc[~qwen14, "rel diff N*"].max()),
    "throughput_all": float(table5["rel diff T"].max()),
    "throughput_excluding_qwen15_14b": float(table5.loc[~qwen14, "rel diff T"].max()),
}
print({k: f"{v:.1e}" for k, v in worst.items()})
print(f"gamma* spans {table5['gamma*'].min():.2f}-{table5['gamma*'].max():.2f}; alpha(N*) {table5['alpha(N*)'].min():.3f}-{table5['alpha(N*)'].max():.3f}; "
      f"gain {table5['gain over target'].min():.2f}-{table5['gain over target'].max():.2f}x; M/N* {table5['M/N*'].min():.0f}-{table5['M/N*'].max():.0f}")

# %% [markdown]
# ### Erratum E2: the LLaMa3-70B / Qwen2.5 row prints D = 1.4T, but its N* is the one for 18T

# %%
llama = t5[(t5.target == "LLaMa3-70B") & (t5.draft_family == "Qwen2.5")]
e2 = {}
if len(llama):
    row = llama.iloc[0]
    for label, d in (("printed 1.4T", LLAMA3_MISPRINTED_D), ("family value 18T", row["draft_tokens_D"])):
        o = sd.optimal_draft_size(row["target_params_M"], d, row["target_tokens_Dprime"], n_grid=search_grid)
        e2[label] = {"D": float(d), "n_star": o.n_star, "rel_diff_to_printed": abs(o.n_star / row["n_star"] - 1)}
    display(pd.DataFrame(e2).T)

# %% [markdown]
# ## Figure 2: throughput peaks at N* ≈ 0.1-0.4B for every target and falls towards the real 0.5-4B drafts
#
# One curve per target (Eq. 9 with that target's M and D′ and the family's D); ★ marks N*, black
# dots the draft sizes actually used in the paper's experiments. LLaMa3-70B and LLaMa3.1-70B share
# M and D′, so their curves coincide (Eq. 9 never sees the measured α).

# %%
n_star_by = table5.set_index(["target", "draft family"])
for fam in families:
    d_fam = paper.DRAFT_FAMILY_TOKENS[fam]
    real_n = np.sort(drafts.loc[drafts["family"] == fam, "n_params"].to_numpy(float))
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for _, tr in targets.iterrows():
        name, m, dp = tr["target"], tr["target_params_M"], tr["target_tokens_Dprime"]
        fam_members = targets[targets["target"].map(plotting.family_of) == plotting.family_of(name)].sort_values(["target_params_M", "target"])
        rank = list(fam_members["target"]).index(name)
        colour = plotting.model_colour(name, rank, len(fam_members))
        style = "--" if name == "LLaMa3.1-70B" else "-"
        ok = n_axis < m
        ax.plot(n_axis[ok], sd.predicted_throughput(n_axis[ok], m, d_fam, dp), style, color=colour, lw=1.2, label=name)
        ns = n_star_by.loc[(name, fam), "N* ours"]
        ax.plot(ns, n_star_by.loc[(name, fam), "T(N*) ours"], "*", ms=9, color=colour, mec="black", mew=0.4)
        ax.plot(real_n, sd.predicted_throughput(real_n, m, d_fam, dp), "o", ms=2.8, color="black")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plotting.count_axis(ax, "x")
    ax.set_xlabel("draft size N (parameters)")
    ax.set_ylabel(r"predicted throughput $\mathcal{T}$ (tokens / FLOP)")
    ax.set_title(f"({PANEL[fam]}) {fam} drafts, D = {plotting.format_count(d_fam)} tokens   ★ N*, ● real {fam} drafts", fontsize=8)
    ax.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    slug = fam.lower().replace(".", "")
    figures += [p.name for p in plotting.save(fig, f"fig2{PANEL[fam]}_throughput_vs_draft_{slug}", figures_dir)]
    plt.show()

# %% [markdown]
# ## Check against the paper
#
# N* within 0.1% and 𝒯(N*) within 0.5% on every row. The Qwen1.5-14B rows are the one known gap:
# N* agrees to 1e-4, but 𝒯(N*) comes out 0.14% higher than printed on all three rows (E6; the
# cause is unknown: every other row agrees to the printed digits).

# %%
rows = [
    ("Table 5 N*, max rel diff (all rows)", worst["nstar_all"], 0.0, TOL_NSTAR_REL, "abs"),
    ("Table 5 N*, max rel diff (without Qwen1.5-14B)", worst["nstar_excluding_qwen15_14b"], 0.0, 1e-6, "abs"),
    ("Table 5 T(N*), max rel diff (all rows)", worst["throughput_all"], 0.0, TOL_T_REL, "abs"),
    ("Table 5 T(N*), max rel diff (without Qwen1.5-14B)", worst["throughput_excluding_qwen15_14b"], 0.0, 1e-3, "abs"),
]
if e2:
    rows.append(("E2: N* with D = 18T vs printed", e2["family value 18T"]["rel_diff_to_printed"], 0.0, 1e-6, "abs"))
checks = nbtools.compare(rows)
display(checks)
print("All within tolerance." if nbtools.all_ok(checks) else "Some checks FAILED: see the table.")

# %%
results = {
    "notebook": "04_throughput_vs_draft_size",
    "figures": sorted(figures),
    "draft_families": families,
    "table5_max_rel_diff": worst,
    "table5": [
        {"target": r["target"], "draft_family": r["draft family"], "n_star": r["N* ours"], "throughput": r["T(N*) ours"], "gamma_star": r["gamma*"], "alpha": r["alpha(N*)"], "gain": r["gain over target"]}
        for _, r in table5.iterrows()
    ],
    "erratum_e2": e2,
    "ranges": {
        "gamma_star": [float(table5["gamma*"].min()), float(table5["gamma*"].max())],
        "alpha_at_nstar": [float(table5["alpha(N*)"].min()), float(table5["alpha(N*)"].max())],
        "gain": [float(table5["gain over target"].min()), float(table5["gain over target"].max())],
        "m_over_nstar": [float(table5["M/N*"].min()), float(table5["M/N*"].max())],
        "m_over_nstar_median": float(table5["M/N*"].median()),
    },
    "checks_ok": nbtools.all_ok(checks),
}
atomic_write_json(results_dir / "04_throughput_vs_draft_size.json", results)
{k: v for k, v in results.items() if k != "table5"}
