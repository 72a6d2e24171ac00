"""Devices, threads and timing: the measured cost ratio c and the verification cost curve.

SDSL sets Leviathan's cost coefficient c (time of one draft step / time of one target step) to the
FLOP ratio N/M. At batch 1 a decode step is memory- and overhead-bound, so the measured c of small
models lies far above N/M (FIELD-NOTES: a per-call floor of 1 to 2 ms on CPU). This module measures
it: the forward latency of each model for T = 1..T_max new tokens on top of a warm KV cache holding
a fixed prefix, median over repeats after a warm-up, with CUDA synchronised around each timed call.

- ``c = t_draft(1) / t_target(1)`` (one draft step vs one target step);
- the verification cost curve ``t_target(T) / t_target(1)``: what it costs to score T tokens in one
  pass (Leviathan assume 1 for T <= gamma + 1; it grows once T passes the compute roof).
"""

from __future__ import annotations

import inspect
import os
import platform
import time

import numpy as np
import torch

__all__ = ["pick_device", "configure_threads", "sync", "hardware_info", "forward_latency"]


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when present, else CPU."""
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device must be 'cpu' on a machine without CUDA, got 'cuda'")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_threads(n_threads: int, device: torch.device) -> int:
    """Set torch's CPU threads explicitly (recorded in every sidecar); allow tf32 on CUDA.

    ``$SDSL_THREADS`` overrides ``n_threads``. Returns the number of threads in use.
    """
    n = int(os.environ.get("SDSL_THREADS", n_threads))
    if n < 1:
        raise ValueError(f"n_threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return torch.get_num_threads()


def sync(device: torch.device) -> None:
    """Wait for queued CUDA kernels (a no-op on CPU): call before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hardware_info(device: torch.device) -> dict:
    """Processor, core count, threads and (on CUDA) the GPU name, for provenance sidecars."""
    info = {
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cache_kw(model) -> str:
    # transformers 5.24 calls the argument ``cache``; 5.17 and 4.x call it ``past_key_values``.
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.inference_mode()
def forward_latency(
    model, prefix: torch.Tensor, max_tokens: int, repeats: int, warmup: int = 3, device=None
) -> np.ndarray:
    """Forward latency (seconds) of scoring T = 1..``max_tokens`` new tokens after a warm KV cache.

    The cache holds ``prefix`` (shape (1, L)); each timed call feeds T tokens at positions
    L..L+T-1 and is then cropped back to L, so every call sees the same prefix. The T values are
    interleaved within each repeat (1..T_max, 1..T_max, ...) so drifting machine load spreads over
    all of them; the first ``warmup`` rounds are discarded.

    Returns
    -------
    ndarray, shape (repeats, max_tokens): seconds per call, column T-1 for T new tokens.
    """
    from transformers import DynamicCache

    if max_tokens < 1 or repeats < 1:
        raise ValueError(f"max_tokens and repeats must be >= 1, got {max_tokens}, {repeats}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    try:
        cache = DynamicCache(config=model.config)
    except TypeError:
        cache = DynamicCache()
    kw = _cache_kw(model)
    prefix = prefix.to(device)
    model(input_ids=prefix, use_cache=True, **{kw: cache})
    g = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    new = torch.randint(0, vocab, (1, max_tokens), generator=g).to(device)
    out = np.empty((warmup + repeats, max_tokens))
    for r in range(warmup + repeats):
        for t in range(1, max_tokens + 1):
            sync(device)
            t0 = time.perf_counter()
            logits = model(input_ids=new[:, :t], use_cache=True, **{kw: cache}).logits
            # Reading a value forces the computation to finish (and, on CUDA, to leave the queue).
            logits[0, -1, 0].item()
            sync(device)
            out[r, t - 1] = time.perf_counter() - t0
            cache.crop(-t)  # negative: drop the t new positions (transformers 4.x and 5.x)
    return out[warmup:]
