"""The planner's report: the :class:`Plan` it returns, its JSON form and its text table.

``Plan.to_dict()`` is what ``sdsl plan --json`` prints (with ``command`` and ``version``);
:func:`render_table` is the human-readable report of the same dictionary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdsl_lib.planner.hardware_plan import HardwarePlan

__all__ = ["ESTIMATE_KEYS", "ESTIMATE_META", "Plan", "render_table", "finite"]

#: Rows of :attr:`Plan.estimates` (and keys of the JSON ``estimates`` object), in display order.
ESTIMATE_KEYS = (
    "n_draft",
    "m_over_n",
    "gamma_star",
    "gamma_int",
    "alpha",
    "gain",
    "gain_int",
    "throughput_tokens_per_flop",
    "draft_ppl",
    "target_ppl",
)
ESTIMATE_META = {
    "n_draft": ("params", "draft size N (throughput-optimal N* unless given)"),
    "m_over_n": ("ratio", "target-to-draft size ratio M/N"),
    "gamma_star": ("draft tokens/iteration", "optimal lookahead gamma* (Eq. 13, continuous)"),
    "gamma_int": ("draft tokens/iteration", "best integer lookahead (Eq. 3)"),
    "alpha": ("probability", "acceptance rate alpha"),
    "gain": ("x target-only", "tokens-per-FLOP gain over target-only decoding at gamma* (2M T, Eq. 4)"),
    "gain_int": ("x target-only", "tokens-per-FLOP gain at the best integer lookahead (Eq. 3)"),
    "throughput_tokens_per_flop": ("tokens/FLOP", "throughput T at gamma* (Eq. 4/9)"),
    "draft_ppl": ("perplexity", "draft perplexity x (Eq. 7, or given)"),
    "target_ppl": ("perplexity", "target perplexity y (Eq. 8, or given)"),
}


@dataclass(frozen=True)
class Plan:
    """The planner's answer: point estimates with percentile intervals, and how they were made."""

    inputs: dict
    alpha_source: str  # which path gave alpha, in words
    draft_source: str  # "searched ..." or "given"
    estimates: pd.DataFrame  # index ESTIMATE_KEYS; columns point, lower, upper, unit, description
    draws: pd.DataFrame  # one row per draw (empty when uncertainty is "none")
    uncertainty: dict
    notes: tuple = ()
    hardware: HardwarePlan | None = None

    def point(self, key: str) -> float:
        return float(self.estimates.loc[key, "point"])

    def interval(self, key: str) -> tuple[float, float]:
        return float(self.estimates.loc[key, "lower"]), float(self.estimates.loc[key, "upper"])

    def to_dict(self) -> dict:
        """JSON-ready: keys ``inputs, paths, uncertainty, estimates, hardware, notes``."""
        est = {
            k: {"point": r.point, "lower": r.lower, "upper": r.upper, "unit": r.unit, "description": r.description}
            for k, r in self.estimates.iterrows()
        }
        return finite(
            {
                "inputs": self.inputs,
                "paths": {"alpha": self.alpha_source, "draft": self.draft_source},
                "uncertainty": self.uncertainty,
                "estimates": est,
                "hardware": None if self.hardware is None else self.hardware.to_dict(),
                "notes": list(self.notes),
            }
        )


def finite(obj):
    """Replace inf/NaN by None and numpy scalars by Python ones so the dict is strict JSON."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
def _fmt_count(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-" if x is None or math.isnan(x) else "inf"
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{x / div:.4g}{suf}"
    return f"{x:.4g}"


def _rate(x: float, unit: str) -> str:
    return f"{x / 1e12:.4g} T{unit}" if x >= 1e12 else f"{x / 1e9:.4g} G{unit}"


def _fmt(key: str, x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if key in ("n_draft",):
        return _fmt_count(x)
    if key == "gamma_int" or key.endswith("_gamma"):
        return f"{x:.0f}"
    if key == "throughput_tokens_per_flop":
        return f"{x:.4e}"
    if key in ("gain", "gain_int") or key.endswith("speedup"):
        return f"{x:.3f}x"
    if key == "alpha":
        return f"{x:.4f}"
    return f"{x:.4g}"


_LABELS = {
    "n_draft": "draft size N* (throughput-optimal)",
    "m_over_n": "target/draft ratio M/N",
    "gamma_star": "optimal lookahead gamma* (Eq. 13)",
    "gamma_int": "best integer lookahead (Eq. 3)",
    "alpha": "acceptance rate alpha",
    "gain": "tokens/FLOP gain vs target alone",
    "gain_int": "  ... at the integer lookahead",
    "throughput_tokens_per_flop": "tokens per FLOP T (Eq. 4/9)",
    "draft_ppl": "draft perplexity x",
    "target_ppl": "target perplexity y",
}


def _render_hardware(hw: dict, inp: dict, level: str) -> list[str]:
    """The hardware section of the report."""
    lines = []
    spec = hw["hardware"]
    lines += [
        "",
        f"  hardware: {spec['name']}: {_rate(spec['bandwidth_bytes_per_s'], 'B/s')}, {_rate(spec['peak_flops'], 'FLOP/s')}, "
        f"{spec['bytes_per_param']:g} bytes/param, {1e3 * spec['overhead_s']:.3g} ms/step overhead; "
        f"ridge {spec['ridge_tokens']:.0f} tokens/step; batch {hw['batch_size']}",
        f"  target alone: {hw['target_only_tokens_per_s']:.4g} tokens/s; KV cache {hw['kv_cache']['context_tokens']} "
        f"tokens/sequence ({hw['kv_cache']['target_bytes_per_sequence'] / 1e9:.3g} GB for the target); memory "
        + (
            f"{hw['memory']['needed_bytes'] / 1e9:.4g} of {hw['memory']['available_bytes'] / 1e9:.4g} GB"
            if hw["memory"]["available_bytes"]
            else "not checked"
        ),
        f"  {'':<24}{'draft N':>10}{'gamma':>7}{'alpha':>8}{'tokens/s':>11}{'speed-up':>10}    {level} interval (speed-up)",
    ]
    ivs = hw["intervals"]
    rows = (
        (("flop_optimal", "given draft"),)
        if inp["draft_params"]
        else (("flop_optimal", "FLOP-optimal draft"), ("latency_optimal", "latency-optimal draft"))
    )
    for name, label in rows:
        r = hw[name]
        iv = ivs.get(f"{name}_speedup")
        interval = f"[{_fmt('speedup', iv['lower'])}, {_fmt('speedup', iv['upper'])}]" if iv else ""
        lines.append(
            f"  {label:<24}{_fmt_count(r['n_draft']):>10}{r['gamma']:>7.0f}{_fmt('alpha', r['alpha']):>8}"
            f"{r['tokens_per_s']:>11.4g}{_fmt('speedup', r['speedup']):>10}    {interval}"
        )
    if hw.get("batch_sweep"):
        lines += [
            "",
            f"  batch sweep ({spec['name']}): tokens/s and best lookahead per batch size",
            f"  {'':>29}{'-- FLOP-optimal N --':>21}{'------- latency-optimal draft -------':>38}",
            f"  {'batch':>6}{'target tok/s':>14}{'bound':>9}{'gamma':>11}{'speed-up':>10}"
            f"{'best N':>10}{'gamma':>7}{'speed-up':>10}{'tok/s':>11}",
        ]
        for r in hw["batch_sweep"]:
            lines.append(
                f"  {r['batch_size']:>6}{r['target_only_tokens_per_s']:>14.4g}{r['target_step_bound']:>9}"
                f"{r['flop_optimal_gamma']:>11}{_fmt('speedup', r['flop_optimal_speedup']):>10}"
                f"{_fmt_count(r['latency_optimal_n_draft']):>10}{r['latency_optimal_gamma']:>7}"
                f"{_fmt('speedup', r['latency_optimal_speedup']):>10}{r['latency_optimal_tokens_per_s']:>11.4g}"
            )
        stop = hw.get("stops_paying_at_batch")
        lines.append(
            f"  speculation stops paying at batch {stop}" if stop else "  speculation pays at every batch size swept"
        )
    for note in hw.get("notes", []):
        lines.append(f"  note: {note}")
    return lines


def render_table(result: dict) -> str:
    """The human-readable report of a plan (``result`` is :meth:`Plan.to_dict`)."""
    inp, est, unc = result["inputs"], result["estimates"], result["uncertainty"]
    level = f"{100 * unc['confidence']:g}%"
    head = f"target M = {_fmt_count(inp['target_params'])} params"
    if inp["target_tokens"]:
        head += f" trained on D' = {_fmt_count(inp['target_tokens'])} tokens"
    if inp["draft_tokens"]:
        head += f"; draft data D = {_fmt_count(inp['draft_tokens'])} tokens"
    if inp["draft_params"]:
        head += f"; draft N = {_fmt_count(inp['draft_params'])} params (given)"
    lines = [f"sdsl plan: {head}", "", f"  alpha: {result['paths']['alpha']}", f"  draft: {result['paths']['draft']}"]
    if unc["draws"]:
        lines += [
            f"  uncertainty: {unc['draws']} draws (seed {unc['seed']}), {level} {unc['interval']}",
            f"    plane: {unc['plane']}",
            f"    law:   {unc['law']}",
        ]
        if inp["alpha"] is not None:
            lines.append(f"    alpha: {unc['alpha']}")
    else:
        lines.append(f"  uncertainty: none (point estimates only): {unc['interval'].removeprefix('none: ')}")
    lines += ["", f"  {'quantity':<38}{'estimate':>13}    {level} interval"]
    labels = dict(_LABELS)
    if inp["draft_params"]:
        labels["n_draft"] = "draft size N (given)"
    for key, row in est.items():
        interval = f"[{_fmt(key, row['lower'])}, {_fmt(key, row['upper'])}]" if unc["draws"] else ""
        lines.append(f"  {labels[key]:<38}{_fmt(key, row['point']):>13}    {interval}")
    hw = result.get("hardware")
    if hw:
        lines += _render_hardware(hw, inp, level)
    if result["notes"]:
        lines += [""] + [f"  note: {n}" for n in result["notes"]]
    return "\n".join(lines)
