"""Bad input to the measurement command: one line on stderr naming the argument, exit status 2,
nothing trained and nothing written (every case answers before the corpus is read)."""

import pytest

from sdsl_lib.measurement import cli

GOOD_MODELS = """
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
"""


def _toml(body):
    return "[profiles.mine]\nbase = 'smoke'\n" + body


def _real(body):  # a real-target profile's recipe table
    return "[profiles.mine]\nbase = 'smollm2-smoke'\n[profiles.mine.real]\n" + body


# (argv, environment, profile file text or None, what the one line must contain)
CASES = [
    (["--profile", "nope"], {}, None, "argument --profile: must be one of"),
    (["--profile", "cpu-seeds"], {}, None, "argument --profile: profile 'cpu-seeds'.models must hold at least one"),
    (["--profile", "cpu-seeds", "--stage", "alpha"], {}, None, "a profile without a target can run only --stage train"),
    (["--stage", "bogus"], {}, None, "argument --stage: invalid choice: 'bogus'"),
    (["--stage"], {}, None, "argument --stage: expected one argument"),
    (["--bogus"], {}, None, "unrecognized arguments: --bogus"),
    (["--threads", "0"], {}, None, "argument --threads: must be an integer >= 1, got '0'"),
    (["--threads", "two"], {}, None, "argument --threads: must be an integer >= 1, got 'two'"),
    (["--threads", "-3"], {}, None, "argument --threads: must be an integer >= 1"),
    ([], {"SDSL_THREADS": "abc"}, None, "SDSL_THREADS must be an integer >= 1, got 'abc'"),
    ([], {"SDSL_THREADS": "0"}, None, "SDSL_THREADS must be an integer >= 1, got '0'"),
    ([], {"OMP_NUM_THREADS": "many"}, None, "OMP_NUM_THREADS must be an integer >= 1"),
    (["--device", "tpu"], {}, None, "argument --device: device must be 'cpu', 'cuda'"),
    (["--device", "not a device"], {}, None, "argument --device:"),
    (["--out", "{file}"], {}, None, "argument --out must name a folder, got the file"),
    (["--out", "{file}/sub"], {}, None, "argument --out must lie under a folder"),
    (["--work-dir", "{file}"], {}, None, "argument --work-dir must name a folder"),
    ([], {"SDSL_CACHE": "{file}"}, None, "environment variable SDSL_CACHE must name a folder"),
    (["--profile-file", "{tmp}/absent.toml"], {}, None, "--profile-file must name an existing TOML file"),
    (["--profile-file", "{toml}"], {}, "[profiles.mine\n", "not valid TOML"),
    (["--profile-file", "{toml}"], {}, "title = 'x'\n", "must hold [profiles.<name>] tables"),
    (["--profile-file", "{toml}"], {}, "[profiles.smoke]\n", "shadows a built-in profile"),
    (["--profile-file", "{toml}"], {}, _toml("vocab = 512\n"), "profiles.mine.vocab is not a setting"),
    (["--profile-file", "{toml}"], {}, _toml("vocab_size = 10\n"), "vocab_size must be an int in [260"),
    (["--profile-file", "{toml}"], {}, _toml("seed = 'zero'\n"), "profiles.mine.seed must be an int"),
    (["--profile-file", "{toml}"], {}, _toml("[profiles.mine.train]\nbatch_size = -8\n"), "train.batch_size"),
    (["--profile-file", "{toml}"], {}, _toml("[profiles.mine.train]\nseq_len = 1.5\n"), "train.seq_len"),
    (["--profile-file", "{toml}"], {}, _toml("[profiles.mine.measure]\ngammas = []\n"), "measure.gammas must be"),
    (["--profile-file", "{toml}"], {}, _toml("[profiles.mine.measure]\ngammas = [1, 0]\n"), "measure.gammas[1]"),
    (
        ["--profile-file", "{toml}"],
        {},
        _toml("[profiles.mine.measure]\nhf_pairs = ['d-xs/nobody']\n"),
        "measure.hf_pairs[0] must be 'best' or 'draft/target'",
    ),
    (["--profile-file", "{toml}"], {}, _toml("[profiles.mine.measure]\ngamas = [1]\n"), "measure.gamas is not a"),
    (
        ["--profile-file", "{toml}"],
        {},
        _toml(GOOD_MODELS.replace('role = "target"', 'role = "teacher"')),
        "models[1].role must be 'draft' or 'target'",
    ),
    (
        ["--profile-file", "{toml}"],
        {},
        _toml(GOOD_MODELS.replace('role = "target"', 'role = "draft"')),
        "models must hold at least one draft and one target",
    ),
    (
        ["--profile-file", "{toml}"],
        {},
        _toml(GOOD_MODELS.replace('name = "t"', 'name = "d"')),
        "models must have distinct names",
    ),
    (
        ["--profile-file", "{toml}"],
        {},
        _toml(GOOD_MODELS.replace("n_heads = 2\ntrain", "n_heads = 3\ntrain", 1)),
        "n_heads must divide",
    ),
    (
        ["--profile-file", "{toml}"],
        {},
        _toml(GOOD_MODELS.replace("train_tokens = 20480", "train_tokens = 100", 1)),
        "at least 4 steps",
    ),
    (["--profile-file", "{toml}"], {}, _toml(GOOD_MODELS.replace('name = "d"', 'name = "a/b"')), "must not hold '/'"),
    (
        ["--profile-file", "{toml}"],
        {},
        _toml(GOOD_MODELS.replace("d_model = 32\n", "", 1)),
        "models[0].d_model is required",
    ),
    (
        ["--profile-file", "{toml}"],
        {},
        _toml(GOOD_MODELS.replace("n_layers = 1", "layers = 1", 1)),
        "models[0].layers is not a setting",
    ),
    (
        ["--profile-file", "{toml}"],
        {},
        _toml(GOOD_MODELS.replace('role = "draft"', 'role = "draft"\nfamily = "hub"')),
        "family must be one of",
    ),
    (["--profile-file", "{toml}", "--profile", "other"], {}, _toml(""), "argument --profile: must be one of"),
    (["--profile-file", "{toml}"], {}, "[profiles.mine]\nbase = 'huge'\n", "profiles.mine.base must be one of"),
    (["--profile-file", "{toml}"], {}, "[profiles.mine]\nvocab_size = 512\n", "profiles.mine.models is required"),
    (["--profile-file", "{toml}"], {}, _toml("[profiles.mine.real]\nloss = 'mix'\n"), "real needs a real-target base"),
    (["--profile-file", "{toml}"], {}, _real("loss = 'kl'\n"), "profiles.mine.real.loss must be one of"),
    (["--profile-file", "{toml}"], {}, _real("soft_weight = 2.0\n"), "real.soft_weight must be a float in [0, 1]"),
    (["--profile-file", "{toml}"], {}, _real("workload = '../elsewhere'\n"), "real.workload must name a folder"),
    (["--profile-file", "{toml}"], {}, _real("head_vocab = 'all'\n"), "real.head_vocab must be an int"),
    (["--profile-file", "{toml}"], {}, _real("workloads = 'x'\n"), "real.workloads is not a setting"),
]


@pytest.mark.parametrize("argv, env, toml, expected", CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_bad_input_gives_one_line_naming_the_argument(tmp_path, monkeypatch, capsys, argv, env, toml, expected):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    toml_path = tmp_path / "p.toml"
    if toml is not None:
        toml_path.write_text(toml)
        if "--profile" not in argv:
            argv = argv + ["--profile", "mine"]
    fill = {"file": str(a_file), "tmp": str(tmp_path), "toml": str(toml_path)}
    argv = [a.format(**fill) for a in argv]
    for var in ("SDSL_THREADS", "OMP_NUM_THREADS", "SDSL_CACHE"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v.format(**fill))
    # --out/--work-dir given so a case that wrongly got through could never write into the tree.
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    code = _main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and expected in lines[0], err
    assert out == ""
    assert not (tmp_path / "out").exists()


def _main(argv):
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse exits itself
        return exc.code


def test_the_table_is_large_enough():
    assert len(CASES) >= 20


def test_help_documents_the_environment_and_the_output_folder(capsys):
    assert _main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("SDSL_CACHE", "SDSL_THREADS", "OMP_NUM_THREADS", "build/measured/<profile>", "--out data/measured"):
        assert word in out, word


def test_ctrl_c_prints_one_line_and_exits_130(monkeypatch, capsys, tmp_path):
    from sdsl_lib.measurement import pipeline

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run_profile", interrupted)
    assert cli.main(["--profile", "smoke", "--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0] and "kept" in err[0]
