"""Unit tests of the analysis modules (acceptance, chain, latency, pretraining, stats, tables,
throughput) and of :func:`sdsl_lib.laws.wallclock.wallclock_speedup` on small synthetic frames and
the committed smoke profile."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sdsl_lib as sd
from sdsl_lib.analysis.acceptance import (
    ALPHA_METHODS,
    alpha_three_ways,
    fit_ladder_plane,
    iid_check,
    per_target_forms,
    position_acceptance,
    tar_vs_eq12,
)
from sdsl_lib.analysis.chain import latency_optimal_draft, nstar_draws, nstar_grid_for, predict_chain, predicted_nstar
from sdsl_lib.analysis.latency import latency_table
from sdsl_lib.analysis.pretraining import fit_ladder_law, law_multistart_spread
from sdsl_lib.analysis.stats import mean_ci
from sdsl_lib.analysis.tables import FILES, json_safe, load_measured, measured_dir
from sdsl_lib.analysis.throughput import (
    bootstrap_optimal_draft,
    flop_gain_measured,
    measured_optimal_draft,
    optimal_gamma_table,
    speedup_predictions,
    step_cost_model,
    verification_cost_curve,
)
from sdsl_lib.laws.constants import AlphaPlane, ChinchillaLaw
from sdsl_lib.laws.wallclock import wallclock_speedup

SMOKE = measured_dir("smoke")


# --- Loading --------------------------------------------------------------------------------------


def test_load_smoke_profile_reads_every_table():
    data = load_measured("smoke")
    assert data.profile == "smoke"
    for key in FILES:
        if key != "hf_baseline":
            assert isinstance(getattr(data, key), pd.DataFrame), key
    assert data.drafts and data.targets
    assert set(data.drafts).isdisjoint(data.targets)
    sizes = data.models.set_index("model")["n_params"]
    assert list(sizes[data.drafts]) == sorted(sizes[data.drafts])


def test_missing_profile_names_what_exists():
    with pytest.raises(ValueError, match="profile must name a measured folder.*smoke"):
        measured_dir("no-such-profile")


def test_missing_file_and_missing_column_raise(tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(SMOKE, folder)
    (folder / "tar.csv").unlink()
    with pytest.raises(ValueError, match="lacks tar.csv"):
        load_measured(folder)
    # Not required: loads without it.
    assert load_measured(folder, require=["models", "alpha"]).tar is None
    alpha = pd.read_csv(folder / "alpha.csv").drop(columns=["alpha_tf"])
    alpha.to_csv(folder / "alpha.csv", index=False)
    with pytest.raises(ValueError, match=r"alpha.csv: missing column 'alpha_tf'"):
        load_measured(folder, require=["alpha"])
    with pytest.raises(ValueError, match="require must be among"):
        load_measured(folder, require=["nonsense"])


# --- Small helpers --------------------------------------------------------------------------------


def test_mean_ci_matches_scipy():
    x = np.random.default_rng(1).normal(3.0, 2.0, 25)
    m, lo, hi = mean_ci(x)
    ref = stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert m == pytest.approx(x.mean())
    assert (lo, hi) == pytest.approx(ref)
    assert all(math.isnan(v) for v in mean_ci([]))
    assert mean_ci([2.0])[0] == 2.0 and math.isnan(mean_ci([2.0])[1])


def test_json_safe_makes_strict_json():
    import json

    obj = json_safe({"a": np.nan, "b": np.array([1.0, np.inf]), "c": (np.int32(3),), 4: np.bool_(False)})
    assert obj == {"a": None, "b": [1.0, None], "c": [3], "4": False}
    json.dumps(obj, allow_nan=False)


# --- Acceptance -------------------------------------------------------------------------------------


def _alpha_frame(plane=(-0.002, 0.003, 0.9), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for t, y in (("t0", 150.0), ("t1", 120.0)):
        for d, x in (("d0", 300.0), ("d1", 250.0), ("d2", 200.0), ("d3", 170.0)):
            a = plane[0] * x + plane[1] * y + plane[2] + noise * rng.normal()
            rows.append(
                {
                    "draft": d,
                    "target": t,
                    "draft_val_ppl": x,
                    "target_val_ppl": y,
                    "draft_test_ppl": x,
                    "target_test_ppl": y,
                    "alpha_tf": a,
                }
            )
    return pd.DataFrame(rows)


def test_plane_recovers_coefficients_and_reduces_with_one_target():
    df = _alpha_frame()
    p = fit_ladder_plane(df)
    assert p.identified and p.n == 8
    assert (p.plane.A, p.plane.B, p.plane.C) == pytest.approx((-0.002, 0.003, 0.9), abs=1e-9)
    one = df[df.target == "t0"]
    q = fit_ladder_plane(one)
    assert not q.identified and q.plane.B == 0.0
    # The reduced fit is the line through the points: A exact, C absorbs B*y.
    assert q.plane.A == pytest.approx(-0.002, abs=1e-9)
    assert q.plane.C == pytest.approx(0.9 + 0.003 * 150.0, abs=1e-9)
    with pytest.raises(ValueError, match="ppl_split"):
        fit_ladder_plane(df, ppl_split="train")
    with pytest.raises(ValueError, match="distinct draft perplexities"):
        fit_ladder_plane(df[df.draft == "d0"])


def test_per_target_forms_skips_targets_with_too_few_drafts():
    df = _alpha_frame(noise=0.01)
    df = df[~((df.target == "t1") & df.draft.isin(["d2", "d3"]))]  # t1 keeps 2 drafts only
    t4 = per_target_forms(df)
    assert set(t4["target"]) == {"t0"}
    assert set(t4["form"]) == {"linear", "log", "power"}
    lin = t4[t4.form == "linear"].iloc[0]
    assert lin["p1"] == pytest.approx(
        np.polyfit(df[df.target == "t0"]["draft_val_ppl"], df[df.target == "t0"]["alpha_tf"], 1)[0]
    )


def _positions(rates, n0=2000, gammas=(1, 2, 3, 4)):
    """Exact expected counts for conditional acceptance ``rates[i]`` at position i+1."""
    rows = []
    for g in gammas:
        reach = float(n0)
        for i in range(g):
            acc = round(reach * rates[i])
            rows.append(
                {
                    "draft": "d",
                    "target": "t",
                    "temperature": 1.0,
                    "gamma": g,
                    "position": i + 1,
                    "attempts": int(round(reach)),
                    "accepts": int(acc),
                }
            )
            reach = acc
    return pd.DataFrame(rows)


def test_iid_check_zero_error_when_positions_are_iid():
    r = iid_check(_positions([0.7, 0.7, 0.7, 0.7])).iloc[0]
    assert r["alpha_pooled"] == pytest.approx(0.7, abs=2e-3)
    assert abs(r["tokens_rel_error"]) < 5e-3
    assert r["chi2_p"] > 0.5
    assert r["logit_slope_ci95_lower"] < 0 < r["logit_slope_ci95_upper"]


def test_iid_check_flags_declining_acceptance():
    r = iid_check(_positions([0.9, 0.7, 0.5, 0.3])).iloc[0]
    brute = sum(np.prod([0.9, 0.7, 0.5, 0.3][:i]) for i in range(1, 5))
    assert r["tokens_positional"] == pytest.approx(brute, rel=5e-3)
    assert r["tokens_iid"] > r["tokens_positional"]  # a constant alpha overstates long runs here
    assert r["chi2_p"] < 1e-6
    assert r["logit_slope_ci95_upper"] < 0
    assert r["max_abs_dev"] > 0.2


def test_position_acceptance_pools_gammas_with_wilson_interval():
    pa = position_acceptance(_positions([0.8, 0.6, 0.4, 0.2]))
    assert list(pa["position"]) == [1, 2, 3, 4]
    assert pa.loc[0, "attempts"] == 4 * 2000
    assert ((pa["ci95_lower"] <= pa["rate"]) & (pa["rate"] <= pa["ci95_upper"])).all()


def test_tar_vs_eq12_is_exact_at_the_true_alpha():
    g = np.arange(1, 6)
    tar = pd.DataFrame(
        {
            "draft": "d",
            "target": "t",
            "gamma": g,
            "n_iterations_full": 100,
            "tar_no_bonus": sd.tar_model(0.6, g, counts_bonus=False),
            "tar_no_bonus_std": 0.5,
        }
    )
    alpha = pd.DataFrame({"draft": ["d"], "target": ["t"], "alpha_tf": [0.6]})
    out = tar_vs_eq12(tar, alpha)
    assert np.abs(out["rel_error"]).max() < 1e-12
    assert (out["tar_ci95_lower"] < out["tar_no_bonus"]).all()


# --- Throughput -----------------------------------------------------------------------------------


def _summary(seed=0, drafts=("a", "b", "c"), targets=("T1", "T2"), gammas=(1, 2, 3, 4)):
    rng = np.random.default_rng(seed)
    rows = []
    for t in targets:
        for d in drafts:
            for g in gammas:
                s = float(rng.uniform(0.5, 2.0))
                rows.append(
                    {
                        "draft": d,
                        "target": t,
                        "method": "speculative",
                        "gamma": g,
                        "n_prompts": 8,
                        "speedup_median": s,
                        "speedup_p025": s * 0.9,
                        "speedup_p975": s * 1.1,
                        "tokens_per_iteration_mean": float(rng.uniform(1, g + 1)),
                    }
                )
        rows.append(
            {
                "draft": drafts[0],
                "target": t,
                "method": "autoregressive",
                "gamma": 0,
                "n_prompts": 8,
                "speedup_median": 1.0,
                "speedup_p025": 1.0,
                "speedup_p975": 1.0,
                "tokens_per_iteration_mean": np.nan,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(5))
def test_measured_optimal_draft_picks_the_maximum(seed):
    s = _summary(seed)
    models = pd.DataFrame({"model": ["a", "b", "c", "T1", "T2"], "n_params": [1e3, 2e3, 4e3, 1e5, 2e5]})
    best = measured_optimal_draft(s, models).set_index("target")
    spec = s[s.method == "speculative"]
    for t, g in spec.groupby("target"):
        top = g.loc[g["speedup_median"].idxmax()]
        assert best.loc[t, "draft"] == top["draft"]
        assert best.loc[t, "best_gamma"] == top["gamma"]
        assert best.loc[t, "speedup"] == top["speedup_median"]
        assert best.loc[t, "n_draft"] == models.set_index("model").loc[top["draft"], "n_params"]
        assert best.loc[t, "runner_up_speedup"] <= best.loc[t, "speedup"]


def test_bootstrap_optimal_draft_is_certain_when_one_draft_dominates():
    rows = []
    for k in range(6):
        for d, base in (("slow", 0.9), ("fast", 1.5)):
            for g in (1, 2):
                rows.append(
                    {
                        "draft": d,
                        "target": "T",
                        "method": "speculative",
                        "gamma": g,
                        "prompt_idx": k,
                        "speedup_vs_autoregressive": base + 0.01 * k + 0.05 * g,
                    }
                )
    shares, best = bootstrap_optimal_draft(pd.DataFrame(rows), n_boot=200, seed=1)
    assert shares.set_index("draft").loc["fast", "share"] == 1.0
    b = best.iloc[0]
    assert (b["draft"], b["gamma"]) == ("fast", 2)
    assert b["speedup"] == pytest.approx(1.6 + 0.025)  # median over prompts k = 0..5 of 1.6 + 0.01 k
    assert 1.6 <= b["speedup_ci95_lower"] <= b["speedup"] <= b["speedup_ci95_upper"] <= 1.65 + 1e-12


def test_speedup_predictions_and_gamma_table_use_eq1_and_eq13():
    s = _summary(2)
    alpha = pd.DataFrame(
        {
            "draft": ["a", "b", "c"] * 2,
            "target": ["T1"] * 3 + ["T2"] * 3,
            "greedy_match_tf": [0.5, 0.6, 0.7, 0.55, 0.65, 0.75],
            "c_measured": [0.3, 0.4, 1.2, 0.2, 0.3, 0.5],
            "n_params_draft": [1e3, 2e3, 4e3] * 2,
            "n_params_target": [1e5] * 3 + [2e5] * 3,
        }
    )
    alpha["c_flops"] = alpha["n_params_draft"] / alpha["n_params_target"]
    p = speedup_predictions(s, alpha)
    assert len(p) == 24
    r = p.iloc[5]
    assert r["speedup_eq1_measured_c"] == pytest.approx(sd.speedup(r["greedy_match_tf"], r["gamma"], r["c_measured"]))
    assert r["speedup_flop_model"] == pytest.approx(sd.speedup(r["greedy_match_tf"], r["gamma"], r["c_flops"]))
    assert r["log_ratio_flop_model"] == pytest.approx(np.log(r["speedup_flop_model"] / r["speedup_median"]))
    gt = optimal_gamma_table(s, alpha).set_index(["draft", "target"])
    assert gt.loc[("b", "T1"), "gamma_eq13_flops"] == pytest.approx(sd.optimal_lookahead(0.6, 2e3, 1e5))
    assert gt.loc[("b", "T1"), "gamma_eq13_measured_c"] == pytest.approx(sd.optimal_lookahead(0.6, 0.4, 1.0))
    assert gt.loc[("c", "T1"), "gamma_eq13_measured_c"] == 0.0  # c >= 1: drafting never pays
    brute = max((1, 2, 3, 4), key=lambda g: sd.speedup(0.6, g, 0.4))
    assert gt.loc[("b", "T1"), "gamma_eq1_measured_c_int"] == brute


def test_flop_gain_is_tokens_per_iteration_times_flop_ratio():
    s = _summary(3)
    alpha = pd.DataFrame(
        {
            "draft": ["a", "b", "c"] * 2,
            "target": ["T1"] * 3 + ["T2"] * 3,
            "n_params_draft": [1e3, 2e3, 4e3] * 2,
            "n_params_target": [1e5] * 3 + [2e5] * 3,
        }
    )
    f = flop_gain_measured(s, alpha)
    r = f.iloc[7]
    assert r["flop_gain"] == pytest.approx(
        r["tokens_per_iteration_mean"]
        * r["n_params_target"]
        / (r["n_params_target"] + r["gamma"] * r["n_params_draft"])
    )


LAW = ChinchillaLaw(E=3.0, A=20.0, B=300.0, nu=0.3, delta=0.3, source="test")
#: A few L-BFGS starts around the ladder's scale (the default 3^5 grid is slow on shared cores).
SMALL_GRID = {"a": [2.0, 8.0], "b": [5.0], "e": [0.0, 1.0], "nu": [0.4], "delta": [0.3]}
PLANE = AlphaPlane(A=-0.004, B=0.002, C=0.9, source="test")


def test_predicted_nstar_is_optimal_draft_size_and_the_brute_force_argmax():
    m = np.array([2e6, 8e6])
    opt, edge = predicted_nstar(m, 1e8, np.array([1e8, 2e8]), PLANE, LAW, n_min=1e3, n_points=800)
    direct = sd.optimal_draft_size(
        m, 1e8, np.array([1e8, 2e8]), n_grid=nstar_grid_for(8e6, 1e3, 800), plane=PLANE, law=LAW
    )
    assert np.allclose(opt.n_star, direct.n_star)
    for i, mm in enumerate(m):
        n = np.logspace(3, np.log10(mm) - 1e-9, 20000)
        thr = sd.predicted_throughput(n, mm, 1e8, [1e8, 2e8][i], PLANE, LAW)
        assert opt.throughput[i] >= thr.max() * (1 - 1e-9)
        assert opt.n_star[i] == pytest.approx(n[np.argmax(thr)], rel=2e-3)
    assert not edge.any()


def test_predicted_nstar_flags_the_grid_edge_when_alpha_ignores_draft_size():
    flat = AlphaPlane(A=0.0, B=0.0, C=0.6, source="alpha independent of N")
    _, edge = predicted_nstar(1e6, 1e8, 1e8, flat, LAW, n_min=1e3, n_points=200)
    assert edge.all()  # the cheapest draft wins when a bigger one buys no acceptance


def test_predict_chain_on_smoke_matches_its_parts():
    data = load_measured("smoke")
    fit = fit_ladder_law(data.loss_budget_points, grid=SMALL_GRID)
    plane = fit_ladder_plane(data.alpha).plane
    chain = predict_chain(data, plane, fit.law, n_min=1e3, n_points=300)
    m = data.models.set_index("model")
    direct = sd.optimal_draft_size(
        m.loc[data.targets, "n_params"].to_numpy(float),
        float(m.loc[data.drafts, "n_tokens"].median()),
        m.loc[data.targets, "n_tokens"].to_numpy(float),
        n_grid=chain.n_grid,
        plane=plane,
        law=fit.law,
    )
    assert np.allclose(chain.targets["n_star"], direct.n_star)
    assert np.isfinite(chain.targets["gain"]).all()


def test_nstar_draws_pair_law_and_plane_draws():
    from sdsl_lib.analysis.acceptance import plane_draws_by_pair

    df = _alpha_frame(noise=0.003, seed=4)
    law_draws = pd.DataFrame(
        [
            {"E": LAW.E, "A": LAW.A * f, "B": LAW.B, "nu": LAW.nu, "delta": LAW.delta}
            for f in (0.9, 1.0, 1.1, 1.0, 0.95, 1.05)
        ]
    )
    plane_draws = plane_draws_by_pair(df, "alpha_tf", n_boot=8, seed=0)
    out = nstar_draws(law_draws, plane_draws, np.array([2e6, 8e6]), 1e8, np.array([1e8, 1e8]), n_points=200)
    assert out.shape == (6, 2)  # as many draws as the shorter of the two
    assert np.isfinite(out).all()
    assert (out[:, 1] > out[:, 0]).all()  # a bigger target wants a bigger draft in every draw
    # Draw k is exactly the chain evaluated with law draw k and plane draw k.
    k = 3
    lw, pl = law_draws.iloc[k], plane_draws.iloc[k]
    opt, _ = predicted_nstar(
        np.array([2e6, 8e6]),
        1e8,
        np.array([1e8, 1e8]),
        AlphaPlane(A=pl["A"], B=pl["B"], C=pl["C"]),
        ChinchillaLaw(E=lw["E"], A=lw["A"], B=lw["B"], nu=lw["nu"], delta=lw["delta"]),
        1e3,
        200,
    )
    assert np.allclose(out[k], opt.n_star)
    nan_law = law_draws.copy()
    nan_law.loc[2, "nu"] = np.nan
    assert np.isnan(nstar_draws(nan_law, plane_draws, 2e6, 1e8, 1e8, n_points=100)[2]).all()


# --- Wall clock -------------------------------------------------------------------------------------


def _calibration(t0=1e-3, k=2e-10, sizes=(1e5, 3e5, 1e6, 5e6, 1e7), slope_t=0.05):
    rows = []
    for i, n in enumerate(sizes):
        for t in range(1, 9):
            lat = (t0 + k * n) * (1 + slope_t * (t - 1))
            rows.append(
                {
                    "model": f"m{i}",
                    "role": "target" if n >= 5e6 else "draft",
                    "n_params": n,
                    "n_new_tokens": t,
                    "latency_median_s": lat,
                    "latency_p025_s": lat * 0.95,
                    "latency_p975_s": lat * 1.05,
                }
            )
    return pd.DataFrame(rows)


def test_step_cost_model_recovers_an_affine_step_time():
    cost = step_cost_model(_calibration())
    assert cost["t0_s"] == pytest.approx(1e-3, rel=1e-9)
    assert cost["k_s_per_param"] == pytest.approx(2e-10, rel=1e-9)
    assert cost["c_floor_by_target"]["m4"] == pytest.approx(1e-3 / (1e-3 + 2e-10 * 1e7))
    v = verification_cost_curve(_calibration(), "m4")
    assert v["v"].to_numpy() == pytest.approx(1 + 0.05 * np.arange(8))
    with pytest.raises(ValueError, match="model must be one of"):
        verification_cost_curve(_calibration(), "nope")


def test_wallclock_speedup_reduces_to_eq1_and_falls_with_verification_cost():
    a, g, c = 0.7, np.arange(1, 8), 0.1
    assert np.allclose(wallclock_speedup(a, g, c, 1.0), sd.speedup(a, g, c))
    v = np.linspace(1.0, 3.0, 7)
    assert np.all(np.diff(wallclock_speedup(a, 4, c, v)) < 0)
    assert wallclock_speedup(a, 4, c, 2.0) == pytest.approx(sd.expected_tokens_per_iteration(a, 4) / (4 * c + 2.0))
    with pytest.raises(ValueError, match="v must be > 0"):
        wallclock_speedup(a, 4, c, 0.0)


def test_fixed_step_cost_moves_the_latency_optimum_to_larger_drafts():
    m, t_m = 1e7, 1e-2
    grid = np.logspace(3, np.log10(m) - 0.01, 400)
    v = pd.DataFrame({"n_new_tokens": np.arange(1, 12), "v": np.ones(11)})
    free, _ = latency_optimal_draft(m, 1e8, 1e8, PLANE, LAW, 0.0, t_m / m, t_m, v, range(1, 11), grid)
    fixed, curve = latency_optimal_draft(m, 1e8, 1e8, PLANE, LAW, 0.3 * t_m, 0.7 * t_m / m, t_m, v, range(1, 11), grid)
    assert fixed["n_star"] > free["n_star"]
    assert fixed["speedup"] < free["speedup"]
    assert curve["c"].min() >= 0.3 - 1e-12  # the fixed cost is a floor on c
    assert fixed["speedup"] == pytest.approx(curve["speedup"].max())


# --- Latency table ----------------------------------------------------------------------------------


def test_latency_table_from_smoke_data():
    data = load_measured("smoke")
    n_star = {t: 4e4 for t in data.targets}
    t6 = latency_table(data.throughput, data.models, n_star)
    pairs = t6[t6.draft != "(none)"]
    assert len(pairs) == len(data.alpha)
    assert (t6.draft == "(none)").sum() == len(data.targets)
    m = data.models.set_index("model")["n_params"]
    r = pairs.iloc[0]
    assert r["distance"] == pytest.approx(abs(m[r["draft"]] - 4e4) / m[r["target"]])
    sel = data.throughput[
        (data.throughput.draft == r["draft"])
        & (data.throughput.target == r["target"])
        & (data.throughput.gamma == r["gamma"])
    ]
    assert r["ttot_s"] == pytest.approx(sel["time_s"].mean())
    assert r["tpot_s"] == pytest.approx((sel["time_s"] / sel["new_tokens"]).mean())
    assert (pairs["ttft_s"] > 0).all() and (pairs["ttft_s"] < pairs["ttot_s"]).all()


def test_alpha_three_ways_long_form():
    data = load_measured("smoke")
    three = alpha_three_ways(data.alpha)
    assert len(three) == 4 * len(data.alpha)
    assert set(three["method"]) == set(ALPHA_METHODS)
    tf = three[three.method == "alpha_tf"].reset_index(drop=True)
    assert np.allclose(tf["alpha"], data.alpha["alpha_tf"])


def test_law_multistart_spread_holds_the_best_fit():
    n, d = np.meshgrid([1e4, 1e5, 1e6, 1e7], [1e6, 1e7, 1e8])
    loss = sd.loss(n.ravel(), d.ravel(), LAW)
    pts = pd.DataFrame(
        {"model": n.ravel().astype(str), "n_params": n.ravel(), "n_tokens": d.ravel(), "val_loss_nats": loss}
    )
    grid = {"a": [3.0], "b": [5.0, 6.0], "e": [0.0, 1.0], "nu": [0.3], "delta": [0.3]}
    spread = law_multistart_spread(pts, grid=grid)
    assert len(spread) == 4 and spread["near_best"].iloc[0]
    assert spread["objective"].is_monotonic_increasing
    best = fit_ladder_law(pts, grid=grid)
    # The joint multistart keeps the best of the same starts.
    assert best.objective == pytest.approx(spread["objective"].iloc[0], rel=1e-6, abs=1e-12)
    assert best.law.nu == pytest.approx(LAW.nu, rel=0.05)
    assert best.law.E == pytest.approx(LAW.E, rel=0.05)


def test_speedup_predictions_with_verification_cost():
    s = _summary(5, targets=("T1",))
    alpha = pd.DataFrame(
        {
            "draft": ["a", "b", "c"],
            "target": "T1",
            "greedy_match_tf": [0.5, 0.6, 0.7],
            "c_measured": [0.3, 0.4, 0.5],
            "n_params_draft": [1e3, 2e3, 4e3],
            "n_params_target": 1e5,
        }
    )
    alpha["c_flops"] = alpha["n_params_draft"] / alpha["n_params_target"]
    cal = pd.DataFrame(
        {
            "model": "T1",
            "role": "target",
            "n_params": 1e5,
            "n_new_tokens": np.arange(1, 5),
            "latency_median_s": [1.0, 1.1, 1.3, 1.6],
            "latency_p025_s": 0.9,
            "latency_p975_s": 2.0,
        }
    )
    p = speedup_predictions(s, alpha, calibration=cal)
    r = p[(p.draft == "b") & (p.gamma == 2)].iloc[0]
    assert r["v_verify"] == pytest.approx(1.3)
    assert r["speedup_wallclock_measured_cv"] == pytest.approx(wallclock_speedup(0.6, 2, 0.4, 1.3))
    assert r["speedup_wallclock_measured_cv"] < r["speedup_eq1_measured_c"]
    assert p.loc[p.gamma == 4, "speedup_wallclock_measured_cv"].isna().all()  # 5 tokens were not calibrated


def test_a_deleted_row_stops_the_reader_with_one_line_naming_the_file(tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(SMOKE, folder)
    alpha = pd.read_csv(folder / "alpha.csv")
    alpha.iloc[1:].to_csv(folder / "alpha.csv", index=False)
    with pytest.raises(ValueError) as err:
        load_measured(folder, require=["alpha"])
    message = str(err.value)
    assert "alpha.csv" in message and "\n" not in message


def test_a_fitted_plane_that_reaches_one_confines_the_nstar_search_instead_of_crashing():
    # alpha = -0.02 x + 2 reaches 1 at draft perplexity 50, inside this grid. On the whole grid the
    # optimum then sits on the kink where the clipped plane reaches 1 (the refinement lands a hair on
    # either side of it: above, the library refuses, which is how a smoke ladder crashed notebook 12).
    from sdsl_lib.laws.acceptance import alpha_plane
    from sdsl_lib.laws.constants import BESIROGLU_2024 as law
    from sdsl_lib.laws.constants import AlphaPlane
    from sdsl_lib.laws.pretraining import perplexity

    plane = AlphaPlane(A=-0.02, B=0.0, C=2.0, source="test: reaches 1 inside the grid")
    m, d, dp = 1e8, 1e9, 1e9
    whole = sd.optimal_draft_size(m, d, dp, n_grid=nstar_grid_for(m), plane=plane, law=law, on_edge="ignore")
    assert float(whole.alpha) == pytest.approx(1.0, abs=1e-9)
    opt, edge = predicted_nstar(m, d, dp, plane, law)
    n_star = float(np.atleast_1d(opt.n_star)[0])
    assert np.isfinite(n_star) and float(alpha_plane(perplexity(n_star, d, law), perplexity(m, dp, law), plane)) < 1.0
    assert bool(np.atleast_1d(edge)[0])  # the optimum presses against the plane's limit: an edge, not an interior N*
    # A plane below 1 everywhere is searched on the whole grid, as before.
    below = AlphaPlane(A=-0.02, B=0.0, C=1.6, source="test: below 1")
    opt_b, _ = predicted_nstar(m, d, dp, below, law)
    ref = sd.optimal_draft_size(m, d, dp, n_grid=nstar_grid_for(m), plane=below, law=law, on_edge="ignore")
    assert float(np.atleast_1d(opt_b.n_star)[0]) == float(ref.n_star)
    with pytest.raises(ValueError, match="no N\\* can be predicted"):
        predicted_nstar(m, d, dp, AlphaPlane(A=0.0, B=0.0, C=1.5, source="test: above 1"), law)
