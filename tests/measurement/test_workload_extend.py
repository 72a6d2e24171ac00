"""The workload-extension command (sdsl_lib.measurement.workload_extend): its defaults are the committed
extension's settings, bad arguments are named, rounds resume after an interruption, a rerun rebuilds
the extension instead of stacking one, and a cache made with other settings is refused. The
generator is a fake (no model): these tests check the command, not the target."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sdsl_lib.measurement import workload
from sdsl_lib.measurement import workload_extend as wx
from sdsl_lib.measurement.real_target import GGUF_SHA256


def _tiny(path, target_sha: str = GGUF_SHA256):
    # Eval prompt 0; train prompts 1-3 with their greedy continuations and one earlier sample of 2.
    prompts = [{"id": i, "template": "t", "text": f"p{i}", "split": "eval" if i == 0 else "train"} for i in range(4)]
    ids = {i: np.arange(3 + i, dtype=np.int64) + 10 for i in range(4)}
    seqs = [
        workload.WorkloadSeq(i, ids[i], np.arange(6) + 20 + i, 0.0, "eval" if i == 0 else "train") for i in range(4)
    ]
    seqs.append(workload.WorkloadSeq(2, ids[2], np.arange(6) + 30, 0.7, "train"))
    sidecar = {"workload": "tiny", "target_gguf_sha256": target_sha, "settings": {"seed": 0}}
    return workload.save_workload(path, prompts, seqs, sidecar)


class FakeGenerator:
    """Stands in for workload.generate_continuations: six tokens per prompt from the seed; optional crash."""

    def __init__(self, crash_at: int | None = None):
        self.seeds, self.crash_at = [], crash_at

    def __call__(self, model, tok, prompts, max_new, temperature, seed, batch=32):
        self.seeds.append(seed)
        if self.crash_at is not None and len(self.seeds) == self.crash_at:
            raise KeyboardInterrupt
        return [[(seed // 1000 + i) % 50 + 3 + t for t in range(6)] for i in range(len(prompts))]


@pytest.fixture
def fake(monkeypatch):
    loads = []
    monkeypatch.setattr(wx, "_load_target", lambda args: loads.append(args.dtype) or (None, None))
    return loads


def test_defaults_reproduce_the_committed_extension():
    ext = workload.load_workload(workload.committed_dir("smollm2")).sidecar["settings"]["extension"]
    args = wx.build_parser().parse_args(["--workload", "data/workloads/smollm2"])
    assert (args.rounds, args.temperature, args.batch, args.max_new) == (
        ext["rounds"], ext["temperature"], ext["batch"], ext["max_new_tokens"]
    )  # fmt: skip
    assert {"bf16": "bfloat16", "fp32": "float32"}[args.dtype] == ext["dtype"]
    assert ext["seed"].startswith(f"{args.seed} + 1000 * round + batch start (batches of {args.batch}")
    # The committed workload's tail is the recorded extension: cut back, it is the base it grew from.
    wl = workload.load_workload(workload.committed_dir("smollm2"))
    base = wx.strip_extension(wl)
    n_train = len({s.prompt_id for s in wl.select("train")})
    assert len(wl.seqs) - len(base.seqs) == ext["rounds"] * n_train and "extension" not in base.sidecar["settings"]


@pytest.mark.parametrize(
    "argv, name",
    [
        (["--rounds", "3"], "--workload"),
        (["--workload", "w", "--rounds", "0"], "--rounds"),
        (["--workload", "w", "--temperature", "0"], "--temperature"),
        (["--workload", "w", "--temperature", "hot"], "--temperature"),
        (["--workload", "w", "--batch", "two"], "--batch"),
        (["--workload", "w", "--seed", "-1"], "--seed"),
        (["--workload", "w", "--dtype", "fp16"], "--dtype"),
    ],
)
def test_bad_arguments_are_named(argv, name, capsys):
    with pytest.raises(SystemExit) as exc:
        wx.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and (f"argument {name}" in err or f"required: {name}" in err), err


def test_an_interrupted_extension_resumes_and_a_rerun_rebuilds_instead_of_stacking(tmp_path, monkeypatch, fake, capsys):
    wl_dir, cache, out = _tiny(tmp_path / "wl"), tmp_path / "cache", tmp_path / "out"
    argv = ["--workload", str(wl_dir), "--rounds", "2", "--cache", str(cache), "--out", str(out), "--no-progress"]
    gen = FakeGenerator(crash_at=2)
    monkeypatch.setattr(workload, "generate_continuations", gen)
    assert wx.main(argv) == 130 and "rerun the same command" in capsys.readouterr().err
    assert sorted(p.name for p in cache.glob("round_*.npz")) == ["round_0.npz"] and not out.exists()

    gen = FakeGenerator()
    monkeypatch.setattr(workload, "generate_continuations", gen)
    assert wx.main(argv) == 0
    assert gen.seeds == [3000]  # only round 1 (seed 2000 + 1000 * 1): round 0 was read back
    ext = workload.load_workload(out)
    assert len(ext.seqs) == 5 + 2 * 3
    assert [(s.prompt_id, s.split) for s in ext.seqs[5:]] == [(i, "train") for i in (1, 2, 3)] * 2
    assert all(np.float32(s.temperature) == np.float32(0.7) for s in ext.seqs[5:])
    record = ext.sidecar["settings"]["extension"]
    assert record["rounds"] == 2 and record["new_tokens"] == 36 and "--rounds 2" in record["command"]
    assert ext.sidecar["settings"]["seed"] == 0
    assert fake == ["bf16"] * 2  # the target was loaded by both runs: each had a round to make

    # In place, every round cached: nothing is generated or loaded, and the extension is rebuilt, not stacked.
    monkeypatch.setattr(workload, "generate_continuations", lambda *a, **k: pytest.fail("regenerated a round"))
    before = dict(np.load(out / "target_tokens.npz"))
    assert wx.main(["--workload", str(out), "--rounds", "2", "--cache", str(cache), "--no-progress"]) == 0
    after = np.load(out / "target_tokens.npz")
    assert all(np.array_equal(before[k], after[k]) for k in before) and fake == ["bf16"] * 2

    # One more round later: only that round is generated.
    gen = FakeGenerator()
    monkeypatch.setattr(workload, "generate_continuations", gen)
    assert wx.main(["--workload", str(out), "--rounds", "3", "--cache", str(cache), "--no-progress"]) == 0
    assert gen.seeds == [4000] and len(workload.load_workload(out).seqs) == 5 + 3 * 3

    # A reason given with --why is recorded; without it, the recorded one is kept.
    assert (
        wx.main(["--workload", str(out), "--rounds", "3", "--cache", str(cache), "--no-progress", "--why", "more text"])
        == 0
    )
    assert workload.load_workload(out).sidecar["settings"]["extension"]["why"] == "more text"
    assert wx.main(["--workload", str(out), "--rounds", "3", "--cache", str(cache), "--no-progress"]) == 0
    assert workload.load_workload(out).sidecar["settings"]["extension"]["why"] == "more text"


def test_a_cache_of_other_settings_or_without_its_record_is_refused(tmp_path, monkeypatch, fake, capsys):
    wl_dir, cache = _tiny(tmp_path / "wl"), tmp_path / "cache"
    monkeypatch.setattr(workload, "generate_continuations", FakeGenerator())
    base = ["--workload", str(wl_dir), "--rounds", "1", "--out", str(tmp_path / "out"), "--no-progress"]
    assert wx.main([*base, "--cache", str(cache)]) == 0
    assert json.loads((cache / "settings.json").read_text())["seed"] == 2000
    assert wx.main([*base, "--cache", str(cache), "--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert "argument --cache" in err and "seed" in err
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    shutil.copy(cache / "round_0.npz", legacy)
    assert wx.main([*base, "--cache", str(legacy)]) == 2 and "--adopt-cache" in capsys.readouterr().err
    assert wx.main([*base, "--cache", str(legacy), "--adopt-cache"]) == 0


def test_bad_workloads_are_named(tmp_path, fake, capsys):
    assert wx.main(["--workload", str(tmp_path / "none"), "--no-progress"]) == 2
    assert "argument --workload" in capsys.readouterr().err
    other = _tiny(tmp_path / "other", target_sha="0" * 64)
    assert wx.main(["--workload", str(other), "--cache", str(tmp_path / "c"), "--no-progress"]) == 2
    assert "argument --target" in capsys.readouterr().err
    # A recorded extension its tail does not match cannot be cut back.
    wl = workload.load_workload(_tiny(tmp_path / "wl"))
    wl.sidecar["settings"]["extension"] = {"rounds": 2, "temperature": 0.7}
    with pytest.raises(ValueError, match="argument --workload"):
        wx.strip_extension(wl)


def test_recorded_rounds_seed_a_fresh_cache_so_more_rounds_generate_only_the_new_ones(tmp_path, monkeypatch, fake):
    wl_dir, out = _tiny(tmp_path / "wl"), tmp_path / "out"
    monkeypatch.setattr(workload, "generate_continuations", FakeGenerator())
    assert wx.main(["--workload", str(wl_dir), "--rounds", "2", "--cache", str(tmp_path / "c1"), "--out", str(out),
                    "--no-progress"]) == 0  # fmt: skip
    two = workload.load_workload(out)

    # A fresh machine: the first cache is gone. Three rounds on the 2-round workload make round 2 only.
    gen = FakeGenerator()
    monkeypatch.setattr(workload, "generate_continuations", gen)
    fresh, out3 = tmp_path / "c2", tmp_path / "out3"
    assert wx.main(["--workload", str(out), "--rounds", "3", "--cache", str(fresh), "--out", str(out3),
                    "--no-progress"]) == 0  # fmt: skip
    assert gen.seeds == [4000] and sorted(p.name for p in fresh.glob("round_*.npz")) == [
        "round_0.npz", "round_1.npz", "round_2.npz"
    ]  # fmt: skip
    three = workload.load_workload(out3)
    assert all(np.array_equal(a.cont, b.cont) for a, b in zip(two.seqs, three.seqs))  # the recorded rounds, kept
    assert len(three.seqs) == len(two.seqs) + 3

    # A record made with other settings is not a cache for this command: its rounds are regenerated.
    gen = FakeGenerator()
    monkeypatch.setattr(workload, "generate_continuations", gen)
    assert wx.main(["--workload", str(out), "--rounds", "2", "--seed", "7", "--cache", str(tmp_path / "c3"),
                    "--out", str(tmp_path / "out4"), "--no-progress"]) == 0  # fmt: skip
    assert gen.seeds == [7, 1007]
