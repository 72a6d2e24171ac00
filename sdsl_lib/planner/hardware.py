r"""Hardware presets for the roofline: the accelerators the planner evaluates tokens per second on.

The step-time model itself (a roofline with the KV cache) is a law of this project and lives in
:mod:`sdsl_lib.laws.roofline`; the planner's use of it (FLOP- and latency-optimal drafts, batch
sweep, memory check) is :mod:`sdsl_lib.planner.hardware_plan`.

Presets (vendor datasheets; GPUs in bf16, 2 bytes per parameter, dense Tensor-Core peaks, i.e. the
"with sparsity" figures halved):

==============  ============  =============  ======  ===========  ========  ===================================
preset          bandwidth     peak           bytes   overhead     memory    source
==============  ============  =============  ======  ===========  ========  ===================================
``h100``        3.35 TB/s     989 TFLOP/s    2       0.5 ms       80 GB     NVIDIA H100 datasheet (SXM)
``h200``        4.8 TB/s      989 TFLOP/s    2       0.5 ms       141 GB    NVIDIA H200 datasheet (SXM)
``a100``        2.039 TB/s    312 TFLOP/s    2       0.5 ms       80 GB     NVIDIA A100 datasheet (80GB SXM)
``cpu-measured``  10 GB/s     100 GFLOP/s    4       1.5 ms       24 GiB    this project's 2-core CPU
==============  ============  =============  ======  ===========  ========  ===================================

The GPU overhead (0.5 ms per step) is an assumption, not a datasheet number: roughly a decode step
of an engine that captures CUDA graphs; an eager PyTorch loop pays several ms. ``cpu-measured`` is
fitted to ``data/measured/cpu/cost_calibration.csv`` when that file exists
(:func:`calibrate_from_timings`), else it uses the defaults above: fp32 decoding of a 21M-parameter
model (84 MB of weights) at 10.5 ms per token with a 1-2 ms per-call floor gives about 9 GB/s, and
the CPU ridge point is 5-20 FLOP/byte (100 GFLOP/s / 10 GB/s = 10), both measured on this project's
VM (docs/planner.md). The committed calibration file (112 timings of the model ladder) fits to about
3.5 GB/s, 59 GFLOP/s and 0.76 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sdsl_lib.io import repo_root
from sdsl_lib.laws._validate import as_array, check_positive, check_range
from sdsl_lib.laws.roofline import (
    Roofline,
    speculative_tokens_per_second,
    step_seconds,
    step_time,
    target_only_tokens_per_second,
)

__all__ = [
    "HardwareSpec",
    "PRESETS",
    "PRESET_NAMES",
    "CPU_DEFAULT",
    "CPU_CALIBRATION_PATH",
    "get_preset",
    "custom_spec",
    "calibrate_from_timings",
    "load_cpu_measured",
    # the roofline laws, re-exported from sdsl_lib.laws.roofline for callers of the old module
    "step_time",
    "speculative_tokens_per_second",
    "target_only_tokens_per_second",
]


@dataclass(frozen=True)
class HardwareSpec:
    """One accelerator for the roofline step-time model (raw SI units)."""

    name: str
    bandwidth_bytes_per_s: float  # beta: memory bandwidth
    peak_flops: float  # pi: peak FLOP/s in the weights' precision
    bytes_per_param: float  # b: 2 for bf16/fp16, 4 for fp32, about 0.5-1 for 4-8 bit quantisation
    overhead_s: float  # t_0: fixed cost of every forward step
    memory_bytes: float | None = None  # device memory: plans whose weights and KV caches exceed it are refused
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
    "documented defaults for the project's 2-core AMD EPYC VM in fp32 (docs/field_notes.md: ~9 GB/s from "
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
    >>> from sdsl_lib.laws.roofline import step_time
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
        return np.log(step_seconds(p, t, 1.0, Roofline(bw, peak, bytes_per_param, t0))) - np.log(s)

    # Start: overhead from the fastest call, bandwidth from the slowest single-token call, and a
    # ridge of 10 FLOP/byte (docs/field_notes.md); the fit is in logs so every scale is one step away.
    t0 = 0.5 * s.min()
    one = t == t.min()
    bw = bytes_per_param * p[one].max() / max(s[one].max() - t0, 1e-9)
    x0 = np.log([bw, 10.0 * bw, t0])
    res = least_squares(residual, x0, method="trf", x_scale=1.0)
    bw, peak, t0 = np.exp(res.x)
    return HardwareSpec(name, float(bw), float(peak), float(bytes_per_param), float(t0), None, source)


def load_cpu_measured(path: str | Path | None = None) -> HardwareSpec:
    """The ``cpu-measured`` preset: fitted to the CPU cost calibration if it exists, else the defaults.

    The file is ``data/measured/cpu/cost_calibration.csv`` written by the measurement chain; it needs
    the ``cost_calibration`` table of :mod:`sdsl_lib.measurement.schema` (the one definition of every
    measured table). A file that exists but does not match it raises ``ValueError`` naming the file.
    """
    path = Path(path) if path is not None else CPU_CALIBRATION_PATH
    if not path.is_file():
        return CPU_DEFAULT
    from sdsl_lib.measurement.schema import read_file  # torch-free

    df = read_file(path, "cost_calibration")  # SchemaError (a ValueError): one line naming the file
    spec = calibrate_from_timings(
        df["n_params"], df["n_new_tokens"], df["latency_median_s"], 4.0, source=f"fitted to {path} (fp32, batch 1)"
    )
    return replace(spec, memory_bytes=CPU_DEFAULT.memory_bytes)
