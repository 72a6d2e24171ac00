"""The train stage's families on a real target: ``pretrained``, ``distill`` and ``prompt_lookup``.

Each returns the unit record :mod:`sdsl_lib.measurement.stages.train` merges into ``models``,
``loss_curves`` and ``loss_budget_points``, with the same keys as a ladder model; perplexities are
measured on the target's greedy continuations of the eval prompts (validation and test halves,
:meth:`~sdsl_lib.measurement.real_inputs.RealInputs.heldout`), continuation tokens only.

- ``pretrained`` trains nothing: it records the checkpoint folder, its size and perplexities
  (``n_tokens`` 0: the tokens it was trained on are not ours to count);
- ``distill`` builds and trains a draft toward the target (:mod:`sdsl_lib.measurement.distill`;
  the recipe is the profile's :class:`~sdsl_lib.measurement.profiles.RealSpec`) and saves it to
  ``<work>/models/<name>/model``; the target's top-k log-probabilities on the training text are
  computed once per target, in resumable shards, and kept in ``<work>/teacher_topk.npz``;
- ``prompt_lookup`` records the zero-parameter copy draft (no perplexity: a point mass has none).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sdsl_lib.measurement import distill, real_target
from sdsl_lib.measurement.models import count_params, model_seed

__all__ = ["FAMILIES", "load", "vocab_map", "teacher"]


def _shape(model) -> dict:
    c = model.config
    return {"d_model": c.hidden_size, "n_layers": c.num_hidden_layers, "n_heads": c.num_attention_heads,
            "d_ff": c.intermediate_size, "vocab_size": c.vocab_size}  # fmt: skip


def _losses(ctx, model) -> dict:
    val, test = ctx.real.heldout()
    pad = ctx.real.tokenizer.pad_token_id
    v, nv = distill.heldout_ce(model, val, pad)
    t, nt = distill.heldout_ce(model, test, pad)
    return {"val_loss": v, "test_loss": t, "val_ppl": math.exp(v), "test_ppl": math.exp(t),
            "val_tokens": nv, "test_tokens": nt}  # fmt: skip


def _base(ctx, model, extra: dict) -> dict:
    return {"device": str(ctx.device), "torch_threads": torch.get_num_threads(), "curve": [], "budget_points": [],
            **count_params(model), **extra}  # fmt: skip


def _pretrained(ctx, spec) -> dict:
    import time

    t0 = time.perf_counter()
    path = ctx.real.target_dir("fp32") if spec.role == "target" else spec.source
    model = real_target.load_checkpoint(path, "fp32", ctx.device) if spec.role == "draft" else ctx.real.load_target()
    rec = _base(ctx, model, {"checkpoint": str(path), "shape": _shape(model), **_losses(ctx, model)})
    if spec.role == "target":
        rec["target_sha256"] = ctx.real.identity
    return dict(rec, n_tokens=0, n_steps=0, train_time_s=time.perf_counter() - t0)


def _counts(ctx) -> np.ndarray:
    """Token counts of the workload's training text (prompts and continuations)."""
    counts = np.zeros(len(ctx.real.tokenizer), dtype=np.int64)
    for s in ctx.real.workload.select("train"):
        np.add.at(counts, s.cont, 1)
        np.add.at(counts, s.prompt, 1)
    return counts


def vocab_map(ctx):
    """The restricted head's map (None for a full head): the profile's ``head_vocab`` most frequent tokens."""
    k = ctx.profile.real.head_vocab
    return distill.VocabMap.from_counts(_counts(ctx), k) if k else None


#: Sequences per teacher shard: a multiple of the teacher's batch of 16, so that shards hold the
#: same batches as one pass over the length-sorted sequences (the same numbers, bit for bit).
TEACHER_SHARD = 256


def _save_topk(path, key: str, rows: list) -> None:
    """``rows`` [(vals, ids)] as one npz (offsets and concatenated arrays), written atomically."""
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez(tmp, key=key, offsets=np.cumsum([0] + [len(v) for v, _ in rows]), vals=np.concatenate([v for v, _ in rows]),
             idx=np.concatenate([i for _, i in rows]))  # fmt: skip
    tmp.replace(path)


def _load_topk(path, key: str, n: int) -> list | None:
    """The rows of an npz written by :func:`_save_topk` with ``key`` and ``n`` sequences, else None."""
    if not path.is_file():
        return None
    z = np.load(path)
    if str(z["key"]) != key or len(z["offsets"]) != n + 1:
        return None
    # Read each array once: every z[name] decompresses the whole array again (a slice per
    # sequence of a fresh copy kept 1,856 copies alive: 24 GB, killed by the OOM killer).
    off, vals, idx = z["offsets"], z["vals"], z["idx"]
    return [(vals[off[i] : off[i + 1]], idx[off[i] : off[i + 1]]) for i in range(n)]


def teacher(ctx) -> list:
    """The target's top-k on every training continuation, computed once (``<work>/teacher_topk.npz``).

    Resumable: the pass over the length-sorted sequences is cut into shards of
    :data:`TEACHER_SHARD` sequences, each written atomically to ``<work>/teacher_topk.shards/``
    when done (the whole pass took about 30 minutes on the AVX2 host for the 499k-token workload); an interrupted
    pass redoes only the missing shards, and the shards are joined into ``teacher_topk.npz`` and
    removed at the end. The target is loaded only when a shard is missing.
    """
    seqs = ctx.real.workload.select("train")
    k, path = ctx.profile.real.top_k, ctx.work_dir / "teacher_topk.npz"
    key = f"{ctx.real.identity}:{k}:{len(seqs)}:{sum(len(s.cont) for s in seqs)}"
    done = _load_topk(path, key, len(seqs))
    if done is not None:
        return done
    # The order distill.teacher_topk batches in; a shard of it, sorted again, keeps that order.
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i].prompt) + len(seqs[i].cont))
    shard_dir = ctx.work_dir / "teacher_topk.shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    out, target = [None] * len(seqs), None
    starts = range(0, len(order), TEACHER_SHARD)
    for j, start in enumerate(starts):
        idx = order[start : start + TEACHER_SHARD]
        shard_path, shard_key = shard_dir / f"shard_{j:04d}.npz", f"{key}:shard:{start}:{len(idx)}"
        rows = _load_topk(shard_path, shard_key, len(idx))
        if rows is None:
            if target is None:
                dtype = ctx.profile.real.timing_dtype if ctx.profile.targets[0].source == "smollm2" else "fp32"
                target = ctx.real.load_target(dtype)
            rows = distill.teacher_topk(target, [seqs[i] for i in idx], k, ctx.real.tokenizer.pad_token_id)
            _save_topk(shard_path, shard_key, rows)
            if getattr(ctx, "progress", False):
                print(f"teacher top-k: shard {j + 1}/{len(starts)} written", flush=True)
        for i, row in zip(idx, rows):
            out[i] = row
    _save_topk(path, key, out)
    for shard in shard_dir.glob("shard_*.npz"):
        shard.unlink()
    shard_dir.rmdir()
    return _load_topk(path, key, len(seqs))


def _distill(ctx, spec) -> dict:
    r, tr = ctx.profile.real, ctx.profile.train
    tok = ctx.real.tokenizer
    vmap = vocab_map(ctx)
    init = None
    if r.init == "pca":
        init = ctx.real.load_target("fp32").get_input_embeddings().weight.detach()
    special = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    seed = model_seed(ctx.profile.seed, spec.name)
    model = distill.build_draft(spec, len(tok), vmap, seed, special, init).to(ctx.device)
    steps = spec.train_tokens // (tr.batch_size * tr.seq_len)
    topk = teacher(ctx) if r.loss != "hard" else None
    val, _ = ctx.real.heldout()
    res = distill.train_draft(
        model, ctx.real.workload.select("train"), topk, steps, spec, tr, r, vmap, tok.pad_token_id, seed, val,
        progress=ctx.progress,
    )  # fmt: skip
    out = distill.save_draft(model, vmap, ctx.model_dir(spec.name) / "model")
    full = distill.load_draft(out).to(ctx.device)
    rec = _base(ctx, full, {"checkpoint": str(out), "shape": _shape(full), **_losses(ctx, full)})
    rec["head_vocab"] = vmap.k if vmap is not None else len(tok)
    rec["head_coverage"] = vmap.coverage(_counts(ctx)) if vmap is not None else 1.0
    curve = [dict(c, val_loss_subset=c["val_loss_subset"]) for c in res["curve"]]
    point = {"frac": 1.0, "n_steps": steps, "n_tokens": res["n_tokens"], "val_loss": rec["val_loss"], "branch": "main"}
    return dict(rec, curve=curve, budget_points=[point], n_tokens=res["n_tokens"], n_steps=steps,
                train_time_s=res["train_time_s"])  # fmt: skip


def _prompt_lookup(ctx, spec) -> dict:
    nan = None  # JSON has no NaN: no perplexity (empty in the models table)
    shape = {"d_model": 1, "n_layers": 1, "n_heads": 1, "d_ff": 1, "vocab_size": len(ctx.real.tokenizer)}
    return {"device": str(ctx.device), "torch_threads": torch.get_num_threads(), "curve": [], "budget_points": [],
            "n_params_total": 0, "n_params_embedding": 0, "n_params_non_embedding": 0, "shape": shape,
            "val_loss": nan, "test_loss": nan, "val_ppl": nan, "test_ppl": nan, "val_tokens": 1, "test_tokens": 1,
            "n_tokens": 0, "n_steps": 0, "train_time_s": 0.0, "max_ngram": 3}  # fmt: skip


#: The real-target families (joined into :data:`sdsl_lib.measurement.stages.train.FAMILIES`).
FAMILIES = {"pretrained": _pretrained, "distill": _distill, "prompt_lookup": _prompt_lookup}


def load(ctx, spec, rec: dict, dtype: str | None):
    """The model of a real-target family on the device (the target in ``dtype``, default fp32)."""
    if spec.family == "prompt_lookup":
        from sdsl_lib.measurement.prompt_lookup import PromptLookupDraft

        return PromptLookupDraft(len(ctx.real.tokenizer), rec.get("max_ngram", 3)).to(ctx.device).eval()
    if spec.role == "target":
        return ctx.real.load_target(dtype or "fp32")
    return real_target.load_checkpoint(rec["checkpoint"], "fp32", ctx.device)
