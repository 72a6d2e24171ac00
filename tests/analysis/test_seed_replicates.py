"""Seed replicates (sdsl_lib.analysis.pretraining, stats): grouping by size, the per-size summary, the
seed-noise ratio and the two-level (size, then seed) bootstrap of the equal-data slope."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sdsl_lib.analysis import pretraining as pt
from sdsl_lib.analysis import stats as st
from sdsl_lib.measurement.profiles import replicate_name


def _ladder(slope_per_decade, seed_sd=0.0, n_sizes=5, n_seeds=3, seed=0, deviations=None):
    """One budget (1e6 tokens), ``n_sizes`` sizes over one decade, ``n_seeds`` seeds each:
    loss = 5 + slope * log10(N / 1e5) + seed noise, the noise N(0, seed_sd) or, given
    ``deviations`` (one per seed, the same for every size), exactly those."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(np.logspace(5, 6, n_sizes).round()):
        for r in range(n_seeds):
            noise = deviations[r] if deviations is not None else rng.normal(0, seed_sd)
            rows.append(
                {
                    "model": replicate_name(f"m{i}", r),
                    "n_params": int(n),
                    "n_tokens": 1e6,
                    "val_loss_nats": 5.0 + slope_per_decade * math.log10(n / 1e5) + noise,
                }
            )
    return pd.DataFrame(rows)


def test_seed_summary_gives_each_sizes_mean_sd_and_number_of_seeds():
    f = pd.DataFrame(
        {
            "model": ["b.r2", "a", "a.r1", "a.r2", "b", "c", "b.r1"],
            "n_params": [20, 10, 10, 10, 20, 30, 20],
            "val_loss_nats": [7.0, 1.0, 2.0, 3.0, 4.0, 9.0, 5.0],
        }
    )
    s = pt.seed_summary(f).set_index("base_model")
    assert list(s.index) == ["a", "b", "c"]  # smallest size first
    assert s.loc["a", "n_seeds"] == 3 and s.loc["a", "mean"] == pytest.approx(2.0)
    assert s.loc["a", "sd"] == pytest.approx(1.0)
    assert s.loc["b", "n_seeds"] == 3 and s.loc["b", "mean"] == pytest.approx(16 / 3)
    assert s.loc["b", "sd"] == pytest.approx(np.std([4.0, 5.0, 7.0], ddof=1))
    assert s.loc["c", "n_seeds"] == 1 and s.loc["c", "mean"] == 9.0 and math.isnan(s.loc["c", "sd"])
    assert s.loc["b", "n_params"] == 20
    # Per budget: the same, grouped by n_tokens too.
    pts = pd.concat([f.assign(n_tokens=1), f.assign(n_tokens=2, val_loss_nats=f["val_loss_nats"] * 2)])
    by_d = pt.seed_summary(pts, by=("n_tokens",)).set_index(["base_model", "n_tokens"])
    assert by_d.loc[("a", 2), "mean"] == pytest.approx(4.0) and by_d.loc[("a", 2), "sd"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="must share n_params"):
        pt.seed_summary(f.assign(n_params=[20, 10, 11, 10, 20, 30, 20]))
    with pytest.raises(ValueError, match="one row per model"):
        pt.seed_summary(pd.concat([f, f.iloc[:1]]))


def test_seed_noise_is_a_one_way_anova():
    f = _ladder(-0.3, 0.05, n_sizes=4, n_seeds=3, seed=1)
    n = pt.seed_noise(f)
    groups = [g.to_numpy() for _, g in pt.with_replicates(f).groupby("base_model")["val_loss_nats"]]
    from scipy import stats

    ref = stats.f_oneway(*groups)
    assert n.f_statistic == pytest.approx(ref.statistic) and n.p_value == pytest.approx(ref.pvalue)
    assert n.seed_sd == pytest.approx(math.sqrt(np.mean([np.var(g, ddof=1) for g in groups])))
    assert n.between_sd == pytest.approx(np.std([g.mean() for g in groups], ddof=1))
    assert n.variance_ratio == pytest.approx(n.seed_sd**2 / n.between_sd**2)
    assert (n.n_sizes, n.n_models) == (4, 12)
    # Sizes that do not differ: the ratio is near the number of seeds (6); clear sizes: far below 1.
    assert pt.seed_noise(_ladder(0.0, 0.1, n_sizes=8, n_seeds=6, seed=2)).variance_ratio > 1.0
    assert pt.seed_noise(_ladder(-0.5, 0.01, seed=2)).variance_ratio < 0.05
    with pytest.raises(ValueError, match="a size with 2 seeds"):
        pt.seed_noise(_ladder(-0.3, 0.05, n_seeds=1))


def test_pool_seeds_replaces_replicated_sizes_and_keeps_the_others():
    main = pd.DataFrame({"model": ["d0", "d1", "t0"], "n_params": [10, 20, 50], "val_loss_nats": [3.0, 2.0, 1.0]})
    seeds = pd.DataFrame(
        {"model": ["d0", "d0.r1", "d1", "d1.r1"], "n_params": [10, 10, 20, 20], "val_loss_nats": [3.1, 3.3, 2.1, 2.3]}
    )
    pooled = pt.pool_seeds(main, seeds)
    assert list(pooled["model"]) == ["d0", "d0.r1", "d1", "d1.r1", "t0"]
    assert pooled.set_index("model").loc["d0", "val_loss_nats"] == 3.1  # seeds' replicate 0 replaces main's
    assert list(pooled["replicate"]) == [0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="must replicate models of main"):
        pt.pool_seeds(main, seeds.assign(model=["x", "x.r1", "d1", "d1.r1"]))
    with pytest.raises(ValueError, match="must have main's n_params"):
        pt.pool_seeds(main, seeds.assign(n_params=[11, 11, 20, 20]))


def test_two_level_bootstrap_carries_seed_noise_into_the_slope_interval():
    # Every size's mean lies exactly on the line (seed deviations -a, 0, +a), so only the seeds
    # scatter. Seed noise (a = 0.3 nats) swamps a small size effect (-0.01 nats per decade): the
    # interval straddles zero. A large effect (-0.5) against small seed noise (a = 0.02): it excludes zero.
    small = pt.size_slope_with_seeds(_ladder(-0.01, deviations=[-0.3, 0.0, 0.3]), 1e6, n_boot=1000, seed=0)
    assert small.unit == "model+seed" and small.n_units == 5
    assert small.estimate == pytest.approx(-0.01)
    assert small.lower < 0.0 < small.upper
    large = pt.size_slope_with_seeds(_ladder(-0.5, deviations=[-0.02, 0.0, 0.02]), 1e6, n_boot=1000, seed=0)
    assert large.estimate == pytest.approx(-0.5)
    assert large.lower <= large.estimate <= large.upper < 0.0

    # Resampling sizes alone sees no spread here at all: the second level (seeds within each size)
    # is what puts the seed noise into the interval.
    def ols_slope(f):
        if f["n_params"].nunique() < 2:
            raise ValueError("one size only")  # a NaN draw
        return np.polyfit(np.log10(f["n_params"]), f["val_loss_nats"], 1)[0]

    exact = pt.with_replicates(_ladder(-0.01, deviations=[-0.3, 0.0, 0.3]))
    sizes_only = st.bootstrap_draws(exact, ols_slope, "size", 300, 0)
    assert np.nanmax(sizes_only) - np.nanmin(sizes_only) < 1e-9
    assert small.upper - small.lower > 0.2


def test_the_seed_slope_reduces_to_the_one_seed_slope_and_weighs_each_size_once():
    one = _ladder(-0.2, 0.05, n_seeds=1, seed=4)
    assert pt.size_slope_with_seeds(one, 1e6, n_boot=20).estimate == pytest.approx(
        pt.size_slope_at_equal_data(one, 1e6, n_boot=20).estimate
    )
    # Three seeds of the smallest size, one of the others: the slope runs through the size means.
    f = _ladder(-0.2, n_seeds=1)
    extra = pd.DataFrame(
        {"model": ["m0.r1", "m0.r2"], "n_params": f["n_params"].iloc[0], "n_tokens": 1e6, "val_loss_nats": [5.3, 4.7]}
    )
    assert pt.size_slope_with_seeds(pd.concat([f, extra]), 1e6, n_boot=20).estimate == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="at least 3 sizes"):
        pt.size_slope_with_seeds(_ladder(-0.2, 0.05, n_sizes=2), 1e6)


def test_bootstrap_within_must_be_nested_in_the_unit():
    f = pd.DataFrame({"base_model": ["a", "a", "b", "b"], "model": ["x", "y", "x", "z"], "v": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match="within must name units nested in unit"):
        st.bootstrap_draws(f, lambda g: g["v"].mean(), "size", 10, 0, within="model")
    with pytest.raises(ValueError, match="unit must be one of"):
        st.bootstrap_draws(f, lambda g: g["v"].mean(), "size", 10, 0, within="seed")


def test_law_by_replicate_fits_each_replicate_with_the_unreplicated_sizes():
    from sdsl_lib.laws.constants import ChinchillaLaw
    from sdsl_lib.laws.pretraining import loss

    law = ChinchillaLaw(E=2.0, A=400.0, B=2000.0, nu=0.35, delta=0.35)
    rows = []
    for i, n in enumerate(np.logspace(5, 7, 5)):
        for r in range(3 if i < 3 else 1):  # the two largest trained once (like the targets)
            for d in (2e5, 4e5, 8e5):
                rows.append({"model": replicate_name(f"m{i}", r), "n_params": n, "n_tokens": d,
                             "val_loss_nats": float(loss(n, d, law)) * (1 + 0.002 * r)})  # fmt: skip
    grid = {"a": [6.0], "b": [7.6], "e": [0.7], "nu": [0.35], "delta": [0.35]}
    fits = pt.law_by_replicate(pd.DataFrame(rows), grid=grid)
    assert list(fits["replicate"]) == [0, 1, 2]
    assert list(fits["n_points"]) == [15, 15, 15] and list(fits["n_sizes_replicated"]) == [5, 3, 3]
    assert fits.loc[0, "nu"] == pytest.approx(0.35, rel=0.05)
    assert np.isfinite(fits[list(pt.LAW_PARAMETERS)].to_numpy(float)).all()
