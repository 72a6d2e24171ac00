"""Stage ``throughput``: greedy tokens/s per pair; tables ``throughput``, ``throughput_summary``,
``acceptance_by_position_greedy`` (and, on a real target, ``throughput_sampled`` and its summary at
the profile's sampled temperature, 0.7).

Per pair (one unit), every prompt runs autoregressive decoding of the target (``gamma`` 0) and
speculative decoding at every gamma, in an order rotated from prompt to prompt (interleaved), after
one warm-up of each code path. Greedy speculative output must equal greedy decoding token for token
(``matches_autoregressive``; on a real target timed in bf16 it may not: a multi-token bf16 pass
rounds differently, so exactness is the fp32 ``exact`` stage's).

Timing protocol: every timed call records the CPU load of other processes during it
(:class:`~sdsl_lib.measurement.timing.CpuLoad`, ``other_load_cores``); a call above the real
profile's ``load_limit_cores`` (0.25 cores) is flagged (``load_flagged``) and the summaries leave
out the prompts with a flagged call (``n_prompts_rejected_load``), unless every prompt has one.
Each row carries the repetition statistics of the text it produced (``output_distinct_frac``,
``output_repeat4_rate``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from sdsl_lib.measurement.context import pair_unit, pairs

__all__ = ["CODE", "SETTINGS", "fingerprint", "run", "merge", "summarise", "best_pairs"]

CODE = (
    "sdsl_lib.measurement.stages.throughput",
    "sdsl_lib.measurement.context",
    "sdsl_lib.measurement.decoding",
    "sdsl_lib.measurement.kv_cache",
    "sdsl_lib.measurement.lean_llama",
)
SETTINGS = ("gammas", "tput_prompts", "tput_new_tokens", "prompt_len", "forward")


def fingerprint(ctx, draft: str, target: str) -> str:
    m = ctx.profile.measure
    return ctx.profile.fingerprint(
        "throughput",
        ctx.code_fingerprint(CODE),
        {k: getattr(m, k) for k in SETTINGS},
        ctx.train_record(draft)["fingerprint"],
        ctx.train_record(target)["fingerprint"],
    )


def _row(k: int, g: int, st, out, load, limit: float) -> dict:
    from sdsl_lib.measurement.workload import distinct_fraction, ngram_repeat_rate

    ids = out.cpu().numpy()
    row = {
        "other_load_cores": load.other_cores,
        "load_flagged": bool(load.other_cores > limit),
        "output_distinct_frac": distinct_fraction(ids),
        "output_repeat4_rate": ngram_repeat_rate(ids),
        "prompt_idx": k,
        "method": "autoregressive" if g == 0 else "speculative",
        "gamma": g,
        "new_tokens": st.new_tokens,
        "time_s": st.total_time_s,
        "tokens_per_s": st.tokens_per_s,
    }
    if g:
        row.update(
            iterations=st.iterations,
            drafted=st.drafted,
            accepted=st.accepted,
            draft_time_s=st.draft_time_s,
            verify_time_s=st.verify_time_s,
            position_attempts=st.position_attempts.tolist(),
            position_accepts=st.position_accepts.tolist(),
        )
    return row


def _measure_pair(ctx, target, draft, prompts, temperature: float = 0.0) -> list:
    from sdsl_lib.measurement import timing
    from sdsl_lib.measurement.decoding import autoregressive_generate, speculative_generate
    from sdsl_lib.measurement.models import model_seed

    m = ctx.profile.measure
    limit = ctx.profile.real.load_limit_cores if ctx.real is not None else float("inf")
    configs = [0] + list(m.gammas)  # 0 stands for plain autoregressive decoding of the target
    # Warm-up: every code path once (allocator, kernels, first-call overheads) before any timing.
    warm = prompts[0].to(ctx.device)
    autoregressive_generate(target, warm, 4)
    for g in (1, max(m.gammas)):
        speculative_generate(target, draft, warm, g, 2 * g + 2)
    rows = []
    for k, prompt in enumerate(prompts):
        prompt = prompt.to(ctx.device)
        order = configs[k % len(configs) :] + configs[: k % len(configs)]  # rotate: interleaved
        outs, block = {}, []
        for g in order:
            gen = None
            if temperature > 0:
                seed = model_seed(ctx.profile.seed, f"tput/{temperature}/{k}/{g}")
                gen = torch.Generator(device=ctx.device).manual_seed(seed)
            with timing.CpuLoad() as load:
                if g == 0:
                    outs[0], st = autoregressive_generate(target, prompt, m.tput_new_tokens, temperature, gen)
                else:
                    outs[g], st = speculative_generate(target, draft, prompt, g, m.tput_new_tokens, temperature, gen)
            block.append(_row(k, g, st, outs[g], load, limit))
        for r in block:
            if temperature > 0:
                r["temperature"] = temperature
            elif r["gamma"]:
                # Greedy speculative decoding must reproduce greedy decoding token for token.
                r["matches_autoregressive"] = bool(torch.equal(outs[r["gamma"]], outs[0]))
        rows += block
    return rows


def run(ctx) -> None:
    from tqdm.auto import tqdm

    m = ctx.profile.measure
    prompts = ctx.prompts(m.tput_prompts, m.prompt_len)
    for dname, tname in tqdm(pairs(ctx.profile), desc="throughput pairs", disable=not ctx.progress):
        fp = fingerprint(ctx, dname, tname)
        if ctx.units.load("throughput", pair_unit(dname, tname), fp) is None:
            target, draft = ctx.model(tname, timing=True), ctx.model(dname)
            rows = _measure_pair(ctx, target, draft, prompts)
            rec = {"draft": dname, "target": tname, "rows": rows, "prompt_len": m.prompt_len}
            if ctx.real is not None:
                rec["rows_sampled"] = _measure_pair(ctx, target, draft, prompts, ctx.profile.real.sampled_temperature)
            ctx.units.save("throughput", pair_unit(dname, tname), fp, rec)
    merge(ctx)


def _collect(ctx) -> tuple[dict, dict]:
    expected = {pair_unit(d, t): fingerprint(ctx, d, t) for d, t in pairs(ctx.profile)}
    return expected, ctx.units.collect("throughput", expected)


def _per_prompt(rec: dict, key: str = "rows") -> pd.DataFrame:
    df = pd.DataFrame(rec[key]).drop(columns=["position_attempts", "position_accepts"], errors="ignore")
    df.insert(0, "target", rec["target"])
    df.insert(0, "draft", rec["draft"])
    ar = df[df.method == "autoregressive"].set_index("prompt_idx")["tokens_per_s"]
    df["speedup_vs_autoregressive"] = df["tokens_per_s"].to_numpy() / ar.loc[df["prompt_idx"]].to_numpy()
    return df


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per (draft, target, method, gamma): medians and 2.5/97.5 percentiles over prompts."""
    out = []
    rejected = {}
    if "load_flagged" in df.columns:
        # A prompt with any flagged call is left out of its pair's summary (unless all are flagged).
        bad = df.groupby(["draft", "target", "prompt_idx"])["load_flagged"].transform("any")
        for k, pair in df.assign(bad=bad).groupby(["draft", "target"], sort=False):
            rejected[k] = int(pair.loc[pair.bad, "prompt_idx"].nunique())
        keep = ~bad | bad.groupby([df["draft"], df["target"]]).transform("all")
        df = df[keep]
    groups = (
        (k + m, grp)
        for k, pair in df.groupby(["draft", "target"], sort=False)
        for m, grp in pair.groupby(["method", "gamma"])
    )
    for (d, t, method, g), grp in groups:
        tps, spd = grp["tokens_per_s"].to_numpy(), grp["speedup_vs_autoregressive"].to_numpy()
        s = {"draft": d, "target": t, "method": method, "gamma": g, "n_prompts": len(grp)}
        if rejected:
            s["n_prompts_rejected_load"] = rejected[(d, t)]
            s["output_distinct_frac_mean"] = grp["output_distinct_frac"].mean()
            s["output_repeat4_rate_mean"] = grp["output_repeat4_rate"].mean()
        s.update(tokens_per_s_median=np.median(tps), tokens_per_s_p025=np.percentile(tps, 2.5))
        s.update(tokens_per_s_p975=np.percentile(tps, 97.5), speedup_median=np.median(spd))
        s.update(speedup_p025=np.percentile(spd, 2.5), speedup_p975=np.percentile(spd, 97.5))
        if method == "speculative":
            s["tokens_per_iteration_mean"] = grp["new_tokens"].sum() / grp["iterations"].sum()
            if "matches_autoregressive" in grp.columns:
                s["all_match_autoregressive"] = bool(grp["matches_autoregressive"].all())
        out.append(s)
    return pd.DataFrame(out)


def _greedy_positions(rec: dict) -> list:
    rows = []
    spec = [r for r in rec["rows"] if r["method"] == "speculative"]
    for g in sorted({r["gamma"] for r in spec}):
        sel = [r for r in spec if r["gamma"] == g]
        att = np.sum([r["position_attempts"] for r in sel], axis=0)
        acc = np.sum([r["position_accepts"] for r in sel], axis=0)
        base = {"draft": rec["draft"], "target": rec["target"], "temperature": 0.0, "gamma": g}
        rows += [dict(base, position=i + 1, attempts=int(att[i]), accepts=int(acc[i])) for i in range(g)]
    return rows


def merge(ctx) -> None:
    """The three throughput tables from the current pair units (a stale one is refused)."""
    expected, recs = _collect(ctx)
    df = pd.concat([_per_prompt(r) for r in recs.values()], ignore_index=True)
    ctx.write_table(
        "throughput",
        df,
        units=expected,
        timing="greedy (temperature 0), batch 1, configurations interleaved per prompt "
        "(rotated order), one warm-up of each code path per pair",
        load_filter=_load_rule(ctx),
    )
    ctx.write_table(
        "throughput_summary", summarise(df), units=expected, interval="2.5 and 97.5 percentiles over prompts"
    )
    pos = pd.DataFrame([row for r in recs.values() for row in _greedy_positions(r)])
    pos["acceptance_rate"] = pos["accepts"] / pos["attempts"].where(pos["attempts"] > 0)
    ctx.write_table("acceptance_by_position_greedy", pos, units=expected)
    if ctx.real is not None:
        sampled = pd.concat([_per_prompt(r, "rows_sampled") for r in recs.values()], ignore_index=True)
        timing = f"sampled (temperature {ctx.profile.real.sampled_temperature}), batch 1, interleaved, target in bf16"
        ctx.write_table("throughput_sampled", sampled, units=expected, timing=timing)
        summary = summarise(sampled).assign(temperature=ctx.profile.real.sampled_temperature)
        ctx.write_table("throughput_sampled_summary", summary, units=expected, interval="2.5/97.5 percentiles")


def _load_rule(ctx) -> str:
    if ctx.real is None:
        return "other-process CPU load recorded per call (other_load_cores); no limit on this profile"
    return (f"a call is flagged when other processes used > {ctx.profile.real.load_limit_cores} cores during it; "
            "summaries leave out prompts with a flagged call (all kept if every prompt has one)")  # fmt: skip


def best_pairs(ctx, exclude: tuple = ()) -> list[tuple[str, str]]:
    """Per target, the draft with the highest median speculative speed-up (any gamma), from the
    current throughput units (fingerprint-checked; not from a CSV that may have been edited)."""
    _, recs = _collect(ctx)
    s = summarise(pd.concat([_per_prompt(r) for r in recs.values()], ignore_index=True))
    s = s[(s.method == "speculative") & ~s.draft.isin(exclude)].reset_index(drop=True)
    return [(grp.loc[grp.speedup_median.idxmax(), "draft"], t) for t, grp in s.groupby("target", sort=False)]
