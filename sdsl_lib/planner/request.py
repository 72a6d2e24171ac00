"""The planner's inputs and their one set of rules: :class:`PlanRequest`.

``plan()`` and the ``sdsl plan`` command both build a :class:`PlanRequest`; every rule (ranges,
combinations, what needs what) is checked once, here. A broken rule raises :class:`RequestError`, a
``ValueError`` that knows which field it is about, so the CLI can print the option's name
(``--target-params``) where Python users read the argument's (``m_target``) without any rewriting
of messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from sdsl_lib.laws.constants import BESIROGLU_2024, AlphaPlane, ChinchillaLaw

__all__ = [
    "PlanRequest",
    "RequestError",
    "UNCERTAINTY_MODES",
    "DEFAULT_BATCH_SIZES",
    "MAX_DRAWS",
    "MAX_GAMMA",
    "MIN_DRAWS",
    "DEFAULT_CONTEXT_TOKENS",
    "OPTIONS",
]

#: Which fitted laws the draws resample: both, only the plane, only the pre-training law, or none.
UNCERTAINTY_MODES = ("all", "plane", "law", "none")
#: Batch sizes of the batch sweep (powers of two up to 256).
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Upper ends that keep one run within memory and seconds: the draws search N* on a 400-point grid
#: each (20,000 draws: about 5 s, 14 s with hardware, and 1.3 GB on 2 cores), and the hardware mode
#: enumerates every integer lookahead up to gamma_max.
MAX_DRAWS = 20_000
MAX_GAMMA = 1024
#: Fewer draws than this give point estimates only: a 95% percentile interval of a handful of draws
#: is noise, and can exclude its own point estimate.
MIN_DRAWS = 20
#: Context length of every sequence when none is given (tokens held in the KV cache).
DEFAULT_CONTEXT_TOKENS = 2048

#: Field -> the ``sdsl plan`` option that sets it.
OPTIONS = {
    "m_target": "--target-params",
    "d_target": "--target-tokens",
    "d_draft": "--draft-tokens",
    "n_draft": "--draft-params",
    "alpha": "--alpha",
    "alpha_se": "--alpha-se",
    "draft_ppl": "--draft-ppl",
    "target_ppl": "--target-ppl",
    "pairs": "--pairs",
    "draws": "--draws",
    "seed": "--seed",
    "confidence": "--confidence",
    "uncertainty": "--uncertainty",
    "n_min": "--n-min",
    "n_max": "--n-max",
    "gamma_max": "--gamma-max",
    "hardware": "--hardware",
    "bandwidth_gbs": "--bandwidth-gbs",
    "peak_tflops": "--peak-tflops",
    "bytes_per_param": "--bytes-per-param",
    "overhead_ms": "--overhead-ms",
    "memory_gb": "--memory-gb",
    "batch_size": "--batch-size",
    "batch_sweep": "--batch-sweep",
    "context_tokens": "--context-tokens",
    "n_layers": "--layers",
    "kv_heads": "--kv-heads",
    "head_dim": "--head-dim",
    "kv_bytes": "--kv-bytes",
}
_HW_OVERRIDES = ("bandwidth_gbs", "peak_tflops", "bytes_per_param", "overhead_ms", "memory_gb")
_KV_FIELDS = ("context_tokens", "n_layers", "kv_heads", "head_dim", "kv_bytes")


class RequestError(ValueError):
    """A broken input rule: ``field`` is the argument, ``reason`` the rest of the sentence.

    ``reason`` may name other fields as ``{field}``; :meth:`render` fills them in with Python
    names (the default message) or with the CLI's options.
    """

    def __init__(self, field_name: str, reason: str):
        self.field, self.reason = field_name, reason
        super().__init__(self.render())

    def render(self, names: dict | None = None) -> str:
        names = names or {k: ("pairs file" if k == "pairs" else k) for k in OPTIONS}
        return f"{names[self.field]} {self.reason.format(**names)}"


def _number(name, value, low, high, *, low_open, high_open, what, optional=True):
    if value is None:
        if optional:
            return None
        raise RequestError(name, f"is required ({what})")
    interval = (
        f"{'(' if low_open else '['}{low:g}, {'inf' if math.isinf(high) else f'{high:g}'}{')' if high_open else ']'}"
    )
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise RequestError(name, f"must be {what} in {interval}, got {value!r}") from None
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        raise RequestError(name, f"must be {what} in {interval}, got {value!r}")
    return v


def _count(name, value, unit, optional=True):
    """A positive, finite count (parameters or tokens)."""
    if value is None and optional:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise RequestError(name, f"must be a number > 0 ({unit}), got {value!r}")
    return v


def _integer(name, value, low, high=None, optional=False):
    if value is None and optional:
        return None
    valid = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise RequestError(name, f"must be {valid}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise RequestError(name, f"must be {valid}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PlanRequest:
    """Everything :func:`sdsl_lib.planner.plan` needs, checked on construction.

    Sizes in parameters (``m_target`` M, ``n_draft`` N), data in tokens (``d_target`` D',
    ``d_draft`` D). ``hardware`` is a preset name, ``"custom"`` (with all four of
    ``bandwidth_gbs, peak_tflops, bytes_per_param, overhead_ms``) or a
    :class:`~sdsl_lib.planner.hardware.HardwareSpec`; the overrides change a preset. The KV-cache
    fields (``context_tokens``, ``n_layers``, ``kv_heads``, ``head_dim``, ``kv_bytes`` per value)
    describe the target; missing shape values are derived from M
    (:func:`sdsl_lib.laws.roofline.transformer_shape`). After construction ``spec`` holds the
    resolved hardware and ``pair_table`` the checked pairs (None for the paper's).
    """

    m_target: float
    d_target: float | None = None
    d_draft: float | None = None
    n_draft: float | None = None
    alpha: float | None = None
    alpha_se: float | None = None
    draft_ppl: float | None = None
    target_ppl: float | None = None
    pairs: object = None
    plane: AlphaPlane | None = None
    law: ChinchillaLaw = BESIROGLU_2024
    draws: int = 1000
    seed: int = 0
    confidence: float = 0.95
    uncertainty: str = "all"
    n_min: float = 1e6
    n_max: float | None = None
    gamma_max: int = 64
    hardware: object = None
    bandwidth_gbs: float | None = None
    peak_tflops: float | None = None
    bytes_per_param: float | None = None
    overhead_ms: float | None = None
    memory_gb: float | None = None
    batch_size: int = 1
    batch_sweep: bool = False
    batch_sizes: tuple = DEFAULT_BATCH_SIZES
    context_tokens: int | None = None
    n_layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    kv_bytes: float | None = None
    spec: object = field(default=None, init=False, compare=False)
    pair_table: pd.DataFrame | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self):
        def set_(name, value):  # frozen: normalised values are written once, here
            object.__setattr__(self, name, value)

        set_("m_target", _count("m_target", self.m_target, "parameters", optional=False))
        for name in ("d_target", "d_draft"):
            set_(name, _count(name, getattr(self, name), "tokens"))
        set_("n_draft", _count("n_draft", self.n_draft, "parameters"))
        self._check_measured(set_)
        self._check_uncertainty(set_)
        self._check_search(set_)
        self._check_hardware(set_)

    # The rules, grouped as the CLI's --help groups them.
    def _check_measured(self, set_):
        set_("alpha", _number("alpha", self.alpha, 0, 1, low_open=True, high_open=True, what="an acceptance rate"))
        se = _number("alpha_se", self.alpha_se, 0, 1, low_open=False, high_open=True, what="a standard error")
        set_("alpha_se", se)
        for name in ("draft_ppl", "target_ppl"):
            set_(
                name,
                _number(name, getattr(self, name), 1, math.inf, low_open=False, high_open=True, what="a perplexity"),
            )
        if self.n_draft is not None and self.n_draft >= self.m_target:
            raise RequestError(
                "n_draft", f"must be smaller than {{m_target}} (N < M), got {self.n_draft:g} >= {self.m_target:g}"
            )
        if se is not None and self.alpha is None:
            raise RequestError("alpha_se", "needs {alpha}")
        for name in ("alpha", "draft_ppl"):
            if getattr(self, name) is not None and self.n_draft is None:
                raise RequestError(name, "needs {n_draft} (a measured value describes one particular draft)")
        if self.alpha is None and self.draft_ppl is None and self.d_draft is None:
            raise RequestError(
                "d_draft",
                "is required (Eq. 7 needs the draft's training tokens) unless {draft_ppl} or {alpha} is given",
            )
        if self.alpha is None and self.target_ppl is None and self.d_target is None:
            raise RequestError(
                "d_target",
                "is required (Eq. 8 needs the target's training tokens) unless {target_ppl} or {alpha} is given",
            )
        if self.pairs is not None:
            from sdsl_lib.planner.uncertainty import check_pairs, load_pairs

            try:
                table = self.pairs if isinstance(self.pairs, pd.DataFrame) else load_pairs(self.pairs)
                set_("pair_table", check_pairs(table))
            except ValueError as exc:
                raise RequestError("pairs", str(exc).splitlines()[0].removeprefix("pairs file").lstrip()) from None

    def _check_uncertainty(self, set_):
        set_("draws", _integer("draws", self.draws, 1, MAX_DRAWS))
        set_("seed", _integer("seed", self.seed, 0))
        set_("confidence", _number("confidence", self.confidence, 0, 1, low_open=True, high_open=True, what="a level"))
        if self.uncertainty not in UNCERTAINTY_MODES:
            raise RequestError(
                "uncertainty", f"must be one of {', '.join(UNCERTAINTY_MODES)}, got {self.uncertainty!r}"
            )

    def _check_search(self, set_):
        set_("n_min", _count("n_min", self.n_min, "parameters", optional=False))
        n_max = _count("n_max", self.n_max, "parameters")
        if n_max is not None and n_max >= self.m_target:
            raise RequestError("n_max", f"must be smaller than {{m_target}}, got {n_max:g} >= {self.m_target:g}")
        set_("n_max", 0.5 * self.m_target if n_max is None else n_max)
        if self.n_min >= self.n_max:
            raise RequestError("n_min", f"must be smaller than {{n_max}} ({self.n_max:g}), got {self.n_min:g}")
        set_("gamma_max", _integer("gamma_max", self.gamma_max, 1, MAX_GAMMA))

    def _check_hardware(self, set_):
        set_("batch_size", _integer("batch_size", self.batch_size, 1))
        given = {k: getattr(self, k) for k in _HW_OVERRIDES}
        what = {
            "bandwidth_gbs": "a bandwidth",
            "peak_tflops": "a FLOP rate",
            "bytes_per_param": "a size",
            "overhead_ms": "a time",
            "memory_gb": "a memory size",
        }
        for k, v in given.items():
            # A zero overhead is a valid idealisation; zero bandwidth, FLOP/s, size or memory is not.
            given[k] = _number(k, v, 0, math.inf, low_open=k != "overhead_ms", high_open=True, what=what[k])
            set_(k, given[k])
        kv = {
            "context_tokens": _integer("context_tokens", self.context_tokens, 1, optional=True),
            "n_layers": _integer("n_layers", self.n_layers, 1, optional=True),
            "kv_heads": _integer("kv_heads", self.kv_heads, 1, optional=True),
            "head_dim": _integer("head_dim", self.head_dim, 1, optional=True),
            "kv_bytes": _number("kv_bytes", self.kv_bytes, 0, math.inf, low_open=True, high_open=True, what="a size"),
        }
        for k, v in kv.items():
            set_(k, v)
        if self.hardware is None:
            extra = [k for k in (*_HW_OVERRIDES, *_KV_FIELDS) if getattr(self, k) is not None]
            if extra:
                raise RequestError(extra[0], "needs {hardware} (a preset to override, or custom)")
            if self.batch_sweep or self.batch_size != 1:
                raise RequestError("batch_size", "needs {hardware} (batch size matters only for tokens/s)")
            return
        if self.context_tokens is None:
            set_("context_tokens", DEFAULT_CONTEXT_TOKENS)
        set_("spec", self._resolve_spec(given))

    def _resolve_spec(self, given):
        from sdsl_lib.planner.hardware import HardwareSpec, custom_spec, get_preset

        if isinstance(self.hardware, HardwareSpec):
            spec = self.hardware
        elif self.hardware == "custom":
            missing = [f"{{{k}}}" for k in _HW_OVERRIDES[:4] if given[k] is None]
            if missing:
                raise RequestError("hardware", f"custom needs {', '.join(missing)}")
            return custom_spec(**given)
        else:
            try:
                spec = get_preset(self.hardware)
            except ValueError as exc:  # an unknown name, or an unreadable cost_calibration.csv
                raise RequestError("hardware", str(exc).splitlines()[0].removeprefix("hardware").lstrip()) from None
        changes = {
            "bandwidth_bytes_per_s": None if given["bandwidth_gbs"] is None else given["bandwidth_gbs"] * 1e9,
            "peak_flops": None if given["peak_tflops"] is None else given["peak_tflops"] * 1e12,
            "bytes_per_param": given["bytes_per_param"],
            "overhead_s": None if given["overhead_ms"] is None else given["overhead_ms"] * 1e-3,
            "memory_bytes": None if given["memory_gb"] is None else given["memory_gb"] * 1e9,
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        if changes:
            spec = replace(spec, source=spec.source + "; overridden: " + ", ".join(sorted(changes)), **changes)
        return spec

    @property
    def pairs_label(self) -> str:
        """How the pairs were given, for the report's inputs."""
        if self.pairs is None:
            return "paper"
        return "DataFrame" if isinstance(self.pairs, pd.DataFrame) else str(Path(self.pairs))
