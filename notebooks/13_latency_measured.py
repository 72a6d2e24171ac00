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
# # 13 · Latency against distance to N* on the measured ladder: our Table 6 and Figure 4
#
# SDSL (arXiv:2603.11053, Appendix F) timed one target (OPT-13B) with ten drafts and found the
# fastest draft of each family to be the one closest to the predicted N* (Table 6, Figure 4: TTFT,
# TTOT and TPOT against |N − N*|/M). Here the same table is built for every target of the ladder
# this project trained and timed (`data/measured/<PROFILE>/throughput.csv`), with N* predicted by the
# SDSL chain fitted on the ladder itself, read from notebook 12's results (computed there once), and
# 95% intervals over prompts.
#
# * TTOT: the whole generation call of each prompt (prefill included), seconds;
# * TPOT: TTOT / new tokens;
# * TTFT: the prefill when the measurement recorded it, otherwise total − draft − verify time
#   (prefill plus loop bookkeeping; the column `ttft_source` says which).
#
# Each pair is represented by its best lookahead (highest median speed-up), or by `GAMMA`.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from scipy import stats

from sdsl_lib import nbtools, plotting
from sdsl_lib.analysis import latency as lt
from sdsl_lib.analysis import results as hand_on
from sdsl_lib.analysis import tables
from sdsl_lib.analysis import throughput as th
from sdsl_lib.analysis import verdicts as vd
from sdsl_lib.io import atomic_write_json

# %% tags=["parameters"]
PROFILE = "cpu"  # measured profile to read: a folder of data/measured/ (cpu, gpu, smoke)
GAMMA = 0  # lookahead representing each pair: 0 = the best of each pair (highest median speed-up), else a timed gamma
PROMPT_BOOTSTRAP = 2000  # prompt resamples for the intervals of the verdicts
SEED = 0  # seed of the bootstrap
LATENCY_LOG_MARGIN = 0.02  # fixed before looking: "nearest N* is fastest" holds when its TTOT is at most 2% (log) above the fastest other draft's
METRICS = ["ttft", "ttot", "tpot"]  # panels of Figure 4: time to first token, total time, time per output token
LOG_Y = False  # log time axis
FIGURES_DIR = "../figures"  # where figures go, relative to notebooks/
RESULTS_DIR = "../data/results"  # where the results JSON goes, relative to notebooks/

# %%
nbtools.require_choices("METRICS", METRICS, ["ttft", "ttot", "tpot"])
nbtools.require_count("PROMPT_BOOTSTRAP", PROMPT_BOOTSTRAP, 10)
nbtools.require_range("LATENCY_LOG_MARGIN", LATENCY_LOG_MARGIN, 1e-6, 1.0)
data = tables.load_measured(PROFILE)
timed = sorted(int(g) for g in data.throughput.loc[data.throughput["method"] == "speculative", "gamma"].unique())
if GAMMA != 0:
    nbtools.require_choices("GAMMA", str(GAMMA), [str(g) for g in timed])
figures_dir, results_dir = Path(FIGURES_DIR), Path(RESULTS_DIR)
res12 = hand_on.read_result("12_throughput_measured", results_dir, data)  # N* is computed once, in notebook 12
PARAMS_COLUMN, PLANE_ALPHA = res12["params_column"], res12["plane_alpha"]
plotting.set_style()
figures = []
tag = f"ladder_{data.profile}"
targets, drafts = data.targets, data.drafts
target_colour = dict(zip(targets, plotting.sequential_colours(len(targets), "plasma")))
COLUMNS = {"ttft": ("ttft_s", "TTFT (s)"), "ttot": ("ttot_s", "TTOT (s)"), "tpot": ("tpot_s", "TPOT (s / token)")}

# %% [markdown]
# ## N* per target from the SDSL chain fitted on the ladder (Eq. 2 + Eq. 5 → Eq. 9), read from notebook 12

# %%
n_star = {t: v["predicted"] for t, v in res12["nstar"].items()}
display(pd.DataFrame(res12["nstar"]).T[["m_target", "predicted", "predicted_ci95", "measured_draft"]])

# %% [markdown]
# ## Our Table 6: TTFT, TTOT and TPOT of every pair, with 95% intervals over prompts

# %%
if GAMMA == 0:
    gamma_by_pair = th.best_gamma_by_pair(data.throughput_summary)
else:
    gamma_by_pair = data.alpha[["draft", "target"]].assign(best_gamma=int(GAMMA))
t6 = lt.latency_table(data.throughput, data.models, n_star, gamma_by_pair, PARAMS_COLUMN)
display(t6)
print(f"TTFT from: {t6['ttft_source'].iloc[0]}")

# %% [markdown]
# ## Latency grows with distance to N*, but the draft nearest N* is not always the fastest
#
# Per target: the draft nearest N* (smallest |N − N*|/M), the fastest draft by mean TTOT, the
# rank correlation between distance and TTOT, and the paired per-prompt TTOT difference
# nearest − fastest (0 when they coincide).

# %%
summ = []
for t in targets:
    g = t6[(t6["target"] == t) & (t6["draft"] != "(none)")].sort_values("distance")
    nearest, fastest = g.iloc[0], g.loc[g["ttot_s"].idxmin()]
    rho = float(stats.spearmanr(g["distance"], g["ttot_s"]).statistic) if len(g) >= 3 else float("nan")
    diff = (0.0, 0.0, 0.0) if nearest["draft"] == fastest["draft"] else lt.paired_time_difference(
        data.throughput, t, (nearest["draft"], int(nearest["gamma"])), (fastest["draft"], int(fastest["gamma"])))
    ar = t6[(t6["target"] == t) & (t6["draft"] == "(none)")].iloc[0]
    summ.append({"target": t, "n_star": n_star[t], "nearest_draft": nearest["draft"], "fastest_draft": fastest["draft"],
                 "nearest_is_fastest": bool(nearest["draft"] == fastest["draft"]), "spearman_distance_ttot": rho,
                 "ttot_nearest_minus_fastest_s": diff[0], "ttot_diff_ci95": [diff[1], diff[2]],
                 "ttot_fastest_s": fastest["ttot_s"], "ttot_target_alone_s": ar["ttot_s"],
                 "ttot_monotone_in_distance": bool(np.all(np.diff(g["ttot_s"].to_numpy()) >= 0))})
summ = pd.DataFrame(summ)
display(summ)
for r in summ.itertuples():
    lo, hi = r.ttot_diff_ci95
    print(f"{r.target}: nearest to N* = {r.nearest_draft}, fastest = {r.fastest_draft}; TTOT nearest - fastest = {r.ttot_nearest_minus_fastest_s * 1e3:+.2f} ms "
          f"[{lo * 1e3:+.2f}, {hi * 1e3:+.2f}]; Spearman rho(distance, TTOT) = {r.spearman_distance_ttot:+.2f}; "
          f"fastest {r.ttot_fastest_s:.4f} s vs target alone {r.ttot_target_alone_s:.4f} s")

# %% [markdown]
# ## Our Figure 4: latency against |N − N*|/M (error bars: 95% intervals over prompts)
#
# Dashed horizontal lines: the target decoding alone (TTOT, TPOT).

# %%
for letter, metric in zip("abc", METRICS):
    col, label = COLUMNS[metric]
    fig, ax = plt.subplots(figsize=(4.4, 3.2))
    for t in targets:
        g = t6[(t6["target"] == t) & (t6["draft"] != "(none)")]
        yerr = np.clip(np.nan_to_num(np.vstack([g[col] - g[f"{col}_ci95_lower"], g[f"{col}_ci95_upper"] - g[col]])), 0, None)
        ax.errorbar(g["distance"], g[col], yerr=yerr, fmt="o", ms=4, capsize=2, color=target_colour[t], label=f"target {t}")
        for _, r in g.iterrows():
            ax.annotate(r["draft"], (r["distance"], r[col]), xytext=(3, 2), textcoords="offset points", fontsize=5.5, color=target_colour[t])
        ar = t6[(t6["target"] == t) & (t6["draft"] == "(none)")]
        if metric != "ttft" and len(ar):
            ax.axhline(float(ar[col].iloc[0]), color=target_colour[t], ls="--", lw=0.8)
    ax.axvline(0.0, color="black", ls=":", lw=0.9, label="predicted optimum N = N*")
    if LOG_Y:
        ax.set_yscale("log")
        plotting.plain_log_axis(ax, "y")
    ax.set_xlabel("|N − N*| / M")
    ax.set_ylabel(label)
    ax.set_title(f"({letter}) {label.split(' ')[0]} against distance to N*", fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    figures += [p.name for p in plotting.save(fig, f"fig4{letter}_{tag}_{metric}_vs_distance", figures_dir)]
    plt.show()

# %% [markdown]
# ## Checks
#
# TPOT is TTOT divided by the tokens generated, every interval holds its mean, and every target
# has its autoregressive reference row.

# %%
pairs = t6[t6["draft"] != "(none)"]
ok_ci = all(((pairs[f"{c}_ci95_lower"] <= pairs[c] + 1e-15) & (pairs[c] <= pairs[f"{c}_ci95_upper"] + 1e-15) | pairs[f"{c}_ci95_lower"].isna()).all()
            for c in ("ttft_s", "ttot_s", "tpot_s"))
rows = [
    ("targets with an autoregressive reference row", int((t6["draft"] == "(none)").sum()), len(targets), 0, "abs"),
    ("every interval holds its mean", float(ok_ci), 1.0, 0, "abs"),
    ("pairs in the table", len(pairs), len(data.alpha), 0, "abs"),
]
checks = nbtools.compare(rows)
display(checks)
print("All within tolerance." if nbtools.all_ok(checks) else "Some checks FAILED: see the table.")

# %% [markdown]
# ## Verdict: does "nearest to N* is fastest" (Appendix F) hold on the ladder?
#
# Rule, fixed before looking (`sdsl_lib.analysis.verdicts`), intervals resampling **prompts** (every
# draft of a target is timed on the same prompts, so a draw resamples them once for all drafts):
#
# * nearest is fastest: ln(mean TTOT of the draft nearest N* / the lowest mean TTOT of the other
#   drafts) ≤ `LATENCY_LOG_MARGIN` (the competitor is re-chosen in each draw); *supported* when
#   the whole interval is below the margin, *contradicted* when wholly above;
# * TTOT grows with distance to N*: Spearman ρ(distance, mean TTOT) > 0.
#
# N* is notebook 12's point estimate (its own interval is judged there); every model was trained
# once (one seed).

# %%
verdicts = []
for t in targets:
    wide = lt.ttot_by_prompt(data.throughput, t, gamma_by_pair)
    row = summ.set_index("target").loc[t]
    iv = lt.nearest_vs_fastest(wide, row["nearest_draft"], PROMPT_BOOTSTRAP, SEED)
    verdicts.append(vd.judge(f"{t}: the draft nearest N* ({row['nearest_draft']}) has the lowest TTOT (log ratio to the fastest other draft <= {LATENCY_LOG_MARGIN:g})",
                             iv, (-np.inf, LATENCY_LOG_MARGIN), f"estimate <= {LATENCY_LOG_MARGIN:g}", one_seed=True))
    dist = t6[(t6["target"] == t) & (t6["draft"] != "(none)")].set_index("draft")["distance"].to_dict()
    if len(dist) >= 3:
        rho = lt.distance_rank_correlation(wide, dist, PROMPT_BOOTSTRAP, SEED)
        verdicts.append(vd.one_sided(f"{t}: TTOT grows with distance to N* (Spearman rho > 0)", rho, 0.0, "above", one_seed=True))
display(vd.verdict_frame(verdicts))
print("\n".join(vd.verdict_lines(verdicts)))

# %%
results = tables.json_safe({
    "notebook": "13_latency_measured",
    "profile": data.profile,
    "provenance": hand_on.provenance(data, ["models", "throughput", "throughput_summary"], upstream=[res12]),
    "figures": sorted(figures),
    "gamma": "best" if GAMMA == 0 else int(GAMMA),
    "plane_alpha": PLANE_ALPHA,
    "n_star": n_star,
    "n_star_from": "12_throughput_measured",
    "ttft_source": t6["ttft_source"].iloc[0],
    "latency": {r["target"]: {k: r[k] for k in ("n_star", "nearest_draft", "fastest_draft", "nearest_is_fastest", "spearman_distance_ttot",
                                               "ttot_nearest_minus_fastest_s", "ttot_diff_ci95", "ttot_fastest_s", "ttot_target_alone_s",
                                               "ttot_monotone_in_distance")} for r in summ.to_dict("records")},
    "table6": t6.to_dict("records"),
    "verdicts": verdicts,
    "checks_ok": nbtools.all_ok(checks),
})
atomic_write_json(results_dir / "13_latency_measured.json", results)
{k: v for k, v in results.items() if k != "table6"}
