r"""Drafts for a real target: small Llama-style models sharing its tokenizer, trained toward it.

A draft is built from a ``LlamaConfig`` with the target's vocabulary (tied head), optionally with a
**restricted head**: the :math:`K - 1` most frequent tokens of the workload's training text keep
their own class and every other token shares one class UNK (covering 96-99% of tokens, 8,192
classes train about 2.4x faster than 49,152; docs/field_notes.md "A real target"). Training
(:func:`train_draft`) runs on the target's own text for the workload's prompts, with a loss on the
continuation positions only:

.. math::

    \mathcal{L} = w\,\mathcal{L}_\text{soft} + (1 - w)\,\mathcal{L}_\text{hard},\qquad
    \mathcal{L}_\text{hard} = -\log q(y_t),\qquad
    \mathcal{L}_\text{soft} = -\sum_{x \in \text{top-}k} \tilde p(x) \log q(x)

where :math:`y_t` is the target's token and :math:`\tilde p` the target's next-token distribution
renormalised over its top :math:`k` (a forward KL to the target up to a constant). ``loss="hard"``
is :math:`w = 0`, ``"soft"`` :math:`w = 1`, ``"mix"`` the profile's ``soft_weight``.

**Decoding with a restricted head.** :class:`RestrictedHeadLlama` presents the draft with the full
vocabulary: a token outside the head gets the UNK class's probability shared evenly,
:math:`q(x) = q(\text{UNK}) / (V - K + 1)`. That is a proper distribution over all :math:`V`
tokens, so :func:`~sdsl_lib.measurement.decoding.speculative_generate` stays exact (greedy output
equals the target's, sampled output follows the target's law) and the draft's perplexity is
finite. The checkpoint folder is a plain HF one plus ``restricted_head.json`` (the kept ids).
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "VocabMap",
    "RestrictedHeadLlama",
    "build_draft",
    "pca_embedding",
    "teacher_topk",
    "train_draft",
    "heldout_ce",
    "save_draft",
    "load_draft",
    "is_restricted",
    "head_map",
    "export_full_vocab",
    "argmax_agreement",
    "EXPORT_FILLS",
]

_HEAD_FILE = "restricted_head.json"
_KEEP_FILE = "vocab_keep.npy"  # the research drafts' format: the kept ids only (the full vocabulary is the target's)
_EXPORT_FILE = "full_vocab_export.json"
#: Head rows given to the ids outside a restricted head by :func:`export_full_vocab`.
EXPORT_FILLS = ("zeros", "unk")


class VocabMap:
    """Full id -> head class: the ``k - 1`` most frequent tokens keep a class, the rest share UNK = k - 1."""

    def __init__(self, keep, full_vocab: int):
        keep = np.unique(np.asarray(keep, dtype=np.int64))
        if keep.size < 1 or keep[0] < 0 or keep[-1] >= full_vocab or keep.size >= full_vocab:
            raise ValueError(f"keep must hold 1 to full_vocab - 1 ids in [0, {full_vocab}), got {keep.size} ids")
        self.keep, self.full_vocab = keep, int(full_vocab)
        self.k, self.unk = keep.size + 1, keep.size
        to_small = np.full(full_vocab, self.unk, dtype=np.int64)
        to_small[keep] = np.arange(keep.size)
        self.to_small = torch.from_numpy(to_small)

    @classmethod
    def from_counts(cls, counts: np.ndarray, k: int) -> VocabMap:
        """The ``k - 1`` most frequent ids of ``counts`` (ties broken by id)."""
        if not 2 <= k < len(counts):
            raise ValueError(f"k must be in [2, {len(counts) - 1}], got {k}")
        order = np.argsort(-np.asarray(counts), kind="stable")
        return cls(order[: k - 1], len(counts))

    def coverage(self, counts: np.ndarray) -> float:
        """Share of the counted tokens that keep their own class."""
        return float(np.asarray(counts)[self.keep].sum() / max(np.asarray(counts).sum(), 1))

    def expand_logits(self, small: torch.Tensor) -> torch.Tensor:
        """Head logits (..., k) -> full-vocabulary logits (..., V), UNK's mass shared over the rest."""
        n_out = self.full_vocab - self.keep.size
        full = (small[..., self.unk] - math.log(n_out)).unsqueeze(-1).expand(*small.shape[:-1], self.full_vocab)
        full = full.clone()
        full[..., torch.from_numpy(self.keep).to(small.device)] = small[..., : self.unk]
        return full


def _restricted_forward():
    from transformers import LlamaForCausalLM

    @functools.wraps(LlamaForCausalLM.forward)  # same signature: callers inspect it (cache name, logits_to_keep)
    def forward(self, input_ids=None, *args, **kwargs):
        out = LlamaForCausalLM.forward(self, self.vocab_map.to_small.to(input_ids.device)[input_ids], *args, **kwargs)
        out.logits = self.vocab_map.expand_logits(out.logits)
        return out

    return forward


def _restricted_class():
    from transformers import LlamaForCausalLM

    class _RestrictedHeadLlama(LlamaForCausalLM):
        """A restricted-head Llama draft that reads and writes the full vocabulary (see the module)."""

        forward = _restricted_forward()

    return _RestrictedHeadLlama


RestrictedHeadLlama = None  # the class, made on first use (transformers is imported lazily)


def _wrap(model, vmap: VocabMap):
    """Turn a head-size ``LlamaForCausalLM`` into a :class:`RestrictedHeadLlama` in place."""
    global RestrictedHeadLlama
    if RestrictedHeadLlama is None:
        RestrictedHeadLlama = _restricted_class()
    model.__class__ = RestrictedHeadLlama
    model.vocab_map = vmap
    # The pair check and the HF assistant compare vocab sizes: the draft now speaks V tokens.
    model.config.vocab_size = vmap.full_vocab
    return model


def pca_embedding(emb: torch.Tensor, d: int, std: float = 0.05) -> torch.Tensor:
    """Rows of ``emb`` projected on their top ``d`` principal directions, rescaled to element std ``std``."""
    centred = emb - emb.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    proj = centred @ vh[:d].T
    return proj * (std / proj.std())


def build_draft(spec, full_vocab: int, vmap: VocabMap | None, seed: int, special: dict, init_embedding=None):
    """A fresh draft of shape ``spec`` (``d_model``, ``n_layers``, ``n_heads``, ``d_ff``), tied head, fp32.

    ``special``: ``bos_token_id``, ``eos_token_id``, ``pad_token_id`` of the target's tokenizer.
    ``init_embedding`` (V x d_target): the target's embedding, for a PCA initialisation.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    if spec.d_model % spec.n_heads:
        raise ValueError(f"spec.d_model ({spec.d_model}) must be divisible by spec.n_heads ({spec.n_heads})")
    cfg = LlamaConfig(
        vocab_size=vmap.k if vmap is not None else full_vocab,
        hidden_size=spec.d_model,
        intermediate_size=spec.d_ff,
        num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        rope_theta=100000.0,
        **special,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    if init_embedding is not None:
        emb = init_embedding.float()
        if vmap is not None:
            rows = pca_embedding(emb[torch.from_numpy(vmap.keep)], spec.d_model)
            rows = torch.cat([rows, torch.zeros(1, spec.d_model)])  # UNK starts at the origin
        else:
            rows = pca_embedding(emb, spec.d_model)
        with torch.no_grad():
            model.get_input_embeddings().weight.copy_(rows)
    return model


def _batch(seqs, pad: int):
    """Right-padded prompt + continuation ids, and (row, position) of every position predicting a continuation token."""
    full = [np.concatenate([s.prompt, s.cont]) for s in seqs]
    ids = torch.full((len(seqs), max(len(f) for f in full)), pad, dtype=torch.long)
    rows, cols = [], []
    for i, (f, s) in enumerate(zip(full, seqs)):
        ids[i, : len(f)] = torch.from_numpy(f)
        rows.append(np.full(len(s.cont), i))
        cols.append(np.arange(len(s.prompt) - 1, len(f) - 1))
    return ids, torch.from_numpy(np.concatenate(rows)), torch.from_numpy(np.concatenate(cols))


@torch.inference_mode()
def teacher_topk(target, seqs, k: int, pad: int, batch: int = 16) -> list:
    """The target's top-``k`` log-probabilities (fp16) and ids (int32) at every continuation position."""
    out = [None] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i].prompt) + len(seqs[i].cont))
    for b in range(0, len(order), batch):
        idx = order[b : b + batch]
        ids, rows, cols = _batch([seqs[i] for i in idx], pad)
        h = target.model(input_ids=ids).last_hidden_state[rows, cols]
        vals, top = torch.log_softmax(target.lm_head(h).float(), -1).topk(k, -1)
        start = 0
        for i in idx:
            n = len(seqs[i].cont)
            out[i] = (vals[start : start + n].half().numpy(), top[start : start + n].int().numpy())
            start += n
    return out


def _logits(model, ids, rows, cols, vmap):
    """Head logits at the scored positions (the restricted head's k classes, not expanded)."""
    inp = vmap.to_small[ids] if vmap is not None else ids
    h = model.model(input_ids=inp).last_hidden_state[rows, cols]
    return model.lm_head(h).float()


def _loss(model, seqs, topk, recipe, vmap, pad):
    ids, rows, cols = _batch(seqs, pad)
    logq = torch.log_softmax(_logits(model, ids, rows, cols, vmap), -1)
    target = ids[rows, cols + 1]
    hard = F.nll_loss(logq, vmap.to_small[target] if vmap is not None else target)
    if recipe.loss == "hard":
        return hard, hard
    vals = torch.from_numpy(np.concatenate([t[0] for t in topk])).float()
    top = torch.from_numpy(np.concatenate([t[1] for t in topk])).long()
    p = torch.softmax(vals, -1)  # the target renormalised over its top k
    if vmap is not None:
        top = vmap.to_small[top]  # mass outside the head lands on UNK
    soft = -(p * logq.gather(1, top)).sum(-1).mean()
    w = 1.0 if recipe.loss == "soft" else recipe.soft_weight
    return w * soft + (1 - w) * hard, hard


@torch.inference_mode()
def heldout_ce(model, seqs, pad: int, batch: int = 16) -> tuple[float, int]:
    """Mean next-token cross-entropy (nats) of a full-vocabulary ``model`` on the continuation tokens."""
    total, count = 0.0, 0
    for b in range(0, len(seqs), batch):
        ids, rows, cols = _batch(seqs[b : b + batch], pad)
        logits = model(input_ids=ids, use_cache=False).logits[rows, cols].float()
        total += float(F.cross_entropy(logits, ids[rows, cols + 1], reduction="sum"))
        count += rows.numel()
    return total / count, count


def train_draft(model, train, topk, steps: int, spec, tr, recipe, vmap, pad: int, seed: int, val, progress=False):
    """AdamW with a WSD schedule toward the target (the module's loss); returns the curve and totals.

    Batches of ``tr.batch_size`` sequences are a function of (seed, step). Every ``tr.eval_every``
    steps the held-out CE on ``val`` (full vocabulary, see :func:`heldout_ce`) joins the curve.
    """
    from tqdm.auto import tqdm

    from sdsl_lib.measurement.models import _optimizer, wsd_lr

    opt = _optimizer(model, spec, tr)
    warmup = max(1, round(tr.warmup_frac * steps))
    decay_start = steps - max(1, round(tr.decay_frac * steps))
    rng = np.random.default_rng(seed)
    curve, n_tokens, t0, recent = [], 0, time.perf_counter(), []
    model.train()
    for step in tqdm(range(steps), desc=f"distil {spec.name}", disable=not progress, leave=False):
        lr = float(wsd_lr(step, steps, warmup, decay_start, spec.lr))
        for group in opt.param_groups:
            group["lr"] = lr
        pick = rng.integers(0, len(train), tr.batch_size)
        loss, hard = _loss(
            model, [train[i] for i in pick], [topk[i] for i in pick] if topk else None, recipe, vmap, pad
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tr.grad_clip)
        opt.step()
        n_tokens += sum(len(train[i].cont) for i in pick)
        recent.append(float(hard.detach()))
        if (step + 1) % tr.eval_every == 0 or step + 1 == steps:
            model.eval()
            full = _wrap_view(model, vmap)
            val_ce, _ = heldout_ce(full, val[: tr.eval_windows_curve], pad)
            model.train()
            curve.append(
                {"step": step + 1, "n_tokens": n_tokens, "lr": lr, "train_loss": float(np.mean(recent)),
                 "val_loss_subset": val_ce}
            )  # fmt: skip
            recent = []
    model.eval()
    return {"curve": curve, "n_steps": steps, "n_tokens": n_tokens, "train_time_s": time.perf_counter() - t0}


def _wrap_view(model, vmap):
    """The full-vocabulary view of a draft being trained (the model itself when the head is full)."""
    if vmap is None:
        return model
    import copy

    view = copy.copy(model)  # shares the weights; only the class and the config change
    view.config = copy.deepcopy(model.config)
    return _wrap(view, vmap)


def save_draft(model, vmap: VocabMap | None, out_dir) -> Path:
    """A plain HF checkpoint (head-size vocabulary) and, for a restricted head, ``restricted_head.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    if vmap is not None:
        from sdsl_lib.io import atomic_write_json

        atomic_write_json(out_dir / _HEAD_FILE, {"full_vocab": vmap.full_vocab, "keep": vmap.keep.tolist()})
    return out_dir


def is_restricted(path) -> bool:
    return (Path(path) / _HEAD_FILE).is_file()


def head_map(path, full_vocab: int | None = None) -> VocabMap | None:
    """The restricted head's :class:`VocabMap` of a draft folder, or None for a full head.

    Reads ``restricted_head.json`` (:func:`save_draft`) or, for the research drafts, ``vocab_keep.npy``
    (kept ids only: ``full_vocab``, the target's vocabulary, must then be given).
    """
    path = Path(path)
    if (path / _HEAD_FILE).is_file():
        head = json.loads((path / _HEAD_FILE).read_text(encoding="utf-8"))
        if full_vocab is not None and full_vocab != head["full_vocab"]:
            raise ValueError(f"full_vocab must match {_HEAD_FILE}'s {head['full_vocab']}, got {full_vocab}")
        return VocabMap(head["keep"], head["full_vocab"])
    if (path / _KEEP_FILE).is_file():
        if full_vocab is None:
            raise ValueError(f"full_vocab must be given for a draft with {_KEEP_FILE} ({str(path)!r})")
        return VocabMap(np.load(path / _KEEP_FILE), int(full_vocab))
    return None


def load_draft(path, full_vocab: int | None = None):
    """A draft saved by :func:`save_draft` (or a research draft with ``vocab_keep.npy``), speaking the full vocabulary."""
    from transformers import LlamaForCausalLM

    path = Path(path)
    model = LlamaForCausalLM.from_pretrained(str(path))
    vmap = head_map(path, full_vocab)
    if vmap is not None:
        model = _wrap(model, vmap)
    return model.eval()


def export_full_vocab(path, out, full_vocab: int | None = None, fill: str = "zeros", tokenizer_dir=None) -> Path:
    r"""A plain full-vocabulary ``LlamaForCausalLM`` (untied head) made from a restricted-head draft.

    Why: vLLM (and any engine that loads a draft by its config) needs the target's vocabulary in the
    draft's embedding and head; it cannot run :class:`RestrictedHeadLlama`'s id map. The input side
    is exact: the embedding row of every id outside the head is the UNK row, as the map gives it.
    The head cannot be: our draft gives a non-kept token the logit :math:`u - \log(V - K + 1)`
    (:math:`u` the UNK logit), and a Llama head has no bias to subtract the constant. ``fill``
    chooses those rows: ``"zeros"`` (logit 0; default) or ``"unk"`` (the UNK row: logit :math:`u`).
    Kept ids keep their rows, so their logits are identical. The greedy proposal differs only
    where the argmax moves between a kept id and the first non-kept id. Measured with
    :func:`argmax_agreement` on SmolLM2's first 8 eval sequences (prompt + greedy continuation,
    1,508 positions) with the research drafts L1_d64_l1 and L2_d128_l2: "zeros" agreed with the
    restricted draft at every position (disagreement 0.0%), "unk" disagreed on 20.7% and 11.1%
    (the UNK logit, no longer lowered by :math:`\log(V-K+1) \approx 10.6`, often beats every kept id).
    The fill is recorded in the export's ``full_vocab_export.json``.

    Parameters
    ----------
    path : path
        Draft folder with ``restricted_head.json`` or ``vocab_keep.npy``.
    out : path
        Folder to write (a Hugging Face checkpoint; the tokenizer files of ``tokenizer_dir`` are
        copied in, so that an engine loading the folder alone finds them).
    full_vocab : int, optional
        The target's vocabulary (required with ``vocab_keep.npy``).
    fill : {"zeros", "unk"}
        Head rows of the ids outside the restricted head (see above).
    """
    import shutil

    from transformers import LlamaForCausalLM

    if fill not in EXPORT_FILLS:
        raise ValueError(f"fill must be one of {EXPORT_FILLS}, got {fill!r}")
    path, out = Path(path), Path(out)
    vmap = head_map(path, full_vocab)
    if vmap is None:
        raise ValueError(
            f"path must be a restricted-head draft folder ({_HEAD_FILE} or {_KEEP_FILE}), got {str(path)!r}"
        )
    small = LlamaForCausalLM.from_pretrained(str(path)).float().eval()
    emb = small.get_input_embeddings().weight.detach()
    head = small.get_output_embeddings().weight.detach()
    if emb.shape[0] != vmap.k:
        raise ValueError(f"path's embedding has {emb.shape[0]} rows, its head map {vmap.k} classes")
    cfg = small.config.to_dict()
    cfg.update(vocab_size=vmap.full_vocab, tie_word_embeddings=False)
    config = type(small.config).from_dict(cfg)
    big_head = (
        head[vmap.unk].repeat(vmap.full_vocab, 1) if fill == "unk" else head.new_zeros(vmap.full_vocab, head.shape[1])
    )
    big_head[torch.from_numpy(vmap.keep)] = head[: vmap.unk]
    state = {k: v for k, v in small.state_dict().items() if k not in ("model.embed_tokens.weight", "lm_head.weight")}
    state["model.embed_tokens.weight"] = emb[vmap.to_small].clone()
    state["lm_head.weight"] = big_head.contiguous()
    with torch.device("meta"):
        big = LlamaForCausalLM(config)
    big.load_state_dict(state, assign=True, strict=True)
    out.mkdir(parents=True, exist_ok=True)
    big.save_pretrained(str(out), safe_serialization=True)
    if tokenizer_dir is not None:
        for f in Path(tokenizer_dir).iterdir():
            if f.name.startswith(("tokenizer", "special_tokens", "vocab.", "merges", "chat_template")):
                shutil.copy2(f, out / f.name)
    from sdsl_lib.io import atomic_write_json

    atomic_write_json(out / _EXPORT_FILE, {"source": str(path.resolve()), "fill": fill, "full_vocab": vmap.full_vocab,
                                           "head_classes": vmap.k})  # fmt: skip
    return out


@torch.inference_mode()
def argmax_agreement(restricted, exported, sequences) -> dict:
    """How often the exported draft's argmax equals the restricted draft's, over every position of ``sequences``.

    ``restricted``: the :func:`load_draft` model; ``exported``: the :func:`export_full_vocab` one
    (both full vocabulary). Returns ``positions``, ``agree`` and ``disagreement_rate``, and
    ``max_kept_logit_diff`` (largest difference on the kept ids; 0 up to rounding by construction).
    """
    n = agree = 0
    diff = 0.0
    keep = torch.from_numpy(restricted.vocab_map.keep)
    for ids in sequences:
        ids = torch.as_tensor(np.asarray(ids), dtype=torch.long)[None, :]
        a = restricted(input_ids=ids).logits[0].float()
        b = exported(input_ids=ids).logits[0].float()
        n += a.shape[0]
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        diff = max(diff, float((a[:, keep] - b[:, keep]).abs().max()))
    return {"positions": n, "agree": agree, "disagreement_rate": 1 - agree / max(n, 1), "max_kept_logit_diff": diff}
