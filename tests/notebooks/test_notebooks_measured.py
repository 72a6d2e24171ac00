"""Notebooks 10-13 (the measured ladder): smoke runs on the committed ``data/measured/smoke/`` profile.

The smoke overrides (``notebooks/smoke/1x_*.yaml``) point each notebook at the committed smoke
measurements (``PROFILE: smoke``), so no model is trained here. Outputs go to a pytest temporary
folder, never to ``figures/`` or ``data/results/``.
"""

from __future__ import annotations

import json
import math

import pytest

from sdsl_lib.analysis import ladder as la
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
    la.load_measured("smoke")


def _run(stem, tmp_path):
    (nb,) = nr.discover([stem])
    record = nr.run_notebook(nb, tmp_path, smoke=True)
    r = json.loads((tmp_path / "results" / f"{stem}.json").read_text())
    assert r["notebook"] == stem and r["profile"] == "smoke" and r["checks_ok"] is True
    assert r["figures"] == record["figures"] and r["figures"]
    for name in r["figures"]:
        assert (tmp_path / "figures" / name).stat().st_size > 1000, name
    assert r["verdicts"] and all(v["status"] in ("supported", "contradicted", "inconclusive") for v in r["verdicts"])
    return r


@pytest.mark.slow
def test_10_ladder_smoke(tmp_path):
    r = _run("10_ladder", tmp_path)
    for p in ("E", "A", "B", "nu", "delta"):
        assert _finite(r["law"][p]["estimate"]), p
        lo, hi = r["law"][p]["ci95"]
        assert lo <= hi
    assert _finite(r["law_rmse_log_loss"])
    assert {"ladder_smoke_loss_curves.png", "ladder_smoke_law_fit.png"} <= set(r["figures"])


@pytest.mark.slow
def test_11_acceptance_smoke(tmp_path):
    r = _run("11_acceptance_measured", tmp_path)
    assert all(_finite(r["plane"][k]) for k in ("A", "B", "C"))
    assert r["alpha_by_pair"] and all(_finite(p["alpha_tf"]) and _finite(p["alpha_tar"]) for p in r["alpha_by_pair"])
    assert _finite(r["iid"]["median_abs_tokens_rel_error_t1"])
    assert {"fig1_ladder_smoke_plane.png", "fig3_ladder_smoke_alpha_vs_draft_ppl.png"} <= set(r["figures"])


@pytest.mark.slow
def test_12_throughput_smoke_carries_predicted_and_measured(tmp_path):
    r = _run("12_throughput_measured", tmp_path)
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
    assert "fig2_ladder_smoke_throughput_vs_draft.png" in r["figures"]


@pytest.mark.slow
def test_13_latency_smoke(tmp_path):
    r = _run("13_latency_measured", tmp_path)
    assert r["latency"] and all(_finite(v["n_star"]) and _finite(v["ttot_fastest_s"]) for v in r["latency"].values())
    rows = [x for x in r["table6"] if x["draft"] != "(none)"]
    assert rows and all(_finite(x["ttot_s"]) and _finite(x["tpot_s"]) and _finite(x["distance"]) for x in rows)
    for letter, metric in zip("abc", ("ttft", "ttot", "tpot")):
        assert f"fig4{letter}_ladder_smoke_{metric}_vs_distance.png" in r["figures"]
