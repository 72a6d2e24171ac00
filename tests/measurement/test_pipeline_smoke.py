"""The measurement chain (sdsl_lib.measurement.pipeline) end to end on the ``smoke`` profile, plus its pieces.

The smoke run trains three tiny models and measures every stage into a temporary folder (about a
minute on 2 cores); the assertions check schemas and values that a broken chain would violate.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from sdsl_lib.laws.acceptance import acceptance_from_probs
from sdsl_lib.measurement import models as ladder
from sdsl_lib.measurement import pipeline as measure
from sdsl_lib.measurement import timing
from sdsl_lib.measurement.profiles import ModelSpec, get_profile

SCHEMAS = {
    "models.csv": [
        "model",
        "role",
        "n_params",
        "n_params_non_embedding",
        "n_params_embedding",
        "n_tokens",
        "val_loss_nats",
        "val_ppl",
        "test_loss_nats",
        "test_ppl",
        "train_time_s",
        "torch_threads",
    ],
    "loss_curves.csv": ["model", "step", "n_tokens", "lr", "train_loss_nats", "val_loss_subset_nats"],
    "loss_budget_points.csv": ["model", "n_params", "n_tokens", "val_loss_nats", "val_ppl", "branch"],
    "alpha.csv": [
        "draft",
        "target",
        "alpha_tf",
        "alpha_tf_ci95_lower",
        "alpha_tf_ci95_upper",
        "alpha_tar",
        "alpha_tar_ci95_lower",
        "alpha_tar_ci95_upper",
        "greedy_match_tf",
        "greedy_acceptance_run",
        "c_flops",
        "c_measured",
        "draft_test_ppl",
        "target_test_ppl",
    ],
    "tar.csv": ["draft", "target", "gamma", "tar_no_bonus", "tar_with_bonus", "n_iterations_full"],
    "acceptance_by_position.csv": [
        "draft",
        "target",
        "temperature",
        "gamma",
        "position",
        "attempts",
        "accepts",
        "acceptance_rate",
    ],
    "cost_calibration.csv": [
        "model",
        "n_new_tokens",
        "latency_median_s",
        "latency_p025_s",
        "latency_p975_s",
        "latency_rel_one_token",
    ],
    "throughput.csv": ["draft", "target", "prompt_idx", "method", "gamma", "tokens_per_s", "speedup_vs_autoregressive"],
    "throughput_summary.csv": [
        "draft",
        "target",
        "method",
        "gamma",
        "tokens_per_s_median",
        "tokens_per_s_p025",
        "tokens_per_s_p975",
        "speedup_median",
    ],
}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    out, work = root / "out", root / "work"
    measure.run_profile("smoke", out, stages=("all",), work_dir=work, progress=False)
    return out, work


@pytest.mark.slow
def test_every_csv_exists_with_schema_and_sidecar(smoke_run):
    out, _ = smoke_run
    for name, cols in SCHEMAS.items():
        df = pd.read_csv(out / name)
        assert len(df) > 0, name
        assert set(cols) <= set(df.columns), (name, set(cols) - set(df.columns))
        side = json.loads((out / (name + ".json")).read_text())
        assert side["profile"] == "smoke" and side["torch_threads"] >= 1 and "versions" in side


@pytest.mark.slow
def test_values_are_sane(smoke_run):
    out, _ = smoke_run
    p = get_profile("smoke")
    models = pd.read_csv(out / "models.csv")
    assert list(models.model) == [m.name for m in p.models]
    assert np.isfinite(models[["val_ppl", "test_ppl"]]).all().all()
    # Training must beat the uniform guess (perplexity = vocabulary size).
    assert (models.val_ppl < p.vocab_size).all()
    assert (models.n_params == models.n_params_embedding + models.n_params_non_embedding).all()
    pts = pd.read_csv(out / "loss_budget_points.csv")
    assert len(pts) == len(p.models) * (1 + len(p.train.branch_fracs))
    alpha = pd.read_csv(out / "alpha.csv")
    assert len(alpha) == len(p.drafts) * len(p.targets)
    # Greedy rates can reach 0 or 1 exactly on a handful of smoke tokens; alpha_tf (a mean of
    # sum-min over thousands of positions) cannot.
    for col in ("alpha_tar", "greedy_match_tf", "greedy_acceptance_run"):
        assert ((alpha[col] >= 0) & (alpha[col] <= 1)).all(), col
    assert ((alpha.alpha_tf > 0) & (alpha.alpha_tf < 1)).all()
    assert (alpha.alpha_tf_ci95_lower <= alpha.alpha_tf).all() and (alpha.alpha_tf <= alpha.alpha_tf_ci95_upper).all()
    tar = pd.read_csv(out / "tar.csv")
    assert ((tar.tar_no_bonus >= 0) & (tar.tar_no_bonus <= tar.gamma)).all()
    np.testing.assert_allclose(tar.tar_with_bonus, tar.tar_no_bonus + 1)
    calib = pd.read_csv(out / "cost_calibration.csv")
    assert (calib.latency_median_s > 0).all()
    assert set(calib.n_new_tokens) == set(range(1, p.measure.calib_max_tokens + 1))
    summ = pd.read_csv(out / "throughput_summary.csv")
    spec = summ[summ.method == "speculative"]
    # Greedy speculative decoding reproduces the target's greedy output on every prompt.
    assert spec.all_match_autoregressive.astype(bool).all()
    assert set(spec.gamma) == set(p.measure.gammas)
    assert ((spec.tokens_per_iteration_mean >= 1) & (spec.tokens_per_iteration_mean <= spec.gamma + 1)).all()


def _mtimes(paths):
    return {p: os.stat(p).st_mtime_ns for p in paths}


@pytest.mark.slow
def test_resume_redoes_only_missing_units(smoke_run):
    out, work = smoke_run
    p = get_profile("smoke")
    results = {m.name: work / "models" / m.name / "train_result.json" for m in p.models}
    units = sorted((work / "units" / "alpha").glob("*.json"))
    before = _mtimes(list(results.values()) + units)
    victim = p.models[0].name
    weights = work / "models" / victim / "model" / "model.safetensors"
    results[victim].unlink()
    units[0].unlink()
    measure.run_profile("smoke", out, stages=("train", "alpha"), work_dir=work, progress=False)
    after = _mtimes(list(results.values()) + units)
    for path in before:
        if path in (results[victim], units[0]):
            assert path.is_file() and after[path] != before[path], f"{path} was not rebuilt"
        else:
            assert after[path] == before[path], f"{path} was redone"
    assert weights.is_file()
    assert len(pd.read_csv(out / "alpha.csv")) == len(p.drafts) * len(p.targets)


@pytest.mark.slow
def test_stale_calibration_unit_is_never_merged(smoke_run):
    # After a profile change the old calibration unit (other models) must be ignored, not merged
    # into c_measured (this once raised KeyError on the new model names), and then be redone.
    out, work = smoke_run
    unit = work / "units" / "calibrate" / "all_models.json"
    rec = json.loads(unit.read_text())
    unit.write_text(json.dumps(dict(rec, fingerprint="stale")))
    measure.run_profile("smoke", out, stages=("alpha",), work_dir=work, progress=False)
    assert pd.read_csv(out / "alpha.csv")["c_measured"].isna().all()
    measure.run_profile("smoke", out, stages=("calibrate",), work_dir=work, progress=False)
    assert json.loads(unit.read_text())["fingerprint"] == rec["fingerprint"]
    assert np.isfinite(pd.read_csv(out / "alpha.csv")["c_measured"]).all()


def _tiny(seed, d=16, layers=1):
    spec = ModelSpec(f"m{seed}", "draft", d, layers, 2, 32, train_tokens=1)
    return ladder.build_model(spec, vocab_size=64, seed=seed).eval()


def test_teacher_forced_alpha_equals_direct_computation():
    target, draft = _tiny(0, 32, 2), _tiny(1)
    g = torch.Generator().manual_seed(0)
    windows = torch.randint(0, 64, (3, 11), generator=g)
    beta, match = measure.teacher_forced_acceptance(target, draft, windows, torch.device("cpu"), batch_size=2)
    with torch.no_grad():
        lp = target(input_ids=windows[:, :-1]).logits.double()
        lq = draft(input_ids=windows[:, :-1]).logits.double()
    p, q = lp.softmax(-1).numpy(), lq.softmax(-1).numpy()
    expected = acceptance_from_probs(p, q)
    assert beta.shape == (3, 10)
    np.testing.assert_allclose(beta, expected, atol=1e-5)
    np.testing.assert_array_equal(match, p.argmax(-1) == q.argmax(-1))
    # A model agrees with itself everywhere.
    same, same_match = measure.teacher_forced_acceptance(target, target, windows, torch.device("cpu"))
    np.testing.assert_allclose(same, 1.0, atol=1e-5)
    assert same_match.all()


def test_wsd_schedule_shape():
    lr = ladder.wsd_lr(np.arange(100), 100, 5, 80, 1.0)
    assert lr[0] == pytest.approx(0.2) and lr[4] == 1.0 and lr[79] == 1.0
    assert np.all(np.diff(lr[80:]) < 0) and lr[-1] == pytest.approx(1 / 20)


def test_count_params_counts_tied_embedding_once():
    m = _tiny(0)
    c = ladder.count_params(m)
    assert c["n_params_embedding"] == 64 * 16
    assert c["n_params_total"] == sum(p.numel() for p in m.parameters())  # parameters() dedups ties
    assert c["n_params_total"] == c["n_params_embedding"] + c["n_params_non_embedding"]


def test_forward_latency_shape_and_cache_reuse():
    m = _tiny(0)
    lat = timing.forward_latency(m, torch.arange(8)[None], max_tokens=3, repeats=2, warmup=1)
    assert lat.shape == (2, 3) and (lat > 0).all()


def test_run_profile_rejects_unknown_stage_and_profile(tmp_path):
    with pytest.raises(ValueError, match="stages"):
        measure.run_profile("smoke", tmp_path, stages=("bogus",))
    with pytest.raises(ValueError, match="profile"):
        measure.run_profile("nope", tmp_path)


@pytest.mark.slow
def test_hf_baseline_written_beside_our_loop(smoke_run):
    pytest.importorskip("sdsl_lib.measurement.hf_baseline")
    out, _ = smoke_run
    base = pd.read_csv(out / "hf_baseline.csv")
    assert set(base.engine) == {"ours", "hf"}
    assert set(base.gamma) == set(get_profile("smoke").measure.hf_gammas)
    summ = pd.read_csv(out / "hf_summary.csv")
    assert (summ.ours_over_hf_speed_ratio_median > 0).all()
    # Both engines decode greedily with the same target: identical tokens.
    assert summ.all_identical.astype(bool).all()
