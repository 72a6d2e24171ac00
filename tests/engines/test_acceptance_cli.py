"""``sdsl acceptance``: real vLLM captures (tests/engines/fixtures) and one clear line on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdsl_lib.engines.cli import main
from sdsl_lib.engines.parsing import read_counters

FIX = Path(__file__).parent / "fixtures"
SELF = FIX / "vllm_selfdraft_k3.prom"
NGRAM = FIX / "vllm_ngram_k3.prom"
needs_capture = pytest.mark.skipif(not SELF.exists(), reason="no real vLLM capture in tests/engines/fixtures")


def run_json(capsys, *argv):
    rc = main(["acceptance", *argv, "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


@needs_capture
def test_real_selfdraft_capture_accepts_everything(capsys):
    # The canary: the target as its own draft, greedy. vLLM counts every position accepted.
    rep = run_json(capsys, "--from-vllm-metrics", str(SELF))
    assert rep["num_speculative_tokens"] == 3 and rep["num_drafts"] > 0
    assert rep["per_position_rate"] == [1.0, 1.0, 1.0]
    assert rep["mean_acceptance_length"] == 4.0 and rep["alpha"] == 1.0
    assert rep["draft_acceptance_rate"] == 1.0


@needs_capture
def test_real_capture_dump_and_prometheus_agree():
    # The get_metrics() dump after the workload and the /metrics text of the same engine hold the same counts.
    for name in ("selfdraft_k3", "ngram_k3"):
        assert read_counters(FIX / f"vllm_{name}_after.json") == read_counters(FIX / f"vllm_{name}.prom")


@needs_capture
def test_real_ngram_capture_with_baseline(capsys):
    rep = run_json(
        capsys,
        "--from-vllm-metrics",
        str(FIX / "vllm_ngram_k3_after.json"),
        "--baseline",
        str(FIX / "vllm_ngram_k3_before.json"),
        "--method",
        "ngram",
    )
    c = read_counters(FIX / "vllm_ngram_k3_after.json") - read_counters(FIX / "vllm_ngram_k3_before.json")
    assert rep["num_drafts"] == c.num_drafts > 0
    assert rep["mean_acceptance_length"] == pytest.approx(1 + c.accepted / c.num_drafts)
    assert rep["per_position_rate"] == pytest.approx([v / c.num_drafts for v in c.accepted_per_pos])
    assert 0.0 <= rep["alpha_ci_lower"] <= rep["alpha"] <= rep["alpha_ci_upper"] <= 1.0
    assert any(n.startswith("ngram: num_drafts counts only") for n in rep["notes"])


def test_table_output_names_conventions(tmp_path, capsys):
    f = tmp_path / "m.prom"
    f.write_text(
        "vllm:spec_decode_num_drafts_total 100\nvllm:spec_decode_num_draft_tokens_total 200\n"
        "vllm:spec_decode_num_accepted_tokens_total 90\n"
        'vllm:spec_decode_num_accepted_tokens_per_pos_total{position="0"} 60\n'
        'vllm:spec_decode_num_accepted_tokens_per_pos_total{position="1"} 30\n'
    )
    assert main(["acceptance", "--from-vllm-metrics", str(f)]) == 0
    out = capsys.readouterr().out
    assert "bonus included" in out and "alpha (Leviathan, i.i.d. model)" in out and "1.9000" in out


@pytest.mark.parametrize(
    "content,extra",
    [
        (None, []),  # missing file
        ("{not json", []),
        ('{"format": "other"}', []),
        ("vllm:spec_decode_num_drafts_total -1\n", []),
        (
            "vllm:spec_decode_num_drafts_total 0\nvllm:spec_decode_num_draft_tokens_total 0\n"
            "vllm:spec_decode_num_accepted_tokens_total 0\n",
            [],
        ),  # fmt: skip
        (
            "vllm:spec_decode_num_drafts_total 4\nvllm:spec_decode_num_draft_tokens_total 8\n"
            "vllm:spec_decode_num_accepted_tokens_total 3\n"
            'vllm:spec_decode_num_accepted_tokens_per_pos_total{position="0"} 3\n',
            ["--num-speculative-tokens", "0"],
        ),  # fmt: skip
    ],
)
def test_malformed_input_one_line_exit_2(tmp_path, capsys, content, extra):
    f = tmp_path / "m.txt"
    if content is not None:
        f.write_text(content)
    rc = main(["acceptance", "--from-vllm-metrics", str(f), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "error" in err
