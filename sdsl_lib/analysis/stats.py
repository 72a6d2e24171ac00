r"""Resampling with the unit stated: cluster bootstrap over models, pairs, targets or prompts.

Measured cells are not independent: the 9 lookaheads of one (draft, target) pair share its
acceptance; every configuration of a target is timed on the same prompts; the budget points of one
model share its training run. An interval that treats the cells as independent is too narrow. Here
the resampling unit is an explicit argument: one bootstrap draw resamples whole units (clusters)
with replacement and recomputes the statistic on every row of the drawn units, and every interval
records the unit it resampled.

Units (:data:`UNITS`): ``model`` (column ``model``), ``pair`` (``draft, target``), ``target``
(``target``), ``prompt`` (``prompt_idx``), ``size`` (``base_model``: every seed replicate of one
model, :func:`sdsl_lib.analysis.pretraining.with_replicates`).

Two levels (``within``): a draw resamples the units, then, inside each drawn unit, its sub-units
(the seeds of a size), so the interval carries both sources of variance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

__all__ = ["UNITS", "Interval", "cluster_ids", "cluster_bootstrap", "bootstrap_draws", "percentile_interval", "mean_ci"]

#: Resampling unit -> the columns that identify one unit.
UNITS = {
    "model": ("model",),
    "pair": ("draft", "target"),
    "target": ("target",),
    "prompt": ("prompt_idx",),
    "size": ("base_model",),
}


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval, with the unit that was resampled to get it."""

    estimate: float
    lower: float
    upper: float
    unit: str
    n_units: int
    n_boot: int
    level: float = 0.95
    method: str = "percentile cluster bootstrap"

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lower, self.upper)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_unit(unit: str) -> tuple:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {list(UNITS)}, got {unit!r}")
    return UNITS[unit]


def cluster_ids(frame: pd.DataFrame, unit: str) -> np.ndarray:
    """Integer id of each row's unit (rows of one model, pair, target or prompt share an id)."""
    cols = _check_unit(unit)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"frame must hold the columns of unit {unit!r}, lacks {missing}")
    return frame.groupby(list(cols), sort=False).ngroup().to_numpy()


def _nested_rows(ids: np.ndarray, inner: np.ndarray, k: int) -> list:
    """For each outer unit, the row indices of each of its inner units; ValueError if an inner unit spans two."""
    spans = pd.Series(ids).groupby(inner).nunique()
    if (spans > 1).any():
        raise ValueError("within must name units nested in unit: each of its units must lie in one unit")
    return [[np.flatnonzero((ids == i) & (inner == j)) for j in np.unique(inner[ids == i])] for i in range(k)]


def bootstrap_draws(
    frame: pd.DataFrame, statistic, unit: str, n_boot: int = 1000, seed: int = 0, within: str | None = None
) -> np.ndarray:
    """The statistic on ``n_boot`` cluster-bootstrap resamples of ``frame``.

    Parameters
    ----------
    frame : DataFrame
        One row per cell; the columns of ``unit`` say which unit each row belongs to.
    statistic : callable
        ``statistic(resampled_frame) -> float or 1-d array``. A draw where it raises ``ValueError``
        (e.g. a resample too degenerate to fit) gives NaN.
    unit : {"model", "pair", "target", "prompt", "size"}
        What is resampled with replacement.
    n_boot : int
        Number of draws (>= 1).
    seed : int
        Seed of the generator.
    within : str, optional
        A second level, nested in ``unit`` (e.g. ``"model"``, the seed replicates, within
        ``"size"``): each drawn unit's sub-units are resampled with replacement too, as many as it
        has. ``None`` (default): the rows of a drawn unit are taken as they are.

    Returns
    -------
    ndarray, shape (n_boot,) or (n_boot, k)
        A resampled unit drawn twice appears twice, so the statistic sees its rows twice.

    Examples
    --------
    >>> df = pd.DataFrame({"model": ["a", "a", "b", "b"], "x": [1.0, 1.0, 3.0, 3.0]})
    >>> d = bootstrap_draws(df, lambda f: f["x"].mean(), "model", 200)
    >>> sorted(set(np.round(d, 6).tolist()))
    [1.0, 2.0, 3.0]
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    ids = cluster_ids(frame, unit)
    k = int(ids.max()) + 1 if ids.size else 0
    if k < 2:
        raise ValueError(f"frame must hold at least 2 units of {unit!r} to resample, got {k}")
    rows_of = [np.flatnonzero(ids == i) for i in range(k)]
    nested = None if within is None else _nested_rows(ids, cluster_ids(frame, within), k)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        pick = rng.integers(0, k, k)
        if nested is None:
            rows = [rows_of[i] for i in pick]
        else:  # then, inside each drawn unit, its sub-units with replacement
            rows = [nested[i][j] for i in pick for j in rng.integers(0, len(nested[i]), len(nested[i]))]
        sample = frame.iloc[np.concatenate(rows)]
        try:
            out.append(np.asarray(statistic(sample), dtype=float))
        except ValueError:
            out.append(None)
    shape = next((o.shape for o in out if o is not None), ())
    return np.stack([o if o is not None else np.full(shape, np.nan) for o in out])


def percentile_interval(draws, estimate: float, unit: str, n_units: int, level: float = 0.95) -> Interval:
    """Percentile interval of bootstrap ``draws`` (NaN draws dropped) around ``estimate``.

    Examples
    --------
    >>> iv = percentile_interval(np.arange(101.0), 50.0, "pair", 10)
    >>> iv.lower, iv.upper, iv.unit
    (2.5, 97.5, 'pair')
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    d = np.asarray(draws, dtype=float).ravel()
    d = d[np.isfinite(d)]
    if d.size < 2:
        return Interval(float(estimate), math.nan, math.nan, unit, int(n_units), int(d.size), level)
    lo, hi = np.percentile(d, [50 * (1 - level), 50 * (1 + level)])
    return Interval(float(estimate), float(lo), float(hi), unit, int(n_units), int(d.size), level)


def cluster_bootstrap(
    frame: pd.DataFrame, statistic, unit: str, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> Interval:
    """Point estimate on ``frame`` and percentile interval over cluster resamples of ``unit``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"draft": np.repeat(list("abcdefgh"), 9), "target": "t", "x": np.repeat(rng.normal(0, 1, 8), 9)})
    >>> iv = cluster_bootstrap(df, lambda f: f["x"].mean(), "pair", 500)
    >>> iv.unit, iv.n_units, iv.lower < iv.estimate < iv.upper
    ('pair', 8, True)
    """
    est = float(statistic(frame))
    draws = bootstrap_draws(frame, statistic, unit, n_boot, seed)
    return percentile_interval(draws, est, unit, int(cluster_ids(frame, unit).max()) + 1, level)


def mean_ci(x, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval over independent units (prompts, windows).

    Examples
    --------
    >>> m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    >>> round(m, 3), round(lo, 3), round(hi, 3)
    (2.0, -0.484, 4.484)
    """
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return math.nan, math.nan, math.nan
    m = float(a.mean())
    if a.size < 2:
        return m, math.nan, math.nan
    half = float(_st.t.ppf(0.5 + level / 2, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))
    return m, m - half, m + half
