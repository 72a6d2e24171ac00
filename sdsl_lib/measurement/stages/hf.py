"""Stage ``hf``: Hugging Face assisted generation beside our loop; tables ``hf_baseline``, ``hf_summary``.

Pairs: explicit ``"draft/target"`` names, or ``"best"`` = per target the draft with the highest
median speculative speed-up in the throughput stage, taken from the fingerprint-checked throughput
units (:func:`sdsl_lib.measurement.stages.throughput.best_pairs`). One unit per (pair, gamma).
"""

from __future__ import annotations

import json

import pandas as pd

from sdsl_lib.measurement.context import pair_unit
from sdsl_lib.measurement.stages import throughput

__all__ = ["CODE", "SETTINGS", "hf_pairs", "fingerprint", "run", "merge"]

CODE = (
    "sdsl_lib.measurement.stages.hf",
    "sdsl_lib.measurement.context",
    "sdsl_lib.measurement.hf_baseline",
    "sdsl_lib.measurement.decoding",
    "sdsl_lib.measurement.kv_cache",
    "sdsl_lib.measurement.lean_llama",
)
SETTINGS = ("hf_prompts", "hf_repeats", "tput_new_tokens", "prompt_len", "forward")
_RENAME = {
    "ratio_median": "ours_over_hf_speed_ratio_median",
    "ratio_ci95_lower": "ours_over_hf_speed_ratio_p025",
    "ratio_ci95_upper": "ours_over_hf_speed_ratio_p975",
    "acceptance": "ours_accepted_over_drafted",
}


def hf_pairs(ctx) -> list[tuple[str, str]]:
    out = []
    # HF's assistant must be a transformers model: the prompt-lookup draft is not one.
    lookup = tuple(m.name for m in ctx.profile.drafts if m.family == "prompt_lookup")
    for spec in ctx.profile.measure.hf_pairs:
        if spec == "best":
            out += [p for p in throughput.best_pairs(ctx, exclude=lookup) if p not in out]
        else:
            d, t = spec.split("/")
            if (d, t) not in out:
                out.append((d, t))
    return out


def _unit(d: str, t: str, g: int) -> str:
    return f"{pair_unit(d, t)}__g{g}"


def fingerprint(ctx, draft: str, target: str) -> str:
    m = ctx.profile.measure
    return ctx.profile.fingerprint(
        "hf",
        ctx.code_fingerprint(CODE),
        {k: getattr(m, k) for k in SETTINGS},
        ctx.train_record(draft)["fingerprint"],
        ctx.train_record(target)["fingerprint"],
    )


def _expected(ctx) -> dict:
    return {_unit(d, t, g): fingerprint(ctx, d, t) for d, t in hf_pairs(ctx) for g in ctx.profile.measure.hf_gammas}


def run(ctx) -> None:
    from tqdm.auto import tqdm

    from sdsl_lib.measurement.hf_baseline import compare_with_hf

    m = ctx.profile.measure
    prompts = [x.to(ctx.device) for x in ctx.prompts(m.hf_prompts, m.prompt_len)]
    todo = [(d, t, g) for d, t in hf_pairs(ctx) for g in m.hf_gammas]
    for d, t, g in tqdm(todo, desc="hf baseline", disable=not ctx.progress):
        fp = fingerprint(ctx, d, t)
        if ctx.units.load("hf", _unit(d, t, g), fp) is None:
            df = compare_with_hf(ctx.model(t, timing=True), ctx.model(d), prompts, g, m.tput_new_tokens, m.hf_repeats)
            rows = json.loads(df.to_json(orient="records"))
            ctx.units.save("hf", _unit(d, t, g), fp, {"draft": d, "target": t, "gamma": g, "rows": rows})
    merge(ctx)


def merge(ctx) -> None:
    """``hf_baseline`` and ``hf_summary`` from the current (pair, gamma) units (a stale one is refused)."""
    from sdsl_lib.measurement.hf_baseline import summarise_comparison

    expected = _expected(ctx)
    frames, summaries = [], []
    for rec in ctx.units.collect("hf", expected).values():
        df = pd.DataFrame(rec["rows"])
        for col in ("gamma", "target", "draft"):
            if col not in df.columns:
                df.insert(0, col, rec[col])
        frames.append(df)
        summ = summarise_comparison(df)
        summaries.append({"draft": rec["draft"], "target": rec["target"], "gamma": rec["gamma"], **summ})
    ctx.write_table(
        "hf_baseline",
        pd.concat(frames, ignore_index=True),
        units=expected,
        hf_settings="assistant generation_config: num_assistant_tokens=gamma, "
        "num_assistant_tokens_schedule='constant', assistant_confidence_threshold=0",
    )
    ctx.write_table(
        "hf_summary",
        pd.DataFrame(summaries).rename(columns=_RENAME),
        units=expected,
        interval="2.5 and 97.5 percentiles over prompts of time_hf / time_ours",
    )
