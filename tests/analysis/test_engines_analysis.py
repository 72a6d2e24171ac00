"""Unit tests of notebook 14's three-engine analysis (sdsl_lib.analysis.engines): alpha agreement with
pairs resampled, the implied and held-out costs, Eq. 1 per engine, and why a verification that costs
a step per token cannot pay. The fixture is synthetic (tests/engines/fixtures/smollm2_engines)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdsl_lib.analysis import engines as eng
from sdsl_lib.laws.acceptance import tar_model
from sdsl_lib.laws.wallclock import wallclock_speedup
from sdsl_lib.measurement import schema

FIXTURE = Path(__file__).resolve().parents[1] / "engines" / "fixtures" / "smollm2_engines"
NAMES = ("alpha", "vllm_acceptance", "vllm_acceptance_by_position", "vllm_throughput", "throughput_summary",
         "cost_calibration", "hf_baseline", "hf_summary")  # fmt: skip


@pytest.fixture(scope="module")
def tables() -> dict:
    return {n: schema.read_table(FIXTURE, n) for n in NAMES}


def test_the_fixture_gives_every_engine_and_vllm_cannot_pay(tables):
    cells = eng.engine_cells(tables)
    assert set(zip(cells.engine, cells.batch_size)) == {("ours", 1), ("hf", 1), ("vllm", 1), ("vllm", 8)}
    vl = cells[cells.engine == "vllm"]
    assert (vl.speedup_measured < 1).all() and (vl.speedup_predicted < 1).all()
    assert (vl.c_used > 0.9).all() and (vl.v_used == 1.0).all()  # about one plain step per drafted token
    ours = cells[cells.engine == "ours"]
    assert np.allclose(ours.cost_predicted, ours.gamma * ours.c_used + ours.v_used)
    err = eng.prediction_error(cells, n_boot=50)
    assert list(err) == [("ours", 1), ("hf", 1), ("vllm", 1), ("vllm", 8)]
    assert err[("ours", 1)].estimate < 0.1 and err[("ours", 1)].unit == "pair" and err[("ours", 1)].n_units == 3
    assert math.isnan(err[("hf", 1)].lower) and err[("hf", 1)].n_units == 1  # HF is timed on one pair
    # Without the HF tables, HF is left out and nothing else changes.
    no_hf = eng.engine_cells({k: v for k, v in tables.items() if not k.startswith("hf_")})
    assert "hf" not in set(no_hf.engine)
    pd.testing.assert_frame_equal(no_hf.reset_index(drop=True), cells[cells.engine != "hf"].reset_index(drop=True))


def test_alpha_agreement_pairs_the_engines_and_resamples_pairs(tables):
    agree = eng.alpha_agreement(tables["vllm_acceptance"])
    assert len(agree) == 6 and (agree.abs_difference < 0.01).all()
    iv = eng.agreement_interval(agree, n_boot=50)
    assert iv.unit == "pair" and iv.n_units == 3 and iv.lower <= iv.estimate <= iv.upper < 0.03
    one = eng.agreement_interval(agree[agree.draft == "syn-d0"], n_boot=50)
    assert one.n_units == 1 and math.isnan(one.lower)
    with pytest.raises(ValueError, match="vllm and ours rows"):
        eng.alpha_agreement(tables["vllm_acceptance"].query("engine == 'vllm'"))


def test_heldout_cost_slope_recovers_a_linear_cost_and_eq1_then_is_exact():
    alpha, s_true, gammas = 0.45, 0.7, np.array([1, 2, 4, 6])
    L = tar_model(alpha, gammas)
    S = L / (1 + s_true * gammas)
    cells = pd.DataFrame({"engine": "vllm", "batch_size": 1, "draft": "d", "target": "t", "gamma": gammas,
                          "cost_implied": eng.implied_iteration_cost(L, S)})  # fmt: skip
    s_held = eng.heldout_cost_slope(cells)
    assert np.allclose(s_held, s_true)
    assert np.allclose(wallclock_speedup(alpha, gammas, s_held, 1.0), S)
    single = cells.iloc[:1]
    assert np.isnan(eng.heldout_cost_slope(single)).all()  # no other gamma to fit on
    with pytest.raises(ValueError, match="tokens_per_iteration"):
        eng.implied_iteration_cost(0.5, 1.0)


def test_a_step_per_drafted_token_never_pays_and_the_break_even_is_sharp():
    a = np.linspace(0.0, 0.999, 400)[:, None]
    g = np.array([1, 2, 3, 4, 8])[None, :]
    for s in (1.0, 1.05):
        assert (wallclock_speedup(a, g, s, 1.0) < 1).all()
    # pays iff s < mean(alpha, ..., alpha^gamma) = App. B's mean accepted drafts / gamma
    be = tar_model(a, g, counts_bonus=False) / g
    inner = (a > 0.05) & (a < 0.99)
    assert (wallclock_speedup(a, g, 0.98 * be, 1.0)[np.broadcast_to(inner, be.shape)] > 1).all()
    assert (wallclock_speedup(a, g, 1.02 * be + 1e-9, 1.0) < 1).all()
