"""``--emit vllm``: the planner's lookahead per batch size as a vLLM speculative_config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdsl_lib.engines.emit import emit_vllm

PLAN = Path(__file__).parent / "fixtures" / "plan_h200_8b_alpha07.json"


def test_emit_follows_the_plan():
    plan = json.loads(PLAN.read_text())
    e = emit_vllm(plan, draft_model="/models/draft")
    assert e["speculative_config"] == {
        "method": "draft_model",
        "num_speculative_tokens": plan["hardware"]["flop_optimal"]["gamma"],
        "model": "/models/draft",
    }
    sweep = plan["hardware"]["batch_sweep"]
    assert [s["batch_size"] for s in e["schedule"]] == [r["batch_size"] for r in sweep]
    for s, r in zip(e["schedule"], sweep):
        assert s["num_speculative_tokens"] == (r["flop_optimal_gamma"] if r["flop_optimal_speedup"] > 1 else 0)


def test_emit_switches_speculation_off_where_it_stops_paying():
    plan = json.loads(PLAN.read_text())
    plan["hardware"]["batch_sweep"][-1]["flop_optimal_speedup"] = 0.9
    e = emit_vllm(plan)
    assert e["schedule"][-1]["num_speculative_tokens"] == 0
    assert e["disable_speculation_from_batch"] == plan["hardware"]["batch_sweep"][-1]["batch_size"]


def test_emit_needs_hardware():
    with pytest.raises(ValueError, match="hardware"):
        emit_vllm({"command": "plan"})
