"""Input validation shared by the laws: one clear ``ValueError`` per bad argument.

Every public law passes its inputs through these helpers so that a value outside the law's domain
raises an error naming the argument and its valid range, instead of propagating a silent NaN or a
complex number.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_array", "check_range", "check_positive", "check_finite", "check_draft_smaller"]


def as_array(name: str, value) -> np.ndarray:
    """``np.asarray(value, float)``; NaN or non-numeric input raises ``ValueError`` naming ``name``."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
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


def check_draft_smaller(n_draft: np.ndarray, m_target: np.ndarray) -> None:
    """SDSL's model needs a draft strictly smaller than its target (Appendix C: invalid for M < N)."""
    bad = np.broadcast_to(n_draft >= m_target, np.broadcast_shapes(n_draft.shape, m_target.shape))
    if bad.any():
        raise ValueError(
            "n_draft must be smaller than m_target (SDSL's model does not apply when N >= M), "
            f"got n_draft={np.broadcast_to(n_draft, bad.shape)[bad].ravel()[0]:g} >= "
            f"m_target={np.broadcast_to(m_target, bad.shape)[bad].ravel()[0]:g}"
        )


def scalar_or_array(arr: np.ndarray):
    """Scalar in, scalar out: unwrap 0-d arrays to a Python float."""
    return arr.item() if np.ndim(arr) == 0 else arr
