"""Every number of the paper the library reproduces, compared with the printed value.

Tolerances are stated per table; each is the looser of the printing precision and the goal set in
the issue (Table 5: N* within 0.1%, T within 0.5%; fits within their printed margins of error).
"""

from __future__ import annotations

import numpy as np
import pytest

import sdsl_lib as sd
from sdsl_lib import paper
from sdsl_lib.laws.constants import TABLE7_GRID_AS_PRINTED


@pytest.fixture(scope="module")
def table5_ours():
    t5 = paper.table5()
    opt = sd.optimal_draft_size(t5["target_params_M"], t5["draft_tokens_D"], t5["target_tokens_Dprime"])
    return t5, opt


def test_table5_all_rows(table5_ours):
    t5, opt = table5_ours
    assert len(t5) == 39
    rel_n = np.abs(opt.n_star / t5["n_star"] - 1)
    rel_t = np.abs(opt.throughput / t5["throughput_at_n_star_tokens_per_flop"] - 1)
    assert rel_n.max() < 1e-3, t5.loc[rel_n.idxmax(), "target"]
    assert rel_t.max() < 5e-3, t5.loc[rel_t.idxmax(), "target"]
    # Every row but Qwen1.5-14B's reproduces N* to 1e-6 (erratum E6 records the exception).
    assert rel_n[t5["target"] != "Qwen1.5-14B"].max() < 1e-6


def test_table5_gamma_and_gain_as_derived_in_the_spec(table5_ours):
    t5, opt = table5_ours
    first_opt13b = np.flatnonzero((t5["target"] == "OPT-13B") & (t5["draft_family"] == "OPT"))[0]
    assert opt.gamma_star[first_opt13b] == pytest.approx(8.11, abs=0.01)
    assert 7.9 < opt.gamma_star.min() and opt.gamma_star.max() < 11
    assert np.all((opt.gain > 2.5) & (opt.gain < 2.9))


def test_table5_llama3_qwen25_typo():
    # Erratum E2: the row prints D = 1.4T; only D = 18T reproduces its N*.
    t5 = paper.table5()
    row = t5[(t5["target"] == "LLaMa3-70B") & (t5["draft_family"] == "Qwen2.5")].iloc[0]
    assert row["draft_tokens_D_as_printed"] == 1.4e12
    as_printed = sd.optimal_draft_size(row["target_params_M"], 1.4e12, row["target_tokens_Dprime"])
    corrected = sd.optimal_draft_size(row["target_params_M"], 18e12, row["target_tokens_Dprime"])
    assert corrected.n_star == pytest.approx(row["n_star"], rel=1e-6)
    assert abs(as_printed.n_star / row["n_star"] - 1) > 1e-2


def test_table5_eq7_signs_as_printed_cannot_work():
    # Erratum E3: with the printed negative exponents the perplexity explodes (exp of ~1e5 nats).
    law = sd.BESIROGLU_2024
    literal_loss = law.E + law.A / 1e8 ** (-law.nu) + law.B / 1.8e11 ** (-law.delta)
    assert literal_loss > 1e5
    assert 2 < sd.loss(1e8, 1.8e11) < 4


def test_table3_reproduced_to_every_printed_digit_with_table2_perplexities():
    # Erratum E1: only Table 2's Qwen2.5-32B/72B perplexities, given to every pair, reproduce all 17
    # printed cells of Table 3 (printed to 6 decimals: half a unit in the last place).
    printed = paper.table3().set_index("parameter")
    gaps = {}
    for reading in paper.TARGET_PPL_READINGS:
        fit = sd.fit_alpha_plane(*paper.plane_inputs(reading))
        ours = fit.table.set_index("parameter")
        cols = ("estimate", "std_error", "margin_of_error_95", "ci95_lower", "ci95_upper")
        cells = [abs(ours.loc[p, c] - printed.loc[p, c]) for p in "ABC" for c in cols]
        cells += [abs(fit.mse - printed.loc["MSE", "estimate"]), abs(fit.r2 - printed.loc["R2", "estimate"])]
        gaps[reading] = max(cells)
    assert gaps["table2"] < 5e-7
    assert gaps["table1"] > 5e-6 and gaps["as_printed"] > 5e-6


def test_target_ppl_readings_differ_only_for_the_swapped_targets():
    df = paper.alpha_pairs()
    y1, y2, yp = (paper.target_ppl(r, df) for r in ("table1", "table2", "as_printed"))
    differ = df.loc[y1 != y2, "target"].unique()
    assert sorted(differ) == ["Qwen2.5-32B", "Qwen2.5-72B"]
    assert (yp == np.where(df["table"] == "table1", y1, y2)).all()
    with pytest.raises(ValueError, match="reading must be one of"):
        paper.target_ppl("table3")


@pytest.mark.parametrize("reading", ["table2", "as_printed"])  # Table 1's reading misses R^2 by 0.0023
def test_table3_refit_from_130_pairs(reading):
    x, y, a = paper.plane_inputs(reading)
    assert len(a) == 130
    fit = sd.fit_alpha_plane(x, y, a)
    printed = paper.table3().set_index("parameter")
    ours = fit.table.set_index("parameter")
    for p in ("A", "B", "C"):
        # Estimates within the printed margin; SEs and margins within 1% (alpha is printed to 4 digits).
        assert abs(ours.loc[p, "estimate"] - printed.loc[p, "estimate"]) < printed.loc[p, "margin_of_error_95"]
        assert ours.loc[p, "std_error"] == pytest.approx(printed.loc[p, "std_error"], rel=0.01)
        assert ours.loc[p, "margin_of_error_95"] == pytest.approx(printed.loc[p, "margin_of_error_95"], rel=0.01)
    assert fit.r2 == pytest.approx(printed.loc["R2", "estimate"], abs=2e-3)
    assert fit.mse == pytest.approx(printed.loc["MSE", "estimate"], rel=0.01)


def test_table4_refit_all_39_rows():
    pairs = paper.alpha_pairs()
    t4 = paper.table4()
    assert len(t4) == 39
    for _, row in t4.iterrows():
        sub = pairs[pairs["target"] == row["target"]]
        assert len(sub) == 10
        fit = sd.fit_alpha_vs_draft_ppl(sub["draft_ppl"], sub["alpha"], row["form"])
        label = f"{row['target']} {row['form']}"
        assert abs(fit.p1 - row["p1"]) < row["p1_moe95"] * 0.01, label
        assert abs(fit.p2 - row["p2"]) < row["p2_moe95"] * 0.01, label
        assert fit.p1_moe95 == pytest.approx(row["p1_moe95"], rel=1e-3), label
        assert fit.r2 == pytest.approx(row["r2"], abs=1e-5), label
        assert fit.mse == pytest.approx(row["mse"], abs=6e-7), label  # printed to 6 decimals


@pytest.fixture(scope="module")
def mesh():
    return sd.nstar_grid()


def test_table9_refit(mesh):
    assert len(mesh) == 288
    fit = sd.fit_nstar_linear(mesh)
    printed = paper.table9().set_index("parameter")
    for p in ("mu", "M0"):
        assert abs(fit.estimate(p) - printed.loc[p, "estimate"]) < printed.loc[p, "margin_of_error_95"], p
        ours_moe = fit.table.set_index("parameter").loc[p, "margin_of_error_95"]
        assert ours_moe == pytest.approx(printed.loc[p, "margin_of_error_95"], rel=0.01), p
    assert fit.r2 == pytest.approx(printed.loc["R2", "estimate"], abs=2e-4)


def test_table8_refit(mesh):
    fit = sd.fit_nstar_full(mesh)
    printed = paper.table8().set_index("parameter")
    ours = fit.table.set_index("parameter")
    for p in ("mu", "M0", "gamma_lnD", "gamma_prime_lnDprime"):
        assert abs(fit.estimate(p) - printed.loc[p, "estimate"]) < printed.loc[p, "margin_of_error_95"], p
        # The HC3 margins, printed to 3 digits.
        assert ours.loc[p, "margin_of_error_95"] == pytest.approx(printed.loc[p, "margin_of_error_95"], rel=0.01), p
    assert fit.r2 == pytest.approx(printed.loc["R2", "estimate"], abs=1e-3)


def test_table8_table9_need_the_1e14_data_grid(mesh):
    # Erratum E4: with D, D' up to 1e14 mu and M0 match Table 9 to the 3 printed digits; with the
    # printed 1e13 they do not, and Table 8's gamma falls outside its printed margin.
    as_printed = sd.nstar_grid(TABLE7_GRID_AS_PRINTED)
    t9 = paper.table9().set_index("parameter")
    ours_14, ours_13 = sd.fit_nstar_linear(mesh), sd.fit_nstar_linear(as_printed)
    assert float(f"{ours_14.estimate('mu'):.3g}") == t9.loc["mu", "estimate"]
    assert float(f"{ours_14.estimate('M0'):.3g}") == t9.loc["M0", "estimate"]
    assert float(f"{ours_13.estimate('mu'):.3g}") != t9.loc["mu", "estimate"]
    t8 = paper.table8().set_index("parameter")
    gamma_13 = sd.fit_nstar_full(as_printed).estimate("gamma_lnD")
    assert abs(gamma_13 - t8.loc["gamma_lnD", "estimate"]) > t8.loc["gamma_lnD", "margin_of_error_95"]


def test_two_hundred_times_smaller_is_not_one_over_mu(table5_ours):
    # Erratum E5: 1/mu is about 369; the finite-size ratios of Table 5 have median about 184.
    t5, opt = table5_ours
    assert 1 / sd.TABLE9_NSTAR_LINEAR.mu == pytest.approx(369, abs=1)
    ratios = t5["target_params_M"] / t5["n_star"]
    assert ratios.min() > 100 and ratios.max() < 300
    assert np.median(ratios) == pytest.approx(184, abs=5)
