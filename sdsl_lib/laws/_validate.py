"""Input validation shared by the laws: one clear ``ValueError`` per bad argument.

Every public law passes its inputs through these helpers, so that every bad input raises a
``ValueError`` whose message starts with the argument's name and gives its valid range:

* non-numeric, ragged or complex input (numpy would silently drop an imaginary part);
* integers too large for a float (numpy raises ``OverflowError``);
* NaN, infinities where the law needs finite values, values outside the law's domain;
* arguments whose shapes do not broadcast together;
* results that leave the float range (an overflowing ratio such as M/N), which would otherwise
  collapse to 0 or inf.

The planner (``sdsl_lib.planner.request``) and the CLI report the same messages.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "as_array",
    "check_range",
    "check_positive",
    "check_finite",
    "check_draft_smaller",
    "check_broadcast",
    "check_result",
    "check_design",
    "scalar_or_array",
]

#: Largest condition number accepted for a least-squares design after its columns are scaled to
#: unit norm: beyond it the coefficients are determined by rounding, not by the data.
MAX_CONDITION = 1e10


def as_array(name: str, value) -> np.ndarray:
    """``np.asarray(value, float)``; non-numeric, complex, huge-integer or NaN input raises ``ValueError``."""
    if value is None or isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be numeric, got {value!r}")
    try:
        if isinstance(value, complex) or np.iscomplexobj(value):
            raise ValueError(f"{name} must be real, got a complex value")
        arr = np.asarray(value, dtype=float)
    except OverflowError as exc:
        raise ValueError(f"{name} must fit in a float (|x| < 1.8e308), got an integer too large") from exc
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(name):
            raise
        raise ValueError(f"{name} must be numeric, got {value!r}") from exc
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not be NaN")
    return arr


def check_finite(name: str, arr: np.ndarray) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr[~np.isfinite(arr)].ravel()[0]!r}")
    return arr


def check_range(
    name: str,
    arr: np.ndarray,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> np.ndarray:
    """Require ``low <(=) arr <(=) high`` elementwise; the message gives the interval in maths notation."""
    too_low = arr <= low if low_open else arr < low
    too_high = arr >= high if high_open else arr > high
    bad = too_low | too_high
    if bad.any():
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {arr[bad].ravel()[0]!r}")
    return arr


def check_positive(name: str, arr: np.ndarray) -> np.ndarray:
    """Require finite ``arr > 0`` (sizes, token counts, perplexities...)."""
    check_finite(name, arr)
    if (arr <= 0).any():
        raise ValueError(f"{name} must be > 0, got {arr[arr <= 0].ravel()[0]!r}")
    return arr


def check_broadcast(**arrays: np.ndarray) -> tuple[int, ...]:
    """The common shape of named arrays; shapes that do not broadcast raise naming every argument."""
    try:
        return np.broadcast_shapes(*(np.shape(a) for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in arrays.items())
        raise ValueError(f"{', '.join(arrays)} must broadcast to a common shape, got {shapes}") from None


def check_draft_smaller(n_draft: np.ndarray, m_target: np.ndarray) -> None:
    """SDSL's model needs a draft strictly smaller than its target (Appendix C: invalid for M < N).

    Also refuses a ratio M/N that overflows a float: every law of the optimum goes through it.
    """
    shape = check_broadcast(n_draft=n_draft, m_target=m_target)
    bad = np.broadcast_to(n_draft >= m_target, shape)
    if bad.any():
        raise ValueError(
            "n_draft must be smaller than m_target (SDSL's model does not apply when N >= M), "
            f"got n_draft={np.broadcast_to(n_draft, bad.shape)[bad].ravel()[0]:g} >= "
            f"m_target={np.broadcast_to(m_target, bad.shape)[bad].ravel()[0]:g}"
        )
    with np.errstate(over="ignore"):
        ratio = np.broadcast_to(m_target / n_draft, shape)
    if not np.isfinite(ratio).all():
        raise ValueError("m_target / n_draft must be a finite float (the ratio M/N overflows), got inf")


def check_result(what: str, arr: np.ndarray, names: str, *, allow_inf=None, positive: bool = False) -> np.ndarray:
    """A law's result must be finite (inf only where ``allow_inf`` marks an exact limit), and > 0
    when ``positive`` (a rate that underflowed to 0 has left the float range too).

    Raises ``ValueError`` naming the arguments ``names`` instead of returning a value that has left
    the float range (an overflow to inf, or the 0 that follows dividing by it).
    """
    arr = np.asarray(arr, dtype=float)
    bad = ~np.isfinite(arr)
    if allow_inf is not None:
        bad &= ~np.broadcast_to(allow_inf, arr.shape)
    if positive:
        bad |= arr <= 0
    if bad.any():
        raise ValueError(f"{names}: {what} leaves the float range for these inputs (got {arr[bad].ravel()[0]!r})")
    return arr


def check_design(names: str, design: np.ndarray) -> None:
    """Refuse a least-squares design whose columns are (nearly) collinear.

    The columns are scaled to unit norm first (the condition number is then scale-free); above
    :data:`MAX_CONDITION` the fitted coefficients carry no information.
    """
    norms = np.linalg.norm(design, axis=0)
    if (norms == 0).any():
        raise ValueError(f"{names} must vary: a column of the design is identically 0")
    cond = np.linalg.cond(design / norms)
    if not np.isfinite(cond) or cond > MAX_CONDITION:
        raise ValueError(
            f"{names} are collinear: the design's condition number is {cond:.3g} (> {MAX_CONDITION:.0e}), "
            "so the fit cannot separate the coefficients"
        )


def scalar_or_array(arr: np.ndarray):
    """Scalar in, scalar out: unwrap 0-d arrays to a Python float."""
    return arr.item() if np.ndim(arr) == 0 else arr
