"""``sdsl plan`` end to end: output equals the library, JSON keys, reproducibility, bad input -> exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdsl_lib.cli import main, parse_count
from sdsl_lib.optimal import optimal_draft_size
from sdsl_lib.planner import ESTIMATE_KEYS, draft_grid
from sdsl_lib.speculation import optimal_lookahead

ROOT = Path(__file__).resolve().parents[1]
BASE = ["plan", "--target-params", "70e9", "--target-tokens", "15e12", "--draft-tokens", "2.4e12"]


def run_json(capsys, *extra):
    assert main(BASE + ["--json", "--draws", "30", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_point_estimates_equal_the_library(capsys):
    out = run_json(capsys)
    lib = optimal_draft_size(70e9, 2.4e12, 15e12, n_grid=draft_grid(70e9))
    est = out["estimates"]
    assert est["n_draft"]["point"] == lib.n_star
    assert est["gamma_star"]["point"] == optimal_lookahead(lib.alpha, lib.n_star, 70e9)
    assert est["alpha"]["point"] == lib.alpha
    assert est["gain"]["point"] == lib.gain


def test_json_has_the_documented_keys(capsys):
    out = run_json(capsys, "--hardware", "h200", "--batch-sweep")
    assert set(out) == {"command", "version", "inputs", "paths", "uncertainty", "estimates", "hardware", "notes"}
    assert set(out["estimates"]) == set(ESTIMATE_KEYS)
    for row in out["estimates"].values():
        assert set(row) == {"point", "lower", "upper", "unit", "description"}
        assert row["lower"] <= row["point"] <= row["upper"]
    assert out["paths"]["alpha"] == "predicted from Eq. 5 with Eq. 7-8 perplexities"
    assert out["uncertainty"]["draws"] == 30 and out["uncertainty"]["seed"] == 0
    hw = out["hardware"]
    assert {"hardware", "batch_size", "target_only_tokens_per_s", "flop_optimal", "latency_optimal", "intervals",
            "batch_sweep", "stops_paying_at_batch", "notes"} <= set(hw)
    assert {"n_draft", "gamma", "alpha", "tokens_per_s", "speedup"} == set(hw["flop_optimal"])
    assert len(hw["batch_sweep"]) == 9


def test_seeded_runs_reproduce_and_seeds_differ(capsys):
    a, b = run_json(capsys, "--seed", "3"), run_json(capsys, "--seed", "3")
    c = run_json(capsys, "--seed", "4")
    assert a == b
    assert a["estimates"]["n_draft"]["lower"] != c["estimates"]["n_draft"]["lower"]


def test_table_output_names_every_quantity_and_the_path(capsys):
    assert main(BASE + ["--draws", "20"]) == 0
    text = capsys.readouterr().out
    for phrase in ("draft size N*", "optimal lookahead gamma*", "best integer lookahead", "acceptance rate alpha",
                   "tokens/FLOP gain", "95% interval", "alpha: predicted from Eq. 5 with Eq. 7-8 perplexities"):
        assert phrase in text


def test_measured_alpha_says_so(capsys):
    assert main(["plan", "--target-params", "13B", "--draft-params", "125M", "--alpha", "0.6", "--draws", "5"]) == 0
    assert "alpha: measured (given)" in capsys.readouterr().out


def test_help_explains_options_with_units(capsys):
    assert main(["plan", "--help"]) == 0
    text = capsys.readouterr().out
    for phrase in ("--target-params", "in parameters", "--draft-tokens", "tokens", "--bandwidth-gbs", "GB/s",
                   "TFLOP/s", "milliseconds", "--draws", "--seed", "--json", "--batch-sweep", "--pairs"):
        assert phrase in text


def test_parse_count_suffixes():
    assert parse_count("2.4T") == 2.4e12 and parse_count("70b") == 70e9 and parse_count("1e6") == 1e6
    with pytest.raises(ValueError):
        parse_count("seventy")


BAD = [
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--draft-params", "8e9"], "--draft-params", "smaller than --target-params"),
    (["--target-params", "7e9", "--draft-params", "1e8", "--alpha", "1.2"], "--alpha", "(0, 1)"),
    (["--target-params", "7e9", "--draft-params", "1e8", "--alpha", "0"], "--alpha", "(0, 1)"),
    (["--target-params", "-7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12"], "--target-params", "> 0"),
    (["--target-params", "0", "--target-tokens", "1e12", "--draft-tokens", "1e12"], "--target-params", "> 0"),
    (["--target-params", "7e9", "--target-tokens", "0", "--draft-tokens", "1e12"], "--target-tokens", "> 0"),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "-1"], "--draft-tokens", "> 0"),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--hardware", "h300"], "--hardware", "h100"),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--draws", "0"], "--draws", ">= 1"),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--pairs", "/no/such.csv"], "--pairs", "does not exist"),
    (["--target-params", "7e9", "--target-tokens", "1e12"], "--draft-tokens", "required"),
    (["--target-params", "7e9", "--alpha", "0.5"], "--alpha", "--draft-params"),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--hardware", "custom", "--bandwidth-gbs", "100"], "--hardware", "--peak-tflops"),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--peak-tflops", "100"], "--peak-tflops", "--hardware"),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--n-max", "9e9"], "--n-max", "smaller"),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--confidence", "1"], "--confidence", "(0, 1)"),
]


@pytest.mark.parametrize("args, option, phrase", BAD)
def test_bad_input_in_process(capsys, args, option, phrase):
    assert main(["plan", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    assert option in err and phrase in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "csv, phrase",
    [("draft_ppl,target_ppl\n12,10\n", "missing alpha"), ("draft_ppl,target_ppl,alpha\n12,10,0.5\n13,x,.5\n", "line 3"),
     ("\x00\x01garbage", "--pairs")],
)
def test_malformed_pairs_csv(tmp_path, capsys, csv, phrase):
    path = tmp_path / "pairs.csv"
    path.write_text(csv)
    assert main(BASE + ["--pairs", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--pairs" in err and phrase in err


@pytest.mark.parametrize("args, option", [(BAD[0][0], "--draft-params"), (BAD[7][0], "--hardware"), (BAD[8][0], "--draws")])
def test_bad_input_as_a_subprocess(args, option):
    script = ROOT / ".venv" / "bin" / "sdsl"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "sdsl_lib.cli"]
    res = subprocess.run(cmd + ["plan", *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and option in res.stderr and "Traceback" not in res.stderr


def test_module_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "sdsl_lib.cli", *BASE, "--draws", "5", "--json"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["command"] == "plan"
