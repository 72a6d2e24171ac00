r"""A lean inference forward for Llama checkpoints: the same model, less framework per step.

Why. At batch 1 on two CPU cores a SmolLM2-135M decode step through the Hugging Face forward spends
a fifth to a quarter of its time outside the matrix products: building attention masks, the
:class:`~transformers.DynamicCache` bookkeeping, rotary tables recomputed per call, three separate
q/k/v and two gate/up products per layer (docs/field_notes.md "A real target": 31.7 ms HF against
26.7 ms lean in fp32). Speculative decoding pays only if the target's step is cheap relative to
the draft's and the loop around them, so our loop runs the *same weights* through this forward:

* the q, k, v projections are one matrix product (their weights concatenated once), and so are the
  MLP's gate and up projections;
* the KV cache is preallocated per layer (grown by doubling) and cropping is a length reset;
* the rotary cos/sin tables are computed once for the cache's capacity;
* attention is :func:`torch.nn.functional.scaled_dot_product_attention` with grouped-query heads
  (``enable_gqa``), a causal mask only when more than one token is fed, over a float32 cache (bf16
  keys and values convert to float32 exactly; the float32 kernel is about 4x faster than the bf16
  one at batch 1 here, 22 against 86 microseconds a layer).

A model whose linears are fbgemm's fp16 ones (:func:`sdsl_lib.measurement.fp16_weights.to_fp16_weights`,
the ``"fp16w"`` timing numerics for hosts without bf16 units) gets its fused products packed the
same way, so the lean and the HF forward multiply by the same fp16 weights.

Numerics follow ``transformers.models.llama`` (5.x) operation by operation: RMSNorm is computed in
float32 and cast back before the weight multiplies it, the rotary tables are computed in float32
and cast to the model's dtype. In fp32 the logits equal the HF forward's (tests:
``tests/measurement/test_lean_llama.py`` compares them on every path: prefill, one token, several
tokens, after a crop). In bf16 they agree to bf16 rounding, not bit for bit: a fused product sums
in another order than two separate ones. Exactness claims are therefore made in fp32, as everywhere
in this project.

What it supports: ``model_type == "llama"`` with SiLU MLPs, no biases, ``pretraining_tp == 1`` and
default (unscaled) rotary embeddings; that covers SmolLM2 and every draft this project trains,
including the restricted-head drafts of :mod:`sdsl_lib.measurement.distill` (the head-class map is
applied on the way in and out). Anything else gets a :class:`ValueError` naming the feature;
:func:`with_forward` with ``forward="auto"`` keeps such a model on the HF forward instead.

The decoding loops (:mod:`sdsl_lib.measurement.decoding`) ask a model for its runner through
:func:`sdsl_lib.measurement.kv_cache.runner_for`; a :class:`LeanLlama` hands out a
:class:`LeanRunner`, anything else gets the HF-forward runner.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sdsl_lib.measurement import fp16_weights

__all__ = ["FORWARDS", "LeanLlama", "LeanRunner", "lean_unsupported", "with_forward", "hf_model"]

#: The forwards a measurement may run: ``"hf"`` (transformers), ``"lean"`` (this module; an
#: unsupported model is an error) and ``"auto"`` (lean where supported, HF elsewhere).
FORWARDS = ("hf", "lean", "auto")
_FIRST_CAPACITY = 256


def _rope_theta(config) -> tuple[float, str]:
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict):  # transformers 5.x
        return float(params.get("rope_theta", 10000.0)), str(params.get("rope_type", "default"))
    scaling = getattr(config, "rope_scaling", None)  # transformers 4.x
    kind = "default" if not scaling else str(scaling.get("rope_type", scaling.get("type", "unknown")))
    return float(getattr(config, "rope_theta", 10000.0)), kind


def lean_unsupported(model) -> str | None:
    """Why :class:`LeanLlama` cannot run ``model`` (one phrase), or None when it can."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) != "llama":
        return f"model_type must be 'llama', got {getattr(config, 'model_type', None)!r}"
    if not hasattr(model, "model") or not hasattr(model.model, "layers"):
        return "the model must be a LlamaForCausalLM (with .model.layers)"
    checks = {
        "hidden_act": (getattr(config, "hidden_act", "silu"), "silu"),
        "attention_bias": (bool(getattr(config, "attention_bias", False)), False),
        "mlp_bias": (bool(getattr(config, "mlp_bias", False)), False),
        "pretraining_tp": (int(getattr(config, "pretraining_tp", 1) or 1), 1),
        "rope_type": (_rope_theta(config)[1], "default"),
    }
    for name, (got, want) in checks.items():
        if got != want:
            return f"{name} must be {want!r}, got {got!r}"
    return None


def hf_model(model):
    """The transformers model behind ``model`` (itself unless it is a :class:`LeanLlama`)."""
    return model.hf if isinstance(model, LeanLlama) else model


def with_forward(model, forward: str):
    """``model`` prepared for the decoding loops with the chosen forward (see :data:`FORWARDS`).

    ``"hf"`` returns the model unchanged; ``"lean"`` wraps it in a :class:`LeanLlama` (raising when
    it is not supported); ``"auto"`` wraps it when supported and returns it unchanged otherwise
    (the prompt-lookup draft, a user's non-Llama checkpoint).
    """
    if forward not in FORWARDS:
        raise ValueError(f"forward must be one of {FORWARDS}, got {forward!r}")
    if forward == "hf" or isinstance(model, LeanLlama):
        return model
    if forward == "auto" and lean_unsupported(model) is not None:
        return model
    return LeanLlama(model)


class LeanLlama(torch.nn.Module):
    """A Llama causal LM's weights, packed for the lean forward; the HF model stays at :attr:`hf`.

    Holds views of the HF model's parameters plus the two concatenated products per layer (so
    about one extra copy of the attention and MLP weights). Inference only: it never trains.
    """

    def __init__(self, model):
        super().__init__()
        why = lean_unsupported(model)
        if why is not None:
            raise ValueError(f"model: the lean forward cannot run this model ({why}); use forward='hf'")
        self.hf = model.eval()
        self.config = model.config
        self.vocab_map = getattr(model, "vocab_map", None)  # restricted-head drafts (distill)
        cfg, body = model.config, model.model
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads or cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.eps = float(cfg.rms_norm_eps)
        self.theta = _rope_theta(cfg)[0]
        # fp16w numerics (sdsl_lib.measurement.fp16_weights): the HF model's linears are fbgemm's fp16
        # ones; the fused products are packed the same way, so both forwards use the same weights.
        self.fp16_weights = fp16_weights.is_fp16_linear(model.lm_head)

        def product(*modules):
            weights = [fp16_weights.dense_weight(m) for m in modules]
            w = torch.cat(weights) if len(weights) > 1 else weights[0]
            return fp16_weights.pack(w) if self.fp16_weights else w

        with torch.no_grad():
            self.layers = [
                (
                    layer.input_layernorm.weight,
                    product(layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj),
                    product(layer.self_attn.o_proj),
                    layer.post_attention_layernorm.weight,
                    product(layer.mlp.gate_proj, layer.mlp.up_proj),
                    product(layer.mlp.down_proj),
                )
                for layer in body.layers
            ]
            self.head = product(model.lm_head)
        self.embed = body.embed_tokens.weight
        self.norm = body.norm.weight

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    def forward(self, *args, **kwargs):  # the HF entry points (generate, teacher forcing) stay available
        return self.hf(*args, **kwargs)

    def runner(self) -> LeanRunner:
        """A fresh KV-cached runner (the decoding loops' interface, :class:`LeanRunner`)."""
        return LeanRunner(self)

    def rope_tables(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape (length, head_dim) in the model's dtype, as HF computes them (float32 first)."""
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))
        freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1).to(self.embed.device)
        return emb.cos().to(self.dtype), emb.sin().to(self.dtype)


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # HF's LlamaRMSNorm: normalise in float32, cast back, then multiply by the weight in x's dtype.
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _linear(x: torch.Tensor, w) -> torch.Tensor:
    # A dense weight, or one packed in fp16 for fbgemm (fp16w numerics: fp32 in, fp32 out).
    return fp16_weights.linear(x, w) if fp16_weights.is_packed(w) else F.linear(x, w)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


class LeanRunner:
    """Feeds tokens through a :class:`LeanLlama` with a preallocated KV cache (batch 1).

    Same interface as the HF-forward runner of :mod:`sdsl_lib.measurement.kv_cache`: call it with
    ids of shape (1, m) for float32 logits; :meth:`crop_to` rolls the cache back. For a
    restricted-head draft, :attr:`vocab_map` is its head map and ``expand=False`` returns the head's
    class logits (the decoding loop draws in class space, :class:`~sdsl_lib.measurement.decoding._DraftSpace`).
    """

    def __init__(self, lean: LeanLlama, capacity: int = _FIRST_CAPACITY):
        self.lean = lean
        self.vocab_map = lean.vocab_map
        self.length = 0
        self.capacity = 0
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self._grow(capacity)

    def _grow(self, need: int) -> None:
        cap = max(need, 2 * self.capacity, _FIRST_CAPACITY)
        lean = self.lean
        shape = (1, lean.n_kv, cap, lean.head_dim)
        # The cache is float32 whatever the weights' dtype: a bf16 key or value converts to float32
        # exactly, and on these CPUs SDPA over float32 is about 4x faster than over bf16 at batch 1.
        new_k = [torch.zeros(shape, dtype=torch.float32, device=lean.embed.device) for _ in lean.layers]
        new_v = [torch.zeros(shape, dtype=torch.float32, device=lean.embed.device) for _ in lean.layers]
        for old, new in zip(self.k + self.v, new_k + new_v):
            new[:, :, : self.length] = old[:, :, : self.length]
        self.k, self.v, self.capacity = new_k, new_v, cap
        self.cos, self.sin = lean.rope_tables(cap)

    @torch.inference_mode()
    def __call__(self, ids: torch.Tensor, keep_last: bool, expand: bool = True) -> torch.Tensor:
        """Feed ``ids`` (1, m); return float32 logits, shape (m, V) or (1, V) if ``keep_last``.

        With a head map and ``expand=False`` the logits are the head's (m, K) class logits.
        """
        lean = self.lean
        m = ids.shape[1]
        start, end = self.length, self.length + m
        if end > self.capacity:
            self._grow(end)
        if lean.vocab_map is not None:
            ids = lean.vocab_map.to_small.to(ids.device)[ids]
        x = F.embedding(ids, lean.embed)
        cos, sin = self.cos[start:end], self.sin[start:end]
        # One token attends to the whole cache; several need the causal mask among themselves.
        mask = None if m == 1 else torch.ones(m, end, dtype=torch.bool, device=x.device).tril(start)
        nh, nkv, hd = lean.n_heads, lean.n_kv, lean.head_dim
        dq, dkv = nh * hd, nkv * hd
        scale = 1.0 / math.sqrt(hd)
        for i, (w_in, w_qkv, w_o, w_post, w_gu, w_down) in enumerate(lean.layers):
            qkv = _linear(_rms_norm(x, w_in, lean.eps), w_qkv)
            q = qkv[..., :dq].view(1, m, nh, hd).transpose(1, 2)
            k = qkv[..., dq : dq + dkv].view(1, m, nkv, hd).transpose(1, 2)
            v = qkv[..., dq + dkv :].view(1, m, nkv, hd).transpose(1, 2)
            self.k[i][:, :, start:end] = _rotate(k, cos, sin)
            self.v[i][:, :, start:end] = v
            att = F.scaled_dot_product_attention(
                _rotate(q, cos, sin).float(),
                self.k[i][:, :, :end],
                self.v[i][:, :, :end],
                attn_mask=mask,
                scale=scale,
                enable_gqa=nkv != nh,
            )
            x = x + _linear(att.transpose(1, 2).reshape(1, m, dq).to(x.dtype), w_o)
            gate, up = _linear(_rms_norm(x, w_post, lean.eps), w_gu).chunk(2, dim=-1)
            x = x + _linear(F.silu(gate) * up, w_down)
        self.length = end
        if keep_last:
            x = x[:, -1:]
        logits = _linear(_rms_norm(x, lean.norm, lean.eps), lean.head)[0].float()
        if lean.vocab_map is not None and expand:
            logits = lean.vocab_map.expand_logits(logits)
        return logits

    def crop_to(self, length: int) -> None:
        """Forget cached positions beyond ``length`` (they are overwritten by the next call)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"length must be in [0, {self.length}], got {length}")
        self.length = length
