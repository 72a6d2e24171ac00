"""Notebooks 10-13 (the measured ladder): smoke runs on the committed ``data/measured/smoke/`` profile.

The smoke overrides (``notebooks/smoke/1x_*.yaml``) point each notebook at the committed smoke
measurements (``PROFILE: smoke``), so no model is trained here. Outputs go to a pytest temporary
folder, never to ``figures/`` or ``data/results/``. The four run in order into one folder, since
12 reads what 10 and 11 wrote and 13 reads 12 (fit once, hand on).
"""

from __future__ import annotations

import json
import math
import shutil

import pytest

from sdsl_lib.analysis import results as hand_on
from sdsl_lib.analysis import tables
from sdsl_lib.analysis.verdicts import OUTCOMES
from tools import notebook_runner as nr

MEASURED = ["10_ladder", "11_acceptance_measured", "12_throughput_measured", "13_latency_measured"]


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_measured_notebooks_are_discovered_and_smoke_reads_the_committed_profile():
    stems = [nb.stem for nb in nr.discover()]
    assert all(s in stems for s in MEASURED)
    for stem in MEASURED:
        (nb,) = nr.discover([stem])
        assert nr.smoke_overrides(nb).get("PROFILE") == "smoke", stem
    # The committed smoke profile has every table the notebooks read.
    tables.load_measured("smoke")


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Run 10 -> 13 once, in order, into one folder; return (folder, {stem: results, ...})."""
    out = tmp_path_factory.mktemp("measured")
    runs = {}
    for stem in MEASURED:
        (nb,) = nr.discover([stem])
        record = nr.run_notebook(nb, out, smoke=True)
        assert record.get("ok", True), record.get("error")
        runs[stem] = (record, json.loads((out / "results" / f"{stem}.json").read_text()))
    return out, runs


def _check_common(stem, out, runs):
    record, r = runs[stem]
    assert r["notebook"] == stem and r["profile"] == "smoke" and r["checks_ok"] is True
    assert r["figures"] == record["figures"] and r["figures"]
    for name in r["figures"]:
        assert (out / "figures" / name).stat().st_size > 1000, name
    # Every verdict carries its rule: estimate, interval, unit, region and an outcome of the three.
    assert r["verdicts"]
    for v in r["verdicts"]:
        assert v["outcome"] in OUTCOMES, v
        assert v["unit"] and v["rule"] and len(v["margin"]) == 2 and len(v["ci"]) == 2, v
        lo, hi = v["ci"]
        if v["outcome"] != "inconclusive":
            assert _finite(lo) and _finite(hi) and lo <= hi, v
    prov = r["provenance"]
    assert prov["profile"] == "smoke" and prov["tables"]
    assert all(len(fp["sha256"]) == 64 for fp in prov["tables"].values())
    return r


@pytest.mark.slow
def test_10_ladder_smoke(smoke_runs):
    out, runs = smoke_runs
    r = _check_common("10_ladder", out, runs)
    for p in ("E", "A", "B", "nu", "delta"):
        assert _finite(r["law"][p]["estimate"]), p
        assert r["law"][p]["unit"] == "model"
    assert r["law_draws"]["unit"] == "model" and len(r["law_draws"]["draws"]) == 20
    assert _finite(r["law_rmse_log_loss"])
    assert {"ladder_smoke_loss_curves.png", "ladder_smoke_law_fit.png"} <= set(r["figures"])
    # The seeds section ran on the smoke seeds table (notebooks/smoke/10_ladder_seeds): per-size
    # spread, two-level slopes, and verdicts whose interval resampled sizes and seeds.
    seeds = r["seeds"]
    assert seeds["present"] is True and "ladder_smoke_seeds.png" in r["figures"]
    assert seeds["n_seeds"] == {"d-xs": 3, "d-s": 3, "t-s": 2}
    assert seeds["replicate0_max_abs_gap_nats"] == 0.0  # replicate 0 is the smoke row itself
    assert seeds["slope_per_decade"] and all(iv["unit"] == "model+seed" for iv in seeds["slope_per_decade"].values())
    assert all(_finite(nz["seed_sd"]) and nz["seed_sd"] > 0 for nz in seeds["noise"].values())
    assert len(seeds["law_by_replicate"]) == 3
    seeded = [v for v in r["verdicts"] if v["unit"] == "model+seed"]
    assert len(seeded) == len(seeds["pooled_slope_per_decade"]) + len(seeds["slope_per_decade"])
    assert all(v["one_seed"] is False for v in seeded)  # every smoke size has 2 or 3 seeds
    assert all(v["one_seed"] is True for v in r["verdicts"] if "exponent" in v["claim"])


@pytest.mark.slow
def test_11_acceptance_smoke_hands_on_every_plane(smoke_runs):
    out, runs = smoke_runs
    r = _check_common("11_acceptance_measured", out, runs)
    assert all(_finite(r["plane"][k]) for k in ("A", "B", "C"))
    assert set(r["planes"]) == {"alpha_tf", "greedy_match_tf", "alpha_tar"}
    assert all(p["draws"]["unit"] == "pair" and len(p["draws"]["draws"]) == 50 for p in r["planes"].values())
    assert r["alpha_by_pair"] and all(_finite(p["alpha_tf"]) and _finite(p["alpha_tar"]) for p in r["alpha_by_pair"])
    assert _finite(r["iid"]["median_abs_tokens_rel_error_t1"])
    assert {"fig1_ladder_smoke_plane.png", "fig3_ladder_smoke_alpha_vs_draft_ppl.png"} <= set(r["figures"])


@pytest.mark.slow
def test_12_throughput_smoke_reads_the_law_and_plane_it_was_handed(smoke_runs):
    out, runs = smoke_runs
    r = _check_common("12_throughput_measured", out, runs)
    r10, r11 = runs["10_ladder"][1], runs["11_acceptance_measured"][1]
    assert r["laws"]["chinchilla"]["nu"] == r10["law"]["nu"]["estimate"]
    assert r["laws"]["plane"]["A"] == r11["planes"][r["plane_alpha"]]["A"]
    assert set(r10["provenance"]["tables"]) <= set(r["provenance"]["tables"])
    assert r["nstar"] and r["speedup"]
    for t, v in r["nstar"].items():
        for key in ("predicted", "measured", "m_target", "latency_model", "log10_predicted_over_measured"):
            assert _finite(v[key]), (t, key)
        assert 0 < v["predicted"] < v["m_target"] and 0 < v["measured"] < v["m_target"]
        assert isinstance(v["measured_draft"], str)
    for t, v in r["speedup"].items():
        for key in ("measured", "predicted_eq1_measured_c", "predicted_flop_model", "predicted_sdsl_gain"):
            assert _finite(v[key]), (t, key)
        lo, hi = v["measured_ci95"]
        assert lo <= v["measured"] <= hi
    # Held-out prediction: no verdict rests on the timed runs' own acceptance.
    assert not any("greedy_acceptance_run" in v["claim"] or "run alpha" in v["claim"] for v in r["verdicts"])
    assert all(e["unit"] == "pair" for e in r["speedup_model_errors"].values())
    assert "fig2_ladder_smoke_throughput_vs_draft.png" in r["figures"]


@pytest.mark.slow
def test_13_latency_smoke_uses_the_nstar_of_12(smoke_runs):
    out, runs = smoke_runs
    r = _check_common("13_latency_measured", out, runs)
    r12 = runs["12_throughput_measured"][1]
    assert r["n_star"] == {t: v["predicted"] for t, v in r12["nstar"].items()}
    assert all(v["unit"] == "prompt" for v in r["verdicts"])
    assert r["latency"] and all(_finite(v["n_star"]) and _finite(v["ttot_fastest_s"]) for v in r["latency"].values())
    rows = [x for x in r["table6"] if x["draft"] != "(none)"]
    assert rows and all(_finite(x["ttot_s"]) and _finite(x["tpot_s"]) and _finite(x["distance"]) for x in rows)
    for letter, metric in zip("abc", ("ttft", "ttot", "tpot")):
        assert f"fig4{letter}_ladder_smoke_{metric}_vs_distance.png" in r["figures"]


@pytest.mark.slow
def test_a_stale_hand_on_is_refused_with_one_line(smoke_runs, tmp_path):
    out, _ = smoke_runs
    folder = tmp_path / "smoke"
    shutil.copytree(tables.measured_dir("smoke"), folder)
    data = tables.load_measured(folder)
    # Same bytes: accepted.
    assert hand_on.read_result("10_ladder", out / "results", data)["notebook"] == "10_ladder"
    # A trailing blank line: the same table to pandas, other bytes on disk (a remeasured profile).
    with open(folder / "loss_budget_points.csv", "a") as fh:
        fh.write("\n")
    with pytest.raises(
        hand_on.StaleResultError, match=r"^\S+10_ladder\.json is stale: loss_budget_points\.csv changed[^\n]*$"
    ):
        hand_on.read_result("10_ladder", out / "results", tables.load_measured(folder))
