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

Seed replicates (profile ``cpu-seeds``: each draft trained three times, replicate ``r`` named
``<model>.r<r>``, :func:`sdsl_lib.measurement.profiles.replicate_name`): :func:`with_replicates`
groups them by size, :func:`seed_summary` gives each size's mean, sd and number of seeds,
:func:`seed_noise` sets the seed-to-seed spread against the spread between sizes,
:func:`size_slope_with_seeds` is the equal-data slope with an interval that resamples sizes **and**
seeds within each size (unit ``"model+seed"``), and :func:`law_by_replicate` refits Eq. 2 on each
replicate.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

from sdsl_lib.analysis.stats import Interval, bootstrap_draws, percentile_interval
from sdsl_lib.analysis.tables import need_columns
from sdsl_lib.laws.constants import BESIROGLU_2024, ChinchillaLaw
from sdsl_lib.laws.pretraining import ChinchillaFit, fit_chinchilla
from sdsl_lib.measurement.profiles import replicate_of

__all__ = [
    "LAW_PARAMETERS",
    "fit_ladder_law",
    "law_draws_by_model",
    "law_comparison",
    "law_multistart_spread",
    "size_slope_at_equal_data",
    "SEED_UNIT",
    "with_replicates",
    "seed_summary",
    "pool_seeds",
    "size_slope_with_seeds",
    "SeedNoise",
    "seed_noise",
    "law_by_replicate",
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


#: The unit of an interval that resamples sizes and, within each size, its seed replicates.
SEED_UNIT = "model+seed"


def with_replicates(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with ``base_model`` and ``replicate`` parsed from ``model``.

    Names follow :func:`sdsl_lib.measurement.profiles.replicate_name`: ``d0-48x2.r2`` is replicate 2
    of ``d0-48x2``; a name without the suffix (every model of the ``cpu`` profile) is replicate 0 of
    itself. One ``base_model`` is one size: its replicates share shape, data and learning rate.

    Examples
    --------
    >>> f = with_replicates(pd.DataFrame({"model": ["d0", "d0.r1", "d0.r2", "t0"]}))
    >>> f[["base_model", "replicate"]].values.tolist()
    [['d0', 0], ['d0', 1], ['d0', 2], ['t0', 0]]
    """
    need_columns(frame, "frame", ["model"])
    parsed = [replicate_of(m) for m in frame["model"]]
    out = frame.copy()
    out["base_model"] = [b for b, _ in parsed]
    out["replicate"] = np.array([r for _, r in parsed], dtype=int)
    return out


def seed_summary(
    frame: pd.DataFrame, value_column: str = "val_loss_nats", params_column: str = "n_params", by=()
) -> pd.DataFrame:
    r"""Each size's mean, standard deviation and number of seeds of ``value_column``.

    For size :math:`i` with seeds :math:`j = 1..n_i`: :math:`\bar L_i = \frac{1}{n_i}\sum_j L_{ij}` and
    :math:`s_i^2 = \frac{1}{n_i - 1}\sum_j (L_{ij} - \bar L_i)^2` (NaN for a size trained once).

    Parameters
    ----------
    frame : DataFrame
        One row per model (``models.csv``), or per model and budget (``loss_budget_points.csv`` with
        ``by=("n_tokens",)``); replicates named as :func:`with_replicates` reads them.
    value_column, params_column : str
        The value summarised (nats) and the parameter count of the size.
    by : sequence of str
        Further grouping columns (a budget).

    Returns
    -------
    DataFrame
        ``base_model``, the ``by`` columns, ``params_column``, ``n_seeds``, ``mean``, ``sd``; smallest size first.

    Examples
    --------
    >>> f = pd.DataFrame({"model": ["a", "a.r1", "a.r2", "b"], "n_params": [10, 10, 10, 20],
    ...                   "val_loss_nats": [1.0, 2.0, 3.0, 4.0]})
    >>> seed_summary(f)[["base_model", "n_seeds", "mean", "sd"]].values.tolist()
    [['a', 3, 2.0, 1.0], ['b', 1, 4.0, nan]]
    """
    f = with_replicates(frame)
    by = list(by)
    need_columns(f, "frame", [value_column, params_column, *by])
    keys = ["base_model", *by]
    if f.duplicated([*keys, "replicate"]).any():
        raise ValueError(f"frame must hold one row per model{f' and {by}' if by else ''}, got duplicates")
    g = f.groupby(keys, sort=False)
    mixed = g[params_column].nunique()
    if (mixed > 1).any():
        raise ValueError(f"replicates of one size must share {params_column}; {sorted(mixed[mixed > 1].index)} do not")
    out = g.agg(
        **{params_column: (params_column, "first")},
        n_seeds=("replicate", "nunique"),
        mean=(value_column, "mean"),
        sd=(value_column, "std"),
    ).reset_index()
    return out.sort_values([params_column, *by], kind="stable").reset_index(drop=True)


def pool_seeds(main: pd.DataFrame, seeds: pd.DataFrame, params_column: str = "n_params") -> pd.DataFrame:
    """One frame of every size: ``seeds``' rows for each size it replicates, ``main``'s for the rest.

    ``main`` is a profile whose models were trained once (``cpu``: drafts and targets), ``seeds``
    the replicates of some of them (``cpu-seeds``: the drafts). Replicate 0 of a seeds size is a
    retraining of ``main``'s model with the same seed, so ``seeds`` replaces it instead of adding
    a copy. Both get :func:`with_replicates`' columns.

    Raises
    ------
    ValueError
        When ``seeds`` holds a size ``main`` lacks, or one whose ``params_column`` differs from
        ``main``'s (then they are not the same ladder).
    """
    m, s = with_replicates(main), with_replicates(seeds)
    need_columns(m, "main", [params_column])
    need_columns(s, "seeds", [params_column])
    extra = sorted(set(s["base_model"]) - set(m["base_model"]))
    if extra:
        raise ValueError(f"seeds must replicate models of main ({sorted(set(m['base_model']))}), got {extra}")
    size_main = m.groupby("base_model")[params_column].first()
    for base, values in s.groupby("base_model")[params_column].unique().items():
        if len(values) != 1 or values[0] != size_main[base]:
            raise ValueError(
                f"seeds' {base} must have main's {params_column} = {size_main[base]}, got {values.tolist()}"
            )
    out = pd.concat([m[~m["base_model"].isin(s["base_model"])], s], ignore_index=True)
    return out.sort_values([params_column, "replicate"], kind="stable").reset_index(drop=True)


def size_slope_with_seeds(
    points: pd.DataFrame,
    n_tokens: float,
    params_column: str = "n_params",
    loss_column: str = "val_loss_nats",
    n_boot: int = 1000,
    seed: int = 0,
) -> Interval:
    r"""The equal-data slope of :func:`size_slope_at_equal_data`, with seed variance in its interval.

    Weighted least squares over every model at budget ``n_tokens``, each size counting once
    whatever its number of seeds :math:`n_i`:

    .. math:: \min_{a, b} \sum_i \frac{1}{n_i} \sum_{j=1}^{n_i} \left(L_{ij} - a - b \log_{10} N_i\right)^2

    so :math:`b` is the slope through the size means, and with one seed per size it is
    :func:`size_slope_at_equal_data`'s estimate. The interval resamples sizes (``base_model``) and,
    within each drawn size, its seeds (:func:`sdsl_lib.analysis.stats.bootstrap_draws` with
    ``within="model"``): unit ``"model+seed"``, ``n_units`` the number of sizes. A size trained once
    contributes no seed variance of its own.

    Examples
    --------
    >>> pts = pd.DataFrame({"model": ["a", "a.r1", "b", "b.r1", "c", "c.r1"], "n_params": [1e5, 1e5, 1e6, 1e6, 1e7, 1e7],
    ...                     "n_tokens": 1e6, "val_loss_nats": [5.1, 4.9, 4.8, 4.6, 4.4, 4.6]})
    >>> iv = size_slope_with_seeds(pts, 1e6, n_boot=50)
    >>> round(iv.estimate, 4), iv.unit, iv.n_units
    (-0.25, 'model+seed', 3)
    """
    f = with_replicates(points)
    need_columns(f, "points", [params_column, "n_tokens", loss_column])
    at = f[f["n_tokens"] == n_tokens].copy()
    k = at["base_model"].nunique()
    if k < 3:
        raise ValueError(f"n_tokens must be a budget shared by at least 3 sizes, got {n_tokens!r} ({k} sizes)")
    if at["model"].duplicated().any():
        raise ValueError(f"points must hold one row per model at n_tokens = {n_tokens!r}, got duplicates")
    # 1/n_i per row: a resampled size keeps its n_i seeds (drawn with replacement), so still weighs 1.
    at["_weight"] = 1.0 / at.groupby("base_model")["model"].transform("nunique").to_numpy(float)

    def slope(fr: pd.DataFrame) -> float:
        if fr[params_column].nunique() < 2:
            raise ValueError("one size only")
        x = np.log10(fr[params_column].to_numpy(float))
        return float(np.polyfit(x, fr[loss_column].to_numpy(float), 1, w=np.sqrt(fr["_weight"].to_numpy(float)))[0])

    draws = bootstrap_draws(at, slope, "size", n_boot, seed, within="model")
    return percentile_interval(draws, slope(at), SEED_UNIT, k)


@dataclass(frozen=True)
class SeedNoise:
    r"""Seed-to-seed spread of a loss against the spread between sizes (:func:`seed_noise`)."""

    #: :math:`s_w`: pooled within-size (seed-to-seed) standard deviation, nats.
    seed_sd: float
    #: :math:`s_b`: standard deviation of the size means, nats.
    between_sd: float
    #: :math:`s_w^2 / s_b^2`.
    variance_ratio: float
    #: One-way ANOVA :math:`F = \mathrm{MS}_b / s_w^2` and its p-value (normal errors).
    f_statistic: float
    p_value: float
    n_sizes: int
    n_models: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def seed_noise(frame: pd.DataFrame, value_column: str = "val_loss_nats") -> SeedNoise:
    r"""Is the spread between sizes more than seed noise? A one-way analysis of variance.

    ``frame`` holds one row per model at **one** budget (equal data: the drafts' final losses, or
    the budget points at one ``n_tokens``); :math:`k` sizes, :math:`N` models, :math:`n_i` seeds of size :math:`i`.

    .. math::

        s_w^2 = \frac{\sum_i \sum_j (L_{ij} - \bar L_i)^2}{N - k}, \qquad
        s_b^2 = \frac{\sum_i (\bar L_i - \bar{\bar L})^2}{k - 1}, \qquad
        F = \frac{\sum_i n_i (\bar L_i - \bar L)^2 / (k - 1)}{s_w^2}

    (:math:`\bar{\bar L}` the mean of the size means, :math:`\bar L` of all models). Seed noise alone
    makes the mean of :math:`n` seeds vary by :math:`s_w^2 / n`, so with :math:`n` seeds per size a
    ratio :math:`s_w^2 / s_b^2` near :math:`n` (:math:`F` near 1) means the sizes differ no more
    than reshuffling seeds would make them, and a ratio far below 1 means the sizes' differences
    (their ordering included) stand out of the seed noise.

    Raises ``ValueError`` with fewer than 2 sizes or no size with 2 seeds (no within-size spread).

    Examples
    --------
    >>> f = pd.DataFrame({"model": ["a", "a.r1", "b", "b.r1"], "val_loss_nats": [1.0, 1.2, 2.0, 2.2]})
    >>> n = seed_noise(f)
    >>> round(n.seed_sd, 4), round(n.between_sd, 4), round(n.variance_ratio, 4), round(n.f_statistic, 1)
    (0.1414, 0.7071, 0.04, 50.0)
    """
    f = with_replicates(frame)
    need_columns(f, "frame", [value_column])
    if f["model"].duplicated().any():
        raise ValueError("frame must hold one row per model (one budget), got duplicates")
    g = f.groupby("base_model")[value_column]
    means, counts = g.mean(), g.size()
    k, n = len(means), len(f)
    if k < 2 or n - k < 1:
        raise ValueError(f"frame must hold at least 2 sizes and a size with 2 seeds, got {k} sizes and {n} models")
    ss_within = float(((f[value_column] - f["base_model"].map(means)) ** 2).sum())
    ms_within = ss_within / (n - k)
    grand = float(f[value_column].mean())
    ms_between = float((counts * (means - grand) ** 2).sum()) / (k - 1)
    between_var = float(means.var(ddof=1))
    fstat = ms_between / ms_within if ms_within > 0 else math.inf
    p = float(_st.f.sf(fstat, k - 1, n - k)) if math.isfinite(fstat) else 0.0
    ratio = ms_within / between_var if between_var > 0 else math.inf
    return SeedNoise(math.sqrt(ms_within), math.sqrt(between_var), ratio, fstat, p, k, n)


def law_by_replicate(
    points: pd.DataFrame,
    params_column: str = "n_params",
    loss_column: str = "val_loss_nats",
    grid: dict | None = None,
) -> pd.DataFrame:
    """Eq. 2 fitted once per seed replicate: the spread of the exponents over seeds.

    Fit ``r`` takes replicate ``r`` of every size that has one and replicate 0 of the others (sizes
    trained once, e.g. the targets), so the fits differ only by the replicated sizes' seeds.
    Returns one row per replicate: ``replicate``, ``E, A, B, nu, delta``, ``objective``,
    ``n_points`` and ``n_sizes_replicated`` (sizes that contributed replicate ``r``).
    """
    f = with_replicates(points)
    rows = []
    for r in sorted(f["replicate"].unique()):
        has = set(f.loc[f["replicate"] == r, "base_model"])
        sel = f[(f["replicate"] == r) | ((f["replicate"] == 0) & ~f["base_model"].isin(has))]
        fit = fit_ladder_law(sel, params_column, loss_column, grid)
        rows.append(
            {
                "replicate": int(r),
                **{p: getattr(fit.law, p) for p in LAW_PARAMETERS},
                "objective": fit.objective,
                "n_points": fit.n_points,
                "n_sizes_replicated": len(has),
            }
        )
    return pd.DataFrame(rows)


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
