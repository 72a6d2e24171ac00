"""Small helpers the notebooks share: parameter checks and the "ours vs the paper" table.

Presentation only; no law lives here. The checks turn a bad value in a notebook's ``parameters``
cell (as papermill injects it) into a ``ValueError`` that names the parameter and what is allowed,
before any work starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = ["require_choices", "require_count", "require_range", "compare", "all_ok"]


def require_choices(name: str, values, allowed: Iterable[str]) -> list[str]:
    """Require every entry of ``values`` (a string or a list of strings) to be in ``allowed``.

    Examples
    --------
    >>> require_choices("DRAFT_FAMILIES", ["OPT"], ["OPT", "Qwen1.5"])
    ['OPT']
    >>> require_choices("DRAFT_FAMILIES", ["Gemma"], ["OPT", "Qwen1.5"])
    Traceback (most recent call last):
    ...
    ValueError: DRAFT_FAMILIES: unknown value 'Gemma'; allowed: 'OPT', 'Qwen1.5'
    """
    allowed = list(allowed)
    items = [values] if isinstance(values, str) else list(values)
    if not items:
        raise ValueError(f"{name} must hold at least one of: {', '.join(map(repr, allowed))}")
    for v in items:
        if v not in allowed:
            raise ValueError(f"{name}: unknown value {v!r}; allowed: {', '.join(map(repr, allowed))}")
    return items


def require_count(name: str, value, minimum: int = 1) -> int:
    """Require an integer ``>= minimum`` (a grid size, a number of replicates).

    Examples
    --------
    >>> require_count("N_POINTS", -5, 2)
    Traceback (most recent call last):
    ...
    ValueError: N_POINTS must be an integer >= 2 (a grid size), got -5
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (a grid size), got {value!r}")
    return int(value)


def require_range(name: str, value, low: float, high: float) -> float | list[float]:
    """Require ``low <= value <= high`` for a number or every number of a list."""
    items = np.atleast_1d(np.asarray(value, dtype=float))
    if items.size == 0 or not np.all((items >= low) & (items <= high)):
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got {value!r}")
    return value


def compare(rows: Sequence[tuple]) -> pd.DataFrame:
    """Tabulate ours beside the paper's printed value with a tolerance.

    Each row is ``(quantity, ours, paper, tolerance, kind)`` where ``kind`` is ``"rel"`` (relative
    difference), ``"abs"`` (absolute difference) or ``"moe"`` (the tolerance is the paper's printed
    95% margin of error, compared as an absolute difference).

    Examples
    --------
    >>> compare([("mu", 2.709e-3, 2.71e-3, 4.38e-5, "moe")])[["quantity", "ok"]].to_dict("records")
    [{'quantity': 'mu', 'ok': True}]
    """
    out = []
    for quantity, ours, paper, tol, kind in rows:
        if kind not in ("rel", "abs", "moe"):
            raise ValueError(f"kind must be 'rel', 'abs' or 'moe', got {kind!r}")
        ours, paper = float(ours), float(paper)
        diff = abs(ours - paper) / abs(paper) if kind == "rel" else abs(ours - paper)
        out.append(
            {
                "quantity": quantity,
                "ours": ours,
                "paper": paper,
                "difference": diff,
                "tolerance": float(tol),
                "kind": kind,
                "ok": bool(diff <= tol),
            }
        )
    return pd.DataFrame(out)


def all_ok(table: pd.DataFrame) -> bool:
    """True when every row of a :func:`compare` table is within tolerance."""
    return bool(table["ok"].all())
