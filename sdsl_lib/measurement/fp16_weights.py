r"""The target with fp16 weights packed for fbgemm: the memory-bound regime on hosts without bf16 units.

Why. Speculative decoding pays only where scoring several tokens in one target pass costs little
more than scoring one. On a host whose cores have AVX-512 BF16 or AMX, a bf16 pass is that: SmolLM2's
4 tokens cost 1.13 one-token steps (the committed ``smollm2`` run). On a 2-core AMD EPYC with AVX2
only, the bf16 matrix product has no fast kernel: 4 tokens cost 2.4-2.8 steps and Eq. 1 predicts a
*slow-down* for every draft (``benchmarks/bench_real_target_regime.py``; docs/field_notes.md "Not every
2-core host"). fp32 is row-exact but reads twice the bytes (one step 53 ms against 24 ms in bf16).

fbgemm's fp16 linear (``torch.ops.quantized.linear_dynamic_fp16``, PyTorch's ``quantize_dynamic`` with
``dtype=torch.float16``) stores each weight matrix in fp16, packed once, converts it to fp32 inside
the kernel (F16C) and accumulates in fp32; the activations stay fp32. So a pass reads half of fp32's
bytes and does fp32 arithmetic: on that AVX2 host the 211 products of one SmolLM2 pass cost 18.7 ms
for 1 token and 19.8 ms for 4 (v_4 1.06; bf16: 16.9 and 57.9 ms). The name of this numerics in the
project is ``"fp16w"`` (a ``timing_dtype`` of :class:`~sdsl_lib.measurement.profiles.RealSpec`).

Numerics. The weights are the fp32 checkpoint's rounded to fp16 (relative error at most 2^-11, eight
times finer than bf16's 2^-8); products and everything else are fp32. A row's result does not depend
on the other rows of the pass (within 3e-6 on the test above: fp32 summation order), unlike int8
dynamic quantisation, whose activation scale is taken over the whole pass and moves every row's
logits with the others' (0.87 on the same test; that is why int8 is not offered). Exactness is still
claimed in fp32 only, as everywhere in this project.

Where the packed weights run: :func:`to_fp16_weights` swaps a model's ``nn.Linear`` modules for
fbgemm's (the transformers forward, so HF assisted generation and teacher forcing use the same
weights), and :class:`sdsl_lib.measurement.lean_llama.LeanLlama` packs its fused products with
:func:`pack` and calls :func:`linear`.
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["available", "pack", "linear", "is_packed", "to_fp16_weights", "is_fp16_linear", "dense_weight"]


def available() -> bool:
    """Whether this torch build has fbgemm's fp16 linear (x86 builds do)."""
    try:
        torch.ops.quantized.linear_prepack_fp16(torch.zeros(1, 1), None)
    except (RuntimeError, AttributeError):
        return False
    return True


def _require() -> None:
    if not available():
        raise RuntimeError(
            "timing_dtype 'fp16w' needs fbgemm's fp16 linear (torch.ops.quantized.linear_prepack_fp16), "
            f"which this torch build ({torch.__version__}, engines {torch.backends.quantized.supported_engines}) "
            "lacks; use timing_dtype 'bf16' or 'fp32'"
        )


def pack(weight: torch.Tensor):
    """``weight`` (out, in), rounded to fp16 and packed for :func:`linear` (a torch script object)."""
    _require()
    if weight.dim() != 2:
        raise ValueError(f"weight must be a matrix (out, in), got shape {tuple(weight.shape)}")
    return torch.ops.quantized.linear_prepack_fp16(weight.detach().float().contiguous(), None)


def is_packed(w) -> bool:
    """True for what :func:`pack` returns (anything that is not a plain tensor)."""
    return not isinstance(w, torch.Tensor)


def linear(x: torch.Tensor, packed) -> torch.Tensor:
    """``x @ W.T`` with the packed fp16 ``W``: fp32 ``x`` in, fp32 out (any leading shape)."""
    return torch.ops.quantized.linear_dynamic_fp16(x.float(), packed)


def is_fp16_linear(module) -> bool:
    """Whether ``module`` is fbgemm's fp16 dynamic linear (as :func:`to_fp16_weights` leaves them)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return isinstance(module, DynamicLinear) and module._packed_params.dtype == torch.float16


def dense_weight(module) -> torch.Tensor:
    """The (out, in) fp32 weight of an ``nn.Linear`` or of an fp16 dynamic linear (fp16-rounded values)."""
    return module.weight() if is_fp16_linear(module) else module.weight


def to_fp16_weights(model):
    """``model`` (fp32) with every ``nn.Linear`` replaced, in place, by fbgemm's fp16 linear; returned.

    Embeddings and norms stay fp32 (a tied head gets its own packed copy; the embedding lookup keeps
    the fp32 table). Inference only: the packed weights have no gradient.
    """
    _require()
    if any(p.dtype != torch.float32 for p in model.parameters()):
        raise ValueError("model must be fp32 before its weights are packed in fp16 (load the fp32 checkpoint)")
    with warnings.catch_warnings():  # torch.ao's eager quantisation announces its move to torchao
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.float16, inplace=True)
    return model.eval()
