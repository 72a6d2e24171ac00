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
# # 12 · Throughput on the measured ladder: Eq. 1 and Eq. 13 against timed runs, and SDSL's predicted N* against the fastest draft
#
# SDSL (arXiv:2603.11053) predicts the throughput-optimal draft size N* before training anything:
# a pre-training law gives perplexities from (N, D), a plane gives α from perplexities (Eq. 5), and
# the optimal-lookahead throughput in tokens per FLOP (Eq. 4, 9) is maximised over N (Table 5,
# Figure 2). The paper checked the result on one target with wall-clock latency. Here every link is
# tested on the ladder this project trained and timed (`data/measured/<PROFILE>/`):
#
# 1. Eq. 1 (speed-up from α, γ and the cost ratio c) against measured speed-ups, with the measured c
#    of the cost calibration and with the paper's c = N/M;
# 2. the measured best γ against Eq. 13;
# 3. the measured fastest draft of each target against the N* of the SDSL chain run on laws fitted
#    on our own ladder (Eq. 2 from notebook 10's data, Eq. 5 on our pairs → `optimal_draft_size`);
# 4. why the latency-optimal draft differs from the FLOP-optimal one: a fixed per-step cost and a
#    verification cost that grows with the number of tokens scored.
#
# The timed runs decode **greedily** (temperature 0), so the acceptance that drives them is the
# greedy match rate, not the temperature-1 α of the paper; `PLANE_ALPHA` selects which one the
# chain is fitted on (both are reported).
#
# **Results JSON** (`12_throughput_measured.json`): `nstar[target]` holds `predicted` (N* of the chain,
# parameters), `predicted_ci95` (bootstrap over both fitted laws), `predicted_at_grid_edge`,
# `predicted_other_alpha` (chain fitted on the other acceptance estimate), `paper_constants` (Table 3
# plane + Besiroglu law at our sizes), `latency_model` (wall-clock optimum of the affine step-cost
# model), `measured` (size of the fastest draft), `measured_draft`, `measured_share` (bootstrap share of
# prompt resamples in which it is fastest), `flop_measured` (draft maximising the FLOP metric with
# measured tokens per iteration) and `log10_predicted_over_measured`; `speedup[target]` holds
# `measured` (median speed-up of the fastest draft at its best γ), `measured_ci95` (prompt bootstrap of
# that median),
# `measured_gamma`, `predicted_eq1_measured_c`, `predicted_flop_model`, `predicted_sdsl_gain`
# (𝒯(N*)·2M of the chain) and `latency_model`.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

import sdsl_lib as sd
from sdsl_lib import nbtools, plotting
from sdsl_lib.analysis import chain as ch
from sdsl_lib.analysis import results as hand_on
from sdsl_lib.analysis import stats as st
from sdsl_lib.analysis import tables
from sdsl_lib.analysis import throughput as th
from sdsl_lib.analysis import verdicts as vd
from sdsl_lib.io import atomic_write_json
from sdsl_lib.laws.constants import AlphaPlane, ChinchillaLaw

# %% tags=["parameters"]
PROFILE = "cpu"  # measured profile to read: a folder of data/measured/ (cpu, gpu, smoke)
SPEEDUP_ALPHA = "greedy_match_tf"  # HELD-OUT acceptance fed to Eq. 1 (never the timed runs' own): greedy_match_tf (teacher-forced, matches greedy timing), alpha_tf or alpha_tar
PLANE_ALPHA = "greedy_match_tf"  # acceptance whose plane (fitted once in notebook 11) drives the chain: greedy_match_tf (matches greedy timing) or alpha_tf (the alpha of the paper)
PROMPT_BOOTSTRAP = 1000  # prompt resamples for the fastest draft and its speed-up interval
PAIR_BOOTSTRAP = 2000  # pair resamples for the intervals of the speed-up errors and the gamma share
SEED = 0  # seed of every bootstrap
SPEEDUP_TOLERANCE = 0.10  # fixed before looking: a speed-up model is accurate when its mean log error lies within +-this
NSTAR_LOG10_MARGIN = 0.15  # fixed before looking: "N* is the fastest draft" means |log10(N* / N_fastest)| <= this (a factor 1.4, about half the ladder's spacing)
N_MIN = 1000.0  # smallest draft size searched for N*, parameters
N_POINTS = 2000  # log-spaced draft sizes searched for N* (then refined by golden-section search)
N_POINTS_BOOTSTRAP = 400  # coarser search grid inside the bootstrap
FIGURES_DIR = "../figures"  # where figures go, relative to notebooks/
RESULTS_DIR = "../data/results"  # where the results JSON goes, relative to notebooks/

# %%
nbtools.require_choices("SPEEDUP_ALPHA", SPEEDUP_ALPHA, ["greedy_match_tf", "alpha_tf", "alpha_tar"])
nbtools.require_choices("PLANE_ALPHA", PLANE_ALPHA, ["greedy_match_tf", "alpha_tf", "alpha_tar"])
nbtools.require_count("PROMPT_BOOTSTRAP", PROMPT_BOOTSTRAP, 10)
nbtools.require_count("PAIR_BOOTSTRAP", PAIR_BOOTSTRAP, 10)
nbtools.require_range("NSTAR_LOG10_MARGIN", NSTAR_LOG10_MARGIN, 1e-6, 2.0)
nbtools.require_count("N_POINTS", N_POINTS, 3)
nbtools.require_count("N_POINTS_BOOTSTRAP", N_POINTS_BOOTSTRAP, 3)
nbtools.require_range("SPEEDUP_TOLERANCE", SPEEDUP_TOLERANCE, 0.0, 1.0)
data = tables.load_measured(PROFILE)
figures_dir, results_dir = Path(FIGURES_DIR), Path(RESULTS_DIR)
# Fit once, hand on: the law (notebook 10) and the planes (notebook 11) are read, not refitted;
# read_result stops with one line if they were computed from other measured tables.
res10 = hand_on.read_result("10_ladder", results_dir, data)
res11 = hand_on.read_result("11_acceptance_measured", results_dir, data)
PARAMS_COLUMN, PPL_SPLIT = res10["params_column"], res11["ppl_split"]
nbtools.require_range("N_MIN", N_MIN, 1.0, float(data.models[PARAMS_COLUMN].min()))
plotting.set_style()
figures = []
tag = f"ladder_{data.profile}"
models = data.models.set_index("model")
targets, drafts = data.targets, data.drafts
draft_colour = dict(zip(drafts, plotting.sequential_colours(len(drafts))))
target_colour = dict(zip(targets, plotting.sequential_colours(len(targets), "plasma")))
summary = data.throughput_summary
spec = summary[summary["method"] == "speculative"]
print(f"profile {data.profile}: {len(drafts)} drafts x {len(targets)} targets, gammas {sorted(int(g) for g in spec['gamma'].unique())}, "
      f"{int(spec['n_prompts'].iloc[0])} prompts per configuration")

# %% [markdown]
# ## Measured speed-up of every pair and γ, beside Eq. 1 with the measured α and c
#
# $$S = \frac{1 - \alpha^{\gamma+1}}{(1 - \alpha)(\gamma c + 1)} \qquad \text{(Eq. 1)}$$
#
# Speed-up = tokens/s of speculative decoding over tokens/s of the target alone on the same prompt
# (medians over prompts; bands: 2.5–97.5 percentiles over prompts).

# %%
pred = th.speedup_predictions(summary, data.alpha, SPEEDUP_ALPHA, data.cost_calibration)
pred_run = th.speedup_predictions(summary, data.alpha, "greedy_acceptance_run", data.cost_calibration)
fig, axes = plt.subplots(1, len(targets), figsize=(4.0 * len(targets), 3.2), sharey=True, squeeze=False)
for ax, t in zip(axes[0], targets):
    for d in drafts:
        g = pred[(pred["target"] == t) & (pred["draft"] == d)].sort_values("gamma")
        if g.empty:
            continue
        ax.fill_between(g["gamma"], g["speedup_p025"], g["speedup_p975"], color=draft_colour[d], alpha=0.15, lw=0)
        ax.plot(g["gamma"], g["speedup_median"], "o-", ms=3, lw=1, color=draft_colour[d], label=f"{d} measured")
        ax.plot(g["gamma"], g["speedup_eq1_measured_c"], "--", lw=0.9, color=draft_colour[d])
    ax.axhline(1.0, color="black", lw=0.6)
    ax.set_title(f"target {t} (dashed: Eq. 1, {SPEEDUP_ALPHA}, measured c)", fontsize=8)
    ax.set_xlabel("lookahead γ")
axes[0][0].set_ylabel("speed-up over the target alone")
axes[0][0].legend(fontsize=5.5)
fig.tight_layout()
figures += [p.name for p in plotting.save(fig, f"{tag}_speedup_vs_gamma", figures_dir)]
plt.show()

# %% [markdown]
# ## Eq. 1 against the timed runs: held-out acceptance, one ingredient changed at a time
#
# Log error ln(predicted / measured) over every (pair, γ); its mean has a 95% interval that
# resamples **pairs** (the 9 lookaheads of a pair share its α and c, so the cells are not
# independent). Predictions use acceptance measured on runs other than the timed ones
# (`SPEEDUP_ALPHA`, teacher-forced on held-out text). Three versions differ in one ingredient each:
#
# 1. the paper's cost model: c = N/M, verification v = 1;
# 2. the measured step-cost ratio c (cost calibration), v = 1;
# 3. the measured c and the measured verification cost v(γ + 1).
#
# The contrasts 1 → 2 and 2 → 3 change one thing each. For diagnosis only (no verdict: the
# acceptance comes from the runs being predicted), the same with the timed runs' own acceptance.

# %%
errors = {
    "heldout_flop_model": th.log_error(pred, "log_ratio_flop_model", n_boot=PAIR_BOOTSTRAP, seed=SEED),
    "heldout_measured_c": th.log_error(pred, "log_ratio_eq1_measured_c", n_boot=PAIR_BOOTSTRAP, seed=SEED),
    "heldout_measured_c_and_v": th.log_error(pred, "log_ratio_wallclock_measured_cv", n_boot=PAIR_BOOTSTRAP, seed=SEED),
    "contrast_c_flop_minus_measured": th.log_error(pred, "log_ratio_flop_model", "log_ratio_eq1_measured_c", PAIR_BOOTSTRAP, SEED),
    "contrast_v_one_minus_measured": th.log_error(pred, "log_ratio_eq1_measured_c", "log_ratio_wallclock_measured_cv", PAIR_BOOTSTRAP, SEED),
    "insample_run_alpha_measured_c": th.log_error(pred_run, "log_ratio_eq1_measured_c", n_boot=PAIR_BOOTSTRAP, seed=SEED),
    "insample_run_alpha_measured_c_and_v": th.log_error(pred_run, "log_ratio_wallclock_measured_cv", n_boot=PAIR_BOOTSTRAP, seed=SEED),
}
model_errors = {k: {"mean_log_ratio": iv.estimate, "mean_log_ratio_ci95": [iv.lower, iv.upper], "unit": iv.unit, "n_pairs": iv.n_units}
                for k, iv in errors.items()}
display(pd.DataFrame(model_errors).T)
c_ratio = (data.alpha["c_measured"] / data.alpha["c_flops"]).to_numpy(float)
print(f"measured c over c = N/M: median {np.nanmedian(c_ratio):.1f}x (range {np.nanmin(c_ratio):.1f}-{np.nanmax(c_ratio):.1f}x); "
      f"measured c spans {data.alpha['c_measured'].min():.2f}-{data.alpha['c_measured'].max():.2f}, N/M {data.alpha['c_flops'].min():.3f}-{data.alpha['c_flops'].max():.3f}")

# %%
fig, ax = plt.subplots(figsize=(4.2, 4.0))
for label, frame, col, marker in ((f"Eq. 1, {SPEEDUP_ALPHA}, measured c and v(γ+1)", pred, "speedup_wallclock_measured_cv", "D"),
                                  (f"Eq. 1, {SPEEDUP_ALPHA}, measured c", pred, "speedup_eq1_measured_c", "s"),
                                  (f"FLOP model c = N/M, {SPEEDUP_ALPHA}", pred, "speedup_flop_model", "^"),
                                  ("in-sample: run α, measured c and v", pred_run, "speedup_wallclock_measured_cv", "o")):
    ax.plot(frame["speedup_median"], frame[col], marker, ms=3.5, alpha=0.8, label=label)
lims = [min(pred["speedup_median"].min(), 0.3), max(pred["speedup_flop_model"].max(), pred["speedup_median"].max()) * 1.1]
ax.plot(lims, lims, color="black", lw=0.7)
ax.set_xscale("log")
ax.set_yscale("log")
plotting.plain_log_axis(ax, "x")
plotting.plain_log_axis(ax, "y")
ax.set_xlabel("measured speed-up (median over prompts)")
ax.set_ylabel("predicted speed-up")
ax.set_title("every (pair, γ): prediction against measurement", fontsize=8)
ax.legend(fontsize=6)
fig.tight_layout()
figures += [p.name for p in plotting.save(fig, f"{tag}_speedup_predicted_vs_measured", figures_dir)]
plt.show()

# %% [markdown]
# ## The measured best γ is short (one or two tokens), shorter than Eq. 13 with c = N/M says
#
# $$\gamma^* = \frac{-M\ln\alpha + N\,W_{-1}\!\left(-\alpha^{M/N-1}/e\right) + N}{N \ln\alpha} \qquad \text{(Eq. 13, } c = N/M\text{)}$$
#
# and the same with the measured c in place of N/M (Eq. 3 depends on N and M only through their
# ratio), beside the best integer γ of Eq. 1 with the measured c among the lookaheads timed.

# %%
gam = th.optimal_gamma_table(summary, data.alpha, SPEEDUP_ALPHA)
display(gam)
gmax = float(spec["gamma"].max())
gap_flops = (gam["best_gamma"] - np.minimum(gam["gamma_eq13_flops"], gmax)).to_numpy(float)
gap_meas = (gam["best_gamma"] - gam["gamma_eq1_measured_c_int"]).to_numpy(float)
share_within1_flops = float(np.mean(np.abs(gap_flops) <= 1))
gam["within1_flops"] = np.abs(gap_flops) <= 1
share_within1_iv = st.cluster_bootstrap(gam, lambda f: float(f["within1_flops"].mean()), "pair", PAIR_BOOTSTRAP, SEED)
share_within1_meas = float(np.mean(np.abs(gap_meas) <= 1))
print(f"best gamma within +-1 of Eq. 13 (c = N/M, capped at the largest gamma timed, {gmax:g}): {share_within1_flops:.0%} of pairs; "
      f"of Eq. 1's best with the measured c: {share_within1_meas:.0%}; Eq. 13 with c = N/M is {np.nanmedian(gam['gamma_eq13_flops']):.1f} "
      f"(median) against a measured {np.median(gam['best_gamma']):.0f}")

# %% [markdown]
# ## The measured fastest draft of each target, and how firmly the prompts identify it

# %%
best = th.measured_optimal_draft(summary, data.models, PARAMS_COLUMN)
shares, best_ci = th.bootstrap_optimal_draft(data.throughput, PROMPT_BOOTSTRAP, SEED)
winners = th.fastest_draft_draws(data.throughput, PROMPT_BOOTSTRAP, SEED)
best = best.merge(best_ci[["target", "speedup_ci95_lower", "speedup_ci95_upper"]], on="target")
best["share"] = [float(shares[(shares.target == r.target) & (shares.draft == r.draft)]["share"].iloc[0]) for r in best.itertuples()]
flop = th.flop_gain_measured(summary, data.alpha)
flop_best = flop.loc[flop.groupby("target")["flop_gain"].idxmax(), ["target", "draft", "gamma", "flop_gain"]].set_index("target")
best["flop_optimal_draft"] = best["target"].map(flop_best["draft"])
display(best)
display(shares.pivot(index="draft", columns="target", values="share").reindex(drafts))

# %% [markdown]
# ## Our Table 5: the chain's N* beside the fastest measured draft
#
# $$N^* = \arg\max_N \frac{-\ln\tilde\alpha}{2N(\tilde\alpha - 1)\,W_{-1}\!\left(-\tilde\alpha^{M/N-1}/e\right)},\qquad
#   \tilde\alpha = A\,e^{L(N,D)} + B\,e^{L(M,D')} + C \qquad \text{(Eq. 9)}$$
#
# with $L$ fitted on the ladder's (N, D, loss) points (Eq. 2, notebook 10) and A, B, C fitted on its
# pairs (Eq. 5, notebook 11), both read from those notebooks' results (fitted once, not here). The
# interval pairs the law's draws (models resampled) with the plane's draws (pairs resampled). For reference the paper's own constants (Table 3 plane, Besiroglu law) are
# evaluated at our sizes too: at a few hundred thousand training tokens their perplexities are
# astronomically far outside the range the plane was fitted on, so the clipped α they give is
# meaningless, which is why the chain has to be refitted on the ladder at all.

# %%
def handed_on_plane(col: str) -> tuple[AlphaPlane, pd.DataFrame]:
    p = res11["planes"][col]
    return AlphaPlane(A=p["A"], B=p["B"], C=p["C"], source=f"notebook 11 ({col})"), pd.DataFrame(p["draws"]["draws"]).astype(float)


law = ChinchillaLaw(**{p: res10["law"][p]["estimate"] for p in ("E", "A", "B", "nu", "delta")}, source="notebook 10")
law_draws = pd.DataFrame(res10["law_draws"]["draws"]).astype(float)
plane, plane_draws = handed_on_plane(PLANE_ALPHA)
chain = ch.predict_chain(data, plane, law, PARAMS_COLUMN, N_MIN, N_POINTS)
other_alpha = "alpha_tf" if PLANE_ALPHA != "alpha_tf" else "greedy_match_tf"
chain_other = ch.predict_chain(data, handed_on_plane(other_alpha)[0], law, PARAMS_COLUMN, N_MIN, N_POINTS)
tt = chain.targets
draws = ch.nstar_draws(law_draws, plane_draws, tt["m_target"].to_numpy(), float(tt["d_draft"].iloc[0]), tt["d_target"].to_numpy(),
                       N_MIN, N_POINTS_BOOTSTRAP)
tt["n_star_ci95_lower"] = np.nanpercentile(draws, 2.5, axis=0) if np.isfinite(draws).any() else np.nan
tt["n_star_ci95_upper"] = np.nanpercentile(draws, 97.5, axis=0) if np.isfinite(draws).any() else np.nan
tt["bootstrap_draws_ok"] = np.isfinite(draws).all(axis=1).sum()
try:  # the paper's constants at our sizes: the law library refuses when the plane would predict alpha > 1
    paper_opt, _ = ch.predicted_nstar(tt["m_target"].to_numpy(), tt["d_draft"].to_numpy(), tt["d_target"].to_numpy(), sd.TABLE3_PLANE, sd.BESIROGLU_2024, N_MIN, N_POINTS)
    paper_refusal = None
except ValueError as exc:
    paper_opt, paper_refusal = None, str(exc)
    print(f"paper's constants at our sizes: {paper_refusal}")
tt["n_star_other_alpha"] = chain_other.targets["n_star"].to_numpy()
tt["n_star_paper_constants"] = np.atleast_1d(paper_opt.n_star) if paper_opt is not None else np.nan
tt["alpha_paper_constants"] = np.atleast_1d(paper_opt.alpha) if paper_opt is not None else np.nan
b = best.set_index("target")
tt["measured_draft"] = tt["target"].map(b["draft"])
tt["n_measured"] = tt["target"].map(b["n_draft"])
tt["log10_pred_over_measured"] = np.log10(tt["n_star"] / tt["n_measured"])
ladder_sizes = models.loc[drafts, PARAMS_COLUMN].astype(float)
tt["nearest_draft_to_n_star"] = [ladder_sizes.index[np.argmin(np.abs(np.log(ladder_sizes.to_numpy()) - np.log(n)))] for n in tt["n_star"]]
display(tt)
edge_share = np.mean(draws <= chain.n_grid[1] * 1.0000001, axis=0) if draws.size else np.full(len(tt), np.nan)
tt["bootstrap_share_at_grid_edge"] = edge_share
print(f"bootstrap: {int(tt['bootstrap_draws_ok'].iloc[0])} of {len(draws)} draws gave a plane and an N* for every target; "
      "share of draws with N* on the lower edge of the search grid (no interior optimum): "
      + ", ".join(f"{t}: {e:.0%}" for t, e in zip(tt["target"], edge_share)))
print(f"plane ({PLANE_ALPHA}, notebook 11): A = {plane.A:.3g}, B = {plane.B:.3g}, C = {plane.C:.3g}, R^2 = {res11['planes'][PLANE_ALPHA]['r2']:.2f}; "
      f"law (notebook 10): E = {law.E:.3g}, nu = {law.nu:.3f}, delta = {law.delta:.3f}")
for r in tt.itertuples():
    print(f"{r.target}: predicted N* = {r.n_star:,.0f} [{r.n_star_ci95_lower:,.0f}, {r.n_star_ci95_upper:,.0f}]"
          f"{' (lower edge of the search grid)' if r.at_grid_edge else ''}; measured fastest {r.measured_draft} ({r.n_measured:,.0f}); "
          f"ratio 10^{r.log10_pred_over_measured:+.2f}; paper's constants give alpha = {r.alpha_paper_constants:.2f} at our sizes"
          + (" (refused: outside the plane's range)" if paper_refusal else ""))

# %% [markdown]
# ## Why the latency-optimal draft is larger than the FLOP-optimal one: a fixed step cost and a growing verification cost
#
# SDSL's c = N/M assumes a decode step costs time in proportion to parameters. Measured, a step costs
# $t(N) = t_0 + kN$: the fixed part $t_0$ (framework dispatch, kernel launches, Python; not
# amortised at batch 1) keeps a tiny draft's step from becoming free, so c has a floor $t_0/t(M)$.
# And verifying γ + 1 tokens costs $v(\gamma+1) = t_M(\gamma+1)/t_M(1) > 1$ target steps once
# the pass stops being purely memory-bound. Both shrink the payoff of a cheap draft and of a long
# lookahead.
#
# $$S_\text{wall}(N, \gamma) = \frac{1 - \alpha^{\gamma+1}}{(1 - \alpha)\,(\gamma\, c(N) + v(\gamma+1))},\qquad c(N) = \frac{t_0 + kN}{t_M(1)}$$

# %%
cost = th.step_cost_model(data.cost_calibration)
lat1 = th.one_token_latency(data.cost_calibration).set_index("model")
display(lat1)
print(f"decode step: t0 = {cost['t0_s'] * 1e3:.3f} ms [{cost['t0_ci95'][0] * 1e3:.3f}, {cost['t0_ci95'][1] * 1e3:.3f}], "
      f"k = {cost['k_s_per_param'] * 1e9:.3f} ms per 1M parameters x 1e-3 (R^2 {cost['r2']:.3f}); c floor t0/t(M): "
      + ", ".join(f"{t}: {v:.2f}" for t, v in cost["c_floor_by_target"].items()))
gammas = sorted(int(g) for g in spec["gamma"].unique())
lat_rows, curves, vcurves = [], {}, {}
for r in tt.itertuples():
    v = th.verification_cost_curve(data.cost_calibration, r.target)
    vcurves[r.target] = v
    lb, curve = ch.latency_optimal_draft(r.m_target, r.d_draft, r.d_target, plane, law, cost["t0_s"], cost["k_s_per_param"],
                                         float(lat1.loc[r.target, "latency_s"]), v, gammas, chain.n_grid)
    curves[r.target] = curve
    lat_rows.append({"target": r.target, "n_star_flops": r.n_star, "n_star_latency_model": lb["n_star"], "speedup_latency_model": lb["speedup"],
                     "gamma_latency_model": lb["gamma"], "c_at_latency_optimum": lb["c"], "at_grid_edge": lb["at_grid_edge"],
                     "v_at_gamma_max_plus_1": float(v.set_index("n_new_tokens")["v"].get(max(gammas) + 1, np.nan))})
latcmp = pd.DataFrame(lat_rows)
display(latcmp)
n_half = cost["t0_s"] / cost["k_s_per_param"] if cost["k_s_per_param"] > 0 else float("inf")
print(f"the fixed cost equals the size-proportional cost at N = t0/k = {n_half:,.0f} parameters: below that a smaller draft saves "
      f"at most half its step time, whereas c = N/M promises savings in proportion to N")
for r in latcmp.itertuples():
    share = cost["t0_s"] / float(lat1.loc[r.target, "latency_s"])
    print(f"{r.target}: t0 is {share:.0%} of the target step (c >= {share:.2f} for any draft); verifying {max(gammas) + 1} tokens costs "
          f"{r.v_at_gamma_max_plus_1:.2f} target steps; optimum moves from N*_FLOP = {r.n_star_flops:,.0f} to N*_latency = "
          f"{r.n_star_latency_model:,.0f} ({r.n_star_latency_model / r.n_star_flops:.2f}x), predicted speed-up {r.speedup_latency_model:.2f} at gamma {r.gamma_latency_model:g}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.2))
ax = axes[0]
ax.errorbar(lat1["n_params"], lat1["latency_s"] * 1e3, yerr=np.clip(np.vstack([lat1["latency_s"] - lat1["latency_p025_s"], lat1["latency_p975_s"] - lat1["latency_s"]]) * 1e3, 0, None),
            fmt="o", ms=4, capsize=2, color="black", label="measured (median, 2.5-97.5%)")
n_line = np.linspace(0, lat1["n_params"].max() * 1.05, 50)
ax.plot(n_line, (cost["t0_s"] + cost["k_s_per_param"] * n_line) * 1e3, "-", lw=1, label=f"t0 + kN, t0 = {cost['t0_s'] * 1e3:.2f} ms")
ax.plot(n_line, lat1["latency_s"].iloc[-1] * n_line / lat1["n_params"].iloc[-1] * 1e3, ":", lw=1, label="time ∝ N through the largest (SDSL's c = N/M)")
plotting.count_axis(ax, "x")
ax.set_xlabel("parameters N")
ax.set_ylabel("decode step, 1 token (ms)")
ax.set_title("(a) step time has a fixed floor", fontsize=8)
ax.legend(fontsize=6)
ax = axes[1]
for t, v in vcurves.items():
    ax.plot(v["n_new_tokens"], v["v"], "o-", ms=3, lw=1, color=target_colour[t], label=f"target {t}")
ax.axhline(1.0, color="black", lw=0.6, ls="--", label="Eq. 1's assumption v = 1")
ax.set_xlabel("tokens scored in one pass T")
ax.set_ylabel("v(T) = t(T) / t(1)")
ax.set_title("(b) verification cost grows with T", fontsize=8)
ax.legend(fontsize=6)
fig.tight_layout()
figures += [p.name for p in plotting.save(fig, f"{tag}_latency_decomposition", figures_dir)]
plt.show()

# %% [markdown]
# ## Our Figure 2: predicted throughput against draft size, with the measured drafts
#
# (a) the paper's metric, tokens per FLOP relative to the target alone (𝒯·2M, Eq. 9 with our laws),
# ★ = predicted N*; markers = the same metric from *measured* tokens per iteration at each draft's
# best γ. (b) wall-clock: measured speed-up of each draft (at its best γ, 2.5–97.5% over prompts)
# and the latency model's prediction.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
bg = th.best_gamma_by_pair(summary)
for t in targets:
    r = tt.set_index("target").loc[t]
    n_axis = curves[t]["n_draft"].to_numpy()  # sizes where the plane predicts an acceptance rate (see latency_optimal_draft)
    gain = np.asarray(sd.predicted_throughput(n_axis, r["m_target"], r["d_draft"], r["d_target"], plane, law)) * 2 * r["m_target"]
    axes[0].plot(n_axis, gain, "-", lw=1, color=target_colour[t], label=f"target {t} (Eq. 9)")
    axes[0].plot(r["n_star"], r["gain"], "*", ms=10, color=target_colour[t], mec="black", mew=0.4)
    fg = flop[flop["target"] == t].groupby("draft")["flop_gain"].max()
    axes[0].plot(models.loc[fg.index, PARAMS_COLUMN], fg.to_numpy(), "o", ms=4, color=target_colour[t], mec="black", mew=0.4)
    g = bg[bg["target"] == t].set_index("draft").reindex(drafts).dropna()
    nn = models.loc[g.index, PARAMS_COLUMN].to_numpy(float)
    axes[1].errorbar(nn, g["speedup"], yerr=np.clip(np.vstack([g["speedup"] - g["speedup_p025"], g["speedup_p975"] - g["speedup"]]), 0, None),
                     fmt="o", ms=4, capsize=2, color=target_colour[t], label=f"target {t} measured")
    cv = curves[t]
    axes[1].plot(cv["n_draft"], cv["speedup"], "--", lw=1, color=target_colour[t], label=f"target {t} latency model")
    axes[1].plot(r["n_star"], np.interp(r["n_star"], cv["n_draft"], cv["speedup"]), "*", ms=10, color=target_colour[t], mec="black", mew=0.4)
for ax in axes:
    ax.set_xscale("log")
    plotting.count_axis(ax, "x")
    ax.axhline(1.0, color="black", lw=0.6)
    ax.set_xlabel(f"draft size N ({PARAMS_COLUMN})")
    ax.legend(fontsize=5.5)
axes[0].set_ylabel("T·2M: tokens per FLOP over the target alone")
axes[1].set_ylabel("wall-clock speed-up")
axes[0].set_title("(a) FLOP metric: Eq. 9 (lines, ★ N*) and measured (●)", fontsize=8)
axes[1].set_title("(b) wall clock: measured (●) and latency model (--), ★ at N*", fontsize=8)
fig.tight_layout()
figures += [p.name for p in plotting.save(fig, f"fig2_{tag}_throughput_vs_draft", figures_dir)]
plt.show()

# %% [markdown]
# ## Checks
#
# Internal consistency: greedy speculative decoding reproduced greedy decoding token for token in
# every timed run, the chain's N* is the maximiser of Eq. 9 on its grid (recomputed by brute force),
# the target-alone runs are the unit of speed-up, and the per-prompt table and the summary agree on
# the fastest configuration.

# %%
brute = []
for r in tt.itertuples():
    n_axis = curves[r.target]["n_draft"].to_numpy()  # sizes where the plane predicts an acceptance rate
    thr = np.asarray(sd.predicted_throughput(n_axis, r.m_target, r.d_draft, r.d_target, plane, law))
    brute.append(float(thr.max() / r.throughput))
rows = [
    ("greedy speculative output = greedy output (all runs)", float(spec["all_match_autoregressive"].astype(bool).all()), 1.0, 0, "abs"),
    ("excess of the best grid point over T(N*), relative", max(max(brute) - 1.0, 0.0), 0.0, 1e-9, "abs"),
    ("the autoregressive runs have speed-up exactly 1", float(np.allclose(summary.loc[summary["method"] == "autoregressive", "speedup_median"], 1.0)), 1.0, 0, "abs"),
    ("the bootstrap and the summary agree on the fastest configuration",
     float((best_ci.set_index("target")["draft"] == best.set_index("target")["draft"]).all()), 1.0, 0, "abs"),
]
checks = nbtools.compare(rows)
display(checks)
print("All within tolerance." if nbtools.all_ok(checks) else "Some checks FAILED: see the table.")

# %% [markdown]
# ## Verdict: what holds of SDSL's throughput chain on models we trained ourselves
#
# Rule, fixed before looking (`sdsl_lib.analysis.verdicts`): *supported* when the whole 95% interval
# lies in the region where the claim holds, *contradicted* when wholly outside, else
# *inconclusive*. Regions and units:
#
# * Eq. 1 speed-up predictions (held-out acceptance): mean log error within ±`SPEEDUP_TOLERANCE`;
#   pairs resampled;
# * Eq. 13 (c = N/M) within ±1 of the best timed γ for most pairs: share > 0.5; pairs resampled;
# * the chain's N* is the fastest draft: |log10(N* / N_fastest)| ≤ `NSTAR_LOG10_MARGIN`; the
#   interval pairs draws of the law (models resampled), the plane (pairs resampled) and the
#   fastest draft (prompts resampled);
# * speculation pays at the measured optimum: median speed-up > 1; prompts resampled.
#
# Removed (the data cannot carry them): "M/N* = 110-299" (the ladder's largest M/N is below 110,
# so no ladder draft is that small), and "FLOP-optimal and latency-optimal drafts coincide" (a
# comparison of two point argmaxes with no interval and no claim of the paper behind it).

# %%
verdicts = [
    vd.equivalence(f"Eq. 1 with held-out acceptance ({SPEEDUP_ALPHA}) and measured c and v(gamma + 1) predicts speed-up within "
                   f"{SPEEDUP_TOLERANCE:.0%} (mean log error)", errors["heldout_measured_c_and_v"], 0.0, SPEEDUP_TOLERANCE),
    vd.equivalence(f"Eq. 1 with held-out acceptance and measured c (v = 1) predicts speed-up within {SPEEDUP_TOLERANCE:.0%} (mean log error)",
                   errors["heldout_measured_c"], 0.0, SPEEDUP_TOLERANCE),
    vd.equivalence(f"the paper's FLOP model (c = N/M, v = 1) with held-out acceptance predicts speed-up within {SPEEDUP_TOLERANCE:.0%} (mean log error)",
                   errors["heldout_flop_model"], 0.0, SPEEDUP_TOLERANCE),
    vd.one_sided("Eq. 13 (c = N/M) gives the best lookahead within +-1 for most pairs (share > 0.5)", share_within1_iv, 0.5, "above"),
]
size = models[PARAMS_COLUMN].astype(float)
n_joint = min(draws.shape[0], PROMPT_BOOTSTRAP)
nstar_joint = {}
for j, r in enumerate(tt.itertuples()):
    win = winners[winners["target"] == r.target].sort_values("draw")["draft"].to_numpy()[:n_joint]
    joint = np.log10(draws[:n_joint, j] / size.loc[win].to_numpy(float))
    iv = st.percentile_interval(joint, r.log10_pred_over_measured, "model (law) x pair (plane) x prompt (fastest draft)", len(data.alpha))
    nstar_joint[r.target] = iv
    verdicts.append(vd.equivalence(f"{r.target}: the chain's N* is the fastest draft (|log10(N*/N_fastest)| <= {NSTAR_LOG10_MARGIN:g})",
                                   iv, 0.0, NSTAR_LOG10_MARGIN, one_seed=True,
                                   note=f"fastest draft {r.measured_draft} wins {best.set_index('target').loc[r.target, 'share']:.0%} of prompt resamples"))
    b_r = best.set_index("target").loc[r.target]
    iv_s = st.Interval(float(b_r["speedup"]), float(b_r["speedup_ci95_lower"]), float(b_r["speedup_ci95_upper"]), "prompt",
                       int(spec["n_prompts"].iloc[0]), PROMPT_BOOTSTRAP)
    verdicts.append(vd.one_sided(f"{r.target}: speculation pays at the measured optimum (median speed-up > 1)", iv_s, 1.0, "above",
                                 note="the optimum is chosen on the same prompts (selection not in the interval)"))
display(vd.verdict_frame(verdicts))
print("\n".join(vd.verdict_lines(verdicts)))
m_over_n_max = float(max(tt["m_target"]) / size.loc[drafts].min())
print(f"largest M/N the ladder reaches: {m_over_n_max:.0f} (Table 5's M/N* = 110-299 cannot be tested)")
for r in best.itertuples():
    print(f"{r.target}: FLOP-optimal draft (measured tokens per iteration) {r.flop_optimal_draft}, wall-clock fastest {r.draft} (descriptive, no verdict)")

# %%
bt = best.set_index("target")
lc = latcmp.set_index("target")
pr = pred.set_index(["draft", "target", "gamma"])
results = tables.json_safe({
    "notebook": "12_throughput_measured",
    "profile": data.profile,
    "provenance": hand_on.provenance(data, ["models", "alpha", "throughput", "throughput_summary", "cost_calibration"], upstream=[res10, res11]),
    "figures": sorted(figures),
    "speedup_alpha": SPEEDUP_ALPHA,
    "plane_alpha": PLANE_ALPHA,
    "params_column": PARAMS_COLUMN,
    "nstar": {r.target: {
        "m_target": r.m_target, "predicted": r.n_star, "predicted_ci95": [r.n_star_ci95_lower, r.n_star_ci95_upper],
        "predicted_ci95_unit": "model (law) x pair (plane)",
        "log10_predicted_over_fastest_ci95": [nstar_joint[r.target].lower, nstar_joint[r.target].upper],
        "predicted_at_grid_edge": bool(r.at_grid_edge), "bootstrap_share_at_grid_edge": r.bootstrap_share_at_grid_edge,
        "predicted_other_alpha": r.n_star_other_alpha, "other_alpha": other_alpha,
        "paper_constants": r.n_star_paper_constants, "paper_constants_alpha": r.alpha_paper_constants, "paper_constants_refused": paper_refusal,
        "latency_model": lc.loc[r.target, "n_star_latency_model"], "measured": r.n_measured, "measured_draft": r.measured_draft,
        "measured_share": bt.loc[r.target, "share"], "flop_measured": float(models.loc[bt.loc[r.target, "flop_optimal_draft"], PARAMS_COLUMN]),
        "flop_measured_draft": bt.loc[r.target, "flop_optimal_draft"], "nearest_draft_to_predicted": r.nearest_draft_to_n_star,
        "log10_predicted_over_measured": r.log10_pred_over_measured} for r in tt.itertuples()},
    "speedup": {t: {
        "measured": bt.loc[t, "speedup"], "measured_ci95": [bt.loc[t, "speedup_ci95_lower"], bt.loc[t, "speedup_ci95_upper"]],
        "measured_gamma": int(bt.loc[t, "best_gamma"]), "measured_draft": bt.loc[t, "draft"],
        "predicted_eq1_measured_c": pr.loc[(bt.loc[t, "draft"], t, bt.loc[t, "best_gamma"]), "speedup_eq1_measured_c"],
        "predicted_flop_model": pr.loc[(bt.loc[t, "draft"], t, bt.loc[t, "best_gamma"]), "speedup_flop_model"],
        "predicted_sdsl_gain": tt.set_index("target").loc[t, "gain"], "latency_model": lc.loc[t, "speedup_latency_model"]} for t in targets},
    "speedup_model_errors": model_errors,
    "gamma": {"share_within_1_eq13_flops": share_within1_flops, "share_within_1_eq13_flops_ci95": [share_within1_iv.lower, share_within1_iv.upper],
              "share_within_1_eq13_flops_unit": "pair", "share_within_1_eq1_measured_c": share_within1_meas,
              "per_pair": gam[["draft", "target", "best_gamma", "gamma_eq13_flops", "gamma_eq13_measured_c", "gamma_eq1_measured_c_int"]].to_dict("records")},
    "latency_vs_flops": {"t0_s": cost["t0_s"], "t0_ci95": cost["t0_ci95"], "k_s_per_param": cost["k_s_per_param"], "r2": cost["r2"],
                         "c_floor_by_target": cost["c_floor_by_target"], "c_measured_over_c_flops_median": float(np.nanmedian(c_ratio)),
                         "per_target": latcmp.to_dict("records")},
    "laws": {"read_from": ["10_ladder", "11_acceptance_measured"],
             "plane": {"A": plane.A, "B": plane.B, "C": plane.C, "r2": res11["planes"][PLANE_ALPHA]["r2"], "identified": res11["planes"][PLANE_ALPHA]["identified"]},
             "chinchilla": {p: getattr(law, p) for p in ("E", "A", "B", "nu", "delta")}},
    "verdicts": verdicts,
    "claims_removed": [
        {"claim": "the optimal draft is ~100-300x smaller than the target (Table 5: M/N* = 110-299)",
         "reason": f"the ladder's largest M/N is {m_over_n_max:.0f}: no ladder draft is small enough to test it"},
        {"claim": "FLOP-optimal and latency-optimal drafts coincide (measured)",
         "reason": "two point argmaxes without an interval; not a claim of the paper"},
        {"claim": "Eq. 1 with the timed runs' own acceptance predicts speed-up within 10%",
         "reason": "not a prediction: the acceptance was counted in the runs being predicted (kept as in-sample diagnostics)"}],
    "checks_ok": nbtools.all_ok(checks),
})
atomic_write_json(results_dir / "12_throughput_measured.json", results)
{k: results[k] for k in ("nstar", "speedup", "speedup_model_errors")}
