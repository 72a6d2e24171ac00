"""Stage ``calibrate``: forward latency of every model for T = 1..T_max new tokens; table ``cost_calibration``.

On a real target the target is timed in the profile's timing dtype (bf16); the drafts in fp32.

One unit for all models: they are timed in alternation within each round (A B C .. A B C ..) so
that drifting machine load hits all alike, which a unit per model would not allow. The measured
cost ratio :math:`c` = one-token latency of the draft over the target's is a join
(:func:`sdsl_lib.measurement.join.alpha_with_context`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sdsl_lib.measurement import timing

__all__ = ["CODE", "SETTINGS", "UNIT", "fingerprint", "run", "merge"]

# kv_cache and lean_llama: the runner forward_latency times is the one the decoding loop uses.
CODE = (
    "sdsl_lib.measurement.stages.calibrate",
    "sdsl_lib.measurement.context",
    "sdsl_lib.measurement.timing",
    "sdsl_lib.measurement.kv_cache",
    "sdsl_lib.measurement.lean_llama",
)
SETTINGS = ("calib_prefix_len", "calib_max_tokens", "calib_repeats", "forward")
UNIT = "all_models"


def fingerprint(ctx) -> str:
    p, m = ctx.profile, ctx.profile.measure
    return p.fingerprint(
        "calibrate",
        ctx.code_fingerprint(CODE),
        {k: getattr(m, k) for k in SETTINGS},
        [ctx.train_record(s.name)["fingerprint"] for s in p.models],
    )


def run(ctx) -> None:
    from tqdm.auto import tqdm

    p, m = ctx.profile, ctx.profile.measure
    fp = fingerprint(ctx)
    if ctx.units.load("calibrate", UNIT, fp) is None:
        prefix = ctx.prompts(1, m.calib_prefix_len)[0]
        lat = {s.name: [] for s in p.models}
        for _ in tqdm(range(m.calib_repeats), desc="calibrate", disable=not ctx.progress):
            for s in p.models:
                one = timing.forward_latency(
                    ctx.model(s.name, timing=True), prefix, m.calib_max_tokens, repeats=1, warmup=1, device=ctx.device
                )
                lat[s.name].append(one[0].tolist())
        ctx.units.save("calibrate", UNIT, fp, {"latency_s": lat, "prefix_len": m.calib_prefix_len})
    merge(ctx)


def merge(ctx) -> None:
    """``cost_calibration`` from the current calibration unit (a stale one is refused)."""
    expected = {UNIT: fingerprint(ctx)}
    rec = ctx.units.collect("calibrate", expected)[UNIT]
    rows = []
    for s in ctx.profile.models:
        a = np.asarray(rec["latency_s"][s.name])
        med = np.median(a, axis=0)
        n_params = int(ctx.train_record(s.name)["n_params_total"])
        for t in range(a.shape[1]):
            rows.append(
                {
                    "model": s.name,
                    "role": s.role,
                    "n_params": n_params,
                    "n_new_tokens": t + 1,
                    "prefix_len_tokens": rec["prefix_len"],
                    "latency_median_s": med[t],
                    "latency_p025_s": np.percentile(a[:, t], 2.5),
                    "latency_p975_s": np.percentile(a[:, t], 97.5),
                    "n_repeats": a.shape[0],
                    "latency_rel_one_token": med[t] / med[0],
                }
            )
    ctx.write_table("cost_calibration", pd.DataFrame(rows), units=expected)
