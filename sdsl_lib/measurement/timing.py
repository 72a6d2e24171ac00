"""Devices, threads and timing: the measured cost ratio c and the verification cost curve.

SDSL sets Leviathan's cost coefficient c (time of one draft step / time of one target step) to the
FLOP ratio N/M. At batch 1 a decode step is memory- and overhead-bound, so the measured c of small
models lies far above N/M (docs/field_notes.md: a per-call floor of 1 to 2 ms on CPU). This module measures
it: the forward latency of each model for T = 1..T_max new tokens on top of a warm KV cache holding
a fixed prefix, median over repeats after a warm-up, with CUDA synchronised around each timed call.

- ``c = t_draft(1) / t_target(1)`` (one draft step vs one target step);
- the verification cost curve ``t_target(T) / t_target(1)``: what it costs to score T tokens in one
  pass (Leviathan assume 1 for T <= gamma + 1; it grows once T passes the compute roof).
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch

__all__ = [
    "pick_device",
    "resolve_threads",
    "configure_threads",
    "sync",
    "CPU_FLAGS",
    "cpu_identity",
    "hardware_info",
    "forward_latency",
    "CpuLoad",
]


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when present, else CPU."""
    if device is not None:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from None
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device must be 'cpu' on a machine without CUDA, got {device!r}")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device index must be below {torch.cuda.device_count()}, got {device!r}")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_threads(n_threads: int, cli_threads=None, env=None) -> tuple[int, str]:
    """torch CPU threads and where the number came from.

    Precedence: ``cli_threads`` (``--threads``), ``$SDSL_THREADS``, ``$OMP_NUM_THREADS`` (respected,
    not overridden: a user who set it meant it), then the profile's ``n_threads``.

    Returns
    -------
    (n, source) with source one of ``"--threads"``, ``"SDSL_THREADS"``, ``"OMP_NUM_THREADS"``, ``"profile"``.
    """
    env = os.environ if env is None else env
    candidates = (
        ("--threads", cli_threads),
        ("SDSL_THREADS", env.get("SDSL_THREADS")),
        # OpenMP allows a nested list ("4,2"): the outer level is what torch's intra-op pool uses.
        ("OMP_NUM_THREADS", (env.get("OMP_NUM_THREADS") or "").split(",")[0] or None),
        ("profile", n_threads),
    )
    for source, raw in candidates:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        try:
            n = int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{source} must be an integer >= 1, got {raw!r}") from None
        if n < 1:
            raise ValueError(f"{source} must be an integer >= 1, got {raw!r}")
        return n, source
    raise ValueError(f"n_threads must be an integer >= 1, got {n_threads!r}")


def configure_threads(n_threads: int, device: torch.device, cli_threads=None) -> int:
    """Set torch's CPU threads explicitly (recorded in every sidecar); allow tf32 on CUDA.

    The number follows :func:`resolve_threads` (``--threads``, ``$SDSL_THREADS``,
    ``$OMP_NUM_THREADS``, then ``n_threads``). Returns the number of threads in use.
    """
    n, _ = resolve_threads(n_threads, cli_threads)
    torch.set_num_threads(n)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return torch.get_num_threads()


def sync(device: torch.device) -> None:
    """Wait for queued CUDA kernels (a no-op on CPU): call before reading a clock."""
    # Kernels are asynchronous on CUDA: without this, time would be charged to whichever region
    # happens to wait first, not the one that did the work.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: The instruction-set flags that decide how fast a bf16 or fp32 product runs on a CPU. Hosts of the
#: same "2 cores" differ here: with AVX-512 BF16 or AMX a bf16 step is cheap and scoring several
#: tokens costs little more than one; on AVX2 alone bf16 is converted in software (docs/field_notes.md).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_identity(cpuinfo: str | None = None) -> dict:
    """The CPU's model name, which of :data:`CPU_FLAGS` it has, and torch's kernel capability.

    Read from ``/proc/cpuinfo`` (Linux; ``cpuinfo`` replaces its text in tests); where it is
    unreadable the model is ``"unknown"`` and the flags are empty.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    model, flags = "unknown", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        capability = "unknown"
    return {"cpu_model": model, "cpu_flags": [f for f in CPU_FLAGS if f in flags], "torch_cpu_capability": capability}


def hardware_info(device: torch.device) -> dict:
    """Processor (model, ISA flags), core count, threads and (on CUDA) the GPU name, for provenance sidecars."""
    info = {
        "processor": platform.processor() or platform.machine(),
        **cpu_identity(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


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
    # The runner the decoding loops use (lean or HF forward, float32 logits), called as they call
    # it (a restricted head's class logits, not expanded to the vocabulary): the costs calibrated
    # here are the costs the loop pays.
    from sdsl_lib.measurement.kv_cache import runner_for

    if max_tokens < 1 or repeats < 1:
        raise ValueError(f"max_tokens and repeats must be >= 1, got {max_tokens}, {repeats}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    run = runner_for(model)
    prefix = prefix.to(device)
    run(prefix, keep_last=True)
    g = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    new = torch.randint(0, vocab, (1, max_tokens), generator=g).to(device)
    out = np.empty((warmup + repeats, max_tokens))
    for r in range(warmup + repeats):
        for t in range(1, max_tokens + 1):
            sync(device)
            t0 = time.perf_counter()
            logits = run(new[:, :t], keep_last=False, expand=False)
            # Reading a value forces the computation to finish (and, on CUDA, to leave the queue).
            logits[-1, 0].item()
            sync(device)
            out[r, t - 1] = time.perf_counter() - t0
            run.crop_to(prefix.shape[1])  # every call sees the same prefix
    return out[warmup:]


def _proc_stat() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], sum(v)  # busy (user nice system irq softirq steal), total


class CpuLoad:
    """The CPU load of *other* processes during a block, in cores (``/proc/stat`` minus this process).

    ``with CpuLoad() as load: ...`` then ``load.other_cores``. On shared cores a decode step runs
    5-20 times slower while other work runs (docs/field_notes.md "Timing hygiene"), so every timed
    call records it and calls above a limit are flagged. NaN where ``/proc/stat`` is absent.
    """

    def __enter__(self):
        self._t0, self._own0 = time.perf_counter(), sum(os.times()[:2])
        try:
            self._stat0 = _proc_stat()
        except OSError:
            self._stat0 = None
        return self

    def __exit__(self, *exc):
        wall = max(time.perf_counter() - self._t0, 1e-9)
        own = (sum(os.times()[:2]) - self._own0) / wall
        self.other_cores = float("nan")
        if self._stat0 is not None:
            busy, _ = _proc_stat()
            total = (busy - self._stat0[0]) / os.sysconf("SC_CLK_TCK") / wall
            self.other_cores = max(0.0, total - own)
        return False
