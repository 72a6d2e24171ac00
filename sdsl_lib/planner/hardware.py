r"""Hardware presets and a roofline step-time model: from tokens per FLOP to tokens per second.

SDSL's throughput (Eq. 3) counts FLOPs and charges the target's verification of :math:`\gamma + 1`
tokens like a single step. That is the memory-bound picture: at small batch a decode step reads every
weight once, and scoring a few more tokens in the same pass is free. This module makes the picture
explicit with a roofline (Williams, Waterman & Patterson 2009) so that the planner can say what a
draft buys in tokens per second on a given accelerator, and where (batch size, lookahead) the free
verification ends.

A forward step of a model with :math:`P` parameters that processes :math:`T` new tokens for each of
:math:`B` sequences costs

.. math:: t(P, T, B) = \max\!\left(\frac{b P}{\beta},\; \frac{2 P T B}{\pi}\right) + t_0

with :math:`b` bytes per parameter, :math:`\beta` memory bandwidth (bytes/s), :math:`\pi` peak
FLOP/s and :math:`t_0` a fixed per-step overhead (kernel launches, framework, sampling). The weights
are read once per step whatever :math:`T B` is; the compute term overtakes the memory term past the
ridge point :math:`T B = \pi b / (2 \beta)` tokens.

Ignored on purpose (say so when you quote a number): KV-cache and activation traffic (short
contexts), attention FLOPs, communication in multi-GPU serving, and the efficiency gap between
datasheet peaks and real kernels (typically 60-80% of bandwidth and 50-70% of peak FLOP/s).

Presets (vendor datasheets; GPUs in bf16, 2 bytes per parameter, dense Tensor-Core peaks, i.e. the
"with sparsity" figures halved):

==============  ============  =============  ======  ===========  ===========================================
preset          bandwidth     peak           bytes   overhead     source
==============  ============  =============  ======  ===========  ===========================================
``h100``        3.35 TB/s     989 TFLOP/s    2       0.5 ms       NVIDIA H100 Tensor Core GPU datasheet (SXM)
``h200``        4.8 TB/s      989 TFLOP/s    2       0.5 ms       NVIDIA H200 Tensor Core GPU datasheet (SXM)
``a100``        2.039 TB/s    312 TFLOP/s    2       0.5 ms       NVIDIA A100 datasheet (80GB SXM)
``cpu-measured``  10 GB/s     100 GFLOP/s    4       1.5 ms       this project's 2-core CPU (see below)
==============  ============  =============  ======  ===========  ===========================================

The GPU overhead (0.5 ms per step) is an assumption, not a datasheet number: roughly a decode step
of an engine that captures CUDA graphs; an eager PyTorch loop pays several ms. Measure yours and pass
it. ``cpu-measured`` is fitted to ``data/measured/cpu/cost_calibration.csv`` when that file exists
(:func:`calibrate_from_timings`), else it uses the defaults above, which come from
``FIELD-NOTES.md``: fp32 decoding of a 21M-parameter model (84 MB of weights) at 10.5 ms per token
with a 1-2 ms per-call floor gives about 9 GB/s, and the notes put the CPU ridge point at 5-20
FLOP/byte (100 GFLOP/s / 10 GB/s = 10). The committed calibration file (112 timings of the model
ladder) fits to about 3.5 GB/s, 59 GFLOP/s and 0.76 ms: tiny models stay below the streaming
bandwidth, so the fitted preset is the one to use for this project's own models.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sdsl_lib.io import repo_root
from sdsl_lib.laws._validate import as_array, check_positive, check_range, scalar_or_array

__all__ = [
    "HardwareSpec",
    "PRESETS",
    "PRESET_NAMES",
    "CPU_DEFAULT",
    "CPU_CALIBRATION_PATH",
    "get_preset",
    "custom_spec",
    "step_time",
    "speculative_tokens_per_second",
    "target_only_tokens_per_second",
    "calibrate_from_timings",
    "load_cpu_measured",
]


@dataclass(frozen=True)
class HardwareSpec:
    """One accelerator for the roofline step-time model (raw SI units)."""

    name: str
    bandwidth_bytes_per_s: float  # beta: memory bandwidth
    peak_flops: float  # pi: peak FLOP/s in the weights' precision
    bytes_per_param: float  # b: 2 for bf16/fp16, 4 for fp32, about 0.5-1 for 4-8 bit quantisation
    overhead_s: float  # t_0: fixed cost of every forward step
    memory_bytes: float | None = None  # device memory, only used to warn when weights do not fit
    source: str = ""

    @property
    def ridge_tokens(self) -> float:
        r"""Tokens per step (:math:`T B`) at which compute time equals weight-read time: :math:`\pi b / (2\beta)`."""
        return self.peak_flops * self.bytes_per_param / (2.0 * self.bandwidth_bytes_per_s)

    @property
    def ridge_flop_per_byte(self) -> float:
        r"""The classic roofline ridge point :math:`\pi / \beta` in FLOP per byte."""
        return self.peak_flops / self.bandwidth_bytes_per_s

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "peak_flops": self.peak_flops,
            "bytes_per_param": self.bytes_per_param,
            "overhead_s": self.overhead_s,
            "memory_bytes": self.memory_bytes,
            "ridge_tokens": self.ridge_tokens,
            "ridge_flop_per_byte": self.ridge_flop_per_byte,
            "source": self.source,
        }


_GPU_OVERHEAD_NOTE = "per-step overhead 0.5 ms is an assumption (CUDA-graph engine), not a datasheet value"

#: NVIDIA H100 SXM5: 3.35 TB/s HBM3; BF16 Tensor Core 1,979 TFLOP/s with 2:4 sparsity, i.e. 989 dense.
H100 = HardwareSpec(
    "h100",
    3.35e12,
    989e12,
    2.0,
    0.5e-3,
    80e9,
    "NVIDIA H100 Tensor Core GPU datasheet, SXM column: 3.35 TB/s, BF16 1,979 TFLOPS with sparsity "
    f"(989 dense), 80 GB; {_GPU_OVERHEAD_NOTE}",
)
#: NVIDIA H200 SXM: 4.8 TB/s HBM3e, 141 GB; same GH100 compute as H100 (989 TFLOP/s dense bf16).
H200 = HardwareSpec(
    "h200",
    4.8e12,
    989e12,
    2.0,
    0.5e-3,
    141e9,
    "NVIDIA H200 Tensor Core GPU datasheet, SXM column: 4.8 TB/s, BF16 1,979 TFLOPS with sparsity "
    f"(989 dense), 141 GB; {_GPU_OVERHEAD_NOTE}",
)
#: NVIDIA A100 80GB SXM: 2,039 GB/s HBM2e; BF16 Tensor Core 312 TFLOP/s dense (624 with sparsity).
A100 = HardwareSpec(
    "a100",
    2.039e12,
    312e12,
    2.0,
    0.5e-3,
    80e9,
    "NVIDIA A100 Tensor Core GPU datasheet, 80GB SXM column: 2,039 GB/s, BF16 312 TFLOPS dense "
    f"(624 with sparsity), 80 GB; {_GPU_OVERHEAD_NOTE}",
)
#: This project's 2-core CPU in fp32 when no calibration file exists (see the module docstring).
CPU_DEFAULT = HardwareSpec(
    "cpu-measured",
    10e9,
    100e9,
    4.0,
    1.5e-3,
    24 * 2**30,
    "documented defaults for the project's 2-core AMD EPYC VM in fp32 (FIELD-NOTES.md: ~9 GB/s from "
    "decode timings, 1-2 ms per-call floor, ridge 5-20 FLOP/byte); no data/measured/cpu/cost_calibration.csv found",
)

PRESETS = {spec.name: spec for spec in (H100, H200, A100)}
#: Names accepted by :func:`get_preset` (``custom`` is built by :func:`custom_spec`).
PRESET_NAMES = ("h100", "h200", "a100", "cpu-measured", "custom")

#: Where the measurement chain (``python -m sdsl_lib.measurement.pipeline --stage calibrate``) writes CPU timings.
CPU_CALIBRATION_PATH = repo_root() / "data" / "measured" / "cpu" / "cost_calibration.csv"


def get_preset(name: str, calibration_path: str | Path | None = None) -> HardwareSpec:
    """The preset called ``name`` (``h100``, ``h200``, ``a100``, ``cpu-measured``).

    Examples
    --------
    >>> get_preset("h200").bandwidth_bytes_per_s
    4800000000000.0
    >>> round(get_preset("h100").ridge_tokens, 1)
    295.2
    """
    if name in PRESETS:
        return PRESETS[name]
    if name == "cpu-measured":
        return load_cpu_measured(calibration_path)
    raise ValueError(f"hardware must be one of {', '.join(PRESET_NAMES[:-1])} (or custom), got {name!r}")


def custom_spec(
    bandwidth_gbs: float,
    peak_tflops: float,
    bytes_per_param: float,
    overhead_ms: float,
    name: str = "custom",
    memory_gb: float | None = None,
) -> HardwareSpec:
    """A :class:`HardwareSpec` from the CLI's units (GB/s, TFLOP/s, bytes, ms).

    Examples
    --------
    >>> custom_spec(1000, 100, 2, 0.1).ridge_tokens
    100.0
    """
    for arg, value in (
        ("bandwidth_gbs", bandwidth_gbs),
        ("peak_tflops", peak_tflops),
        ("bytes_per_param", bytes_per_param),
    ):
        check_positive(arg, as_array(arg, value))
    check_range("overhead_ms", as_array("overhead_ms", overhead_ms), 0.0, np.inf)
    return HardwareSpec(
        name,
        float(bandwidth_gbs) * 1e9,
        float(peak_tflops) * 1e12,
        float(bytes_per_param),
        float(overhead_ms) * 1e-3,
        None if memory_gb is None else float(memory_gb) * 1e9,
        "user-supplied values",
    )


def step_time(n_params, tokens, batch_size, hw: HardwareSpec):
    r"""Seconds for one forward step: :math:`\max(bP/\beta,\ 2PTB/\pi) + t_0` (roofline).

    Parameters
    ----------
    n_params : array_like
        Parameters :math:`P > 0` of the model that runs the step.
    tokens : array_like
        New tokens per sequence :math:`T \ge 1` (1 for a draft step, :math:`\gamma + 1` to verify).
    batch_size : array_like
        Sequences :math:`B \ge 1` decoded together.
    hw : HardwareSpec

    Returns
    -------
    float or ndarray
        Seconds, broadcast over the inputs.

    Examples
    --------
    >>> h = custom_spec(1000, 100, 2, 1.0)          # 1 TB/s, 100 TFLOP/s, bf16, 1 ms
    >>> round(step_time(1e9, 1, 1, h) * 1e3, 3)      # 2 GB / 1 TB/s = 2 ms, + 1 ms
    3.0
    >>> round(step_time(1e9, 200, 1, h) * 1e3, 3)    # 2*1e9*200 / 1e14 = 4 ms > 2 ms, + 1 ms
    5.0
    """
    p = check_positive("n_params", as_array("n_params", n_params))
    t = check_range("tokens", as_array("tokens", tokens), 1.0, np.inf)
    b = check_range("batch_size", as_array("batch_size", batch_size), 1.0, np.inf)
    return scalar_or_array(_step_time(p, t, b, hw))


def _step_time(p, t, b, hw: HardwareSpec):
    # Weights are read once per step (memory term); every token of every sequence costs 2P FLOPs
    # (compute term); the slower of the two sets the pace, and the overhead is paid regardless.
    return (
        np.maximum(hw.bytes_per_param * p / hw.bandwidth_bytes_per_s, 2.0 * p * t * b / hw.peak_flops) + hw.overhead_s
    )


def speculative_tokens_per_second(alpha, gamma, n_draft, m_target, hw: HardwareSpec, batch_size=1):
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
        Lookahead :math:`\gamma \ge 0` (integers in practice).
    n_draft, m_target : array_like
        Draft and target parameters, :math:`0 < N < M`.
    hw : HardwareSpec
    batch_size : array_like
        Sequences per step :math:`B \ge 1`.

    Notes
    -----
    Every sequence in a batch is assumed to advance by the expected count; a real engine waits for
    the slowest sequence or pads, which costs a little more at large batch.

    Examples
    --------
    >>> h = custom_spec(1000, 100, 2, 0.0)
    >>> round(speculative_tokens_per_second(0.0, 0, 1e8, 1e10, h), 3)   # target alone: 1 / 20 ms
    50.0
    >>> round(speculative_tokens_per_second(0.8, 4, 1e8, 1e10, h), 2)   # 3.3616 / (4*0.2 + 20) ms
    161.62
    """
    from sdsl_lib.laws.speculation import expected_tokens_per_iteration

    e = np.asarray(expected_tokens_per_iteration(alpha, gamma))
    g = as_array("gamma", gamma)
    n = check_positive("n_draft", as_array("n_draft", n_draft))
    m = check_positive("m_target", as_array("m_target", m_target))
    b = check_range("batch_size", as_array("batch_size", batch_size), 1.0, np.inf)
    seconds = g * _step_time(n, 1.0, b, hw) + _step_time(m, g + 1.0, b, hw)
    return scalar_or_array(b * e / seconds)


def target_only_tokens_per_second(m_target, hw: HardwareSpec, batch_size=1):
    r"""Tokens per second of plain decoding with the target: :math:`B / t(M, 1, B)`.

    Examples
    --------
    >>> round(target_only_tokens_per_second(70e9, get_preset("h200")), 2)   # 140 GB / 4.8 TB/s + 0.5 ms
    33.70
    """
    m = check_positive("m_target", as_array("m_target", m_target))
    b = check_range("batch_size", as_array("batch_size", batch_size), 1.0, np.inf)
    return scalar_or_array(b / _step_time(m, 1.0, b, hw))


def calibrate_from_timings(
    n_params,
    tokens,
    seconds,
    bytes_per_param: float = 4.0,
    name: str = "cpu-measured",
    source: str = "fitted to measured step times",
) -> HardwareSpec:
    r"""Fit bandwidth, peak FLOP/s and overhead of the roofline to measured forward-step times.

    Minimises the squared error of :math:`\log t` against :math:`\log(\max(bP/\beta, 2PT/\pi) + t_0)`
    over :math:`(\log\beta, \log\pi, \log t_0)` with ``scipy.optimize.least_squares`` (batch 1).

    Parameters
    ----------
    n_params, tokens, seconds : array_like
        One entry per timing: model parameters, new tokens in the step, median seconds.
    bytes_per_param : float
        Bytes per weight of the timed models (4 for fp32).

    Returns
    -------
    HardwareSpec

    Notes
    -----
    Peak FLOP/s is identified only by timings past the ridge point (:math:`T > \pi b / (2\beta)`,
    about 20 tokens on this CPU in fp32); timings that stay memory-bound bound it from below only.

    Examples
    --------
    >>> truth = custom_spec(10, 0.1, 4, 1.5)
    >>> p, t = np.meshgrid([1e6, 5e6, 2e7], np.arange(1, 65))
    >>> fit = calibrate_from_timings(p.ravel(), t.ravel(), step_time(p.ravel(), t.ravel(), 1, truth))
    >>> round(fit.bandwidth_bytes_per_s / 1e9, 2), round(fit.peak_flops / 1e9, 1), round(fit.overhead_s * 1e3, 3)
    (10.0, 100.0, 1.5)
    """
    from scipy.optimize import least_squares

    p = check_positive("n_params", as_array("n_params", n_params)).ravel()
    t = check_range("tokens", as_array("tokens", tokens), 1.0, np.inf).ravel()
    s = check_positive("seconds", as_array("seconds", seconds)).ravel()
    if not (p.size == t.size == s.size):
        raise ValueError(f"n_params, tokens and seconds must have equal lengths, got {p.size}, {t.size}, {s.size}")
    if p.size < 3:
        raise ValueError(f"calibrate_from_timings needs at least 3 timings, got {p.size}")

    def residual(theta):
        bw, peak, t0 = np.exp(theta)
        return np.log(np.maximum(bytes_per_param * p / bw, 2.0 * p * t / peak) + t0) - np.log(s)

    # Start: overhead from the fastest call, bandwidth from the slowest single-token call, and a
    # ridge of 10 FLOP/byte (FIELD-NOTES); the fit is in logs so every scale is one step away.
    t0 = 0.5 * s.min()
    one = t == t.min()
    bw = bytes_per_param * p[one].max() / max(s[one].max() - t0, 1e-9)
    x0 = np.log([bw, 10.0 * bw, t0])
    res = least_squares(residual, x0, method="trf", x_scale=1.0)
    bw, peak, t0 = np.exp(res.x)
    return HardwareSpec(name, float(bw), float(peak), float(bytes_per_param), float(t0), None, source)


# Column names the calibration reader accepts; the first of each is the measurement chain's schema
# (sdsl_lib.measurement.pipeline, stage calibrate: n_params, n_new_tokens, latency_median_s).
_P_COLS = ("n_params", "params", "n_params_total", "parameters")
_T_COLS = ("n_new_tokens", "tokens", "n_tokens", "new_tokens", "t", "T", "tokens_per_step")
_S_COLS = ("latency_median_s", "median_s", "seconds", "seconds_median", "latency_s", "median_seconds", "time_s")


def _pick(df: pd.DataFrame, names) -> str | None:
    return next((c for c in names if c in df.columns), None)


def load_cpu_measured(path: str | Path | None = None) -> HardwareSpec:
    """The ``cpu-measured`` preset: fitted to the CPU cost calibration if it exists, else the defaults.

    The file is ``data/measured/cpu/cost_calibration.csv`` written by the measurement chain; it needs
    one column of parameters, one of tokens per step and one of seconds (names in ``_P_COLS``,
    ``_T_COLS``, ``_S_COLS``). A file that exists but cannot be read raises ``ValueError``.
    """
    path = Path(path) if path is not None else CPU_CALIBRATION_PATH
    if not path.is_file():
        return CPU_DEFAULT
    df = pd.read_csv(path)
    cols = [_pick(df, names) for names in (_P_COLS, _T_COLS, _S_COLS)]
    if None in cols:
        raise ValueError(
            f"{path} needs columns for parameters {_P_COLS}, tokens {_T_COLS} and seconds {_S_COLS}; "
            f"found {list(df.columns)}"
        )
    spec = calibrate_from_timings(
        df[cols[0]], df[cols[1]], df[cols[2]], 4.0, source=f"fitted to {path} (fp32, batch 1)"
    )
    return replace(spec, memory_bytes=CPU_DEFAULT.memory_bytes)
