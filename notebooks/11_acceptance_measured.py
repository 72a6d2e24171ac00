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
# # 11 · Acceptance on the measured ladder: α three ways, the Eq. 5 plane on our pairs, and how i.i.d. Eq. 12 really is
#
# SDSL (arXiv:2603.11053) estimates the acceptance rate α of 130 draft–target pairs from token
# acceptance rates (Appendix B, Eq. 12), fits a plane in draft and target perplexity (Eq. 5, Table 3,
# Figure 1) and per-target curves in draft perplexity (Table 4, Figure 3). Here the same is done on
# the pairs of the ladder this project trained (`data/measured/<PROFILE>/alpha.csv`), with α measured
# three ways so that their disagreements can be seen:
#
# * **(a) teacher-forced sum-min**: $\alpha = \mathbb{E}_{\text{prefix}}\big[\sum_x \min(p(x), q(x))\big]$ over held-out
#   text, both models reading the same tokens at temperature 1 (Leviathan's definition);
# * **(b) TAR inverse**: speculative sampling at temperature 1 on text the target generates; the mean
#   accepted drafts per full iteration at each γ is fitted with Eq. 12 (no bonus token:
#   $\mathbb{E}[n] = \alpha(1 - \alpha^{\gamma})/(1 - \alpha)$), 95% interval as in Appendix B.2;
# * **(c) greedy match**: the share of held-out positions where both models' argmax agree, which is
#   the acceptance rate of *greedy* speculative decoding (the mode the throughput runs use), a
#   different quantity from (a) and (b).

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

import sdsl_lib as sd
from sdsl_lib import nbtools, plotting
from sdsl_lib.analysis import acceptance as ac
from sdsl_lib.analysis import results as hand_on
from sdsl_lib.analysis import stats as st
from sdsl_lib.analysis import tables
from sdsl_lib.analysis import verdicts as vd
from sdsl_lib.io import atomic_write_json
from sdsl_lib.laws.acceptance import DraftPplFit

# %% tags=["parameters"]
PROFILE = "cpu"  # measured profile to read: a folder of data/measured/ (cpu, gpu, smoke)
PLANE_ALPHA = "alpha_tf"  # the estimate fitted by Eq. 5 and Table 4: alpha_tf (a), alpha_tar (b) or greedy_match_tf (c)
PPL_SPLIT = "val"  # held-out split whose perplexities play x and y (val: the split the law of notebook 10 is fitted on)
FIT_CURVE_POINTS = 100  # points per fitted curve in Figure 3
IID_TOLERANCE = 0.05  # fixed before looking: i.i.d. error of Eq. 12 in expected accepted drafts counted as negligible below this (relative)
TAR_MARGIN = 0.02  # fixed before looking: TAR inverse and teacher-forced alpha "agree" when |difference| <= this
R2_THRESHOLD = 0.5  # fixed before looking: "the plane explains most of the variance" means R^2 > this
PLANE_BOOTSTRAP = 500  # bootstrap draws of each plane (pairs resampled), handed on to notebook 12
SEED = 0  # seed of every bootstrap
FIGURES_DIR = "../figures"  # where figures go, relative to notebooks/
RESULTS_DIR = "../data/results"  # where the results JSON goes, relative to notebooks/

# %%
nbtools.require_choices("PLANE_ALPHA", PLANE_ALPHA, ["alpha_tf", "alpha_tar", "greedy_match_tf"])
nbtools.require_choices("PPL_SPLIT", PPL_SPLIT, ["val", "test"])
nbtools.require_count("FIT_CURVE_POINTS", FIT_CURVE_POINTS, 2)
nbtools.require_range("IID_TOLERANCE", IID_TOLERANCE, 0.0, 1.0)
nbtools.require_range("TAR_MARGIN", TAR_MARGIN, 1e-6, 1.0)
nbtools.require_range("R2_THRESHOLD", R2_THRESHOLD, 0.0, 1.0)
nbtools.require_count("PLANE_BOOTSTRAP", PLANE_BOOTSTRAP, 10)
data = tables.load_measured(PROFILE, require=["models", "alpha", "tar", "acceptance_by_position"])
figures_dir, results_dir = Path(FIGURES_DIR), Path(RESULTS_DIR)
plotting.set_style()
figures = []
tag = f"ladder_{data.profile}"
alpha = data.alpha.copy()
alpha["pair"] = alpha["draft"] + " → " + alpha["target"]
XCOL, YCOL = f"draft_{PPL_SPLIT}_ppl", f"target_{PPL_SPLIT}_ppl"
draft_colour = dict(zip(data.drafts, plotting.sequential_colours(len(data.drafts))))
target_colour = dict(zip(data.targets, plotting.sequential_colours(len(data.targets), "plasma")))
print(f"profile {data.profile}: {len(alpha)} pairs ({len(data.drafts)} drafts x {len(data.targets)} targets)")

# %% [markdown]
# ## α three ways for every pair

# %%
three = ac.alpha_three_ways(alpha)
wide = alpha[["pair", "alpha_tf", "alpha_tf_ci95_lower", "alpha_tf_ci95_upper", "alpha_tar", "alpha_tar_ci95_lower", "alpha_tar_ci95_upper",
              "greedy_match_tf", "greedy_acceptance_run", XCOL, YCOL]]
display(wide)
for m, meaning in ac.ALPHA_METHODS.items():
    print(f"{m}: {meaning}")

# %%
methods = list(ac.ALPHA_METHODS)
fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(alpha) + 2), 3.4))
offsets = np.linspace(-0.27, 0.27, len(methods))
for off, m, colour in zip(offsets, methods, plotting.sequential_colours(len(methods), "tab10")):
    g = three[three["method"] == m].reset_index(drop=True)
    x = np.arange(len(g)) + off
    yerr = np.vstack([g["alpha"] - g["ci95_lower"], g["ci95_upper"] - g["alpha"]])
    ax.errorbar(x, g["alpha"], yerr=np.clip(np.nan_to_num(yerr), 0, None), fmt="o", ms=3.5, capsize=2, color=colour, label=m)
ax.set_xticks(np.arange(len(alpha)))
ax.set_xticklabels(alpha["pair"], rotation=60, ha="right", fontsize=6)
ax.set_ylabel("acceptance rate")
ax.set_ylim(0, 1.02)
ax.set_title("α three ways (95% intervals; greedy_acceptance_run has none)", fontsize=8)
ax.legend(fontsize=6, ncol=2)
fig.tight_layout()
figures += [p.name for p in plotting.save(fig, f"{tag}_alpha_three_ways", figures_dir)]
plt.show()

# %% [markdown]
# ## Why the estimates disagree
#
# * (b) vs (a): TAR is measured on text the *target generates* at T = 1 (its own high-probability
#   continuations, where drafts agree more than on held-out human text) and fitted through Eq. 12,
#   which assumes every position is accepted independently with the same α; (a) averages β over
#   held-out human text. They coincide only if acceptance is i.i.d. and does not depend on the text.
# * (c) vs (a): greedy match asks whether the two argmaxes agree, (a) how much probability mass the two
#   distributions share. A confident draft that agrees with the target's mode scores higher on (c);
#   flat, high-perplexity models (these tiny ones) share mass without sharing the argmax.
# * The greedy acceptance of the timed runs is (c) on the target's own greedy text, counted per
#   proposed draft: it includes the truncated last iterations.

# %%
dis_tar = ac.alpha_disagreement(alpha, "alpha_tar", "alpha_tf")
dis_greedy = ac.alpha_disagreement(alpha, "greedy_match_tf", "alpha_tf")
display(dis_tar["per_pair"])
for name, d in (("TAR inverse (b) - teacher-forced (a)", dis_tar), ("greedy match (c) - teacher-forced (a)", dis_greedy)):
    lo, hi = d["mean_diff_ci95"]
    print(f"{name}: mean difference {d['mean_diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] over {d['n_pairs']} pairs; mean |diff| {d['mean_abs_diff']:.3f}; "
          f"intervals overlap for {d['share_overlapping']:.0%} of pairs; Spearman rho {d['spearman_rho']:.2f}")

# %% [markdown]
# ## Our Table 3 and Figure 1: on the ladder the plane explains most of α, with the paper's sign of the draft slope
#
# $$\alpha = A\,x + B\,y + C \qquad \text{(Eq. 5; } x, y \text{ = draft and target perplexity)}$$
#
# The paper's constants (A = −0.0067, B = 0.012971, C = 0.642, R² = 0.60) were fitted on HellaSwag
# perplexities of 12.6–29.8; ours are in the hundreds, so only signs and R² are comparable.

# %%
# Every plane a later notebook needs is fitted here, once, with its bootstrap draws (pairs resampled):
# notebook 12 reads them from this notebook's results JSON.
planes, plane_draws = {}, {}
for col in ("alpha_tf", "greedy_match_tf", "alpha_tar"):
    planes[col] = ac.fit_ladder_plane(alpha, col, PPL_SPLIT)
    plane_draws[col] = ac.plane_draws_by_pair(alpha, col, PPL_SPLIT, PLANE_BOOTSTRAP, SEED)
plane, draws = planes[PLANE_ALPHA], plane_draws[PLANE_ALPHA]
plane_ci = {p: ac.plane_interval(plane, draws, p) for p in ("A", "B", "C", "r2")}
t3 = plane.table.copy()
t3["pair_bootstrap_ci95"] = [[plane_ci[p].lower, plane_ci[p].upper] for p in ("A", "B", "C")]
t3["paper"] = [sd.TABLE3_PLANE.A, sd.TABLE3_PLANE.B, sd.TABLE3_PLANE.C]
display(t3)
print(f"plane on {plane.n} pairs ({PLANE_ALPHA} vs {PPL_SPLIT} perplexities): R^2 = {plane.r2:.3f} (paper 0.602), MSE = {plane.mse:.2e}"
      + ("" if plane.identified else "; one target perplexity only: B is not identifiable and set to 0"))

# %%
fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.3), sharey=True)
x_axis = np.linspace(alpha[XCOL].min() * 0.97, alpha[XCOL].max() * 1.03, 50)
for t, g in alpha.groupby("target", sort=False):
    colour = target_colour[t]
    axes[0].plot(g[XCOL], g[PLANE_ALPHA], "o", ms=4, color=colour, label=f"target {t} (y = {g[YCOL].iloc[0]:.0f})")
    axes[0].plot(x_axis, sd.alpha_plane(x_axis, g[YCOL].iloc[0], plane.plane), "-", lw=1, color=colour)
for d, g in alpha.groupby("draft", sort=False):
    axes[1].plot(g[YCOL], g[PLANE_ALPHA], "o-", ms=4, lw=0.8, color=draft_colour[d], label=f"draft {d}")
axes[0].set_xlabel(f"draft perplexity x ({PPL_SPLIT})")
axes[1].set_xlabel(f"target perplexity y ({PPL_SPLIT})")
axes[0].set_ylabel(f"α ({PLANE_ALPHA})")
axes[0].set_title(f"(a) α against x; lines: Eq. 5 fitted (R² = {plane.r2:.2f})", fontsize=8)
axes[1].set_title("(b) α against y, one line per draft", fontsize=8)
for ax in axes:
    ax.legend(fontsize=5.5)
fig.tight_layout()
figures += [p.name for p in plotting.save(fig, f"fig1_{tag}_plane", figures_dir)]
plt.show()

# %% [markdown]
# ## Our Table 4 and Figure 3: α against draft perplexity per target, three forms
#
# Linear $\alpha = p_1 x + p_2$, logarithmic $\alpha = p_1 \ln x + p_2$, power law $\alpha = p_1 x^{p_2}$
# (Table 4's forms and conventions). A target needs at least three drafts.

# %%
t4 = ac.per_target_forms(alpha, PLANE_ALPHA, PPL_SPLIT)
if t4.empty:
    print("fewer than 3 drafts per target: no Table 4 fits (two points fit any two-parameter curve exactly)")
else:
    display(t4[["target", "form", "p1", "p1_ci95_lower", "p1_ci95_upper", "p2", "p2_ci95_lower", "p2_ci95_upper", "mse", "r2"]])
    best_form = t4.loc[t4.groupby("target")["r2"].idxmax(), ["target", "form", "r2"]]
    print("best form per target: " + "; ".join(f"{r.target}: {r.form} (R^2 {r.r2:.3f})" for r in best_form.itertuples()))

# %%
targets = data.targets
fig, axes = plt.subplots(1, len(targets), figsize=(3.6 * len(targets), 3.0), sharey=True, squeeze=False)
styles = {"linear": "-", "log": "--", "power": ":"}
for ax, t in zip(axes[0], targets):
    g = alpha[alpha["target"] == t]
    ax.plot(g[XCOL], g[PLANE_ALPHA], "o", ms=4, color="black")
    xs = np.linspace(g[XCOL].min() * 0.97, g[XCOL].max() * 1.03, FIT_CURVE_POINTS)
    for _, r in (t4[t4["target"] == t].iterrows() if not t4.empty else []):
        f = DraftPplFit(r["form"], r["p1"], r["p2"], r["p1_moe95"], r["p2_moe95"], r["mse"], r["r2"], int(r["n"]))
        ax.plot(xs, f.predict(xs), styles[r["form"]], lw=1, label=f"{r['form']}: p1={r['p1']:.3g}, p2={r['p2']:.3g}, R²={r['r2']:.2f}")
    ax.set_title(f"target {t}", fontsize=8)
    ax.set_xlabel(f"draft perplexity x ({PPL_SPLIT})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=5)
axes[0][0].set_ylabel(f"α ({PLANE_ALPHA})")
fig.tight_layout()
figures += [p.name for p in plotting.save(fig, f"fig3_{tag}_alpha_vs_draft_ppl", figures_dir)]
plt.show()

# %% [markdown]
# ## Acceptance by draft position: homogeneous when sampling (T = 1), so Eq. 12 holds; uneven in greedy runs (T = 0), where it misses the expected accepted drafts by several percent
#
# Conditional rate $a_i$ = P(position i accepted | positions 1..i−1 accepted), pooled over γ (a draft
# at position i does not know γ), with Wilson 95% intervals; temperature 1 from the TAR runs,
# temperature 0 from the greedy throughput runs. Under Eq. 12, $a_i = \alpha$ for all i and the
# expected accepted drafts are $\sum_{i \le \gamma} \alpha^i$; with the measured rates they are
# $\sum_{i \le \gamma} \prod_{j \le i} a_j$.

# %%
pos = ac.position_acceptance(data.acceptance_by_position)
temps = sorted(pos["temperature"].unique(), reverse=True)
fig, axes = plt.subplots(len(temps), len(targets), figsize=(3.6 * len(targets), 2.6 * len(temps)), sharey=True, squeeze=False)
for i, temp in enumerate(temps):
    for j, t in enumerate(targets):
        ax = axes[i][j]
        for d, g in pos[(pos["target"] == t) & (pos["temperature"] == temp)].groupby("draft", sort=False):
            yerr = np.clip(np.vstack([g["rate"] - g["ci95_lower"], g["ci95_upper"] - g["rate"]]), 0, None)  # Wilson bound at 1 can round below 1
            ax.errorbar(g["position"], g["rate"], yerr=yerr, fmt="o-", ms=3, lw=0.8, capsize=1.5, color=draft_colour[d], label=d)
        ax.set_title(f"target {t}, temperature {temp:g}", fontsize=8)
        ax.set_xlabel("draft position i")
        if j == 0:
            ax.set_ylabel("P(accept | reached)")
axes[0][0].legend(fontsize=5.5)
fig.tight_layout()
figures += [p.name for p in plotting.save(fig, f"{tag}_acceptance_by_position", figures_dir)]
plt.show()

# %%
iid = ac.iid_check(data.acceptance_by_position, alpha, "alpha_tf")
display(iid)
iid_summary = {}
for temp, g in iid.groupby("temperature"):
    err = np.abs(g["tokens_rel_error"].to_numpy(float))
    slopes = g["logit_slope"].to_numpy(float)
    iid_summary[float(temp)] = {"median_abs_tokens_rel_error": float(np.nanmedian(err)), "max_abs_tokens_rel_error": float(np.nanmax(err)),
                                "share_chi2_reject": float((g["chi2_p"] < 0.05).mean()),
                                "median_logit_slope": float(np.nanmedian(slopes)) if np.isfinite(slopes).any() else float("nan"),
                                "mean_abs_dev_from_alpha_tf": float(g["mean_abs_dev_ref"].mean())}
    v = iid_summary[float(temp)]
    print(f"temperature {temp:g}: the i.i.d. error of Eq. 12 in expected accepted drafts at gamma_max is {v['median_abs_tokens_rel_error']:.1%} "
          f"(median over pairs), at most {v['max_abs_tokens_rel_error']:.1%}; homogeneity over positions rejected at 5% for "
          f"{v['share_chi2_reject']:.0%} of pairs; median logit slope per position {v['median_logit_slope']:+.3f}; "
          f"attempt-weighted mean |a_i - alpha_tf| {v['mean_abs_dev_from_alpha_tf']:.3f}")
iid_median_err = iid_summary.get(1.0, {}).get("median_abs_tokens_rel_error", float("nan"))
iid_max_err = iid_summary.get(1.0, {}).get("max_abs_tokens_rel_error", float("nan"))
share_reject = iid_summary.get(1.0, {}).get("share_chi2_reject", float("nan"))

# %% [markdown]
# ## Eq. 12 against the measured TAR(γ): with the fitted α (b) and with the teacher-forced α (a)

# %%
tar_b = ac.tar_vs_eq12(data.tar, alpha, "alpha_tar")
tar_a = ac.tar_vs_eq12(data.tar, alpha, "alpha_tf")
eq12_err = {"alpha_tar": float(np.nanmedian(np.abs(tar_b["rel_error"]))), "alpha_tf": float(np.nanmedian(np.abs(tar_a["rel_error"])))}
display(tar_a[["draft", "target", "gamma", "tar_no_bonus", "tar_ci95_lower", "tar_ci95_upper", "tar_predicted", "rel_error"]])
print(f"median |Eq. 12 / measured TAR - 1|: {eq12_err['alpha_tar']:.1%} with the TAR-fitted alpha (b), "
      f"{eq12_err['alpha_tf']:.1%} with the teacher-forced alpha (a)")

# %% [markdown]
# ## Checks
#
# Internal consistency: every estimate is a probability, each TAR fit's interval holds its
# estimate, the position counts never accept more than they attempt, and the plane's R² is a share.

# %%
rows = [
    ("alpha_tf in [0, 1] for every pair", float(alpha["alpha_tf"].between(0, 1).all()), 1.0, 0, "abs"),
    ("greedy_match_tf in [0, 1] for every pair", float(alpha["greedy_match_tf"].between(0, 1).all()), 1.0, 0, "abs"),
    ("alpha_tar inside its own 95% interval", float(((alpha["alpha_tar_ci95_lower"] <= alpha["alpha_tar"]) & (alpha["alpha_tar"] <= alpha["alpha_tar_ci95_upper"])).all()), 1.0, 0, "abs"),
    ("accepts <= attempts at every position", float((data.acceptance_by_position["accepts"] <= data.acceptance_by_position["attempts"]).all()), 1.0, 0, "abs"),
    ("plane R^2 in [0, 1]", float(0.0 <= plane.r2 <= 1.0) if np.isfinite(plane.r2) else 1.0, 1.0, 0, "abs"),
]
checks = nbtools.compare(rows)
display(checks)
print("All within tolerance." if nbtools.all_ok(checks) else "Some checks FAILED: see the table.")

# %% [markdown]
# ## Verdict: which acceptance claims of the paper hold on the ladder
#
# Rule, fixed before looking (`sdsl_lib.analysis.verdicts`): *supported* when the whole 95% interval
# lies in the region where the claim holds, *contradicted* when it lies wholly outside, otherwise
# *inconclusive*. Intervals resample **pairs** (the plane, the mean TAR − teacher-forced
# difference, the i.i.d. error); the per-pair TAR comparison uses each pair's own intervals (App.
# B.2 for TAR, windows for teacher-forced, combined in quadrature). Regions: A < 0; B > 0;
# R² > `R2_THRESHOLD`; |α_TAR − α_TF| ≤ `TAR_MARGIN`; i.i.d. error < `IID_TOLERANCE`; per-target
# lines minus plane R² > 0. The pairs share drafts and targets trained once each (one seed).

# %%
v_a = vd.one_sided("alpha falls as draft perplexity rises (A < 0; paper -0.0067)", plane_ci["A"], 0.0, "below", one_seed=True)
v_b = (vd.one_sided("alpha rises weakly with target perplexity (B > 0; paper 0.012971)", plane_ci["B"], 0.0, "above", one_seed=True)
       if plane.identified else vd.judge("alpha rises weakly with target perplexity (B > 0; paper 0.012971)",
                                         st.Interval(0.0, float("nan"), float("nan"), "pair", plane.n, 0), (0.0, float("inf")), "estimate > 0",
                                         note="one target perplexity: B not identified"))
v_r2 = vd.one_sided(f"the plane explains most of the variance of alpha (R^2 > {R2_THRESHOLD:g}; paper 0.602)", plane_ci["r2"], R2_THRESHOLD, "above", one_seed=True)
tar_mean = ac.mean_difference(alpha, "alpha_tar", "alpha_tf", 2000, SEED)
v_tar_mean = vd.equivalence("TAR inverse (App. B) has no systematic bias against teacher-forced alpha (mean over pairs of alpha_tar - alpha_tf)",
                            tar_mean, 0.0, TAR_MARGIN)
per_pair = dis_tar["per_pair"]
pair_verdicts = [vd.equivalence(f"{r.draft} -> {r.target}: alpha_tar = alpha_tf", st.Interval(r.diff, r.diff_ci95_lower, r.diff_ci95_upper,
                                "windows and TAR iterations within the pair (normal, in quadrature)", 1, 0, method="normal"), 0.0, TAR_MARGIN)
                 for r in per_pair.itertuples()]
outcomes = [v.outcome for v in pair_verdicts]
pair_outcome = "contradicted" if "contradicted" in outcomes else ("supported" if all(o == "supported" for o in outcomes) else "inconclusive")
widest = max(per_pair["diff_ci95_upper"] - per_pair["diff_ci95_lower"]) / 2
v_tar_pairs = vd.Verdict("the TAR inverse (App. B) measures Leviathan's alpha pair by pair (|alpha_tar - alpha_tf| <= margin for every pair)",
                         float(per_pair["diff"].abs().max()), (float(per_pair["diff_ci95_lower"].min()), float(per_pair["diff_ci95_upper"].max())),
                         "pair (each pair's own interval)", (-TAR_MARGIN, TAR_MARGIN),
                         "every pair supported -> supported; any pair contradicted -> contradicted; else inconclusive", pair_outcome,
                         note=f"{outcomes.count('supported')} supported, {outcomes.count('contradicted')} contradicted, "
                              f"{outcomes.count('inconclusive')} inconclusive of {len(outcomes)} pairs; widest half-interval {widest:.3f}; "
                              "estimate = largest |difference|; ci = hull of the per-pair intervals")
verdicts = [v_a, v_b, v_r2, v_tar_mean, v_tar_pairs]
iid_pairs = iid.assign(abs_err=np.abs(iid["tokens_rel_error"]))
for temp in sorted(iid_summary, reverse=True):
    g = iid_pairs[iid_pairs["temperature"] == temp]
    iv = st.cluster_bootstrap(g, lambda f: float(np.nanmedian(f["abs_err"])), "pair", 2000, SEED)
    verdicts.append(vd.judge(f"i.i.d. positions (Eq. 12) cost under {IID_TOLERANCE:.0%} in expected accepted drafts (T = {temp:g}, median over pairs)",
                             iv, (0.0, IID_TOLERANCE), f"estimate < {IID_TOLERANCE:g}"))
if not t4.empty:
    iv = st.cluster_bootstrap(alpha, lambda f: ac.per_target_r2_gain(f, PLANE_ALPHA, PPL_SPLIT), "pair", 1000, SEED)
    verdicts.append(vd.one_sided("per-target lines fit better than the pooled plane (median per-target linear R^2 minus plane R^2 > 0; paper 0.74-0.98 vs 0.60)",
                                 iv, 0.0, "above", one_seed=True))
display(vd.verdict_frame(verdicts))
print("\n".join(vd.verdict_lines(verdicts)))
print(f"per pair (TAR vs teacher-forced): {v_tar_pairs.note}")

# %%
results = tables.json_safe({
    "notebook": "11_acceptance_measured",
    "profile": data.profile,
    "provenance": hand_on.provenance(data, ["models", "alpha", "tar", "acceptance_by_position"]),
    "figures": sorted(figures),
    "plane_alpha": PLANE_ALPHA,
    "ppl_split": PPL_SPLIT,
    "alpha_by_pair": alpha[["draft", "target", "alpha_tf", "alpha_tf_ci95_lower", "alpha_tf_ci95_upper", "alpha_tar", "alpha_tar_ci95_lower",
                            "alpha_tar_ci95_upper", "greedy_match_tf", "greedy_acceptance_run"]].to_dict("records"),
    "disagreement": {"tar_minus_tf": {k: v for k, v in dis_tar.items() if k != "per_pair"},
                     "greedy_minus_tf": {k: v for k, v in dis_greedy.items() if k != "per_pair"}},
    "plane": {"A": plane.plane.A, "B": plane.plane.B, "C": plane.plane.C, "r2": plane.r2, "n": plane.n, "identified": plane.identified,
              "table": plane.table.to_dict("records"), "ci95_pair_bootstrap": {p: iv.to_dict() for p, iv in plane_ci.items()}},
    "planes": {col: {"A": pl.plane.A, "B": pl.plane.B, "C": pl.plane.C, "r2": pl.r2, "n": pl.n, "identified": pl.identified, "ppl_split": PPL_SPLIT,
                     "draws": {"unit": "pair", "n_boot": PLANE_BOOTSTRAP, "seed": SEED, "draws": plane_draws[col].to_dict("records")}}
               for col, pl in planes.items()},
    "table4": t4.to_dict("records"),
    "iid": {"median_abs_tokens_rel_error_t1": iid_median_err, "max_abs_tokens_rel_error_t1": iid_max_err, "share_chi2_reject_t1": share_reject,
            "by_temperature": {f"{k:g}": v for k, v in iid_summary.items()}, "per_pair": iid.to_dict("records")},
    "eq12_median_abs_rel_error": eq12_err,
    "verdicts": verdicts,
    "verdicts_per_pair_tar": pair_verdicts,
    "checks_ok": nbtools.all_ok(checks),
})
atomic_write_json(results_dir / "11_acceptance_measured.json", results)
{k: v for k, v in results.items() if k not in ("alpha_by_pair", "table4", "iid", "plane", "planes", "verdicts_per_pair_tar")}
