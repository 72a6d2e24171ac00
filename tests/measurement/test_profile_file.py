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
        # A drafts-only profile (the seed replicates) obeys the rules of a train-only run.
        stages = None if p.targets else ("train",)
        assert profile_file.validate_profile(p, stages=stages) is p


def test_a_profile_without_a_target_may_run_stage_train_alone():
    seeds = get_profile("cpu-seeds")
    assert seeds.drafts and not seeds.targets
    assert profile_file.validate_profile(seeds, stages=("train",)) is seeds
    for stages in (None, ("all",), ("train", "alpha"), ()):
        with pytest.raises(ValueError, match=r"one target \(a profile without a target can run only --stage train\)"):
            profile_file.validate_profile(seeds, stages=stages)
    # The relaxation is for missing targets only: every other rule still holds on a train-only run.
    bad = dataclasses.replace(seeds, models=(dataclasses.replace(seeds.models[0], name="a/b"),))
    with pytest.raises(ValueError, match="must not hold '/'"):
        profile_file.validate_profile(bad, stages=("train",))
    empty = dataclasses.replace(seeds, models=())
    with pytest.raises(ValueError, match="at least one draft"):
        profile_file.validate_profile(empty, stages=("train",))


def test_seed_replicates_differ_by_name_and_seed_only_and_replicate_0_is_the_cpu_draft():
    from types import SimpleNamespace

    from sdsl_lib.measurement import profiles
    from sdsl_lib.measurement.models import model_seed
    from sdsl_lib.measurement.stages import train

    cpu, seeds = get_profile("cpu"), get_profile("cpu-seeds")
    bases = [d.name for d in cpu.drafts]
    assert [m.name for m in seeds.models] == bases + [f"{b}.r1" for b in bases] + [f"{b}.r2" for b in bases]
    assert all(m.role == "draft" for m in seeds.models)
    for m in seeds.models:
        base, r = profiles.replicate_of(m.name)
        assert profiles.replicate_name(base, r) == m.name
        # Same shape, tokens, learning rate and family as the cpu draft: only the name differs.
        assert dataclasses.replace(m, name=base) == cpu.model(base)
    # The seed comes from the name, so every replicate trains from its own seed.
    assert len({model_seed(seeds.seed, m.name) for m in seeds.models}) == len(seeds.models)
    assert (seeds.vocab_size, seeds.seed, seeds.train) == (cpu.vocab_size, cpu.seed, cpu.train)
    # Replicate 0's train fingerprint (settings and code) is the cpu draft's; replicate 1's is not.
    code = {"code_fingerprint": lambda modules: "code"}
    cpu_ctx, seeds_ctx = SimpleNamespace(profile=cpu, **code), SimpleNamespace(profile=seeds, **code)
    for name in bases:
        assert train.fingerprint(seeds_ctx, seeds.model(name)) == train.fingerprint(cpu_ctx, cpu.model(name))
        assert train.fingerprint(seeds_ctx, seeds.model(f"{name}.r1")) != train.fingerprint(cpu_ctx, cpu.model(name))
    # A replicate name is a valid model name and a plain folder name.
    assert profile_file.validate_profile(seeds, stages=("train",)) is seeds
    assert all("/" not in m.name and "__" not in m.name for m in seeds.models)


def test_replicate_names_parse_back_and_bad_replicates_are_refused():
    from sdsl_lib.measurement import profiles

    assert profiles.replicate_of("d0-48x2") == ("d0-48x2", 0)
    assert profiles.replicate_of("d0-48x2.r12") == ("d0-48x2", 12)
    assert profiles.replicate_of("v1.5.r3") == ("v1.5", 3)
    for name in ("x.r0", "x.r", "x.r01", "x.rb", ".r2x"):
        assert profiles.replicate_of(name) == (name, 0), name
    with pytest.raises(ValueError, match="r must be an integer >= 0"):
        profiles.replicate_name("d", -1)
    with pytest.raises(ValueError, match="base must not itself name a replicate"):
        profiles.replicate_name("d.r1", 1)
    with pytest.raises(ValueError, match="n_replicates must be an integer >= 1"):
        profiles.replicate_specs(get_profile("cpu").drafts, 0)
    one = profiles.replicate_specs(get_profile("cpu").drafts, 1)
    assert one == get_profile("cpu").drafts


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


def test_a_real_target_profile_file_overrides_the_recipe_table_it_names(tmp_path):
    path = tmp_path / "real.toml"
    path.write_text(
        "[profiles.longer]\nbase = 'smollm2'\n[profiles.longer.real]\nworkload = 'smollm2-r5'\ntop_k = 16\n"
    )
    longer, base = profile_file.load_profile_file(path)["longer"], get_profile("smollm2")
    assert longer.real == dataclasses.replace(base.real, workload="smollm2-r5", top_k=16)
    assert longer.models == base.models and longer.measure == base.measure
    # The committed recipe experiment parses, and keeps smollm2's measurement protocol.
    from sdsl_lib.io import repo_root

    long = profile_file.load_profile_file(repo_root() / "docs/recipes/smollm2_long.toml")["smollm2-long"]
    assert long.real.workload == "smollm2-r5" and long.measure == base.measure
    assert [m.name for m in long.drafts] == ["s1-128x2-long"]
    # Recipe experiment 3 trains on a committed workload with more text (hard labels for its probe).
    from sdsl_lib.measurement import workload

    more = profile_file.load_profile_file(repo_root() / "docs/recipes/smollm2_more_text.toml")
    probe, full = more["smollm2-more-text-hard"], more["smollm2-more-text"]
    assert probe.real.workload == full.real.workload == "smollm2-rounds-fp16w"
    assert (probe.real.loss, full.real.loss) == ("hard", base.real.loss)
    wl = workload.load_workload(workload.committed_dir(full.real.workload))
    main = workload.load_workload(workload.committed_dir(base.real.workload))
    assert sum(len(x.cont) for x in wl.select("train")) > 1.5 * sum(len(x.cont) for x in main.select("train"))
    # Same prompts, and the same held-out eval text that alpha is read on.
    assert [(x.prompt_id, list(x.cont)) for x in wl.select("eval")] == [
        (x.prompt_id, list(x.cont)) for x in main.select("eval")
    ]


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
