"""sdsl_lib.analysis.stats, verdicts and results: the resampling unit, the verdict rule, the hand-on."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from sdsl_lib.analysis import pretraining as pt
from sdsl_lib.analysis import results as hand_on
from sdsl_lib.analysis import stats as st
from sdsl_lib.analysis import tables
from sdsl_lib.analysis import verdicts as vd
from sdsl_lib.laws.constants import ChinchillaLaw
from sdsl_lib.laws.pretraining import loss


def _clustered(n_units=10, cells=9, between=1.0, within=0.01, seed=0):
    rng = np.random.default_rng(seed)
    effect = np.repeat(rng.normal(0, between, n_units), cells)
    return pd.DataFrame(
        {
            "draft": np.repeat([f"d{i}" for i in range(n_units)], cells),
            "target": "t",
            "prompt_idx": np.tile(np.arange(cells), n_units),
            "x": effect + rng.normal(0, within, n_units * cells),
        }
    )


def test_cluster_bootstrap_by_pair_is_wider_than_by_cell():
    # 10 pairs x 9 cells, all the variance between pairs: resampling cells as if independent (here,
    # the "prompt" unit, 9 clusters that each span every pair) understates the uncertainty.
    df = _clustered()
    by_pair = st.cluster_bootstrap(df, lambda f: f["x"].mean(), "pair", 1000, 0)
    by_prompt = st.cluster_bootstrap(df, lambda f: f["x"].mean(), "prompt", 1000, 0)
    assert by_pair.unit == "pair" and by_pair.n_units == 10 and by_prompt.n_units == 9
    assert (by_pair.upper - by_pair.lower) > 20 * (by_prompt.upper - by_prompt.lower)
    # By pair it is close to the t-interval of the 10 pair means.
    _, lo, hi = st.mean_ci(df.groupby("draft")["x"].mean())
    assert by_pair.upper - by_pair.lower == pytest.approx(hi - lo, rel=0.3)


def test_cluster_bootstrap_covers_the_truth_about_95_percent():
    hits = 0
    for seed in range(120):
        df = _clustered(n_units=15, seed=seed)
        iv = st.cluster_bootstrap(df, lambda f: f["x"].mean(), "pair", 300, seed)
        hits += iv.lower <= 0.0 <= iv.upper
    assert 0.85 <= hits / 120 <= 1.0


def test_bootstrap_draws_rejects_bad_input_and_keeps_failed_draws_as_nan():
    df = _clustered(n_units=3, cells=2)
    with pytest.raises(ValueError, match="unit must be one of"):
        st.bootstrap_draws(df, len, "cell")
    with pytest.raises(ValueError, match="n_boot must be an integer >= 1"):
        st.bootstrap_draws(df, len, "pair", 0)
    with pytest.raises(ValueError, match="at least 2 units"):
        st.bootstrap_draws(df.iloc[:2], len, "pair")

    def picky(f):
        if f["draft"].nunique() < 3:
            raise ValueError("degenerate")
        return 1.0

    d = st.bootstrap_draws(df, picky, "pair", 200, 0)
    assert np.isnan(d).any() and (d[np.isfinite(d)] == 1.0).all()
    iv = st.percentile_interval([np.nan, np.nan, 1.0], 1.0, "pair", 3)
    assert math.isnan(iv.lower) and iv.n_boot == 1


@pytest.mark.parametrize(
    ("ci", "region", "outcome"),
    [
        ((0.005, 0.015), (-0.02, 0.02), "supported"),
        ((0.03, 0.05), (-0.02, 0.02), "contradicted"),
        ((-0.05, -0.03), (-0.02, 0.02), "contradicted"),
        ((0.01, 0.03), (-0.02, 0.02), "inconclusive"),
        ((-0.03, 0.03), (-0.02, 0.02), "inconclusive"),  # straddles both edges
        ((np.nan, 0.01), (-0.02, 0.02), "inconclusive"),
        ((-1.0, -0.5), (-math.inf, 0.0), "supported"),
        ((0.1, 0.5), (-math.inf, 0.0), "contradicted"),
    ],
)
def test_verdict_rule(ci, region, outcome):
    iv = st.Interval(float(np.nanmean(ci)), ci[0], ci[1], "pair", 10, 1000)
    v = vd.judge("claim", iv, region, "rule")
    assert v.outcome == outcome
    d = v.to_dict()
    assert d["unit"] == "pair" and d["rule"] == "rule" and len(d["margin"]) == 2
    json.dumps(tables.json_safe(d), allow_nan=False)


def test_equivalence_and_one_sided_state_their_region():
    iv = st.Interval(0.0065, -0.004, 0.017, "pair", 10, 2000)
    v = vd.equivalence("TAR = TF", iv, 0.0, 0.02)
    assert v.outcome == "supported" and v.margin == (-0.02, 0.02) and "0.02" in v.rule
    # A margin narrower than the interval can never support equality.
    assert vd.equivalence("TAR = TF", iv, 0.0, 0.005).outcome == "inconclusive"
    assert (
        vd.one_sided("x > 1", st.Interval(0.9, 0.86, 0.95, "prompt", 8, 1000), 1.0, "above").outcome == "contradicted"
    )
    with pytest.raises(ValueError, match="margin must be"):
        vd.equivalence("x", iv, 0.0, 0.0)
    with pytest.raises(ValueError, match="side must be"):
        vd.one_sided("x", iv, 0.0, "left")
    with pytest.raises(ValueError, match="ci must have lower <= upper"):
        vd.judge("x", st.Interval(0, 1, -1, "pair", 2, 2), (-1, 1), "r")
    assert vd.verdict_lines([v])[0].startswith("- TAR = TF: SUPPORTED")


def test_law_bootstrap_resamples_models_not_points():
    # Seven "models" with 3 budget points each and a model-level shift (one training run each): the
    # model bootstrap must see that shift, so its exponent interval is wider than the points' one.
    law = ChinchillaLaw(E=2.0, A=400.0, B=2000.0, nu=0.35, delta=0.35)
    sizes = np.logspace(5, 7, 7)
    rng = np.random.default_rng(0)
    rows = []
    for i, n in enumerate(sizes):
        shift = rng.normal(0, 0.02)
        for d in (2e5, 4e5, 8e5):
            rows.append(
                {
                    "model": f"m{i}",
                    "n_params": n,
                    "n_tokens": d,
                    "val_loss_nats": float(loss(n, d, law)) * np.exp(shift),
                }
            )
    pts = pd.DataFrame(rows)
    grid = {"a": [6.0], "b": [7.6], "e": [0.7], "nu": [0.35], "delta": [0.35]}
    fit = pt.fit_ladder_law(pts, grid=grid)
    draws = pt.law_draws_by_model(pts, fit, 30, 0)
    assert draws.shape == (30, 5)
    iv = pt.law_comparison(fit, draws, 7)["nu"]
    assert iv.unit == "model" and iv.n_units == 7
    # The draws are refits on whole models: each row is a law, finite where it could be fitted.
    assert np.isfinite(draws.to_numpy(float)).all(axis=1).sum() >= 25


def test_size_slope_at_equal_data_and_its_input_rule():
    pts = pd.DataFrame(
        {
            "model": list("abcd"),
            "n_params": [1e5, 2e5, 4e5, 8e5],
            "n_tokens": 1e6,
            "val_loss_nats": [5.0, 4.8, 4.9, 4.7],
        }
    )
    iv = pt.size_slope_at_equal_data(pts, 1e6, n_boot=200)
    assert iv.estimate == pytest.approx(np.polyfit(np.log10(pts["n_params"]), pts["val_loss_nats"], 1)[0])
    assert iv.lower <= iv.estimate <= iv.upper
    with pytest.raises(ValueError, match="n_tokens must be a budget shared"):
        pt.size_slope_at_equal_data(pts, 2e6)


def test_read_result_refuses_missing_foreign_and_stale_results(tmp_path):
    data = tables.load_measured("smoke")
    results = tmp_path / "results"
    results.mkdir()
    with pytest.raises(hand_on.StaleResultError, match="missing: run notebook 10_ladder first"):
        hand_on.read_result("10_ladder", results, data)
    prov = hand_on.provenance(data, ["models", "alpha"])
    assert set(prov["tables"]) == {"models", "alpha"} and prov["profile"] == "smoke"
    (results / "10_ladder.json").write_text(json.dumps({"notebook": "10_ladder", "provenance": prov}))
    assert hand_on.read_result("10_ladder", results, data)["notebook"] == "10_ladder"
    bad = json.loads(json.dumps(prov))
    bad["tables"]["alpha"]["sha256"] = "0" * 64
    (results / "10_ladder.json").write_text(json.dumps({"notebook": "10_ladder", "provenance": bad}))
    with pytest.raises(hand_on.StaleResultError, match=r"is stale: alpha\.csv changed") as err:
        hand_on.read_result("10_ladder", results, data)
    assert "\n" not in str(err.value)
    other = dict(prov, profile="cpu")
    (results / "10_ladder.json").write_text(json.dumps({"notebook": "10_ladder", "provenance": other}))
    with pytest.raises(hand_on.StaleResultError, match="profile 'cpu', not 'smoke'"):
        hand_on.read_result("10_ladder", results, data)
    (results / "10_ladder.json").write_text(json.dumps({"notebook": "10_ladder"}))
    with pytest.raises(hand_on.StaleResultError, match="no provenance"):
        hand_on.read_result("10_ladder", results, data)
    # Downstream provenance carries the upstream tables.
    down = hand_on.provenance(data, ["throughput"], upstream=[{"notebook": "10_ladder", "provenance": prov}])
    assert set(down["tables"]) == {"models", "alpha", "throughput"} and down["upstream"] == ["10_ladder"]
