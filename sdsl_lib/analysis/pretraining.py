r"""The pre-training law (Eq. 2) on the measured ladder, with intervals that resample models.

:math:`L(N, D) = E + A/N^{\nu} + B/D^{\delta}` (Eq. 2) is fitted on ``loss_budget_points.csv``:
every model at its full budget and at cool-down branches taken earlier. The budget points of one
model share its training run (and its hand-set learning rate), so they are not independent: the
intervals here resample **models** (:func:`law_draws_by_model`), not points. Each draw refits from
the point estimate and from a generic start, so it may reach another optimum; that spread is part
of what the data leave open.

For a ladder trained at one budget per size (the drafts distilled for a real target), the size-only
power law :func:`fit_size_law` / :func:`size_law_exponent` describes loss against N at the budgets
used.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdsl_lib.analysis.stats import Interval, bootstrap_draws, percentile_interval
from sdsl_lib.analysis.tables import need_columns
from sdsl_lib.laws.constants import BESIROGLU_2024, ChinchillaLaw
from sdsl_lib.laws.pretraining import ChinchillaFit, fit_chinchilla

__all__ = [
    "LAW_PARAMETERS",
    "fit_ladder_law",
    "law_draws_by_model",
    "law_comparison",
    "law_multistart_spread",
    "size_slope_at_equal_data",
    "SizeLaw",
    "fit_size_law",
    "size_law_exponent",
]

LAW_PARAMETERS = ("E", "A", "B", "nu", "delta")


def _arrays(points: pd.DataFrame, params_column: str, loss_column: str):
    need_columns(points, "points", ["model", params_column, "n_tokens", loss_column])
    return (points[c].to_numpy(float) for c in (params_column, "n_tokens", loss_column))


def fit_ladder_law(
    points: pd.DataFrame,
    params_column: str = "n_params",
    loss_column: str = "val_loss_nats",
    grid: dict | None = None,
) -> ChinchillaFit:
    r"""Fit Eq. 2 to the ladder's budget points (:func:`sdsl_lib.laws.pretraining.fit_chinchilla`).

    Parameters
    ----------
    points : DataFrame
        ``loss_budget_points.csv``.
    params_column : {"n_params", "n_params_non_embedding"}
        Which parameter count plays N (SDSL counts total parameters).
    loss_column : str
        Held-out loss in nats (validation split: the plane is fitted on validation perplexities).
    grid : dict, optional
        L-BFGS starts (keys ``a, b, e, nu, delta``); default :func:`fit_chinchilla`'s 3^5 grid.
    """
    n, d, l = _arrays(points, params_column, loss_column)
    return fit_chinchilla(n, d, l, grid=grid, source=f"fitted on the measured ladder ({params_column}, {loss_column})")


def _starts(law: ChinchillaLaw) -> list[dict]:
    # Two starts per draw: the point estimate and a generic one (Hoffmann et al.'s middle values),
    # so a resample can leave the point estimate's basin when its data prefer another optimum.
    here = {
        "a": [math.log(law.A)],
        "b": [math.log(law.B)],
        "e": [math.log(law.E)],
        "nu": [law.nu],
        "delta": [law.delta],
    }
    generic = {"a": [5.0], "b": [5.0], "e": [0.0], "nu": [0.4], "delta": [0.4]}
    return [here, generic]


def law_draws_by_model(
    points: pd.DataFrame,
    fit: ChinchillaFit,
    n_boot: int = 200,
    seed: int = 0,
    params_column: str = "n_params",
    loss_column: str = "val_loss_nats",
) -> pd.DataFrame:
    """Bootstrap draws of the Eq. 2 constants, resampling whole models (all their budget points).

    Returns one row per draw with ``E, A, B, nu, delta``; NaN where the resample cannot be fitted
    (fewer than 3 distinct sizes: the size term is then not identified).
    """
    starts = _starts(fit.law)

    def stat(sample: pd.DataFrame):
        if sample[params_column].nunique() < 3:
            raise ValueError("fewer than 3 distinct sizes")
        n, d, l = _arrays(sample, params_column, loss_column)
        lw = min((fit_chinchilla(n, d, l, grid=g) for g in starts), key=lambda f: f.objective).law
        return [getattr(lw, p) for p in LAW_PARAMETERS]

    need_columns(points, "points", ["model"])
    draws = bootstrap_draws(points, stat, "model", n_boot, seed)
    return pd.DataFrame(draws, columns=list(LAW_PARAMETERS))


def law_comparison(
    fit: ChinchillaFit, draws: pd.DataFrame, n_models: int, reference: ChinchillaLaw = BESIROGLU_2024
) -> dict:
    """Each constant with its model-bootstrap interval beside a published law's.

    Returns ``{parameter: Interval}`` plus nothing else; the published value is ``reference``'s.
    Exponents and E are comparable across setups; A and B are not (their units depend on the
    tokenizer and the scale of N and D).
    """
    need_columns(draws, "draws", list(LAW_PARAMETERS))
    return {p: percentile_interval(draws[p], getattr(fit.law, p), "model", n_models) for p in LAW_PARAMETERS}


def law_multistart_spread(
    points: pd.DataFrame,
    params_column: str = "n_params",
    loss_column: str = "val_loss_nats",
    rel_tolerance: float = 0.05,
    grid: dict | None = None,
) -> pd.DataFrame:
    r"""How weakly the ladder identifies the law: every local optimum the multistart finds.

    Runs :func:`fit_chinchilla` from each initial point of ``grid`` separately and returns one row
    per start with the optimum it reached, its objective, and ``near_best``: objective within
    ``rel_tolerance`` of the best. When near-best fits disagree on :math:`E`, :math:`\nu` or
    :math:`\delta` by large factors, the data do not pin them down.
    """
    n, d, l = _arrays(points, params_column, loss_column)
    grid = grid or {
        "a": [0.0, 5.0, 10.0],
        "b": [0.0, 5.0],
        "e": [-1.0, 1.0],
        "nu": [0.1, 0.4, 1.0],
        "delta": [0.1, 0.4],
    }
    keys = ("a", "b", "e", "nu", "delta")
    rows = []
    for start in itertools.product(*(grid[k] for k in keys)):
        f = fit_chinchilla(n, d, l, grid={k: [v] for k, v in zip(keys, start)})
        rows.append({**{p: getattr(f.law, p) for p in LAW_PARAMETERS}, "objective": f.objective})
    out = pd.DataFrame(rows).sort_values("objective").reset_index(drop=True)
    out["near_best"] = out["objective"] <= out["objective"].min() * (1.0 + rel_tolerance) + 1e-15
    return out


def size_slope_at_equal_data(
    points: pd.DataFrame,
    n_tokens: float,
    params_column: str = "n_params",
    loss_column: str = "val_loss_nats",
    n_boot: int = 1000,
    seed: int = 0,
) -> Interval:
    r"""Slope of held-out loss against :math:`\log_{10} N` among the models at one budget ``n_tokens``.

    Eq. 2 at fixed :math:`D` says the slope is negative (bigger is better). Ordinary least squares
    over the models holding a point at that budget; the interval resamples models.

    Examples
    --------
    >>> pts = pd.DataFrame({"model": list("abcd"), "n_params": [1e5, 2e5, 4e5, 8e5], "n_tokens": 1e6,
    ...                     "val_loss_nats": [5.0, 4.9, 4.8, 4.7]})
    >>> iv = size_slope_at_equal_data(pts, 1e6, n_boot=50)
    >>> round(iv.estimate, 4), iv.unit
    (-0.3322, 'model')
    """
    at = points[points["n_tokens"] == n_tokens]
    if at["model"].nunique() < 3:
        raise ValueError(f"n_tokens must be a budget shared by at least 3 models, got {n_tokens!r}")

    def slope(f: pd.DataFrame) -> float:
        if f[params_column].nunique() < 2:
            raise ValueError("one size only")
        return float(np.polyfit(np.log10(f[params_column].to_numpy(float)), f[loss_column].to_numpy(float), 1)[0])

    draws = bootstrap_draws(at, slope, "model", n_boot, seed)
    return percentile_interval(draws, slope(at), "model", at["model"].nunique())


@dataclass(frozen=True)
class SizeLaw:
    r"""Held-out loss against size alone, at the budgets the models were trained on: :math:`L(N) = a N^{-b}`.

    Not Eq. 2: without the data term and the irreducible loss :math:`E` it describes one ladder (its
    sizes and their budgets) and says nothing about other budgets or far outside its sizes.
    """

    a: float
    b: float
    r2: float
    n: int

    def loss(self, n_params):
        """:math:`L(N) = a N^{-b}` (nats) at ``n_params``."""
        return self.a * np.asarray(n_params, dtype=float) ** (-self.b)


def fit_size_law(n_params, loss) -> SizeLaw:
    r"""Fit :math:`L(N) = a N^{-b}` by least squares on :math:`\ln L = \ln a - b \ln N`.

    Two distinct sizes determine the line exactly (``r2`` is then NaN); fewer raise ``ValueError``.

    Examples
    --------
    >>> law = fit_size_law([1e5, 1e6, 1e7], [4.0 * 1e5 ** -0.1, 4.0 * 1e6 ** -0.1, 4.0 * 1e7 ** -0.1])
    >>> round(law.a, 6), round(law.b, 6), law.n
    (4.0, 0.1, 3)
    """
    n, l = np.asarray(n_params, dtype=float).ravel(), np.asarray(loss, dtype=float).ravel()
    if n.size != l.size:
        raise ValueError(f"n_params and loss must have one length, got {n.size} and {l.size}")
    if (n <= 0).any() or (l <= 0).any() or not (np.isfinite(n).all() and np.isfinite(l).all()):
        raise ValueError("n_params and loss must be finite and > 0")
    if np.unique(n).size < 2:
        raise ValueError(f"n_params must hold at least 2 distinct sizes, got {np.unique(n).size}")
    x, y = np.log(n), np.log(l)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(resid @ resid) / sst if n.size > 2 and sst > 0 else math.nan
    return SizeLaw(float(np.exp(intercept)), float(-slope), r2, int(n.size))


def size_law_exponent(
    models: pd.DataFrame,
    params_column: str = "n_params_non_embedding",
    loss_column: str = "val_loss_nats",
    n_boot: int = 1000,
    seed: int = 0,
    min_models: int = 3,
) -> Interval:
    r"""The exponent :math:`b` of :func:`fit_size_law` with a percentile interval resampling models.

    ``models`` holds one row per model (column ``model``). With fewer than ``min_models`` models the
    interval is NaN (two points fit any line: no spread to resample), so a verdict on it is
    inconclusive.

    Examples
    --------
    >>> m = pd.DataFrame({"model": list("abcd"), "n": [1e5, 2e5, 4e5, 8e5], "l": [5.0, 4.8, 4.7, 4.5]})
    >>> iv = size_law_exponent(m, "n", "l", n_boot=50)
    >>> round(iv.estimate, 4), iv.unit, iv.n_units
    (0.0486, 'model', 4)
    >>> math.isnan(size_law_exponent(m.iloc[:2], "n", "l", n_boot=50).lower)
    True
    """
    need_columns(models, "models", ["model", params_column, loss_column])
    fit = fit_size_law(models[params_column], models[loss_column])
    n_models = models["model"].nunique()
    if n_models < min_models:
        return Interval(fit.b, math.nan, math.nan, "model", n_models, 0)
    draws = bootstrap_draws(models, lambda f: fit_size_law(f[params_column], f[loss_column]).b, "model", n_boot, seed)
    return percentile_interval(draws, fit.b, "model", n_models)
