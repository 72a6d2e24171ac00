"""Small helpers the notebooks share: parameter checks, the "ours vs the paper" table, readable tables.

Presentation only; no law lives here. The checks turn a bad value in a notebook's ``parameters``
cell (as papermill injects it) into a ``ValueError`` that names the parameter and what is allowed,
before any work starts. :func:`use_readable_tables` makes every DataFrame display with a few
significant digits, blanks for missing values and a scrolling frame for wide tables (``make
figures`` turns it on in every kernel; call it in a notebook to get the same in JupyterLab).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "require_choices",
    "require_count",
    "require_range",
    "compare",
    "all_ok",
    "format_value",
    "frame_html",
    "use_readable_tables",
]

#: Significant digits of the numbers in a displayed table.
DIGITS = 4


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


# --- Tables for reading ---------------------------------------------------------------------------


def _missing(x) -> bool:
    return x is None or (isinstance(x, (float, np.floating)) and np.isnan(x)) or x is pd.NA or x is pd.NaT


def format_value(x, digits: int = DIGITS) -> str:
    """One table cell for a reader: ``digits`` significant digits, blank for a missing value.

    Whole numbers below a million print in full; lists print their formatted entries, or nothing
    when every entry is missing (a confidence interval that does not apply).

    Examples
    --------
    >>> [format_value(v) for v in (5868800.0, 0.000123456, 42.0, float("nan"), None, [None, None])]
    ['5.869e+06', '0.0001235', '42', '', '', '']
    >>> format_value([0.61234, 0.7]), format_value(True), format_value("supported")
    ('[0.6123, 0.7]', 'True', 'supported')
    """
    if digits < 1:
        raise ValueError(f"digits must be an integer >= 1, got {digits!r}")
    if isinstance(x, (list, tuple, np.ndarray)):
        items = list(x)
        if all(_missing(v) for v in items):
            return ""
        return "[" + ", ".join(format_value(v, digits) for v in items) + "]"
    if _missing(x):
        return ""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{float(x):.{digits}g}"


def frame_html(df: pd.DataFrame, digits: int = DIGITS) -> str:
    """HTML of a DataFrame for reading: :func:`format_value` cells, full text, a horizontal scroll.

    Long text (a verdict's claim) wraps instead of being cut off; a table wider than the page
    scrolls inside its own frame. Rows beyond pandas' ``display.max_rows`` are elided as usual.
    """
    # Format every cell first: to_html's own formatters never see missing values (it writes NaN or
    # None itself), and that is the noise this removes.
    shown = df.map(lambda v: format_value(v, digits)) if len(df.columns) else df
    table = shown.to_html(
        max_rows=pd.get_option("display.max_rows"),
        max_cols=pd.get_option("display.max_columns") or 0,
        classes="sdsl-table",
        border=0,
    )
    return f'<div class="sdsl-table-frame" style="overflow-x:auto;max-width:100%">{table}</div>'


def use_readable_tables(digits: int = DIGITS) -> bool:
    """Display every DataFrame through :func:`frame_html` in this IPython kernel.

    Returns False (and changes nothing) outside IPython, so scripts may call it freely.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, lambda df: frame_html(df, digits))
    return True
