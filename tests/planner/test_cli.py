"""``sdsl plan`` end to end: output equals the library, JSON keys, reproducibility, bad input -> exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdsl_lib.cli import main, parse_count
from sdsl_lib.laws.optimal import optimal_draft_size
from sdsl_lib.laws.speculation import optimal_lookahead
from sdsl_lib.planner.core import draft_grid
from sdsl_lib.planner.report import ESTIMATE_KEYS

ROOT = Path(__file__).resolve().parents[2]
BASE = ["plan", "--target-params", "70e9", "--target-tokens", "15e12", "--draft-tokens", "2.4e12"]
# A 70B target fits on one H200 only with 1-byte weights and a short context (bf16 weights alone fill it).
FP8 = ["--bytes-per-param", "1", "--context-tokens", "512"]


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
    out = run_json(capsys, "--hardware", "h200", "--batch-sweep", *FP8)
    assert set(out) == {"command", "version", "inputs", "paths", "uncertainty", "estimates", "hardware", "notes"}
    assert set(out["estimates"]) == set(ESTIMATE_KEYS)
    for row in out["estimates"].values():
        assert set(row) == {"point", "lower", "upper", "unit", "description"}
        assert row["lower"] <= row["point"] <= row["upper"]
    assert out["paths"]["alpha"] == "predicted from Eq. 5 with Eq. 7-8 perplexities"
    assert out["uncertainty"]["draws"] == 30 and out["uncertainty"]["seed"] == 0
    hw = out["hardware"]
    assert {
        "hardware",
        "batch_size",
        "target_only_tokens_per_s",
        "flop_optimal",
        "latency_optimal",
        "intervals",
        "batch_sweep",
        "stops_paying_at_batch",
        "kv_cache",
        "memory",
        "overhead_effect",
        "notes",
    } <= set(hw)
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
    for phrase in (
        "draft size N*",
        "optimal lookahead gamma*",
        "best integer lookahead",
        "acceptance rate alpha",
        "tokens/FLOP gain",
        "95% interval",
        "alpha: predicted from Eq. 5 with Eq. 7-8 perplexities",
    ):
        assert phrase in text


def test_measured_alpha_says_so(capsys):
    assert main(["plan", "--target-params", "13B", "--draft-params", "125M", "--alpha", "0.6", "--draws", "5"]) == 0
    assert "alpha: measured (given)" in capsys.readouterr().out


def test_help_explains_options_with_units(capsys):
    assert main(["plan", "--help"]) == 0
    text = capsys.readouterr().out
    for phrase in (
        "--target-params",
        "in parameters",
        "--draft-tokens",
        "tokens",
        "--bandwidth-gbs",
        "GB/s",
        "TFLOP/s",
        "milliseconds",
        "--draws",
        "--seed",
        "--json",
        "--batch-sweep",
        "--pairs",
    ):
        assert phrase in text


def test_parse_count_suffixes():
    assert parse_count("2.4T") == 2.4e12 and parse_count("70b") == 70e9 and parse_count("1e6") == 1e6
    with pytest.raises(ValueError):
        parse_count("seventy")


BAD = [
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--draft-params", "8e9"],
        "--draft-params",
        "smaller than --target-params",
    ),
    (["--target-params", "7e9", "--draft-params", "1e8", "--alpha", "1.2"], "--alpha", "(0, 1)"),
    (["--target-params", "7e9", "--draft-params", "1e8", "--alpha", "0"], "--alpha", "(0, 1)"),
    (["--target-params", "-7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12"], "--target-params", "> 0"),
    (["--target-params", "0", "--target-tokens", "1e12", "--draft-tokens", "1e12"], "--target-params", "> 0"),
    (["--target-params", "7e9", "--target-tokens", "0", "--draft-tokens", "1e12"], "--target-tokens", "> 0"),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "-1"], "--draft-tokens", "> 0"),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--hardware", "h300"],
        "--hardware",
        "h100",
    ),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--draws", "0"],
        "--draws",
        "[1, 20000]",
    ),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--pairs", "/no/such.csv"],
        "--pairs",
        "does not exist",
    ),
    (["--target-params", "7e9", "--target-tokens", "1e12"], "--draft-tokens", "required"),
    (["--target-params", "7e9", "--alpha", "0.5"], "--alpha", "--draft-params"),
    (
        [
            "--target-params",
            "7e9",
            "--target-tokens",
            "1e12",
            "--draft-tokens",
            "1e12",
            "--hardware",
            "custom",
            "--bandwidth-gbs",
            "100",
        ],
        "--hardware",
        "--peak-tflops",
    ),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--peak-tflops", "100"],
        "--peak-tflops",
        "--hardware",
    ),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--n-max", "9e9"],
        "--n-max",
        "smaller",
    ),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--confidence", "1"],
        "--confidence",
        "(0, 1)",
    ),
]


@pytest.mark.parametrize(
    "csv, phrase",
    [
        ("draft_ppl,target_ppl\n12,10\n", "missing alpha"),
        ("draft_ppl,target_ppl,alpha\n12,10,0.5\n13,x,.5\n", "line 3"),
        ("\x00\x01garbage", "--pairs"),
    ],
)
def test_malformed_pairs_csv(tmp_path, capsys, csv, phrase):
    path = tmp_path / "pairs.csv"
    path.write_text(csv)
    assert main(BASE + ["--pairs", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--pairs" in err and phrase in err


@pytest.mark.parametrize(
    "args, option", [(BAD[0][0], "--draft-params"), (BAD[7][0], "--hardware"), (BAD[8][0], "--draws")]
)
def test_bad_input_as_a_subprocess(args, option):
    script = ROOT / ".venv" / "bin" / "sdsl"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "sdsl_lib.cli"]
    res = subprocess.run(cmd + ["plan", *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and option in res.stderr and "Traceback" not in res.stderr


def test_module_entry_point_runs():
    res = subprocess.run(
        [sys.executable, "-m", "sdsl_lib.cli", *BASE, "--draws", "5", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["command"] == "plan"


# --- audit additions: more bad-input classes, presets, batch size, measured paths -------------------
MORE_BAD = [
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--draft-params", "7e9"],
        "--draft-params",
        "smaller than --target-params",
    ),
    (["--target-params", "7e9", "--draft-params", "1e8", "--alpha", "-0.1"], "--alpha", "(0, 1)"),
    (["--target-params", "7e9", "--draft-params", "1e8", "--alpha", "nan"], "--alpha", "(0, 1)"),
    (["--target-params", "nan", "--target-tokens", "1e12", "--draft-tokens", "1e12"], "--target-params", "> 0"),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--draft-params", "-1e8"],
        "--draft-params",
        "> 0",
    ),
    (["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--n-min", "0"], "--n-min", "> 0"),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--draws", "20001"],
        "--draws",
        "[1, 20000]",
    ),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--gamma-max", "5000"],
        "--gamma-max",
        "[1, 1024]",
    ),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--batch-size", "8"],
        "--batch-size",
        "--hardware",
    ),
    (
        [
            "--target-params",
            "7e9",
            "--target-tokens",
            "1e12",
            "--draft-tokens",
            "1e12",
            "--hardware",
            "h100",
            "--batch-size",
            "0",
        ],
        "--batch-size",
        ">= 1",
    ),
    (
        [
            "--target-params",
            "7e9",
            "--target-tokens",
            "1e12",
            "--draft-tokens",
            "1e12",
            "--hardware",
            "custom",
            "--bandwidth-gbs",
            "0",
            "--peak-tflops",
            "1",
            "--bytes-per-param",
            "2",
            "--overhead-ms",
            "0",
        ],
        "--bandwidth-gbs",
        "(0, inf)",
    ),
    (
        [
            "--target-params",
            "7e9",
            "--target-tokens",
            "1e12",
            "--draft-tokens",
            "1e12",
            "--hardware",
            "h100",
            "--overhead-ms",
            "-1",
        ],
        "--overhead-ms",
        "[0, inf)",
    ),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-params", "1e8", "--draft-ppl", "0.5"],
        "--draft-ppl",
        "[1, inf)",
    ),
    (["--target-params", "7e9", "--draft-params", "1e8", "--alpha", "0.5", "--alpha-se", "1"], "--alpha-se", "[0, 1)"),
    (
        ["--target-params", "7e9", "--target-tokens", "1e12", "--draft-tokens", "1e12", "--alpha-se", "0.1"],
        "--alpha-se",
        "needs --alpha",
    ),
]


@pytest.mark.parametrize("args, option, phrase", BAD + MORE_BAD)
def test_bad_input_in_process(capsys, args, option, phrase):
    # exit 2, nothing on stdout, one line on stderr naming the option and its valid range
    assert main(["plan", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert option in captured.err and phrase in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(
    "csv, phrase",
    [
        ("draft_ppl,target_ppl,alpha\n12,10,0.5,9\n13,11,0.5\n14,12,.5\n15,13,.5\n", "line 2 has 4 fields"),
        ("draft_ppl,target_ppl,alpha\n12,10,\n13,11,0.5\n14,12,.5\n15,13,.5\n", "line 2 holds an empty value"),
        ("draft_ppl,target_ppl,alpha\n12,10,0.5\n13,11,0.6\n14,12,.5\n15,13,.4\n", "lockstep"),  # y = x - 2
        ("draft_ppl,target_ppl,alpha\n12,10,0.5\n12,10,0.6\n12,10,.5\n12,10,.4\n", "lockstep"),  # constant
        (
            "draft_ppl,draft_ppl,target_ppl,alpha\n12,12,10,0.5\n13,13,11,0.5\n14,14,12,.5\n15,15,14,.5\n",
            "repeats column draft_ppl",
        ),
        ('draft_ppl,target_ppl,alpha\n"12,10,0.5\n13,11,0.5\n', "not a readable"),
        ("", "is empty"),
        ("draft_ppl,target_ppl,alpha\n12,10,0.5\n13,11,0.5\n", "at least 4"),
        ("draft_ppl,target_ppl,alpha\n12,10,1.5\n13,11,0.5\n14,12,.5\n15,13,.5\n", "[0, 1]"),
    ],
)
def test_more_malformed_pairs_csv(tmp_path, capsys, csv, phrase):
    path = tmp_path / "pairs.csv"
    path.write_text(csv)
    assert main(BASE + ["--pairs", str(path), "--draws", "5"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert "--pairs" in captured.err and phrase in captured.err and "Traceback" not in captured.err


def test_non_utf8_pairs_csv(tmp_path, capsys):
    path = tmp_path / "pairs.csv"
    path.write_bytes(b"\xff\xfe\xfa\x00bad")
    assert main(BASE + ["--pairs", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--pairs" in err and "not a readable UTF-8 CSV" in err


def test_user_pairs_csv_refits_the_plane(tmp_path, capsys):
    from sdsl_lib.laws.acceptance import fit_alpha_plane
    from sdsl_lib.planner.uncertainty import paper_pairs

    df = paper_pairs().iloc[::2]
    path = tmp_path / "mine.csv"
    df.assign(source="mine").to_csv(path, index=False)  # an extra column is ignored
    out = run_json(capsys, "--pairs", str(path))
    fit = fit_alpha_plane(df["draft_ppl"], df["target_ppl"], df["alpha"]).plane
    assert out["inputs"]["plane"] == pytest.approx({"A": fit.A, "B": fit.B, "C": fit.C}, rel=1e-12)
    # The saved pairs carry their target: the bootstrap resamples the 13 targets with their pairs.
    assert out["uncertainty"]["plane"].startswith(f"cluster bootstrap over the 13 targets of {len(df)} user pairs")
    lib = optimal_draft_size(70e9, 2.4e12, 15e12, n_grid=draft_grid(70e9), plane=fit)
    assert out["estimates"]["n_draft"]["point"] == lib.n_star


def test_help_shows_real_defaults_only(capsys):
    assert main(["plan", "--help"]) == 0
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: 1000)" in text and "(default: 64)" in text


# cpu-measured holds 24 GiB: a 70B fp32 target needs 280 GB, so that case pretends to more memory.
PRESET_ARGS = {p: FP8 for p in ("h100", "h200", "a100")} | {"cpu-measured": ["--memory-gb", "400"]}


@pytest.mark.parametrize("preset", ["h100", "h200", "a100", "cpu-measured"])
def test_each_preset_reports_hand_computed_target_speed_and_both_drafts(capsys, preset):
    out = run_json(capsys, "--hardware", preset, *PRESET_ARGS[preset])
    hw = out["hardware"]
    spec = hw["hardware"]
    assert spec["name"] == preset and spec["source"]
    m = 70e9
    # Target alone at batch 1: read the weights and the KV cache once ((b M + K) / beta), or compute
    # 2 M / pi if slower, + t0.
    kv = hw["kv_cache"]["target_bytes_per_sequence"]
    assert kv > 0
    t_step = (
        max((spec["bytes_per_param"] * m + kv) / spec["bandwidth_bytes_per_s"], 2 * m / spec["peak_flops"])
        + spec["overhead_s"]
    )
    assert hw["target_only_tokens_per_s"] == pytest.approx(1.0 / t_step, rel=1e-12)
    assert hw["flop_optimal"]["n_draft"] == out["estimates"]["n_draft"]["point"]
    assert hw["latency_optimal"]["tokens_per_s"] >= hw["flop_optimal"]["tokens_per_s"] * (1 - 1e-12)
    assert main(BASE + ["--draws", "10", "--hardware", preset, *PRESET_ARGS[preset]]) == 0
    text = capsys.readouterr().out
    assert "FLOP-optimal draft" in text and "latency-optimal draft" in text and f"hardware: {preset}:" in text


def test_configuration_that_does_not_fit_exits_2_with_one_line(capsys):
    # A 70B target with 1-byte weights at batch 256 on one H200: 70 GB of weights plus 256 KV caches
    # of 2,048 tokens (0.34 GB each) is 156 GB; batch 1 would fit, so the batch size is named.
    assert main(BASE + ["--hardware", "h200", "--bytes-per-param", "1", "--batch-size", "256"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "--batch-size: 256 does not fit" in captured.err and "141 GB" in captured.err
    # In bf16 not even batch 1 fits (the weights alone are 140 of the 141 GB): the hardware is named.
    for batch in ("256", "1"):
        assert main(BASE + ["--hardware", "h200", "--batch-size", batch]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        assert "--hardware: h200 cannot hold this plan" in captured.err


def test_large_batch_says_speculation_stops_paying(capsys):
    out = run_json(capsys, "--hardware", "h200", "--batch-size", "256", *FP8)
    hw = out["hardware"]
    assert hw["batch_size"] == 256
    assert hw["latency_optimal"]["gamma"] == 0 and hw["latency_optimal"]["n_draft"] is None
    assert hw["latency_optimal"]["alpha"] is None  # no draft runs, so no acceptance rate either
    assert hw["latency_optimal"]["speedup"] == pytest.approx(1.0)
    assert any("speculation does not pay" in n for n in hw["notes"])
    assert not any("end of the search range" in n for n in hw["notes"])
    assert main(BASE + ["--draws", "10", "--hardware", "h200", "--batch-size", "256", *FP8]) == 0
    assert "speculation does not pay" in capsys.readouterr().out


def test_batch_sweep_gives_best_gamma_per_batch(capsys):
    out = run_json(capsys, "--hardware", "h200", "--batch-sweep", *FP8)
    sweep = out["hardware"]["batch_sweep"]
    gammas = [r["latency_optimal_gamma"] for r in sweep]
    assert gammas == sorted(gammas, reverse=True) and gammas[0] > gammas[-1]
    stop = out["hardware"]["stops_paying_at_batch"]
    assert stop == next(r["batch_size"] for r in sweep if r["latency_optimal_gamma"] == 0)


@pytest.mark.parametrize(
    "extra, path",
    [
        (
            ["--draft-params", "125M", "--draft-ppl", "20", "--target-ppl", "11"],
            "alpha: predicted from Eq. 5 at the given (measured) perplexities",
        ),
        (
            ["--draft-params", "125M", "--draft-ppl", "20", "--target-tokens", "180e9"],
            "with the given draft perplexity and the Eq. 8 target perplexity",
        ),
        (
            ["--draft-tokens", "180e9", "--target-ppl", "11"],
            "with Eq. 7 draft perplexities and the given target perplexity",
        ),
        (["--draft-params", "125M", "--alpha", "0.62", "--alpha-se", "0.02"], "alpha: measured (given)"),
    ],
)
def test_measured_inputs_say_which_path(capsys, extra, path):
    assert main(["plan", "--target-params", "13B", "--draws", "20", *extra]) == 0
    assert path in capsys.readouterr().out


def test_broken_pipe_ends_quietly(tmp_path, monkeypatch, capsys):
    # ``sdsl plan ... | head``: the reader closes the pipe; the command must not print a traceback.
    class ClosedPipe:
        def __init__(self):
            self._fd = open(tmp_path / "sink", "w")

        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            return self._fd.fileno()

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(BASE + ["--draws", "5"]) == 1
