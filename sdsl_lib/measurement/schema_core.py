"""The building blocks of :mod:`sdsl_lib.measurement.schema`: column and table declarations, and the checks.

Kept apart so that ``schema`` holds only the declarations of the tables and its public readers.
No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Column", "Table", "SchemaError", "check_frame", "check_set"]

_INF = math.inf


class SchemaError(ValueError):
    """A measured table does not match its declaration (the message is one line naming the file)."""


@dataclass(frozen=True)
class Column:
    """One column: ``kind`` in {"str", "int", "float", "bool"}, inclusive range [lo, hi], NaN allowed or not."""

    name: str
    kind: str
    lo: float = -_INF
    hi: float = _INF
    nullable: bool = False
    #: Written by every run (False: may be absent, e.g. a legacy joined column).
    required: bool = True

    def describe(self) -> str:
        rng = "" if (self.lo, self.hi) == (-_INF, _INF) else f" in [{self.lo:g}, {self.hi:g}]"
        return f"{self.kind}{rng}{' or empty' if self.nullable else ''}"


@dataclass(frozen=True)
class Table:
    """A measured CSV: its file, the stage that writes it, its columns and key, and row checks."""

    name: str
    stage: str
    columns: tuple
    key: tuple
    #: (description, function of the frame returning a boolean Series that must hold on every row).
    checks: tuple = ()
    #: Complete grid: every group (a pair or a model) holds the same set of these columns' values,
    #: so a deleted row (one gamma of one pair, one prompt) is caught, not silently averaged over.
    grid: tuple = ()

    @property
    def file(self) -> str:
        return f"{self.name}.csv"

    @property
    def has_pairs(self) -> bool:
        return "draft" in self.key and "target" in self.key

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _bad_kind(values: pd.Series, kind: str) -> pd.Series:
    """Boolean mask of the non-missing values that are not of ``kind``."""
    present = values.notna()
    if kind == "str":
        return present & ~values.map(lambda v: isinstance(v, str))
    if kind == "bool":
        return present & ~values.map(lambda v: isinstance(v, (bool, np.bool_)) or v in ("True", "False"))
    if values.dtype == bool:
        return present  # True/False where a number belongs
    x = pd.to_numeric(values, errors="coerce").astype(float)
    bad = present & x.isna()
    if kind == "int":
        bad |= x.notna() & (~np.isfinite(x) | (x != np.round(x)))
    return bad


def _row_label(df: pd.DataFrame, t: Table, i) -> str:
    key = ", ".join(f"{k}={df.at[i, k]}" for k in t.key if k in df.columns)
    return f"row {int(i) + 2} ({key})"  # +2: the header is line 1, rows count from line 2


def _check_columns(df: pd.DataFrame, t: Table, where: str) -> None:
    known = {c.name for c in t.columns}
    missing = [c.name for c in t.columns if c.required and c.name not in df.columns]
    if missing:
        raise SchemaError(f"{where}: missing column {missing[0]!r} (required columns of the {t.name} table: {missing})")
    extra = [c for c in df.columns if c not in known]
    if extra:
        raise SchemaError(f"{where}: unknown column {extra[0]!r} (not in the {t.name} table of measurement.schema)")
    if df.empty:
        raise SchemaError(f"{where}: no rows")


def _check_values(df: pd.DataFrame, t: Table, where: str) -> None:
    for col in t.columns:
        if col.name not in df.columns:
            continue
        v = df[col.name]
        bad = _bad_kind(v, col.kind)
        if not col.nullable:
            bad |= v.isna()
        if bad.any():
            i = bad[bad].index[0]
            raise SchemaError(
                f"{where}: column {col.name!r} must be {col.describe()}, {_row_label(df, t, i)} has {v[i]!r}"
            )
        if col.kind in ("int", "float"):
            x = pd.to_numeric(v, errors="coerce").astype(float)
            out = x.notna() & ((x < col.lo) | (x > col.hi))
            if out.any():
                i = out[out].index[0]
                raise SchemaError(
                    f"{where}: column {col.name!r} must be {col.describe()}, {_row_label(df, t, i)} has {v[i]!r}"
                )
    dup = df.duplicated(list(t.key), keep=False)
    if dup.any():
        i = dup[dup].index[0]
        raise SchemaError(f"{where}: duplicate key {t.key} in {_row_label(df, t, i)}")
    for text, rule in t.checks:
        ok = rule(df).astype(bool)
        if not ok.all():
            i = ok[~ok].index[0]
            raise SchemaError(f"{where}: rule {text!r} fails on {_row_label(df, t, i)}")


def _check_grid(df: pd.DataFrame, t: Table, where: str) -> None:
    if not t.grid:
        return
    group = ["draft", "target"] if t.has_pairs else ["model"]
    cells = {k: set(g[list(t.grid)].itertuples(index=False, name=None)) for k, g in df.groupby(group, sort=False)}
    union = set().union(*cells.values())
    for k, have in cells.items():
        lacking = sorted(union - have, key=str)
        if lacking:
            label = "/".join(k) if isinstance(k, tuple) else k
            cell = ", ".join(f"{c}={v}" for c, v in zip(t.grid, lacking[0]))
            raise SchemaError(
                f"{where}: {label} lacks the row {cell} that the other {'pairs' if t.has_pairs else 'models'} have"
            )


def check_set(found: set, expected, what: str, where: str) -> None:
    expected = set(expected)
    missing, extra = sorted(expected - found), sorted(found - expected)
    fmt = (lambda x: "/".join(x)) if what == "pairs" else str
    if missing:
        raise SchemaError(f"{where}: {what} missing: {', '.join(fmt(x) for x in missing)}")
    if extra:
        raise SchemaError(f"{where}: unexpected {what}: {', '.join(fmt(x) for x in extra)}")


def check_frame(df: pd.DataFrame, t: Table, where: str) -> None:
    """Columns, dtypes, ranges, keys, row rules and the complete grid of ``df`` as table ``t``."""
    _check_columns(df, t, where)
    _check_values(df.reset_index(drop=True), t, where)
    _check_grid(df, t, where)
