"""The model ladder: Llama-style causal LMs trained from scratch with one recipe.

SDSL relates acceptance to draft and target perplexities and those to parameters and training tokens
through a Chinchilla law L(N, D). With no model hub reachable, this module trains its own family of
drafts and targets on the Shakespeare corpus (:mod:`sdsl_lib.measurement.corpus`) with the shared tokenizer
(:mod:`sdsl_lib.measurement.tokenizer`), so every quantity in the chain (N, D, perplexity, alpha, cost ratio) is known.

Recipe (one for all sizes): AdamW (beta = 0.9, 0.95; weight decay 0.1 on matrices), gradient
clipping at 1, and a warmup-stable-decay (WSD) learning-rate schedule

.. math::

    \\eta(s) = \\eta_{max} \\cdot \\begin{cases} (s+1)/s_w & s < s_w \\\\ 1 & s_w \\le s < s_d \\\\
    (S - s)/(S - s_d) & s \\ge s_d \\end{cases}

with warmup ``s_w`` and decay start ``s_d = S (1 - decay_frac)``. WSD makes extra points of
L(N, D) cheap: a short cool-down *branch* taken from the stable phase at step ``0.8 f S`` and decayed
over ``0.2 f S`` steps is a model trained on the budget ``f D`` under the same recipe. Each branch
sees exactly the batches the main run sees at those steps (batches are a function of the step).

Parameter counts follow SDSL, which uses total parameter counts (e.g. OPT-13B = 12,853,473,280,
embeddings included); the non-embedding count (Kaplan et al. 2020) is recorded beside it. Input and
output embeddings are tied, so the embedding matrix is counted once.
"""

from __future__ import annotations

import copy
import math
import time
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sdsl_lib.io import atomic_write_json
from sdsl_lib.measurement.profiles import ModelSpec, Profile

__all__ = [
    "build_model",
    "count_params",
    "wsd_lr",
    "batch_for_step",
    "eval_windows",
    "heldout_loss",
    "train_model",
    "load_model",
    "model_seed",
]


def model_seed(profile_seed: int, name: str) -> int:
    """A stable per-model seed (crc32 of the name, so it does not depend on model order)."""
    return (int(profile_seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


def build_model(spec: ModelSpec, vocab_size: int, seed: int, max_positions: int = 2048):
    """A freshly initialised ``LlamaForCausalLM`` of shape ``spec`` (tied embeddings, fp32)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if spec.d_model % spec.n_heads:
        raise ValueError(f"spec.d_model ({spec.d_model}) must be divisible by spec.n_heads ({spec.n_heads})")
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.d_model,
        intermediate_size=spec.d_ff,
        num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = 0
    return model


def count_params(model) -> dict:
    """Total, embedding and non-embedding parameter counts (shared tensors counted once).

    Returns
    -------
    dict with ``n_params_total`` (SDSL's convention), ``n_params_embedding`` (token embedding, tied
    with the output head) and ``n_params_non_embedding`` (Kaplan's N: attention, MLP, norms).
    """
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    emb = model.get_input_embeddings().weight
    n_emb = emb.numel()
    out = model.get_output_embeddings()
    if out is not None and out.weight is not emb:
        n_emb += out.weight.numel()
    return {"n_params_total": total, "n_params_embedding": n_emb, "n_params_non_embedding": total - n_emb}


def wsd_lr(step, total_steps: int, warmup_steps: int, decay_start: int, lr_max: float):
    """Warmup-stable-decay learning rate at ``step`` (vectorised over ``step``).

    Examples
    --------
    >>> [round(float(x), 3) for x in wsd_lr([0, 1, 5, 8, 9], 10, 2, 8, 1.0)]
    [0.5, 1.0, 1.0, 1.0, 0.5]
    """
    s = np.asarray(step, dtype=float)
    warm = np.minimum((s + 1) / max(warmup_steps, 1), 1.0)
    decay = np.clip((total_steps - s) / max(total_steps - decay_start, 1), 0.0, 1.0)
    out = lr_max * np.where(s < decay_start, warm, np.minimum(warm, decay))
    return out if out.ndim else float(out)


def batch_for_step(ids: torch.Tensor, step: int, batch_size: int, seq_len: int, seed: int) -> torch.Tensor:
    """The training batch of ``step``: ``batch_size`` random windows of ``seq_len + 1`` tokens.

    A pure function of (seed, step), so cool-down branches see the batches of the main run.
    """
    g = torch.Generator().manual_seed(int(seed) * 7_919 + int(step))
    starts = torch.randint(0, ids.numel() - seq_len - 1, (batch_size,), generator=g)
    offs = torch.arange(seq_len + 1)
    return ids[starts[:, None] + offs[None, :]]


def eval_windows(ids: np.ndarray, seq_len: int, n_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows of ``seq_len + 1`` tokens of a held-out stream (evenly spaced subset)."""
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    starts = torch.arange(0, ids.numel() - seq_len - 1, seq_len)
    if n_windows is not None and n_windows < starts.numel():
        starts = starts[torch.linspace(0, starts.numel() - 1, n_windows).round().long()]
    return ids[starts[:, None] + torch.arange(seq_len + 1)[None, :]]


def _autocast(device: torch.device, bf16: bool):
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def heldout_loss(model, windows: torch.Tensor, device, batch_size: int = 16, bf16: bool = False) -> float:
    """Mean next-token cross-entropy (nats/token) of ``model`` over ``windows``."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, windows.shape[0], batch_size):
        w = windows[i : i + batch_size].to(device)
        with _autocast(device, bf16):
            logits = model(input_ids=w[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum")
        total += float(loss)
        count += w[:, 1:].numel()
    model.train(was_training)
    return total / count


def _optimizer(model, spec: ModelSpec, tr) -> torch.optim.Optimizer:
    # Weight decay on matrices only (not on norms), the usual Llama/GPT recipe.
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    seen = set()
    decay = [p for p in decay if not (id(p) in seen or seen.add(id(p)))]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": tr.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec.lr,
        betas=(tr.beta1, tr.beta2),
        eps=1e-8,
    )


def _step(model, opt, batch, lr, device, tr) -> float:
    for group in opt.param_groups:
        group["lr"] = lr
    batch = batch.to(device, non_blocking=True)
    with _autocast(device, tr.cuda_bf16):
        logits = model(input_ids=batch[:, :-1], use_cache=False).logits
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), tr.grad_clip)
    opt.step()
    return float(loss.detach())


def train_model(
    spec: ModelSpec,
    profile: Profile,
    train_ids: np.ndarray,
    val_ids: np.ndarray,
    test_ids: np.ndarray,
    out_dir: str | Path,
    device=None,
    progress: bool = True,
) -> dict:
    """Train one model of the ladder; save it to ``out_dir/model`` and return its record.

    The record (also written to ``out_dir/train_result.json``, last, as the done marker) holds the
    parameter counts, the loss curve, the (n_tokens, val_loss) points of the cool-down branches and
    of the main run, final validation and test losses and perplexities, and the wall time.
    """
    from tqdm.auto import tqdm

    device = torch.device(device or "cpu")
    tr = profile.train
    seed = model_seed(profile.seed, spec.name)
    tokens_per_step = tr.batch_size * tr.seq_len
    total_steps, warmup, decay_start, branches = _schedule(spec, tr)

    model = build_model(spec, profile.vocab_size, seed, max_positions=4 * tr.seq_len + 1024).to(device)
    model.train()
    opt = _optimizer(model, spec, tr)
    ids = torch.as_tensor(np.asarray(train_ids, dtype=np.int64))
    val_curve = eval_windows(val_ids, tr.seq_len, tr.eval_windows_curve)
    val_full = eval_windows(val_ids, tr.seq_len, tr.eval_windows_final)
    test_full = eval_windows(test_ids, tr.seq_len, tr.eval_windows_final)
    bf16 = tr.cuda_bf16 and device.type == "cuda"

    curve, budget_points, recent = [], [], []
    t0 = time.perf_counter()
    bar = tqdm(range(total_steps), desc=f"train {spec.name}", disable=not progress, leave=False)
    for step in bar:
        for br in branches:
            if step == br["start"]:
                budget_points.append(_run_branch(model, opt, br, ids, val_full, spec, tr, seed, device, bf16))
        lr = wsd_lr(step, total_steps, warmup, decay_start, spec.lr)
        recent.append(_step(model, opt, batch_for_step(ids, step, tr.batch_size, tr.seq_len, seed), lr, device, tr))
        last = step == total_steps - 1
        if (step + 1) % tr.eval_every == 0 or last:
            val = heldout_loss(model, val_curve, device, bf16=bf16)
            curve.append(
                {
                    "step": step + 1,
                    "n_tokens": (step + 1) * tokens_per_step,
                    "lr": lr,
                    "train_loss": float(np.mean(recent)),
                    "val_loss_subset": val,
                }
            )
            recent = []
            bar.set_postfix(train=f"{curve[-1]['train_loss']:.3f}", val=f"{val:.3f}")
    train_time = time.perf_counter() - t0

    val_loss = heldout_loss(model, val_full, device, bf16=bf16)
    test_loss = heldout_loss(model, test_full, device, bf16=bf16)
    budget_points.append(
        {
            "frac": 1.0,
            "n_steps": total_steps,
            "n_tokens": total_steps * tokens_per_step,
            "val_loss": val_loss,
            "branch": "main",
        }
    )
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir / "model", safe_serialization=True)
    steps = {"n_steps": total_steps, "warmup_steps": warmup, "decay_start_step": decay_start}
    losses = {"val_loss": val_loss, "test_loss": test_loss, "val": val_full, "test": test_full}
    record = _record(spec, seed, model, steps, tokens_per_step, losses, train_time, device, curve, budget_points)
    atomic_write_json(out_dir / "train_result.json", record)
    return record


def _schedule(spec: ModelSpec, tr) -> tuple[int, int, int, list]:
    """Total steps S, warmup steps, decay start s_d and the valid cool-down branches of ``spec``."""
    tokens_per_step = tr.batch_size * tr.seq_len
    total_steps = spec.train_tokens // tokens_per_step
    if total_steps < 4:
        raise ValueError(
            f"spec.train_tokens must give at least 4 steps of {tokens_per_step} tokens, got {spec.train_tokens}"
        )
    warmup = max(1, round(tr.warmup_frac * total_steps))
    decay_start = total_steps - max(1, round(tr.decay_frac * total_steps))
    # Branch f: a run of round(f S) steps whose own decay phase (decay_frac of it) starts from the
    # main run's stable phase; valid only if that start lies past warmup and before s_d.
    branches = []
    for f in sorted(tr.branch_fracs):
        b_total = round(f * total_steps)
        b_start = b_total - max(1, round(tr.decay_frac * b_total))
        if warmup <= b_start < decay_start:
            branches.append({"frac": f, "start": b_start, "total": b_total})
    return total_steps, warmup, decay_start, branches


def _record(spec, seed, model, steps, tokens_per_step, losses, train_time, device, curve, budget_points) -> dict:
    """The unit record of a trained model (``train_result.json``)."""
    val_loss, test_loss = losses["val_loss"], losses["test_loss"]
    return {
        "model": spec.name,
        "role": spec.role,
        "spec": spec.__dict__,
        "seed": seed,
        **count_params(model),
        **steps,
        "n_tokens": steps["n_steps"] * tokens_per_step,
        "val_loss": val_loss,
        "test_loss": test_loss,
        "val_ppl": math.exp(val_loss),
        "test_ppl": math.exp(test_loss),
        "val_tokens": int(losses["val"][:, 1:].numel()),
        "test_tokens": int(losses["test"][:, 1:].numel()),
        "train_time_s": train_time,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "curve": curve,
        "budget_points": budget_points,
    }


def _run_branch(model, opt, br, ids, val_full, spec, tr, seed, device, bf16) -> dict:
    """Cool-down branch: copy model and optimizer at ``br['start']``, decay linearly to zero."""
    bmodel = copy.deepcopy(model)
    bopt = _optimizer(bmodel, spec, tr)
    bopt.load_state_dict(copy.deepcopy(opt.state_dict()))
    n_decay = br["total"] - br["start"]
    for k, step in enumerate(range(br["start"], br["total"])):
        lr = spec.lr * (n_decay - k) / n_decay
        _step(bmodel, bopt, batch_for_step(ids, step, tr.batch_size, tr.seq_len, seed), lr, device, tr)
    val = heldout_loss(bmodel, val_full, device, bf16=bf16)
    tokens = br["total"] * tr.batch_size * tr.seq_len
    del bmodel, bopt
    return {
        "frac": br["frac"],
        "n_steps": br["total"],
        "n_tokens": tokens,
        "val_loss": val,
        "branch": f"cooldown_from_step_{br['start']}",
    }


def load_model(model_dir: str | Path, device=None):
    """Load a trained ladder model (safetensors) in eval mode."""
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(Path(model_dir) / "model"))
    model.to(torch.device(device or "cpu")).eval()
    return model
