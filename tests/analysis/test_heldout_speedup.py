"""The held-out best speed-up (throughput.heldout_best_speedup): chosen on one fold of prompts,
scored on the other, the selection redone in every bootstrap draw; against the in-sample best."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sdsl_lib.analysis import throughput as th

TRUTH = 1.3  # the common median speed-up of every configuration in the null simulations


def _table(means: dict, n_prompts: int, noise: float, rng, prompt_sd: float = 0.0) -> pd.DataFrame:
    # Per-prompt speed-up = the configuration's true median + a prompt effect shared by every
    # configuration (prompts differ in difficulty) + independent symmetric noise per (config, prompt).
    effect = rng.normal(0.0, prompt_sd, n_prompts)
    rows = [
        {"draft": d, "gamma": g, "method": "speculative", "prompt_idx": k,
         "speedup_vs_autoregressive": m + effect[k] + rng.normal(0.0, noise)}
        for (d, g), m in means.items() for k in range(n_prompts)
    ]  # fmt: skip
    return pd.DataFrame(rows)


EQUAL = {(d, g): TRUTH for d in ("a", "b", "c") for g in range(1, 5)}  # 12 configurations, equal in truth


def test_heldout_is_unbiased_where_the_in_sample_best_is_not():
    # All 12 configurations have the same true median; the noise is large next to the prompt count.
    # The in-sample best is a maximum of 12 noisy medians (winner's curse: about +1.6 standard
    # errors, here ~ +0.15); the held-out estimate scores each prompt under a choice made without it.
    heldout, in_sample = [], []
    for s in range(150):
        r = th.heldout_best_speedup(_table(EQUAL, 16, 0.3, np.random.default_rng(s), 0.05), ["a", "b", "c"], n_boot=1)
        heldout.append(r.heldout.estimate)
        in_sample.append(r.in_sample.estimate)
    bias_heldout, bias_in = np.mean(heldout) - TRUTH, np.mean(in_sample) - TRUTH
    se = np.std(heldout, ddof=1) / math.sqrt(len(heldout))
    assert bias_in > 0.1  # the optimism the held-out estimate removes
    assert abs(bias_heldout) < max(3 * se, 0.02), (bias_heldout, se)


def test_heldout_interval_covers_the_truth_and_the_in_sample_one_does_not():
    # With the selection redone per draw, the held-out 95% interval covers the common median about
    # as often as it claims; the in-sample interval (bootstrap of the chosen configuration only) is
    # centred on the inflated maximum and covers it far less often.
    cover_heldout, cover_in = [], []
    for s in range(60):
        r = th.heldout_best_speedup(
            _table(EQUAL, 16, 0.3, np.random.default_rng(100 + s)), ["a", "b", "c"], n_boot=200, seed=s
        )
        cover_heldout.append(r.heldout.lower <= TRUTH <= r.heldout.upper)
        cover_in.append(r.in_sample.lower <= TRUTH <= r.in_sample.upper)
    assert np.mean(cover_heldout) >= 0.85
    assert np.mean(cover_in) < np.mean(cover_heldout) - 0.15


def test_a_clearly_best_configuration_is_chosen_by_both_folds():
    means = dict(EQUAL)
    means[("b", 3)] = 2.0
    t = _table(means, 10, 0.05, np.random.default_rng(0))
    r = th.heldout_best_speedup(t, ["a", "b", "c"], n_boot=200, seed=1)
    assert r.chosen == (("b", 3), ("b", 3)) and r.in_sample_choice == ("b", 3)
    assert r.heldout.estimate == pytest.approx(r.in_sample.estimate)  # same configuration, same prompts
    assert r.heldout.estimate == pytest.approx(2.0, abs=0.05)
    assert r.heldout.unit == "prompt" and r.heldout.n_units == 10 and r.heldout.n_boot == 200
    assert r.heldout.lower <= r.heldout.estimate <= r.heldout.upper
    assert r.folds == ((0, 2, 4, 6, 8), (1, 3, 5, 7, 9))
    assert r.to_dict()["chosen_by_fold"] == [["b", 3], ["b", 3]]
    # Only the named drafts compete.
    assert set(th.heldout_best_speedup(t, ["a"], n_boot=10).chosen) <= {("a", g) for g in range(1, 5)}


def test_folds_read_only_the_sorted_prompt_indices():
    f0, f1 = th.prompt_folds([12, 5, 5, 9, 30, 1])
    assert f0.tolist() == [1, 9, 30] and f1.tolist() == [5, 12]


def test_few_prompts_give_a_nan_interval_and_bad_input_an_error():
    rng = np.random.default_rng(3)
    t = _table({("a", 1): 1.0, ("a", 2): 1.5}, 3, 0.01, rng)
    three = th.heldout_best_speedup(t, ["a"], n_boot=50)  # folds of 2 and 1 prompts
    assert math.isfinite(three.heldout.estimate) and math.isnan(three.heldout.lower) and three.heldout.n_boot == 0
    assert three.chosen == (("a", 2), ("a", 2))
    one = th.heldout_best_speedup(t[t.prompt_idx == 0], ["a"], n_boot=50)
    assert math.isnan(one.heldout.estimate) and one.chosen[1] is None and one.in_sample_choice == ("a", 2)
    # A configuration missing on the scored prompt counts in no median (no NaN leaks into the estimate).
    holes = t.drop(t.index[(t.gamma == 2) & (t.prompt_idx == 1)])
    assert math.isfinite(th.heldout_best_speedup(holes, ["a"], n_boot=10).heldout.estimate)
    with pytest.raises(ValueError, match="drafts must name"):
        th.heldout_best_speedup(t, ["nope"])
    with pytest.raises(ValueError, match="n_boot"):
        th.heldout_best_speedup(t, ["a"], n_boot=0)
    with pytest.raises(ValueError, match="prompt_idx"):
        th.heldout_best_speedup(t.drop(columns="prompt_idx"), ["a"])
