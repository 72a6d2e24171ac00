r"""The real-target workload: chat-formatted instruction prompts, the target's own continuations, and
their repetition statistics.

Why a workload of its own: SmolLM2-135M-Instruct *loops* on raw or chat-formatted Shakespeare
(15% distinct tokens in a 128-token greedy continuation), and acceptance measured on looping text
is meaningless (a parameter-free n-gram copy "draft" gets 2-2.8x there; docs/field_notes.md, "A real
target"). The prompts are general instructions built from templates
(:mod:`sdsl_lib.measurement.workload_templates`), deterministically (seeded), with their provenance.

Repetition statistics, reported beside every acceptance number, for a token sequence
:math:`x_1..x_n`:

- distinct-token fraction :math:`\mathrm{distinct} = |\{x_1..x_m\}| / m` over the first
  :math:`m = \min(n, 128)` tokens;
- :math:`k`-gram repeat rate :math:`r_k = \#\{t \ge k : (x_{t-k+1}..x_t) \text{ occurred earlier in } x\} / (n - k + 1)`
  (:math:`k = 4`): the share of positions a copy draft could predict from the text itself.

A sequence **loops** when :math:`\mathrm{distinct} <` :data:`LOOP_DISTINCT` (0.35) or
:math:`r_4 >` :data:`LOOP_REPEAT4` (0.5); a workload is flagged *looping* when its mean statistics
cross either threshold. Prompts whose greedy continuation loops are dropped when the workload is
built (:func:`build_workload`).

On disk (``data/workloads/<name>/``, committed for SmolLM2 so that a rerun skips generation):
``prompts.json`` (every candidate prompt with template, split and statistics), ``target_tokens.npz``
(continuations as uint16, flat with offsets; the chat-formatted prompt ids likewise) and
``target_tokens.json`` (the sidecar: target sha256, generation settings, commit, versions).
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdsl_lib.measurement.workload_templates import DROPPED, SLOTS, TEMPLATES

__all__ = [
    "LOOP_DISTINCT",
    "LOOP_REPEAT4",
    "LoopingWorkloadError",
    "WorkloadSeq",
    "Workload",
    "all_prompts",
    "build_prompts",
    "chat_ids",
    "distinct_fraction",
    "ngram_repeat_rate",
    "repetition_stats",
    "is_looping",
    "generate_continuations",
    "build_workload",
    "save_round",
    "extend_sampled",
    "save_workload",
    "load_workload",
    "committed_dir",
]

#: A sequence (or a workload, on average) with fewer distinct tokens than this loops.
LOOP_DISTINCT = 0.35
#: ... or with more of its 4-grams repeated than this.
LOOP_REPEAT4 = 0.5
_WINDOW = 128


class LoopingWorkloadError(ValueError):
    """The loop filter left no prompt: the target loops on every one (one line, exit status 2)."""


@dataclass
class WorkloadSeq:
    """One (prompt, continuation) of the workload: ids as int64 arrays."""

    prompt_id: int
    prompt: np.ndarray
    cont: np.ndarray
    temperature: float
    split: str  # "train" or "eval"


@dataclass
class Workload:
    """Prompts (dicts: ``id``, ``template``, ``text``, ``split``), sequences, and the sidecar."""

    prompts: list
    seqs: list
    sidecar: dict

    def select(self, split: str, temperature: float | None = None) -> list:
        return [s for s in self.seqs if s.split == split and (temperature is None or s.temperature == temperature)]

    def eval_prompts(self) -> list:
        """Prompt ids (int64 arrays) of the eval split, in workload order (one per eval prompt)."""
        seen, out = set(), []
        for s in self.select("eval"):
            if s.prompt_id not in seen:
                seen.add(s.prompt_id)
                out.append(s.prompt)
        return out


def _fill(template: str, slot: str, value) -> str:
    if slot == "pair":
        return template.format(a=value[0], b=value[1])
    if slot == "char":
        return template.format(char=value[0], play=value[1])
    return template.format(**{slot: value})


def all_prompts(templates=None) -> list[dict]:
    """Every (template, fill-in) combination, in the fixed order of :data:`TEMPLATES` and the slots."""
    out = []
    for tid, (text, slot) in TEMPLATES.items():
        if templates is None or tid in templates:
            out += [{"template": tid, "text": _fill(text, slot, v)} for v in SLOTS[slot]]
    return out


def build_prompts(seed: int = 0, n_train: int = 10_000, n_eval: int = 44, templates=None) -> list[dict]:
    """Candidate prompts: an eval pool drawn round-robin over templates, the rest the train pool.

    Deterministic in ``seed``; eval and train are disjoint as strings. Templates default to all
    but :data:`~sdsl_lib.measurement.workload_templates.DROPPED`. Each dict gains ``pool``.
    """
    templates = tuple(t for t in TEMPLATES if t not in DROPPED) if templates is None else tuple(templates)
    rng = random.Random(seed)
    pool = all_prompts(templates)
    rng.shuffle(pool)
    by_t: dict[str, list] = {}
    for p in pool:
        by_t.setdefault(p["template"], []).append(p)
    tids = sorted(by_t)
    rng.shuffle(tids)
    ev = []
    for tid in itertools.cycle(tids):
        if len(ev) >= n_eval or not any(by_t.values()):
            break
        if by_t[tid]:
            ev.append(by_t[tid].pop())
    rest = [p for tid in sorted(by_t) for p in by_t[tid]]
    rng.shuffle(rest)
    return [dict(p, pool="eval") for p in ev] + [dict(p, pool="train") for p in rest[:n_train]]


def chat_ids(tok, text: str) -> list[int]:
    """Token ids of one user turn and the assistant prefix, through the tokenizer's chat template."""
    ids = tok.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    if hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def distinct_fraction(ids, window: int = _WINDOW) -> float:
    """:math:`|\\{x_1..x_m\\}| / m` over the first ``window`` tokens (NaN for an empty sequence)."""
    x = np.asarray(ids).ravel()[:window]
    return float(np.unique(x).size / x.size) if x.size else float("nan")


def ngram_repeat_rate(ids, k: int = 4) -> float:
    """:math:`r_k`: share of the sequence's k-grams that occurred earlier in it (NaN if shorter than k)."""
    if k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    x = [int(i) for i in np.asarray(ids).ravel()]
    if len(x) < k:
        return float("nan")
    seen, hits = set(), 0
    for t in range(len(x) - k + 1):
        g = tuple(x[t : t + k])
        hits += g in seen
        seen.add(g)
    return hits / (len(x) - k + 1)


def repetition_stats(seqs) -> dict:
    """Mean distinct fraction and 4-gram repeat rate over sequences, the share that loops, the flag."""
    d = np.array([distinct_fraction(s) for s in seqs], dtype=float)
    r = np.array([ngram_repeat_rate(s) for s in seqs], dtype=float)
    looping_each = (d < LOOP_DISTINCT) | (r > LOOP_REPEAT4)
    mean_d, mean_r = float(np.nanmean(d)) if d.size else np.nan, float(np.nanmean(r)) if r.size else np.nan
    return {
        "n_sequences": int(d.size),
        "distinct_frac_mean": mean_d,
        "repeat4_rate_mean": mean_r,
        "looping_share": float(looping_each.mean()) if d.size else np.nan,
        "looping": bool(is_looping(mean_d, mean_r)),
    }


def is_looping(distinct: float, repeat4: float) -> bool:
    """The loop rule: distinct < :data:`LOOP_DISTINCT` or 4-gram repeat rate > :data:`LOOP_REPEAT4`."""
    return bool(distinct < LOOP_DISTINCT or repeat4 > LOOP_REPEAT4)


def generate_continuations(model, tok, prompts: list, max_new: int, temperature: float, seed: int, batch: int = 32):
    """The target's continuations of ``prompts`` (lists of ids): left-padded batches, cut after EOS.

    ``temperature`` 0 is greedy; otherwise pure temperature sampling (no top-k, no top-p), seeded per
    batch. Prompts are batched by length (less padding); the output keeps the input order.
    """
    import torch

    pad, eos = tok.pad_token_id, tok.eos_token_id
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outs = [None] * len(prompts)
    for b in range(0, len(order), batch):
        idx = order[b : b + batch]
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, i in enumerate(idx):
            ids[j, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[j, width - len(prompts[i]) :] = 1
        kw = {"max_new_tokens": max_new, "pad_token_id": pad, "do_sample": temperature > 0}
        if temperature > 0:
            torch.manual_seed(seed + b)
            kw.update(temperature=temperature, top_k=0, top_p=1.0)
        with torch.inference_mode():
            new = model.generate(input_ids=ids, attention_mask=mask, **kw)[:, width:].tolist()
        for i, row in zip(idx, new):
            outs[i] = row[: row.index(eos) + 1] if eos in row else row
    return outs


def build_workload(model, tok, seed: int = 0, n_eval: int = 32, n_eval_pool: int = 44, n_train: int = 400,
                   n_sampled: int = 256, max_new: int = 160, temperature: float = 0.7, batch: int = 32,
                   templates=None, min_distinct: float = LOOP_DISTINCT) -> tuple[list, list]:  # fmt: skip
    """Generate the workload: greedy continuations of every candidate, loops dropped, then sampled ones.

    1. greedy (T = 0) continuations of every candidate prompt (:func:`build_prompts`), ``max_new`` tokens;
    2. a prompt whose greedy continuation loops (distinct fraction < :data:`LOOP_DISTINCT`) is dropped;
       eval = the first ``n_eval`` surviving eval-pool prompts, train = the first ``n_train`` survivors;
    3. ``n_sampled`` train prompts (a seeded shuffle) are continued again at ``temperature``.

    Returns (prompts, seqs) for :func:`save_workload`.
    """
    cands = build_prompts(seed, n_train=10 * n_train, n_eval=n_eval_pool, templates=templates)
    ids = [chat_ids(tok, p["text"]) for p in cands]
    greedy = generate_continuations(model, tok, ids, max_new, 0.0, seed, batch)
    ev, tr = [], []
    for i, (p, out) in enumerate(zip(cands, greedy)):
        p.update(id=i, distinct_T0=distinct_fraction(out), repeat4_T0=ngram_repeat_rate(out))
        p["ok"] = p["distinct_T0"] >= min_distinct
        pool = ev if p["pool"] == "eval" else tr
        cap = n_eval if p["pool"] == "eval" else n_train
        if p["ok"] and len(pool) < cap:
            pool.append(i)
    if not ev or not tr:
        raise LoopingWorkloadError(
            f"min_distinct ({min_distinct}) drops every {'eval' if not ev else 'train'} prompt: the target's greedy "
            "continuations loop, and acceptance on looping text means nothing (lower it only for a stand-in)"
        )
    for i, p in enumerate(cands):
        p["split"] = "eval" if i in ev else "train" if i in tr else "dropped"
    seqs = [WorkloadSeq(i, np.asarray(ids[i]), np.asarray(greedy[i]), 0.0, cands[i]["split"]) for i in ev + tr]
    chosen = list(tr)
    random.Random(seed + 7).shuffle(chosen)
    chosen = chosen[:n_sampled]
    sampled = generate_continuations(model, tok, [ids[i] for i in chosen], max_new, temperature, seed + 1000, batch)
    seqs += [WorkloadSeq(i, np.asarray(ids[i]), np.asarray(o), temperature, "train") for i, o in zip(chosen, sampled)]
    return cands, seqs


def save_round(part, conts) -> None:
    """One extension round's continuations (a list of id sequences) to ``part`` (``.npz``), atomically.

    ``tokens`` (int64, flat) and ``offsets`` (sequence starts, then the total): what
    :func:`extend_sampled` reads back from its ``part_dir``.
    """
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    tmp = part.with_name(part.stem + ".part.npz")
    np.savez(tmp, tokens=np.concatenate([np.asarray(c) for c in conts]).astype(np.int64),
             offsets=np.cumsum([0] + [len(c) for c in conts]))  # fmt: skip
    tmp.replace(part)


def extend_sampled(model, tok, wl: Workload, rounds: int, temperature: float = 0.7, seed: int = 2000,
                   max_new: int = 160, batch: int = 64, part_dir=None, progress=None) -> list:  # fmt: skip
    """``rounds`` more sampled continuations of **every** train prompt (seed ``seed + 1000 r + batch start``).

    Why: a draft distilled on 400 greedy continuations (91k tokens) sees each prompt once; sampled
    continuations of the same prompts are the target's own distribution and cost only generation
    time (about 230 tokens/s batched on 2 cores). Each finished round is written to
    ``part_dir/round_<r>.npz`` and reused, so an interrupted extension resumes. Returns the new
    :class:`WorkloadSeq` list (to append to ``wl.seqs`` and save with :func:`save_workload`).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
    train = {}
    for s in wl.select("train"):
        train.setdefault(s.prompt_id, s.prompt)
    pids = sorted(train)
    out = []
    for r in range(rounds):
        part = Path(part_dir) / f"round_{r}.npz" if part_dir is not None else None
        if part is not None and part.is_file():
            z = np.load(part)
            conts = np.split(z["tokens"].astype(np.int64), z["offsets"][1:-1])
        else:
            conts = generate_continuations(model, tok, [list(train[i]) for i in pids], max_new, temperature,
                                           seed + 1000 * r, batch)  # fmt: skip
            if part is not None:
                save_round(part, conts)
        out += [
            WorkloadSeq(i, train[i], np.asarray(c, dtype=np.int64), temperature, "train") for i, c in zip(pids, conts)
        ]
        if progress is not None:
            progress(r + 1, rounds)
    return out


def save_workload(out_dir, prompts: list, seqs: list, sidecar: dict) -> Path:
    """Write ``prompts.json``, ``target_tokens.npz`` (uint16) and its sidecar ``target_tokens.json``."""
    from sdsl_lib.io import atomic_write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_max = max(int(max(s.cont.max(initial=0), s.prompt.max(initial=0))) for s in seqs)
    if vocab_max >= 2**16:
        raise ValueError(f"token ids must fit uint16 (< 65536), got {vocab_max}")
    by_id = {p["id"]: p for p in prompts}
    ids = sorted({s.prompt_id for s in seqs})
    p_ids = [next(s.prompt for s in seqs if s.prompt_id == i) for i in ids]
    np.savez_compressed(
        out_dir / "target_tokens.npz",
        tokens=np.concatenate([s.cont for s in seqs]).astype(np.uint16),
        offsets=np.cumsum([0] + [len(s.cont) for s in seqs]).astype(np.int64),
        prompt_id=np.array([s.prompt_id for s in seqs], dtype=np.int32),
        temperature=np.array([s.temperature for s in seqs], dtype=np.float32),
        split=np.array([s.split == "eval" for s in seqs], dtype=np.int8),
        prompt_ids=np.array(ids, dtype=np.int32),
        prompt_tokens=np.concatenate(p_ids).astype(np.uint16),
        prompt_offsets=np.cumsum([0] + [len(p) for p in p_ids]).astype(np.int64),
    )
    atomic_write_json(out_dir / "prompts.json", {"prompts": [by_id[i] for i in sorted(by_id)]})
    # Temperatures as stored (float32), so 0.7 and a reloaded 0.699999988 are one group.
    temp = [float(np.float32(s.temperature)) for s in seqs]
    stats = {
        f"{split}_T{t:.6g}": repetition_stats([s.cont for s, ts in zip(seqs, temp) if s.split == split and ts == t])
        for split, t in sorted({(s.split, ts) for s, ts in zip(seqs, temp)})
    }
    atomic_write_json(out_dir / "target_tokens.json", dict(sidecar, repetition=stats))
    return out_dir


def load_workload(path) -> Workload:
    """A workload saved by :func:`save_workload` (``ValueError`` naming the folder if incomplete)."""
    path = Path(path)
    files = [path / n for n in ("prompts.json", "target_tokens.npz", "target_tokens.json")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"path must hold a workload ({', '.join(missing)} missing in {path})")
    prompts = json.loads(files[0].read_text(encoding="utf-8"))["prompts"]
    z = np.load(files[1])
    p_at = {int(i): k for k, i in enumerate(z["prompt_ids"])}
    po, pt, off, tok = z["prompt_offsets"], z["prompt_tokens"].astype(np.int64), z["offsets"], z["tokens"]
    seqs = []
    for r, pid in enumerate(z["prompt_id"].tolist()):
        k = p_at[pid]
        seqs.append(
            WorkloadSeq(
                pid,
                pt[po[k] : po[k + 1]],
                tok[off[r] : off[r + 1]].astype(np.int64),
                float(z["temperature"][r]),
                "eval" if z["split"][r] else "train",
            )
        )
    return Workload(prompts, seqs, json.loads(files[2].read_text(encoding="utf-8")))


def committed_dir(name: str = "smollm2") -> Path:
    """``data/workloads/<name>`` of the checkout (the committed workload of the real target)."""
    from sdsl_lib.io import repo_root

    return repo_root() / "data" / "workloads" / name
