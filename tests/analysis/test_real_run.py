"""One real-target run judged by shared code (analysis.real_run): Eq. 1 against the measured
speed-ups with the run's own costs, the held-out best of trained drafts and of prompt lookup apart,
and the host a sidecar records."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sdsl_lib.analysis import real_run as rr
from sdsl_lib.laws.wallclock import wallclock_speedup


def _calibration(target_ms=(20.0, 22.0, 23.0, 24.0), drafts=None):
    rows = [{"model": "t", "n_new_tokens": k + 1, "latency_median_s": ms / 1e3} for k, ms in enumerate(target_ms)]
    for d, ms in (drafts or {"a": 1.0, "b": 2.0}).items():
        rows.append({"model": d, "n_new_tokens": 1, "latency_median_s": ms / 1e3})
    return pd.DataFrame(rows)


def test_verification_cost_is_relative_to_one_token_and_clamps_past_the_calibrated_counts():
    cal = _calibration()
    assert rr.verification_cost(cal, "t", 1) == pytest.approx(22.0 / 20.0)
    assert rr.verification_cost(cal, "t", 3) == pytest.approx(24.0 / 20.0)
    assert rr.verification_cost(cal, "t", 9) == pytest.approx(24.0 / 20.0)  # T = 10 not calibrated: the largest
    with pytest.raises(ValueError, match="gamma must be >= 1"):
        rr.verification_cost(cal, "t", 0)
    with pytest.raises(ValueError, match="no one-token latency of target 'x'"):
        rr.verification_cost(cal, "x", 1)


def test_eq1_against_measured_uses_the_runs_own_costs_and_is_zero_where_the_law_holds():
    cal = _calibration()
    alpha = pd.DataFrame({"draft": ["a", "b"], "greedy_match_tf": [0.5, 0.4]})
    # Measured speed-ups made by Eq. 1 itself for draft a; draft b measured 10% below its prediction.
    true_a = [float(wallclock_speedup(0.5, g, 0.05, v)) for g, v in ((1, 1.1), (2, 1.15))]
    true_b = float(wallclock_speedup(0.4, 1, 0.1, 1.1))
    summary = pd.DataFrame(
        {"draft": ["a", "a", "b", "a"], "target": "t", "method": ["speculative"] * 3 + ["autoregressive"],
         "gamma": [1, 2, 1, 0], "speedup_median": [*true_a, true_b / 1.1, 1.0]}
    )  # fmt: skip
    pred = rr.eq1_against_measured(summary, alpha, cal, "t")
    assert len(pred) == 3 and set(pred.columns) >= {"alpha", "c", "v", "predicted", "log_error"}
    a = pred[pred.draft == "a"]
    np.testing.assert_allclose(a.c, 0.05)
    np.testing.assert_allclose(a.v, [1.1, 1.15])
    np.testing.assert_allclose(a.log_error, 0.0, atol=1e-12)
    # Hand value for b: (1 - 0.4^2) / ((1 - 0.4)(0.1 + 1.1)) = 0.84 / 0.72.
    b = pred[pred.draft == "b"].iloc[0]
    assert b.predicted == pytest.approx(0.84 / 0.72)
    assert b.log_error == pytest.approx(np.log(1.1))
    mae = rr.eq1_abs_log_error(pred, n_boot=200)
    assert mae.unit == "pair" and mae.n_units == 2
    assert mae.estimate == pytest.approx(np.log(1.1) / 3)


def _tput(drafts, n_prompts=8, seed=0):
    rng = np.random.default_rng(seed)
    means = {"a": 1.2, "b": 1.6, "lookup": 2.5}
    return pd.DataFrame(
        [{"draft": d, "target": "t", "gamma": g, "method": "speculative", "prompt_idx": p,
          "speedup_vs_autoregressive": means[d] + 0.01 * g + rng.normal(0, 0.02)}
         for d in drafts for g in (1, 2) for p in range(n_prompts)]
    )  # fmt: skip


def test_best_trained_and_lookup_keeps_prompt_lookup_out_of_the_trained_best():
    models = pd.DataFrame(
        {
            "model": ["a", "b", "lookup", "t"],
            "role": ["draft", "draft", "draft", "target"],
            "n_params": [10, 20, 0, 1000],
        }
    ).set_index("model")
    runs = {"greedy": _tput(["a", "b", "lookup"])}
    best, lookup = rr.best_trained_and_lookup(runs, models, n_boot=50)
    assert best["greedy"].in_sample_choice[0] == "b"  # lookup is faster, but it is not a trained draft
    assert 1.55 < best["greedy"].heldout.estimate < 1.7
    assert lookup["greedy"].in_sample_choice[0] == "lookup" and lookup["greedy"].heldout.estimate > 2.4
    _, none = rr.best_trained_and_lookup({"greedy": _tput(["a", "b"])}, models.drop("lookup"), n_boot=20)
    assert none == {}
    with pytest.raises(ValueError, match="no trained draft"):
        rr.best_trained_and_lookup(runs, models.loc[["lookup", "t"]], n_boot=20)


def test_host_of_reads_the_cpu_and_the_timing_numerics_from_the_sidecar(tmp_path):
    side = {"hardware": {"cpu_model": "AMD EPYC", "cpu_flags": [], "torch_cpu_capability": "AVX2"},
            "config": {"real": {"timing_dtype": "fp16w"}}}  # fmt: skip
    (tmp_path / "throughput.csv.json").write_text(json.dumps(side))
    host = rr.host_of(tmp_path)
    assert host == {"cpu_model": "AMD EPYC", "cpu_flags": "none of those checked", "torch_cpu_capability": "AVX2",
                    "timing_dtype": "fp16w"}  # fmt: skip
    (tmp_path / "throughput.csv.json").write_text(json.dumps({"hardware": {}}))
    assert set(rr.host_of(tmp_path).values()) == {"not recorded"}


@pytest.mark.parametrize(
    ("flags", "label"),
    [(["avx2"], "AVX2 host"), (["avx2", "avx512f", "avx512_bf16"], "AVX-512 BF16 host"), (["avx2", "avx512f"], "AVX-512 host"),
     (["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"], "AMX host"), ([], "host")],
)  # fmt: skip
def test_host_label_names_the_fastest_bf16_path_the_sidecar_records(tmp_path, flags, label):
    (tmp_path / "throughput.csv.json").write_text(json.dumps({"hardware": {"cpu_flags": flags}}))
    assert rr.host_label(tmp_path) == label


def _plain(factor_by_prompt, temperature=0.0, flagged=()):
    """A plain_numerics table: bf16 at 30 tokens/s on every prompt, fp16w at 30 / factor, fp32 at 10."""
    rows = []
    for k, f in enumerate(factor_by_prompt):
        for d, tps in (("bf16", 30.0), ("fp16w", 30.0 / f), ("fp32", 10.0)):
            rows.append({"prompt_idx": k, "temperature": temperature, "numerics": d, "tokens_per_s": tps,
                         "load_flagged": (k, d) in flagged})  # fmt: skip
    return pd.DataFrame(rows)


def test_over_fastest_plain_multiplies_each_prompt_by_its_own_factor_and_names_the_fastest():
    rows = pd.DataFrame({"prompt_idx": [0, 1, 2, 0, 1, 2], "gamma": [1, 1, 1, 2, 2, 2],
                         "speedup_vs_autoregressive": [1.6, 1.5, 1.7, 1.2, 1.1, 1.3]})  # fmt: skip
    plain = _plain([0.5, 0.6, 0.55])  # fp16w decodes 2x, 1.67x, 1.82x faster than bf16
    out, fastest = rr.over_fastest_plain(rows, plain, "bf16", 0.0)
    assert fastest == "fp16w"
    np.testing.assert_allclose(out.speedup_vs_autoregressive, [0.8, 0.9, 0.935, 0.6, 0.66, 0.715])
    same, fastest_again = rr.over_fastest_plain(rows, plain, "fp16w", 0.0)  # the fastest itself: unchanged
    assert fastest_again == "fp16w"
    np.testing.assert_allclose(same.speedup_vs_autoregressive, rows.speedup_vs_autoregressive)


def test_over_fastest_plain_drops_prompts_without_an_unflagged_factor_and_rejects_bad_input():
    rows = pd.DataFrame({"prompt_idx": [0, 1, 2], "speedup_vs_autoregressive": [1.6, 1.5, 1.7]})
    out, _ = rr.over_fastest_plain(rows, _plain([0.5, 0.5, 0.5], flagged={(1, "fp16w")}), "bf16", 0.0)
    assert out.prompt_idx.tolist() == [0, 2]
    with pytest.raises(ValueError, match="numerics must be one of"):
        rr.over_fastest_plain(rows, _plain([0.5] * 3), "int8", 0.0)
    with pytest.raises(ValueError, match="no unflagged call at temperature 0.7"):
        rr.over_fastest_plain(rows, _plain([0.5] * 3), "bf16", 0.7)


def test_workload_of_counts_the_committed_continuations_and_is_nan_for_an_uncommitted_one(tmp_path):
    from sdsl_lib.measurement import workload

    prompts = [{"id": i, "template": "t", "text": f"p{i}", "split": ("eval", "train")[i]} for i in range(2)]
    seqs = [workload.WorkloadSeq(0, np.arange(4), np.arange(6) + 5, 0.0, "eval"),
            workload.WorkloadSeq(1, np.arange(4), np.arange(7) + 5, 0.0, "train"),
            workload.WorkloadSeq(1, np.arange(4), np.arange(5) + 5, 0.7, "train")]  # fmt: skip
    workload.save_workload(tmp_path / "wl" / "tiny", prompts, seqs, {"workload": "tiny"})
    run = tmp_path / "run"
    run.mkdir()
    (run / "models.csv.json").write_text(json.dumps({"config": {"real": {"workload": "tiny"}}}))
    assert rr.workload_of(run, tmp_path / "wl") == ("tiny", 18.0)  # 6 + 7 + 5 continuation tokens, prompts excluded
    name, tokens = rr.workload_of(run, tmp_path / "elsewhere")
    assert name == "tiny" and np.isnan(tokens)
    (run / "models.csv.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(ValueError, match="records no real-target workload"):
        rr.workload_of(run)
