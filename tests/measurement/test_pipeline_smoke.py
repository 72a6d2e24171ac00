"""The measurement chain end to end on the ``smoke`` profile, plus its pieces.

The smoke run trains three tiny models and measures every stage into a temporary folder (about a
minute and a half on 2 shared cores), through the real command line with ``--no-progress``; the
assertions check the schema, values a broken chain would violate, resumption, the refusal of stale
units, code fingerprints and damaged work files.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from sdsl_lib.io import repo_root
from sdsl_lib.laws.acceptance import acceptance_from_probs
from sdsl_lib.measurement import join, schema, timing, workdir
from sdsl_lib.measurement import models as ladder
from sdsl_lib.measurement import pipeline as measure
from sdsl_lib.measurement.profiles import ModelSpec, get_profile

SMOKE = get_profile("smoke")
PAIRS = [(d.name, t.name) for t in SMOKE.targets for d in SMOKE.drafts]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    out, work = root / "out", root / "work"
    cmd = [sys.executable, "-m", "sdsl_lib.measurement", "--profile", "smoke", "--no-progress"]
    res = subprocess.run(
        cmd + ["--out", str(out), "--work-dir", str(work)], capture_output=True, text=True, cwd=repo_root()
    )
    return out, work, res


@pytest.mark.slow
def test_cli_run_is_quiet_and_prints_the_results_folder(smoke_run):
    out, _, res = smoke_run
    assert res.returncode == 0, res.stderr[-2000:]
    # --no-progress silences every bar, our stage lines and the libraries' warnings.
    assert res.stderr == ""
    assert res.stdout.strip() == str(out)


@pytest.mark.slow
def test_every_table_matches_the_schema_with_sidecar(smoke_run):
    out, _, _ = smoke_run
    written = sorted(p.name for p in out.glob("*.csv"))
    assert written == sorted(
        t.file for t in schema.TABLES.values() if t.name not in schema.REAL_ONLY + schema.ENGINE_ONLY
    )
    for name, t in schema.TABLES.items():
        if name in schema.REAL_ONLY or name in schema.ENGINE_ONLY:
            continue
        pairs = PAIRS if t.key == ("draft", "target") and t.stage == "alpha" else None
        df = schema.read_table(out, name, expected_pairs=pairs)
        # New runs write only their own columns: the joined (legacy) ones are the analysis's.
        assert all(c.required or c.name in schema.RECENT_COLUMNS for c in t.columns if c.name in df.columns), name
        side = json.loads((out / (t.file + ".json")).read_text())
        assert side["profile"] == "smoke" and side["torch_threads"] >= 1 and "versions" in side
        assert side["stage"] == t.stage and side["units"] and "git_dirty" in side
        assert set(side["model_fingerprints"]) == {m.name for m in SMOKE.models}


@pytest.mark.slow
def test_values_are_sane(smoke_run):
    out, _, _ = smoke_run
    p = SMOKE
    models = schema.read_table(out, "models", expected_models=[m.name for m in p.models])
    assert list(models.model) == [m.name for m in p.models]
    # Training must beat the uniform guess (perplexity = vocabulary size).
    assert (models.val_ppl < p.vocab_size).all()
    pts = schema.read_table(out, "loss_budget_points")
    assert len(pts) == len(p.models) * (1 + len(p.train.branch_fracs))
    alpha = join.alpha_with_context(out)
    assert len(alpha) == len(PAIRS)
    for col in ("alpha_tar", "greedy_match_tf", "greedy_acceptance_run"):
        assert ((alpha[col] >= 0) & (alpha[col] <= 1)).all(), col
    assert ((alpha.alpha_tf > 0) & (alpha.alpha_tf < 1)).all()
    assert np.isfinite(alpha.c_measured).all() and (alpha.c_measured > 0).all()
    np.testing.assert_allclose(alpha.c_flops, alpha.n_params_draft / alpha.n_params_target)
    tar = schema.read_table(out, "tar")
    np.testing.assert_allclose(tar.tar_with_bonus, tar.tar_no_bonus + 1)
    calib = schema.read_table(out, "cost_calibration")
    assert set(calib.n_new_tokens) == set(range(1, p.measure.calib_max_tokens + 1))
    summ = schema.read_table(out, "throughput_summary")
    spec = summ[summ.method == "speculative"]
    # Greedy speculative decoding reproduces the target's greedy output on every prompt.
    assert spec.all_match_autoregressive.astype(bool).all()
    assert set(spec.gamma) == set(p.measure.gammas)
    assert ((spec.tokens_per_iteration_mean >= 1) & (spec.tokens_per_iteration_mean <= spec.gamma + 1)).all()
    pos = join.acceptance_by_position(out, PAIRS)
    assert set(pos.temperature) == {0.0, 1.0}


@pytest.mark.slow
def test_hf_baseline_written_beside_our_loop(smoke_run):
    out, _, _ = smoke_run
    base = schema.read_table(out, "hf_baseline")
    assert set(base.engine) == {"ours", "hf"}
    assert set(base.gamma) == set(SMOKE.measure.hf_gammas)
    summ = schema.read_table(out, "hf_summary")
    # "best": per target, the draft with the highest median speculative speed-up.
    s = schema.read_table(out, "throughput_summary")
    s = s[s.method == "speculative"]
    best = s.loc[s.groupby("target").speedup_median.idxmax(), ["draft", "target"]]
    assert set(zip(summ.draft, summ.target)) == set(zip(best.draft, best.target))
    assert summ.all_identical.astype(bool).all()


def _mtimes(paths):
    return {p: os.stat(p).st_mtime_ns for p in paths}


def _all_units(work):
    return sorted(work.glob("units/*/*.json")) + sorted(work.glob("models/*/train_result.json"))


@pytest.mark.slow
def test_resume_redoes_only_missing_units(smoke_run):
    out, work, _ = smoke_run
    results = {m.name: work / "models" / m.name / "train_result.json" for m in SMOKE.models}
    units = sorted((work / "units" / "alpha").glob("*.json"))
    before = _mtimes(list(results.values()) + units)
    victim = SMOKE.models[0].name
    results[victim].unlink()
    units[0].unlink()
    measure.run_profile("smoke", out, stages=("train", "alpha"), work_dir=work, progress=False)
    after = _mtimes(list(results.values()) + units)
    for path in before:
        if path in (results[victim], units[0]):
            assert path.is_file() and after[path] != before[path], f"{path} was not rebuilt"
        else:
            assert after[path] == before[path], f"{path} was redone"
    schema.read_table(out, "alpha", expected_pairs=PAIRS)


@pytest.mark.slow
def test_a_one_line_change_in_a_stage_remeasures_exactly_its_units(smoke_run, monkeypatch):
    out, work, _ = smoke_run
    before = _mtimes(_all_units(work))
    real = workdir._module_source

    def edited(name):
        src = real(name)
        return src + "\n_EDITED = 1\n" if name == "sdsl_lib.measurement.stages.calibrate" else src

    monkeypatch.setattr(workdir, "_module_source", edited)
    measure.run_profile("smoke", out, stages=("all",), work_dir=work, progress=False)
    after = _mtimes(_all_units(work))
    redone = {p.relative_to(work).as_posix() for p in before if after[p] != before[p]}
    assert redone == {"units/calibrate/all_models.json"}


@pytest.mark.slow
def test_a_stale_unit_is_refused_by_the_merge_and_redone_by_the_stage(smoke_run):
    from sdsl_lib.measurement.context import Context
    from sdsl_lib.measurement.stages import STAGES

    out, work, _ = smoke_run
    unit = work / "units" / "throughput" / f"{PAIRS[0][0]}__{PAIRS[0][1]}.json"
    rec = json.loads(unit.read_text())
    unit.write_text(json.dumps(dict(rec, fingerprint="stale")))
    table = out / "throughput.csv"
    before = table.read_bytes()
    ctx = Context(SMOKE, out, _cache(), work, torch.device("cpu"), False)
    ctx.stage = "throughput"
    with pytest.raises(workdir.StaleUnitError, match="stale.*refusing to merge"):
        STAGES["throughput"].merge(ctx)
    assert table.read_bytes() == before
    # The hf stage picks its "best" pairs from the throughput units: a stale one is refused there too.
    ctx.stage = "hf"
    with pytest.raises(workdir.StaleUnitError):
        STAGES["hf"].merge(ctx)
    measure.run_profile("smoke", out, stages=("throughput",), work_dir=work, progress=False)
    assert json.loads(unit.read_text())["fingerprint"] == rec["fingerprint"]


def _cache():
    from sdsl_lib.measurement import corpus

    return corpus.cache_dir()


@pytest.mark.slow
def test_a_corrupt_unit_is_named_moved_aside_and_redone(smoke_run, capsys):
    out, work, _ = smoke_run
    unit = work / "units" / "calibrate" / "all_models.json"
    unit.write_text('{"latency_s": [1, 2')  # cut off mid-write by something other than us
    measure.run_profile("smoke", out, stages=("calibrate",), work_dir=work, progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(unit) in err[0] and "moved to all_models.json.corrupt" in err[0]
    assert (unit.parent / "all_models.json.corrupt").is_file()
    assert json.loads(unit.read_text())["fingerprint"]


@pytest.mark.slow
def test_a_stage_may_write_only_its_own_tables(smoke_run):
    from sdsl_lib.measurement.context import Context

    out, work, _ = smoke_run
    ctx = Context(SMOKE, out, _cache(), work, torch.device("cpu"), False)
    ctx.stage = "throughput"
    with pytest.raises(RuntimeError, match="may not write alpha.csv"):
        ctx.write_table("alpha", pd.read_csv(out / "alpha.csv"), units={})


def test_default_output_is_outside_the_tracked_tree():
    out = measure.default_out_dir("smoke")
    assert out == repo_root() / "build" / "measured" / "smoke"
    probe = out / "alpha.csv"
    res = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=repo_root())
    assert res.returncode == 0, f"{probe} would be tracked by git"


def test_stage_names_agree_with_the_dispatch_table():
    from sdsl_lib.measurement import cli, profile_file
    from sdsl_lib.measurement.stages import STAGES, train

    assert tuple(STAGES) == measure.STAGES == cli._STAGE_NAMES
    assert {t.stage for t in schema.TABLES.values()} == set(STAGES)
    assert tuple(train.FAMILIES) == profile_file.FAMILIES_KNOWN


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


@pytest.mark.parametrize(
    "env, cli, expected",
    [
        ({}, None, (2, "profile")),
        ({"OMP_NUM_THREADS": "3"}, None, (3, "OMP_NUM_THREADS")),
        ({"OMP_NUM_THREADS": "4,2"}, None, (4, "OMP_NUM_THREADS")),
        ({"OMP_NUM_THREADS": "3", "SDSL_THREADS": "5"}, None, (5, "SDSL_THREADS")),
        ({"OMP_NUM_THREADS": "3", "SDSL_THREADS": "5"}, 7, (7, "--threads")),
    ],
)
def test_threads_respect_omp_num_threads_and_say_where_they_come_from(env, cli, expected):
    assert timing.resolve_threads(2, cli, env) == expected


def test_run_profile_rejects_unknown_stage_and_profile(tmp_path):
    with pytest.raises(ValueError, match="stages"):
        measure.run_profile("smoke", tmp_path, stages=("bogus",))
    with pytest.raises(ValueError, match="profile"):
        measure.run_profile("nope", tmp_path)
