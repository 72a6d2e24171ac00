"""Unit tests of the one-target analysis of notebook 15 (a real target and a draft ladder distilled
for it): the size law, the Table 4 log line with drafts resampled, the single-target chain, the
load filter and the ratio to Hugging Face assisted generation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sdsl_lib.analysis import acceptance as ac
from sdsl_lib.analysis import chain as ch
from sdsl_lib.analysis import pretraining as pt
from sdsl_lib.analysis import throughput as th
from sdsl_lib.laws.constants import AlphaPlane, ChinchillaLaw

V = pd.DataFrame({"n_new_tokens": np.arange(1, 11), "v": np.linspace(1.0, 1.45, 10)})


def _ladder(n_drafts: int = 6, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    # Drafts on an exact size law L = 6 N^-0.08 and an exact log line alpha = 0.95 - 0.12 ln ppl.
    rng = np.random.default_rng(seed)
    n = np.logspace(5, 7, n_drafts)
    loss = 6.0 * n**-0.08
    alpha = 0.95 - 0.12 * loss + noise * rng.normal(size=n_drafts)
    return pd.DataFrame({"model": [f"d{i}" for i in range(n_drafts)], "n": n, "val_loss_nats": loss,
                         "val_ppl": np.exp(loss), "a": alpha})  # fmt: skip


def test_size_law_recovers_an_exact_power_law_and_refuses_one_size():
    d = _ladder()
    law = pt.fit_size_law(d["n"], d["val_loss_nats"])
    assert (law.a, law.b, law.r2) == pytest.approx((6.0, 0.08, 1.0))
    assert np.allclose(law.loss(d["n"]), d["val_loss_nats"])
    iv = pt.size_law_exponent(d, "n", n_boot=100)
    assert iv.lower == pytest.approx(0.08) and iv.upper == pytest.approx(0.08)  # every resample lies on the law
    with pytest.raises(ValueError, match="2 distinct sizes"):
        pt.fit_size_law([1e5, 1e5], [4.0, 4.1])


def test_size_law_exponent_is_nan_below_min_models():
    iv = pt.size_law_exponent(_ladder(2), "n", n_boot=50)
    assert iv.estimate == pytest.approx(0.08)
    assert math.isnan(iv.lower) and math.isnan(iv.upper) and iv.n_units == 2


def test_log_line_matches_table4_log_form():
    d = _ladder(noise=0.02)
    p1, p2 = ac.alpha_log_ppl_line(d["val_ppl"], d["a"])
    ref = ac.fit_alpha_vs_draft_ppl(d["val_ppl"].to_numpy(), d["a"].to_numpy(), "log")
    assert (p1, p2) == pytest.approx((ref.p1, ref.p2))


def test_log_ppl_slope_interval_resamples_drafts_and_degrades_below_three():
    d = _ladder(noise=0.01)
    iv = ac.alpha_log_ppl_slope(d, "a", n_boot=300)
    assert iv.unit == "model" and iv.n_units == 6
    assert iv.lower <= iv.estimate <= iv.upper < 0
    small = ac.alpha_log_ppl_slope(d.iloc[:2], "a", n_boot=50)
    assert math.isfinite(small.estimate) and math.isnan(small.lower)


def test_wallclock_optimum_is_latency_optimal_draft_with_its_alpha():
    plane = AlphaPlane(A=-0.004, B=0.0, C=0.9, source="test")
    law = ChinchillaLaw(E=1.8, A=400.0, B=400.0, nu=0.35, delta=0.3, source="test")
    m, t_m = 1e7, 1e-2
    grid = np.logspace(3, np.log10(m) - 0.01, 200)
    best, curve = ch.latency_optimal_draft(m, 1e8, 1e8, plane, law, 0.2 * t_m, 0.8 * t_m / m, t_m, V, range(1, 9), grid)
    again, _ = ch.wallclock_optimum(curve["n_draft"], curve["alpha"], 0.2 * t_m, 0.8 * t_m / m, t_m, V, range(1, 9))
    assert again == best
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        ch.wallclock_optimum(grid, np.full(grid.size, 1.5), 0.0, 1e-9, t_m, V, [1])


def test_draft_chain_composes_the_two_laws_and_finds_an_interior_optimum():
    d = _ladder()
    grid = np.logspace(4.5, 7.5, 300)
    t_m = 2e-2
    best, curve = ch.draft_chain(d, "a", "n", grid, 1e-3, 1e-9, t_m, V, range(1, 10))
    assert (best["p1"], best["p2"], best["a"], best["b"]) == pytest.approx((-0.12, 0.95, 6.0, 0.08))
    expect = 0.95 - 0.12 * 6.0 * curve["n_draft"] ** -0.08
    assert np.allclose(curve["alpha"], expect)
    # Brute force over the same grid and lookaheads.
    v = V.set_index("n_new_tokens")["v"]
    c = (1e-3 + 1e-9 * curve["n_draft"].to_numpy()[:, None]) / t_m
    g = np.arange(1, 10)[None, :]
    a = curve["alpha"].to_numpy()[:, None]
    s = (1 - a ** (g + 1)) / ((1 - a) * (g * c + v.loc[g[0] + 1].to_numpy()[None, :]))
    assert best["speedup"] == pytest.approx(s.max())
    assert best["n_star"] == pytest.approx(curve["n_draft"].to_numpy()[np.unravel_index(s.argmax(), s.shape)[0]])
    assert not best["at_grid_edge"]


def test_draft_chain_draws_are_nan_below_min_models_and_finite_above():
    grid = np.logspace(4.5, 7.5, 100)
    args = ("a", "n", grid, 1e-3, 1e-9, 2e-2, V, range(1, 10))
    assert np.isnan(ch.draft_chain_draws(_ladder(2), *args, n_boot=20)).all()
    draws = ch.draft_chain_draws(_ladder(6, noise=0.005), *args, n_boot=40)
    assert draws.shape == (40,) and np.isfinite(draws).mean() > 0.9
    assert ((draws[np.isfinite(draws)] >= grid[0]) & (draws[np.isfinite(draws)] <= grid[-1])).all()


def test_drop_load_flagged_follows_the_summary_rule():
    t = pd.DataFrame({"draft": ["d"] * 4 + ["e"] * 2, "target": "t", "prompt_idx": [0, 0, 1, 1, 0, 1],
                      "load_flagged": [False, True, False, False, True, True]})  # fmt: skip
    out = th.drop_load_flagged(t)
    assert out[out.draft == "d"]["prompt_idx"].tolist() == [1, 1]
    assert len(out[out.draft == "e"]) == 2  # every prompt flagged: all kept, as the stage's summary does
    assert th.drop_load_flagged(t.drop(columns="load_flagged")).shape == (6, 3)


def test_hf_speed_ratio_is_the_summary_median_with_a_prompt_interval():
    from sdsl_lib.measurement.hf_baseline import summarise_comparison

    rng = np.random.default_rng(1)
    rows = [{"draft": "d", "target": "t", "gamma": 3, "prompt_idx": p, "repeat": r, "engine": e, "new_tokens": 64,
             "time_s": (1.0 if e == "ours" else 1.4) * (1 + 0.05 * rng.normal()), "accepted": 1, "drafted": 2,
             "identical": True}
            for p in range(6) for r in range(3) for e in ("ours", "hf")]  # fmt: skip
    df = pd.DataFrame(rows)
    iv = th.hf_speed_ratio(df, "d", "t", 3, n_boot=200)
    assert iv.estimate == pytest.approx(summarise_comparison(df)["ratio_median"])
    assert iv.unit == "prompt" and iv.n_units == 6 and iv.lower <= iv.estimate <= iv.upper
    one = th.hf_speed_ratio(df[df.prompt_idx == 0], "d", "t", 3)
    assert math.isnan(one.lower) and one.n_units == 1
    with pytest.raises(ValueError, match="no rows"):
        th.hf_speed_ratio(df, "d", "t", 5)


def test_best_speedup_picks_the_highest_median_and_resamples_prompts():
    from sdsl_lib.analysis.throughput import best_speedup

    rng = np.random.default_rng(0)
    rows = [
        {
            "draft": d,
            "gamma": g,
            "method": "speculative",
            "prompt_idx": k,
            "speedup_vs_autoregressive": base + 0.1 * g + rng.normal(0, 0.05),
        }
        for d, base in (("a", 1.0), ("b", 1.2), ("lookup", 2.0))
        for g in (1, 2, 3)
        for k in range(6)
    ]
    t = pd.DataFrame(rows)
    d, g, iv = best_speedup(t, ["a", "b"], n_boot=200, seed=1)
    brute = t[t.draft.isin(["a", "b"])].groupby(["draft", "gamma"]).speedup_vs_autoregressive.median()
    assert (d, g) == brute.idxmax() == ("b", 3)
    assert iv.estimate == pytest.approx(brute.max()) and iv.unit == "prompt" and iv.n_units == 6
    assert iv.lower <= iv.estimate <= iv.upper
    assert best_speedup(t, ["lookup"], n_boot=50)[0] == "lookup"
    with pytest.raises(ValueError, match="drafts must name"):
        best_speedup(t, ["nope"])
