"""Profiles from TOML files and the profile rules (sdsl_lib.measurement.profile_file); the work folder
(sdsl_lib.measurement.workdir): code fingerprints, damaged units, stale units. No training."""

import dataclasses
import json

import pytest

from sdsl_lib.measurement import profile_file, workdir
from sdsl_lib.measurement.profiles import PROFILES, get_profile

TOML = """
[profiles.mine]
base = "smoke"
seed = 3
[profiles.mine.measure]
gammas = [1, 2]
[[profiles.mine.models]]
name = "d"
role = "draft"
d_model = 32
n_layers = 1
n_heads = 2
train_tokens = 20480
[[profiles.mine.models]]
name = "t"
role = "target"
d_model = 64
n_layers = 2
n_heads = 2
train_tokens = 20480
lr = 0.004

[profiles.tiny_from_scratch]
vocab_size = 300
[[profiles.tiny_from_scratch.models]]
name = "a"
role = "draft"
d_model = 16
n_layers = 1
n_heads = 2
train_tokens = 1000000
[[profiles.tiny_from_scratch.models]]
name = "b"
role = "target"
d_model = 16
n_layers = 2
n_heads = 2
train_tokens = 1000000
"""


def test_built_in_profiles_obey_the_rules():
    for p in PROFILES.values():
        assert profile_file.validate_profile(p) is p


def test_a_toml_profile_inherits_its_base_and_overrides_what_it_names(tmp_path):
    path = tmp_path / "ladder.toml"
    path.write_text(TOML)
    got = profile_file.load_profile_file(path)
    assert set(got) == {"mine", "tiny_from_scratch"}
    mine, smoke = got["mine"], get_profile("smoke")
    assert mine.name == "mine" and mine.seed == 3 and mine.vocab_size == smoke.vocab_size
    assert mine.train == smoke.train
    assert mine.measure == dataclasses.replace(smoke.measure, gammas=(1, 2))
    assert [m.name for m in mine.drafts] == ["d"] and [m.name for m in mine.targets] == ["t"]
    assert mine.model("d").d_ff == 96 and mine.model("t").lr == 0.004  # d_ff: ~8/3 d, as in code
    tiny = got["tiny_from_scratch"]
    assert tiny.train == type(smoke.train)() and tiny.vocab_size == 300
    assert get_profile("mine", got) is mine


def test_code_fingerprint_ignores_comments_and_docstrings_not_code(monkeypatch):
    src = '"""Doc."""\n\ndef f(x):\n    """Doc."""\n    return x + 1  # why\n'
    current = {"m": src}
    monkeypatch.setattr(workdir, "_module_source", lambda name: current[name])

    def fp(text):
        current["m"] = text
        return workdir.code_fingerprint("m")

    base = fp(src)
    assert fp(src.replace("# why", "# another reason").replace('"""Doc."""', '"""Other doc."""')) == base
    assert fp(src.replace("x + 1", "(x+1)")) == base
    assert fp(src.replace("x + 1", "x + 2")) != base
    assert fp(src + "\n_EDITED = 1\n") != base


def test_the_real_stage_modules_have_distinct_code_fingerprints():
    from sdsl_lib.measurement.stages import STAGES

    fps = {name: workdir.code_fingerprint(*s.code) for name, s in STAGES.items()}
    assert len(set(fps.values())) == len(fps)


def test_unit_store_refuses_stale_and_missing_units_and_quarantines_damage(tmp_path, capsys):
    store = workdir.UnitStore(tmp_path)
    store.save("alpha", "d__t", "fp1", {"alpha_tf": 0.5})
    assert store.load("alpha", "d__t", "fp1")["alpha_tf"] == 0.5
    assert store.load("alpha", "d__t", "fp2") is None
    with pytest.raises(workdir.StaleUnitError, match="'d__t' is stale .*refusing to merge"):
        store.collect("alpha", {"d__t": "fp2"})
    with pytest.raises(workdir.StaleUnitError, match="'x__t' is missing"):
        store.collect("alpha", {"x__t": "fp1"})
    path = store.path("alpha", "d__t")
    for k, damage in enumerate(["{not json", json.dumps([1, 2]), json.dumps({"alpha_tf": 1})]):
        path.write_text(damage)
        assert store.load("alpha", "d__t", "fp1") is None
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0]
        assert (path.parent / (path.name + (".corrupt" if k == 0 else f".corrupt-{k}"))).is_file()
        assert not path.exists()


def test_train_units_live_beside_their_checkpoint(tmp_path):
    assert workdir.UnitStore(tmp_path).path("train", "d-xs") == tmp_path / "models" / "d-xs" / "train_result.json"


def test_git_state_reports_dirty_flag():
    state = workdir.git_state()
    assert set(state) >= {"git_commit", "git_dirty"}
    assert state["git_dirty"] in (True, False, None)
