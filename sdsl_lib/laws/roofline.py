r"""A roofline step-time model: from tokens per FLOP to tokens per second (numpy only, no I/O).

SDSL's throughput (Eq. 3) counts FLOPs and charges the target's verification of :math:`\gamma + 1`
tokens like a single step. That is the memory-bound picture: at small batch a decode step reads every
weight once, and scoring a few more tokens in the same pass is free. A roofline (Williams, Waterman
& Patterson 2009) makes it explicit. A forward step of a model with :math:`P` parameters that
processes :math:`T` new tokens for each of :math:`B` sequences, each with a KV cache of :math:`K`
bytes, costs

.. math:: t(P, T, B) = \max\!\left(\frac{b P + B K}{\beta},\; \frac{2 P T B}{\pi}\right) + t_0

with :math:`b` bytes per parameter, :math:`\beta` memory bandwidth (bytes/s), :math:`\pi` peak
FLOP/s and :math:`t_0` a fixed per-step overhead (kernel launches, framework, sampling). Weights and
caches are read once per step whatever :math:`T` is; the compute term overtakes the memory term past
the ridge point. The KV cache of a sequence of :math:`S` tokens holds
:math:`2\,L\,h_{kv}\,d_h\,b_{kv}` bytes per token (keys and values of every layer).

Ignored on purpose (say so when you quote a number): attention FLOPs, activation traffic,
communication in multi-device serving, and the efficiency gap between datasheet peaks and real
kernels (typically 60-80% of bandwidth and 50-70% of peak FLOP/s).

The hardware argument ``hw`` of every function is any object with the attributes
``bandwidth_bytes_per_s``, ``peak_flops``, ``bytes_per_param`` and ``overhead_s`` (the planner's
:class:`sdsl_lib.planner.hardware.HardwareSpec`, with its presets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdsl_lib.laws._validate import (
    as_array,
    check_broadcast,
    check_positive,
    check_range,
    check_result,
    scalar_or_array,
)
from sdsl_lib.laws.speculation import expected_tokens_per_iteration

__all__ = [
    "Roofline",
    "TransformerShape",
    "transformer_shape",
    "kv_bytes_per_token",
    "derived_kv_bytes_per_token",
    "step_time",
    "step_seconds",
    "speculative_tokens_per_second",
    "target_only_tokens_per_second",
    "memory_required",
]


@dataclass(frozen=True)
class Roofline:
    """The four numbers of the step-time model (raw SI units)."""

    bandwidth_bytes_per_s: float
    peak_flops: float
    bytes_per_param: float
    overhead_s: float


@dataclass(frozen=True)
class TransformerShape:
    """What the KV cache needs of a decoder: layers, KV heads and head width."""

    n_layers: int
    kv_heads: int
    head_dim: int
    derived: bool  # True when guessed from the parameter count by :func:`transformer_shape`


#: Aspect ratio d_model / n_layers of the default shape (LLaMA-3-8B: 4096/32; OPT-13B: 5120/40).
ASPECT = 128
#: Query heads per KV head of the default shape (grouped-query attention as in LLaMA-3 and Qwen2.5).
GQA_GROUP = 8
HEAD_DIM = 128


def _derived_shape(p):
    """Layers and KV heads of the default shape for parameter counts ``p`` (array in, arrays out)."""
    layers = np.maximum(1, np.rint((np.asarray(p, float) / (12.0 * ASPECT**2)) ** (1.0 / 3.0)))
    heads = np.maximum(1, np.rint(ASPECT * (np.asarray(p, float) / (12.0 * ASPECT**2)) ** (1.0 / 3.0) / HEAD_DIM))
    return layers, np.maximum(1, np.rint(heads / GQA_GROUP))


def transformer_shape(n_params, n_layers=None, kv_heads=None, head_dim=None) -> TransformerShape:
    r"""A decoder's KV shape, given or derived from its parameter count.

    Missing values come from a stated approximation: :math:`P \approx 12 L d^2` (Kaplan et al.
    2020, embeddings ignored) with aspect ratio :math:`d = 128 L`, so :math:`L = (P/(12\cdot
    128^2))^{1/3}`; head width 128; query heads :math:`d/128`, grouped 8 to a KV head (at least 1).
    For 70B this gives 71 layers and 9 KV heads (LLaMA-3-70B: 80 and 8).

    Examples
    --------
    >>> transformer_shape(70e9)
    TransformerShape(n_layers=71, kv_heads=9, head_dim=128, derived=True)
    """
    p = float(check_positive("n_params", as_array("n_params", n_params)))
    derived = n_layers is None or kv_heads is None or head_dim is None
    d_layers, d_kv = _derived_shape(p)
    shape = {
        "n_layers": int(d_layers) if n_layers is None else n_layers,
        "kv_heads": int(d_kv) if kv_heads is None else kv_heads,
        "head_dim": HEAD_DIM if head_dim is None else head_dim,
    }
    for name, v in shape.items():
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return TransformerShape(*(int(v) for v in shape.values()), derived)


def derived_kv_bytes_per_token(n_params, bytes_per_value):
    """KV-cache bytes per token of the default shape, for many parameter counts at once (drafts)."""
    p = check_positive("n_params", as_array("n_params", n_params))
    b = check_positive("bytes_per_value", as_array("bytes_per_value", bytes_per_value))
    layers, kv = _derived_shape(p)
    return scalar_or_array(2.0 * layers * kv * HEAD_DIM * b)


def kv_bytes_per_token(shape: TransformerShape, bytes_per_value) -> float:
    r"""KV-cache bytes per token of context: :math:`2\,L\,h_{kv}\,d_h\,b_{kv}` (keys and values).

    Examples
    --------
    >>> kv_bytes_per_token(TransformerShape(80, 8, 128, False), 2)   # LLaMA-3-70B in bf16
    327680.0
    """
    b = float(check_positive("bytes_per_value", as_array("bytes_per_value", bytes_per_value)))
    return 2.0 * shape.n_layers * shape.kv_heads * shape.head_dim * b


def step_seconds(p, t, b, hw, kv_bytes=0.0):
    """Roofline step time on validated arrays: the one formula every caller (and the fit) uses."""
    # Weights and caches are read once per step (memory term); every token of every sequence costs
    # 2P FLOPs (compute term); the slower of the two sets the pace, the overhead is paid regardless.
    memory = (hw.bytes_per_param * p + b * kv_bytes) / hw.bandwidth_bytes_per_s
    return np.maximum(memory, 2.0 * p * t * b / hw.peak_flops) + hw.overhead_s


def step_time(n_params, tokens, batch_size, hw, kv_bytes=0.0):
    r"""Seconds for one forward step: :math:`\max((bP + BK)/\beta,\ 2PTB/\pi) + t_0` (roofline).

    Parameters
    ----------
    n_params : array_like
        Parameters :math:`P > 0` of the model that runs the step.
    tokens : array_like
        New tokens per sequence :math:`T \ge 1` (1 for a draft step, :math:`\gamma + 1` to verify).
    batch_size : array_like
        Sequences :math:`B \ge 1` decoded together.
    hw : Roofline-like
        Bandwidth, peak FLOP/s, bytes per parameter and overhead.
    kv_bytes : array_like
        KV-cache bytes :math:`K \ge 0` read per sequence per step (context x :func:`kv_bytes_per_token`).

    Returns
    -------
    float or ndarray
        Seconds, broadcast over the inputs.

    Examples
    --------
    >>> h = Roofline(1e12, 1e14, 2, 1e-3)            # 1 TB/s, 100 TFLOP/s, bf16, 1 ms
    >>> round(step_time(1e9, 1, 1, h) * 1e3, 3)      # 2 GB / 1 TB/s = 2 ms, + 1 ms
    3.0
    >>> round(step_time(1e9, 200, 1, h) * 1e3, 3)    # 2*1e9*200 / 1e14 = 4 ms > 2 ms, + 1 ms
    5.0
    >>> round(step_time(1e9, 1, 4, h, kv_bytes=0.5e9) * 1e3, 3)  # (2 GB + 4 x 0.5 GB) / 1 TB/s + 1 ms
    5.0
    """
    p = check_positive("n_params", as_array("n_params", n_params))
    t = check_range("tokens", as_array("tokens", tokens), 1.0, np.inf, high_open=True)
    b = check_range("batch_size", as_array("batch_size", batch_size), 1.0, np.inf, high_open=True)
    k = check_range("kv_bytes", as_array("kv_bytes", kv_bytes), 0.0, np.inf, high_open=True)
    check_broadcast(n_params=p, tokens=t, batch_size=b, kv_bytes=k)
    with np.errstate(over="ignore"):
        out = step_seconds(p, t, b, hw, k)
    return scalar_or_array(check_result("the step time", out, "n_params, tokens, batch_size, kv_bytes"))


def speculative_tokens_per_second(alpha, gamma, n_draft, m_target, hw, batch_size=1, kv_draft=0.0, kv_target=0.0):
    r"""Decoded tokens per second of speculative decoding under the roofline model.

    .. math::
        \text{tok/s} = \frac{B\,\frac{1 - \alpha^{\gamma+1}}{1 - \alpha}}
                            {\gamma\, t(N, 1, B) + t(M, \gamma + 1, B)}

    One iteration runs :math:`\gamma` draft steps of one token and one target step that scores
    :math:`\gamma + 1` positions, for each of :math:`B` sequences, and yields Eq. 12's expected
    tokens per sequence. :math:`\gamma = 0` is plain decoding with the target.

    Parameters
    ----------
    alpha : array_like
        Acceptance rate in [0, 1].
    gamma : array_like
        Lookahead :math:`0 \le \gamma < \infty` (integers in practice).
    n_draft, m_target : array_like
        Draft and target parameters, :math:`0 < N < M`.
    hw : Roofline-like
    batch_size : array_like
        Sequences per step :math:`B \ge 1`.
    kv_draft, kv_target : array_like
        KV-cache bytes per sequence of the draft and of the target (default 0: short contexts).

    Notes
    -----
    Every sequence in a batch is assumed to advance by the expected count; a real engine waits for
    the slowest sequence or pads, which costs a little more at large batch.

    Examples
    --------
    >>> h = Roofline(1e12, 1e14, 2, 0.0)
    >>> round(speculative_tokens_per_second(0.0, 0, 1e8, 1e10, h), 3)   # target alone: 1 / 20 ms
    50.0
    >>> round(speculative_tokens_per_second(0.8, 4, 1e8, 1e10, h), 2)   # 3.3616 / (4*0.2 + 20) ms
    161.62
    """
    e = np.asarray(expected_tokens_per_iteration(alpha, gamma))
    g = check_range("gamma", as_array("gamma", gamma), 0.0, np.inf, high_open=True)
    n = check_positive("n_draft", as_array("n_draft", n_draft))
    m = check_positive("m_target", as_array("m_target", m_target))
    b = check_range("batch_size", as_array("batch_size", batch_size), 1.0, np.inf, high_open=True)
    kd = check_range("kv_draft", as_array("kv_draft", kv_draft), 0.0, np.inf, high_open=True)
    kt = check_range("kv_target", as_array("kv_target", kv_target), 0.0, np.inf, high_open=True)
    check_broadcast(alpha=e, gamma=g, n_draft=n, m_target=m, batch_size=b, kv_draft=kd, kv_target=kt)
    with np.errstate(over="ignore", invalid="ignore"):
        seconds = g * step_seconds(n, 1.0, b, hw, kd) + step_seconds(m, g + 1.0, b, hw, kt)
    check_result("the iteration time", seconds, "gamma, n_draft, m_target, batch_size")
    return scalar_or_array(b * e / seconds)


def target_only_tokens_per_second(m_target, hw, batch_size=1, kv_target=0.0):
    r"""Tokens per second of plain decoding with the target: :math:`B / t(M, 1, B)`.

    Examples
    --------
    >>> round(target_only_tokens_per_second(70e9, Roofline(4.8e12, 989e12, 2, 0.5e-3)), 2)  # 140 GB / 4.8 TB/s
    33.7
    """
    m = check_positive("m_target", as_array("m_target", m_target))
    b = check_range("batch_size", as_array("batch_size", batch_size), 1.0, np.inf, high_open=True)
    kt = check_range("kv_target", as_array("kv_target", kv_target), 0.0, np.inf, high_open=True)
    check_broadcast(m_target=m, batch_size=b, kv_target=kt)
    with np.errstate(over="ignore"):
        seconds = check_result("the step time", step_seconds(m, 1.0, b, hw, kt), "m_target, batch_size, kv_target")
    return scalar_or_array(b / seconds)


def memory_required(n_params, bytes_per_param, batch_size, kv_bytes):
    r"""Device bytes a model needs: weights :math:`bP` plus :math:`B` KV caches of :math:`K` bytes.

    Examples
    --------
    >>> memory_required(70e9, 2, 256, 2048 * 327680) / 1e9   # 140 GB + 256 x 0.67 GB
    311.79
    """
    p = check_positive("n_params", as_array("n_params", n_params))
    bp = check_positive("bytes_per_param", as_array("bytes_per_param", bytes_per_param))
    b = check_range("batch_size", as_array("batch_size", batch_size), 1.0, np.inf, high_open=True)
    k = check_range("kv_bytes", as_array("kv_bytes", kv_bytes), 0.0, np.inf, high_open=True)
    return scalar_or_array(bp * p + b * k)
