"""The notebooks: source hygiene (fast) and papermill smoke runs checked against the paper (slow).

Fast tests read the committed notebooks only. Slow tests execute each notebook with its smoke
overrides (``notebooks/smoke/<stem>.yaml``) through ``tools.notebook_runner`` -- the code path of
``make figures`` -- into a pytest temporary folder, never into ``figures/`` or ``data/results/``, then
compare the numbers the notebook wrote with the paper's printed values loaded independently from
the package data ``sdsl_lib/paper/data/`` (``data/paper/`` in a checkout).
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import jupytext
import nbformat
import pytest

from sdsl_lib import paper
from sdsl_lib.laws.constants import TABLE8_NSTAR_FULL, TABLE9_NSTAR_LINEAR
from tools import notebook_runner as nr

NOTEBOOKS = nr.discover()
IDS = [nb.stem for nb in NOTEBOOKS]

#: Paper figures each notebook must produce (PNG and PDF); notebook-only figures are not listed.
PAPER_FIGURES = {
    "03_acceptance_vs_perplexity": [
        "fig1_fitted_plane",
        "fig3a_qwen15_110b_fits",
        "fig3b_llama31_70b_fits",
        "fig3_all_targets_fits",
    ],
    "04_throughput_vs_draft_size": [
        "fig2a_throughput_vs_draft_opt",
        "fig2b_throughput_vs_draft_qwen15",
        "fig2c_throughput_vs_draft_qwen25",
    ],
    "05_nstar_scaling": [
        "fig5a_Nstar_vs_M_fixed_Dt",
        "fig5b_Normalized_Nstar_vs_M_fixed_Dt",
        "fig5c_Nstar_vs_D_fixed_Dt",
        "fig5d_Normalized_Nstar_vs_D_fixed_Dt",
        "fig5e_Nstar_vs_Dt_fixed_D",
        "fig5f_Normalized_Nstar_vs_Dt_fixed_D",
    ],
    "06_latency_validation": [
        "fig4a_opt_13b_ttft_vs_distance",
        "fig4b_opt_13b_ttot_vs_distance",
        "fig4c_opt_13b_tpot_vs_distance",
    ],
}


def _cells(nb):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]


def _parameters_cell(nb):
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    return tagged[0]


def _parameter_names(nb) -> set[str]:
    tree = ast.parse(_parameters_cell(nb).source)
    return {t.id for node in tree.body for t in node.targets}


# --- Fast: the committed sources ------------------------------------------------------------------


def test_notebooks_discovered():
    # The seven notebooks of the paper, in paper order; later ones (08+) may join.
    assert [nb.stem[:2] for nb in NOTEBOOKS][:7] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_jupytext_pair_in_sync(nb_path):
    py = nb_path.with_suffix(".py")
    assert py.exists(), f"{py.name} missing: pair with `jupytext --set-formats ipynb,py:percent {nb_path.name}`"
    assert _cells(jupytext.read(py)) == _cells(jupytext.read(nb_path)), (
        f"{nb_path.name} and {py.name} differ: run `jupytext --sync {py}`"
    )


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_has_no_outputs(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "strip outputs before committing"
    assert nb.metadata["kernelspec"]["name"] == nr.KERNEL_NAME


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_parameters_cell_holds_commented_upper_case_literals(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    source = _parameters_cell(nb).source
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, (
            f"only NAME = literal lines: {ast.unparse(node)}"
        )
        name = node.targets[0].id
        assert name.isupper(), f"parameter {name} must be UPPER_CASE"
        ast.literal_eval(node.value)  # raises if not a literal
        assert "#" in lines[node.lineno - 1], f"parameter {name} needs a comment (meaning, unit, source)"
    assert {"FIGURES_DIR", "RESULTS_DIR"} <= _parameter_names(nb)


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_smoke_overrides_name_real_parameters(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    unknown = set(nr.smoke_overrides(nb_path)) - _parameter_names(nb)
    assert not unknown, f"smoke file sets parameters the notebook does not have: {unknown}"


def test_runner_only_filter_and_unknown_name():
    assert [nb.stem for nb in nr.discover(["04"])] == ["04_throughput_vs_draft_size"]
    with pytest.raises(ValueError, match="matches no notebook"):
        nr.discover(["99_nothing"])


def test_smoke_run_refuses_the_committed_outputs():
    with pytest.raises(ValueError, match="must not write to figures/"):
        nr.RunConfig(smoke=True)


def test_fingerprint_tracks_parameters_and_library_sources(tmp_path):
    nb = NOTEBOOKS[0]
    cfg = nr.RunConfig(figures_dir=tmp_path / "f", results_dir=tmp_path / "r", executed_dir=tmp_path / "n", smoke=True)
    other = nr.RunConfig(
        figures_dir=tmp_path / "f",
        results_dir=tmp_path / "r",
        executed_dir=tmp_path / "n",
        smoke=True,
        extra_parameters={"SEED": 1},
    )
    assert nr.fingerprint(nb, cfg) == nr.fingerprint(nb, cfg)
    assert nr.fingerprint(nb, cfg) != nr.fingerprint(nb, other)
    deps = {p.name for p in nr.sdsl_dependencies(NOTEBOOKS[0])}
    # 01 imports sdsl_lib.laws.simulate and sdsl_lib.plotting; both (and the laws behind them) are tracked.
    assert {"__init__.py", "speculation.py", "simulate.py", "plotting.py", "nbtools.py"} <= deps
    assert nr.stale_reason(nb, cfg) == "never run"


# --- Slow: smoke runs through papermill ------------------------------------------------------------


def _results(out: Path, stem: str) -> dict:
    return json.loads((out / "results" / f"{stem}.json").read_text())


def _check_01(r):
    assert r["corollary_max_abs_gap"] < 1e-12
    assert r["integer_pays_iff_alpha_gt_c_share"] == 1.0
    assert r["monte_carlo_max_abs_z"] < 4.5
    assert 0 < r["continuous_only_share"] < 0.5


def _check_02(r):
    assert all(r["symbolic_checks"].values()) and len(r["symbolic_checks"]) == 5
    assert r["max_abs_gamma_gap_library_vs_argmax"] < 1e-5
    t5 = paper.table5().set_index(["target", "draft_family"])
    printed = t5.loc[("OPT-13B", "OPT"), "throughput_at_n_star_tokens_per_flop"]
    assert r["opt13b_example"]["throughput_star"] == pytest.approx(printed, rel=5e-3)
    assert r["w_branches_at_example"]["Wm1"] < -1 < r["w_branches_at_example"]["W0"]


def _check_03(r):
    t3 = paper.table3().set_index("parameter")
    for p in "ABC":
        assert abs(r["table3"][p]["estimate"] - t3.loc[p, "estimate"]) <= t3.loc[p, "margin_of_error_95"], p
        assert r["table3"][p]["std_error"] == pytest.approx(t3.loc[p, "std_error"], rel=0.05)
    assert r["table3_r2"] == pytest.approx(t3.loc["R2", "estimate"], abs=2e-3)
    # E1: with Table 2's target perplexities for every pair, Table 3 reproduces to its printed digits.
    by_t2 = r["table3_by_reading"]["table2"]
    for p in "ABC":
        assert by_t2[p] == pytest.approx(t3.loc[p, "estimate"], abs=5e-7), p
    assert by_t2["r2"] == pytest.approx(t3.loc["R2", "estimate"], abs=5e-7)
    t4 = paper.table4().set_index(["target", "form"])
    for key, fit in r["table4"].items():
        target, form = key.split("|")
        assert fit["p1"] == pytest.approx(t4.loc[(target, form), "p1"], rel=1e-3), key
        assert fit["p2"] == pytest.approx(t4.loc[(target, form), "p2"], rel=1e-3), key
    assert len(r["table4"]) == 39


def _check_04(r):
    t5 = paper.table5().set_index(["target", "draft_family"])
    assert len(r["table5"]) == len(t5) == 39
    nstar_err = [abs(row["n_star"] / t5.loc[(row["target"], row["draft_family"]), "n_star"] - 1) for row in r["table5"]]
    t_err = [
        abs(
            row["throughput"] / t5.loc[(row["target"], row["draft_family"]), "throughput_at_n_star_tokens_per_flop"] - 1
        )
        for row in r["table5"]
    ]
    assert max(nstar_err) < 1e-3
    assert max(t_err) < 5e-3
    e2 = r["erratum_e2"]
    assert e2["family value 18T"]["rel_diff_to_printed"] < 1e-6 < 1e-2 < e2["printed 1.4T"]["rel_diff_to_printed"]


def _check_05(r):
    t9 = paper.table9().set_index("parameter")
    for p in ("mu", "M0"):
        assert abs(r["table9"][p]["estimate"] - t9.loc[p, "estimate"]) <= t9.loc[p, "margin_of_error_95"], p
    assert r["table9"]["r2"] == pytest.approx(TABLE9_NSTAR_LINEAR.r2, abs=2e-3)
    t8 = paper.table8().set_index("parameter")
    for p in ("mu", "M0", "gamma_lnD", "gamma_prime_lnDprime"):
        assert abs(r["table8"][p]["estimate"] - t8.loc[p, "estimate"]) <= t8.loc[p, "margin_of_error_95"], p
    assert r["table8"]["r2"] == pytest.approx(TABLE8_NSTAR_FULL.r2, abs=2e-3)
    assert r["table9"]["n"] == 288
    # E4: the grid as printed lands Table 8's gamma outside its margin; E5: 1/mu is ~369, not ~200.
    assert r["e4_printed_grid_misses"]
    assert r["two_hundred_times"]["inverse_mu_table9_ours"] == pytest.approx(369, rel=0.01)
    assert 150 < r["two_hundred_times"]["table5_m_over_nstar_median"] < 250


def _check_06(r):
    assert all(r["nearest_is_fastest"].values()) and len(r["nearest_is_fastest"]) == 3
    assert r["max_distance_gap"] < 5e-4
    assert r["ttot_monotone_in_distance"]["OPT"] is False  # OPT-1.3B beats OPT-350M (Table 6)


def _check_07(r):
    assert r["example"]["ci95"][0] < r["example"]["alpha_hat"] < r["example"]["ci95"][1]
    for alpha, c in r["coverage"].items():
        assert 0.0 <= c["coverage"] <= 1.0
        assert abs(c["bias"]) < 4 * c["bias_mc_se"], alpha
        assert c["se_ratio"] > 0


def _check_08(r):
    # the planner's bootstrap intervals cover every printed N* and T(N*) of Table 5 it was run on,
    # and its point estimates are the library's (to the N* search tolerance)
    assert r["table5_coverage"] == 1.0 and r["table5_throughput_coverage"] == 1.0
    assert r["table5_max_rel_nstar_gap"] < 1e-3


def _check_14(r):
    # the smoke run reads the synthetic three-engine fixture, so the three-engine section must have run
    e = r["three_engines"]
    assert e is not None and e["engines"] == ["ours", "hf", "vllm"]
    assert "fig14_engines_smollm2.png" in r["figures"] and "fig14_engines_smollm2.pdf" in r["figures"]
    claims = [v["claim"] for v in r["verdicts"]]
    assert len(claims) == 7 and any("alpha" in c and "equals our loop's" in c for c in claims)
    assert {v["outcome"] for v in r["verdicts"]} <= {"supported", "contradicted", "inconclusive"}
    assert set(e["prediction_error"]) == {"ours, batch 1", "hf, batch 1", "vllm, batch 1", "vllm, batch 8"}


def _check_15(r):
    # The smoke run points §10 at the stand-in's own tables: both parts of it must have run.
    rec, probe = r["recipe_experiment"], r["agreement_probe"]
    assert rec is not None and set(rec["best"]) == {"greedy", "sampled T=0.7"} and rec["drafts"]
    claims = [v["claim"] for v in r["verdicts"]]
    assert sum("recipe experiment" in c for c in claims) == 2
    # Every probe draft is paired with its ladder twin, and Eq. 1's prediction is a speed-up (> 0).
    assert probe and {p["run"] for p in probe} == {"probe", "ladder"}
    assert all(p["eq1_predicted_speedup"] > 0 and 1 <= p["eq1_best_gamma"] <= 9 for p in probe)


CHECKS = {
    f.__name__[-2:]: f
    for f in (
        _check_01,
        _check_02,
        _check_03,
        _check_04,
        _check_05,
        _check_06,
        _check_07,
        _check_08,
        _check_14,
        _check_15,
    )
}


#: Notebooks that read no other notebook's results: each runs alone here. The others (12 and 13 read
#: 10-12's results) run as a chain in tests/notebooks/test_notebooks_measured.py.
STANDALONE = [nb for nb in NOTEBOOKS if not nr.upstream(nb, NOTEBOOKS, nr.RunConfig())]


@pytest.mark.slow
@pytest.mark.parametrize("nb_path", STANDALONE, ids=[nb.stem for nb in STANDALONE])
def test_notebook_smoke_run_matches_paper(nb_path, tmp_path):
    record = nr.run_notebook(nb_path, tmp_path, smoke=True)
    stem = nb_path.stem
    r = _results(tmp_path, stem)
    assert r["notebook"] == stem and r["checks_ok"] is True
    # Every figure the notebook lists exists, non-empty, in both formats, in the temporary folder only.
    figs = r["figures"]
    assert figs == record["figures"] and figs
    for name in figs:
        assert (tmp_path / "figures" / name).stat().st_size > 1000
    for stem_fig in PAPER_FIGURES.get(stem, []):
        assert f"{stem_fig}.png" in figs and f"{stem_fig}.pdf" in figs
    assert (tmp_path / "notebooks" / nb_path.name).exists()
    check = CHECKS.get(stem[:2])
    if check is not None:
        check(r)


@pytest.mark.slow
@pytest.mark.parametrize(
    "stem, parameters, message",
    [
        ("04_throughput_vs_draft_size", {"DRAFT_FAMILIES": ["OPT", "Gemma"]}, "DRAFT_FAMILIES: unknown value 'Gemma'"),
        ("05_nstar_scaling", {"N_POINTS": -5}, "N_POINTS must be an integer >= 3"),
    ],
)
def test_bad_parameter_stops_with_clear_message(stem, parameters, message, tmp_path):
    import papermill as pm

    (nb_path,) = nr.discover([stem])
    with pytest.raises(pm.PapermillExecutionError) as err:
        nr.run_notebook(nb_path, tmp_path, smoke=True, extra_parameters=parameters)
    assert "ValueError" in str(err.value) and message in str(err.value)
    assert not (tmp_path / "results" / f"{stem}.json").exists()


@pytest.mark.slow
def test_runner_reruns_are_byte_identical_and_skip_when_fresh(tmp_path, capsys):
    args = ["--only", "06", "--smoke", "--out", str(tmp_path), "--jobs", "1", "--no-report"]

    def digests():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / "figures").iterdir())}

    assert nr.main(args) == 0
    first = digests()
    assert len(first) == 6
    assert nr.main(args) == 0
    assert "up to date" in capsys.readouterr().out
    assert nr.main(args + ["--force"]) == 0
    assert digests() == first
    assert (tmp_path / "results" / "06_latency_validation.json").exists()
    assert nr.build_report(tmp_path / "notebooks", tmp_path / "report", tmp_path / "figures").exists()
    assert "06_latency_validation.html" in (tmp_path / "report" / "index.html").read_text()
