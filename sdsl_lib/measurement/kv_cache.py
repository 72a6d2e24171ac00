r"""Model plumbing shared by the decoding loops: a KV-cached model runner, devices, input checks, sampling.

Split out of :mod:`sdsl_lib.measurement.decoding` so that the loops themselves stay short; the names
here are private to the measurement package (:mod:`~sdsl_lib.measurement.hf_baseline` and
:mod:`~sdsl_lib.measurement.timing` use them too).
"""

from __future__ import annotations

import contextlib
import inspect
import math

import numpy as np
import torch

from sdsl_lib.measurement.timing import sync as _sync

__all__ = [
    "_Runner",
    "runner_for",
    "_device_of",
    "_sync",
    "_eval_mode",
    "_vocab_size",
    "_check_common",
    "_check_pair",
    "_probs",
    "_draw",
    "cache_kwarg",
]

# --------------------------------------------------------------------------------------------------
# Model plumbing shared by both loops
# --------------------------------------------------------------------------------------------------


def cache_kwarg(model: torch.nn.Module) -> str:
    """The name of ``model.forward``'s KV-cache argument: ``cache`` (transformers 5.24) or
    ``past_key_values`` (5.17 and 4.x; deprecated in 5.24)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class _Runner:
    """Calls a causal LM with a :class:`~transformers.DynamicCache`, across transformers versions.

    transformers 5.24 names the cache argument ``cache`` (``past_key_values`` is deprecated there);
    5.17 and 4.x name it ``past_key_values``. The forward signature is inspected once. The cache is
    mutated in place by the model, so the returned cache object is not needed. Its logits always
    span the full vocabulary (a restricted-head draft's HF forward expands them itself), so it has
    no head map: :attr:`vocab_map` is None and ``expand`` changes nothing.
    """

    vocab_map = None

    def __init__(self, model: torch.nn.Module):
        from transformers import DynamicCache

        self.model = model
        params = inspect.signature(model.forward).parameters
        self.cache_kw = cache_kwarg(model)
        # Computing logits only for the positions we read saves the lm_head on long prefixes.
        self.can_keep = "logits_to_keep" in params
        try:
            self.cache = DynamicCache(config=model.config)
        except TypeError:  # older signature without ``config``
            self.cache = DynamicCache()
        self.length = 0  # tokens held by the cache, tracked on the host to avoid syncs

    def __call__(self, ids: torch.Tensor, keep_last: bool, expand: bool = True) -> torch.Tensor:
        """Feed ``ids`` (1, m); return float32 logits, shape (m, V) or (1, V) if ``keep_last``."""
        kwargs = {self.cache_kw: self.cache, "use_cache": True}
        if keep_last and self.can_keep:
            kwargs["logits_to_keep"] = 1
        logits = self.model(input_ids=ids, **kwargs).logits[0]
        self.length += ids.shape[1]
        return (logits[-1:] if keep_last else logits).float()

    def crop_to(self, length: int) -> None:
        """Drop cached positions beyond ``length`` (negative ``crop`` works in 4.x and 5.x)."""
        remove = self.length - length
        if remove > 0:
            self.cache.crop(-remove)
            self.length = length


def runner_for(model: torch.nn.Module):
    """The KV-cached runner the decoding loops feed ``model`` through.

    A :class:`~sdsl_lib.measurement.lean_llama.LeanLlama` hands out its own lean runner; any other
    model runs through its transformers forward (:class:`_Runner`). Both have the same interface:
    ``runner(ids, keep_last, expand=True) -> float32 logits``, ``runner.crop_to(length)``,
    ``runner.length`` and ``runner.vocab_map`` (a restricted head's map, whose class logits
    ``expand=False`` returns; None when the logits span the vocabulary).
    """
    make = getattr(model, "runner", None)
    return make() if callable(make) else _Runner(model)


def _device_of(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # a parameter-free module: treat as CPU
        return torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(*models: torch.nn.Module):
    """Run in eval mode (no dropout) and restore each model's previous mode afterwards."""
    modes = [m.training for m in models]
    try:
        for m in models:
            m.eval()
        yield
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)


def _vocab_size(model: torch.nn.Module) -> int | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    return getattr(config, "vocab_size", None)


def _check_common(input_ids, max_new_tokens, temperature, generator, device) -> torch.Tensor:
    if not isinstance(input_ids, torch.Tensor):
        raise ValueError(f"input_ids must be a torch.LongTensor, got {type(input_ids).__name__}")
    if input_ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(f"input_ids must have shape (T,) or (1, T) (batch size 1 only), got {tuple(input_ids.shape)}")
    if input_ids.shape[1] < 1:
        raise ValueError("input_ids must hold at least one token (T >= 1)")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens}")
    if (
        not isinstance(temperature, (int, float, np.floating, np.integer))
        or not math.isfinite(float(temperature))
        or temperature < 0
    ):
        raise ValueError(f"temperature must be a finite float >= 0 (0 = greedy), got {temperature!r}")
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f"generator must live on the models' device ({device}), got one on {generator.device}")
    return input_ids.to(device=device, dtype=torch.long)


def _check_pair(target, draft, gamma) -> tuple[int, torch.device]:
    """``gamma`` as an int and the models' common device; raises ``ValueError`` on a bad pair."""
    if isinstance(gamma, bool) or not isinstance(gamma, (int, np.integer)) or gamma < 1:
        raise ValueError(f"gamma must be an int >= 1, got {gamma!r}")
    device = _device_of(target)
    if _device_of(draft) != device:
        raise ValueError(f"draft must be on the target's device ({device}), got {_device_of(draft)}")
    v_target, v_draft = _vocab_size(target), _vocab_size(draft)
    if v_target is not None and v_draft is not None and v_target != v_draft:
        raise ValueError(
            f"draft vocab_size ({v_draft}) must equal target vocab_size ({v_target}): "
            "speculative decoding compares distributions over the same tokens"
        )
    return int(gamma), device


def _probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """:math:`\\operatorname{softmax}(\\ell / T)` over the last axis, float32."""
    return torch.softmax(logits / temperature, dim=-1)


def _draw(weights: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One index per row of ``weights`` (..., V), drawn with probability proportional to its entry.

    The law of ``torch.multinomial(weights, 1)`` (same output shape (..., 1); weights need not sum
    to 1), by inverse transform: the first index whose float64 cumulative weight exceeds a uniform
    times the total. Why not multinomial: on these CPUs one ``torch.multinomial`` draw over the
    49,152-token vocabulary costs 1.26 ms and over 8,192 classes 0.34 ms, against 0.19 ms and
    0.08 ms here (2 threads, 2026-12-03), and the loops draw once per token: 6% of a target step.
    """
    cdf = torch.cumsum(weights, dim=-1, dtype=torch.float64)
    total = cdf[..., -1:]
    u = torch.rand(total.shape, generator=generator, dtype=torch.float64, device=weights.device) * total
    index = torch.searchsorted(cdf, u, right=True)  # right: an index with zero weight is never drawn
    # u * total can round up to the total (probability about 2**-53): keep the last index with weight.
    return torch.minimum(index, torch.searchsorted(cdf, total, right=False))


# --------------------------------------------------------------------------------------------------
# Autoregressive baseline
# --------------------------------------------------------------------------------------------------
