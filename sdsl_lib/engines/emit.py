r"""From a plan back to an engine configuration: ``sdsl plan ... --emit vllm``.

The planner's hardware model (``sdsl_lib.planner.hardware_plan``: Eq. 12's tokens per iteration over
a roofline step time) picks, for the plan's draft, the integer lookahead :math:`\gamma` that
maximises tokens/s at each batch size. vLLM takes that lookahead as ``num_speculative_tokens``,
one value per engine (0.32 has no per-batch-size schedule), so the emitted configuration carries the
value at the plan's batch size and the whole schedule beside it: run the engine with the value for
the concurrency you expect, and without speculation from ``disable_speculation_from_batch`` on.
"""

from __future__ import annotations

__all__ = ["emit_vllm"]


def emit_vllm(plan: dict, draft_model: str | None = None, method: str = "draft_model") -> dict:
    """A vLLM ``speculative_config`` and a batch-size -> ``num_speculative_tokens`` schedule.

    Parameters
    ----------
    plan : dict
        The JSON object of ``sdsl plan ... --hardware NAME [--batch-sweep] --json`` (``Plan.to_dict()``
        with ``command`` and ``version``); needs its ``hardware`` section.
    draft_model : str, optional
        Path or hub id of the draft; a placeholder is emitted without it.
    method : str
        vLLM speculation method (``draft_model``; ``eagle``/``mtp`` heads follow the same k).

    Returns
    -------
    dict
        ``speculative_config`` (ready for ``vllm.LLM(speculative_config=...)`` or
        ``--speculative-config``), ``batch_size``, ``schedule`` (rows of batch size, k, predicted
        speed-up; k = 0 means do not speculate), ``disable_speculation_from_batch`` and ``notes``.
    """
    hw = plan.get("hardware") if isinstance(plan, dict) else None
    if not isinstance(hw, dict) or "flop_optimal" not in hw:
        raise ValueError("plan must be sdsl plan's JSON with a hardware section (pass --hardware NAME)")
    fo = hw["flop_optimal"]
    k_plan = int(fo["gamma"])
    rows = hw.get("batch_sweep") or [
        {"batch_size": hw["batch_size"], "flop_optimal_gamma": k_plan, "flop_optimal_speedup": fo["speedup"]}
    ]
    schedule = []
    for r in rows:
        # A lookahead that does not beat the target alone is no speculation at all.
        k = int(r["flop_optimal_gamma"]) if r["flop_optimal_speedup"] > 1.0 else 0
        schedule.append({"batch_size": int(r["batch_size"]), "num_speculative_tokens": k,
                         "predicted_speedup": float(r["flop_optimal_speedup"])})  # fmt: skip
    stop = next((s["batch_size"] for s in schedule if s["num_speculative_tokens"] == 0), None)
    config = {"method": method, "num_speculative_tokens": k_plan}
    if method == "draft_model":
        config["model"] = draft_model or "<DRAFT_DIR>"
    name = hw["hardware"].get("name", "?") if isinstance(hw.get("hardware"), dict) else hw.get("hardware")
    notes = [
        f"k from the planner's hardware model ({name}) for the plan's draft at batch size {hw['batch_size']}; "
        "vLLM 0.32 fixes k per engine",
        "greedy: draft_sample_method stays 'greedy'; for sampling with Leviathan's acceptance use 'probabilistic'",
    ]
    if k_plan == 0 or fo["speedup"] <= 1.0:
        notes.append("the plan predicts no gain at this batch size: run vLLM without a speculative_config")
    return {"speculative_config": config, "batch_size": int(hw["batch_size"]), "schedule": schedule,
            "disable_speculation_from_batch": stop, "notes": notes}  # fmt: skip
