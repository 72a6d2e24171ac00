r"""Stage ``vllm`` (``--engine vllm``): vLLM measures the same pairs by the same protocol as our loop.

Tables ``vllm_acceptance``, ``vllm_acceptance_by_position`` and ``vllm_throughput``, each with an
``engine`` column: ``vllm`` rows from vLLM's own spec-decode counters, ``ours`` rows from our loop
(:func:`~sdsl_lib.measurement.decoding.speculative_generate`, fp32) on **the same prompts, the same
new-token count and the same gammas**, so that the two :math:`\alpha` sit side by side.

Why a subprocess: vLLM pins transformers < 5.20 and lives in ``.venv-vllm`` (``make vllm-env``);
this stage runs in the main venv and hands vLLM one JSON job per configuration
(:func:`sdsl_lib.engines.vllm_backend.run_config`: target, draft, prompts as token ids, k, new
tokens, batch sizes, engine arguments) to the interpreter ``--vllm-python`` (default
``$SDSL_VLLM_PYTHON`` or the checkout's ``.venv-vllm/bin/python``), and reads JSON back.

Protocol, per pair and gamma:

- acceptance: vLLM's counters over the smallest batch size's pass (batch 1 by default), turned into
  :math:`\alpha` by inverting App. B's mean accepted drafts at that gamma
  (:func:`~sdsl_lib.engines.crosswalk.acceptance_report`) and, over all gammas, by the TAR inverse
  (:func:`~sdsl_lib.engines.crosswalk.alpha_across_lookaheads`); per-position rates. Our rows use
  our loop's full iterations (those that drafted all gamma tokens; the TAR convention of the alpha
  stage);
- tokens/s of vLLM at each batch size (1 and 8 by default), plain decoding and speculative;
- ``greedy_equal_ar``: vLLM's output equals **our** fp32 greedy autoregressive output, token for token.

Distilled drafts with a restricted head are exported once to a plain full-vocabulary Llama
(:func:`sdsl_lib.measurement.distill.export_full_vocab`, head rows of the other ids zero; its
measured argmax disagreement with the restricted draft is stated there and in the sidecar).
Prompt-lookup drafts are left out: vLLM's ngram proposer is a different algorithm.
Greedy only: sampled speculation is wrong on vLLM 0.32's CPU backend (issue #55005).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sdsl_lib.measurement.context import pair_unit

__all__ = ["CODE", "DEFAULT_BATCH_SIZES", "EXPORT_FILL", "settings", "pair_records", "tables", "run", "merge"]

CODE = (
    "sdsl_lib.measurement.stages.vllm",
    "sdsl_lib.engines.vllm_backend",
    "sdsl_lib.engines.crosswalk",
    "sdsl_lib.measurement.decoding",
    "sdsl_lib.measurement.kv_cache",
    "sdsl_lib.measurement.lean_llama",
    "sdsl_lib.measurement.distill",
)
DEFAULT_BATCH_SIZES = (1, 8)
EXPORT_FILL = "zeros"
EXPORT_NOTE = (
    "restricted-head drafts exported to a full-vocabulary Llama (distill.export_full_vocab, fill 'zeros'): kept-id "
    "logits identical; argmax equal to the restricted draft's on 1,508/1,508 SmolLM2 eval positions for the research "
    "drafts L1 and L2 (disagreement 0.0%; fill 'unk' disagreed on 20.7% and 11.1%)"
)


def settings(ctx) -> dict:
    """The stage's settings: ``ctx.engine_settings`` (from the command line) over the profile's defaults."""
    m, given = ctx.profile.measure, dict(getattr(ctx, "engine_settings", None) or {})
    out = {"prompts": m.tput_prompts, "gammas": list(m.gammas), "new_tokens": m.tput_new_tokens,
           "batch_sizes": list(DEFAULT_BATCH_SIZES), "engine_kwargs": {}, "python": None}  # fmt: skip
    out.update({k: v for k, v in given.items() if v is not None})
    out["gammas"], out["batch_sizes"] = sorted(set(out["gammas"])), sorted(set(out["batch_sizes"]))
    return out


def _drafts(ctx) -> list[str]:
    return [m.name for m in ctx.profile.drafts if m.family != "prompt_lookup"]


def _fp(ctx, s: dict, *models: str) -> str:
    keep = {k: s[k] for k in ("prompts", "gammas", "new_tokens", "batch_sizes", "engine_kwargs")}
    return ctx.profile.fingerprint(
        "vllm", ctx.code_fingerprint(CODE), keep, EXPORT_FILL, *(ctx.train_record(n)["fingerprint"] for n in models)
    )


def _expected(ctx, s: dict) -> dict:
    t = ctx.profile.targets[0].name
    out = {"reference": _fp(ctx, s, t), "plain": _fp(ctx, s, t)}
    out.update({pair_unit(d, t): _fp(ctx, s, d, t) for d in _drafts(ctx)})
    return out


def _engine_draft(ctx, name: str):
    """A folder vLLM can load for draft ``name``: its checkpoint, or the full-vocabulary export of a restricted one."""
    from pathlib import Path

    from sdsl_lib.measurement import distill

    ckpt = Path(ctx.train_record(name)["checkpoint"])
    full_vocab = len(ctx.tokenizer)
    if distill.head_map(ckpt, full_vocab) is None:
        return ckpt
    out = ctx.work_dir / "vllm" / "drafts" / name
    if not (out / "full_vocab_export.json").is_file():
        distill.export_full_vocab(ckpt, out, full_vocab, EXPORT_FILL, tokenizer_dir=ctx.real.target_dir("fp32"))
    return out


def _pass(res: dict, bs: int) -> dict:
    return next(t for t in res["timing"] if t["batch_size"] == bs)


def _vllm_record(res: dict, s: dict) -> dict:
    """What a unit keeps of one vLLM run: per pass its timing, outputs and counters (JSON, no Prometheus text)."""
    from sdsl_lib.engines.vllm_backend import _counters

    passes = []
    for t in res["timing"]:
        rec = {k: t[k] for k in ("batch_size", "seconds", "new_tokens", "tokens_per_s", "loadavg_before", "outputs")}
        if res["spec"].get("speculative_config") and "metrics_after" in t:
            c = _counters(t, None)
            rec["counters"] = {"num_drafts": c.num_drafts, "num_draft_tokens": c.num_draft_tokens,
                               "accepted": c.accepted, "accepted_per_pos": list(c.accepted_per_pos or ())}  # fmt: skip
        passes.append(rec)
    return {"vllm_version": res["vllm_version"], "engine_start_s": res["engine_start_s"], "passes": passes}


def pair_records(target_dir, draft_dir, prompts, s: dict, run=None, target=None, draft=None) -> dict:
    """vLLM and our loop on one pair at every gamma of ``s`` (the stage's unit; also usable without a profile).

    Parameters
    ----------
    target_dir, draft_dir : path
        Checkpoint folders vLLM loads (the draft with the target's full vocabulary).
    prompts : list of list of int
        Prompt token ids.
    s : dict
        :func:`settings`.
    run : callable, optional
        ``run(spec) -> result`` (default :func:`~sdsl_lib.engines.vllm_backend.run_config` with
        ``s["python"]``); the tests pass a fake engine.
    target, draft : torch modules, optional
        Our fp32 target and (full-vocabulary view of the) draft; without them no ``ours`` record.
    """
    from sdsl_lib.engines import vllm_backend

    run = run or (lambda spec: vllm_backend.run_config(spec, python=s["python"] or vllm_backend.default_python()))
    base = _job(target_dir, prompts, s)
    out = {"vllm": {}, "ours": {}}
    for g in s["gammas"]:
        sc = vllm_backend.speculative_config(str(draft_dir), g)
        out["vllm"][str(g)] = _vllm_record(run(base | {"speculative_config": sc}), s)
        if target is not None:
            out["ours"][str(g)] = _ours(target, draft, prompts, g, s["new_tokens"])
    return out


def _job(target_dir, prompts, s: dict) -> dict:
    longest = max(len(p) for p in prompts) + s["new_tokens"] + max(s["gammas"], default=0) + 8
    return {"target": str(target_dir), "prompt_ids": [list(map(int, p)) for p in prompts],
            "max_tokens": s["new_tokens"], "batch_sizes": s["batch_sizes"], "engine_kwargs": s["engine_kwargs"],
            "max_model_len": max(512, 64 * math.ceil(longest / 64))}  # fmt: skip


def _ours(target, draft, prompts, g: int, new_tokens: int) -> dict:
    import torch

    from sdsl_lib.measurement.decoding import speculative_generate

    full, pos_att, pos_acc, outputs = [], np.zeros(g, np.int64), np.zeros(g, np.int64), []
    for p in prompts:
        ids, st = speculative_generate(target, draft, torch.as_tensor([p]), g, new_tokens)
        full += [int(n) for n in st.full_iterations]
        pos_att += st.position_attempts
        pos_acc += st.position_accepts
        outputs.append(ids.tolist())
    return {"full_accepted": full, "position_attempts": pos_att.tolist(), "position_accepts": pos_acc.tolist(),
            "outputs": outputs}  # fmt: skip


def reference_outputs(target, prompts, new_tokens: int) -> list:
    """Our fp32 greedy autoregressive output for each prompt (what every engine's greedy output must equal)."""
    import torch

    from sdsl_lib.measurement.decoding import autoregressive_generate

    return [autoregressive_generate(target, torch.as_tensor([p]), new_tokens)[0].tolist() for p in prompts]


def _counters(rec_vllm: dict, rec_ours: dict | None, g: int, engine: str):
    from sdsl_lib.engines.crosswalk import SpecCounters, counters_from_accept_counts

    if engine == "ours":
        return counters_from_accept_counts(np.asarray(rec_ours["full_accepted"], dtype=np.int64), g, engine="sdsl")
    c = rec_vllm["passes"][0]["counters"]  # the smallest batch size (passes run in increasing order)
    pos = tuple(c["accepted_per_pos"]) + (0,) * (g - len(c["accepted_per_pos"]))
    return SpecCounters(c["num_drafts"], c["num_draft_tokens"], c["accepted"], pos, method="draft_model")


def tables(target: str, reference: list, plain: dict, pairs: dict, s: dict) -> dict[str, pd.DataFrame]:
    """The stage's three tables from the unit records (``pairs``: draft name -> :func:`pair_records`)."""
    from sdsl_lib.engines.crosswalk import acceptance_report, alpha_across_lookaheads

    acc, pos, tput = [], [], []
    plain_tps = {p["batch_size"]: p["tokens_per_s"] for p in plain["passes"]}
    for d, rec in pairs.items():
        for p in plain["passes"]:
            tput.append({"draft": d, "target": target, "engine": "vllm", "method": "autoregressive", "gamma": 0,
                         "batch_size": p["batch_size"], "n_prompts": len(reference), "new_tokens": p["new_tokens"],
                         "seconds": p["seconds"], "tokens_per_s": p["tokens_per_s"], "speedup_vs_autoregressive": 1.0,
                         "loadavg1": p["loadavg_before"][0], "greedy_equal_ar": p["outputs"] == reference})  # fmt: skip
        for engine in ("vllm", "ours"):
            if engine == "ours" and not rec["ours"]:
                continue
            counters = {g: _counters(rec["vllm"][str(g)], rec["ours"].get(str(g)), g, engine) for g in s["gammas"]}
            ok = [g for g in s["gammas"] if counters[g].num_drafts]
            across = alpha_across_lookaheads(ok, [counters[g] for g in ok]) if len(ok) >= 2 else None
            for g in s["gammas"]:
                r, c = acceptance_report(counters[g], k=g), counters[g]
                v = rec["vllm"][str(g)]["passes"] if engine == "vllm" else None
                outs = [p["outputs"] for p in v] if v else [rec["ours"][str(g)]["outputs"]]
                row = {"draft": d, "target": target, "engine": engine, "gamma": g, "n_prompts": len(reference),
                       "new_tokens_per_prompt": s["new_tokens"], "num_drafts": c.num_drafts,
                       "num_draft_tokens": c.num_draft_tokens, "num_accepted_tokens": c.accepted,
                       "mean_acceptance_length": r["mean_acceptance_length"],
                       "draft_acceptance_rate": r["draft_acceptance_rate"], "alpha": r["alpha"],
                       "alpha_ci95_lower": r["alpha_ci_lower"], "alpha_ci95_upper": r["alpha_ci_upper"],
                       "alpha_tar": across["alpha"] if across else None,
                       "iid_p_value": r["iid_test"]["p_value"] if r["iid_test"] else None,
                       "greedy_equal_ar": all(o == reference for o in outs)}  # fmt: skip
                acc.append(row)
                if engine == "vllm":
                    for i, rate in enumerate(r["per_position_rate"] or []):
                        att = c.num_drafts if i == 0 else c.accepted_per_pos[i - 1]
                        pos.append({"draft": d, "target": target, "engine": engine, "temperature": 0.0, "gamma": g,
                                    "position": i + 1, "attempts": att, "accepts": c.accepted_per_pos[i],
                                    "acceptance_rate": c.accepted_per_pos[i] / att if att else None,
                                    "per_draft_rate": rate})  # fmt: skip
                    for p in v:
                        tput.append({"draft": d, "target": target, "engine": "vllm", "method": "speculative",
                                     "gamma": g, "batch_size": p["batch_size"], "n_prompts": len(reference),
                                     "new_tokens": p["new_tokens"], "seconds": p["seconds"],
                                     "tokens_per_s": p["tokens_per_s"],
                                     "speedup_vs_autoregressive": p["tokens_per_s"] / plain_tps[p["batch_size"]],
                                     "loadavg1": p["loadavg_before"][0],
                                     "greedy_equal_ar": p["outputs"] == reference})  # fmt: skip
                else:
                    o = rec["ours"][str(g)]
                    for i, (att, a) in enumerate(zip(o["position_attempts"], o["position_accepts"])):
                        pos.append({"draft": d, "target": target, "engine": engine, "temperature": 0.0, "gamma": g,
                                    "position": i + 1, "attempts": att, "accepts": a,
                                    "acceptance_rate": a / att if att else None,
                                    "per_draft_rate": None})  # fmt: skip
    return {"vllm_acceptance": pd.DataFrame(acc), "vllm_acceptance_by_position": pd.DataFrame(pos),
            "vllm_throughput": pd.DataFrame(tput)}  # fmt: skip


def run(ctx) -> None:
    from tqdm.auto import tqdm

    if getattr(ctx, "engine", "ours") != "vllm":
        return  # our loop's own tables come from the other stages
    if ctx.real is None:
        raise ValueError("engine must be 'ours' on a ladder profile: --engine vllm needs a profile on a real target")
    from sdsl_lib.engines import vllm_backend

    s = settings(ctx)
    python = s["python"] or vllm_backend.default_python()
    run_one = getattr(ctx, "vllm_run", None) or (lambda spec: vllm_backend.run_config(spec, python=python))
    expected = _expected(ctx, s)
    t = ctx.profile.targets[0].name
    prompts = [p[0].tolist() for p in ctx.prompts(s["prompts"], ctx.profile.measure.prompt_len)]
    target_dir = ctx.real.target_dir("fp32")
    if ctx.units.load("vllm", "reference", expected["reference"]) is None:
        ref = reference_outputs(ctx.model(t), prompts, s["new_tokens"])
        ctx.units.save("vllm", "reference", expected["reference"], {"prompts": prompts, "outputs": ref})
    if ctx.units.load("vllm", "plain", expected["plain"]) is None:
        rec = _vllm_record(run_one(_job(target_dir, prompts, s)), s)
        ctx.units.save("vllm", "plain", expected["plain"], rec)
    for d in tqdm(_drafts(ctx), desc="vllm", disable=not ctx.progress):
        unit = pair_unit(d, t)
        if ctx.units.load("vllm", unit, expected[unit]) is None:
            rec = pair_records(target_dir, _engine_draft(ctx, d), prompts, s, run_one, ctx.model(t), ctx.model(d))
            ctx.units.save("vllm", unit, expected[unit], {"draft": d, "target": t, **rec})
    merge(ctx)


def merge(ctx) -> None:
    """The three tables from the current units (a stale one is refused)."""
    if getattr(ctx, "engine", "ours") != "vllm" or ctx.real is None:
        return
    s = settings(ctx)
    expected = _expected(ctx, s)
    recs = ctx.units.collect("vllm", expected)
    t = ctx.profile.targets[0].name
    pairs = {r["draft"]: r for u, r in recs.items() if u not in ("reference", "plain")}
    out = tables(t, recs["reference"]["outputs"], recs["plain"], pairs, s)
    side = {"vllm_version": recs["plain"]["vllm_version"], "vllm_settings": {k: v for k, v in s.items() if k != "python"},
            "draft_export": EXPORT_NOTE, "protocol": __doc__.split("Protocol, per pair and gamma:")[1].split("Distilled")[0].strip(),
            "sampling": "greedy only (vLLM issue #55005: sampled speculation wrong on the CPU backend of 0.32)"}  # fmt: skip
    for name, df in out.items():
        ctx.write_table(name, df, units=expected, **side)
