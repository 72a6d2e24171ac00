"""The notebook build: what makes a notebook stale, parameter checks, and a quiet kernel."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import time
from pathlib import Path

import jupytext
import pytest

from tools import fingerprint as fp
from tools import pairing, runner
from tools.runner import REPO, RunConfig

NOTEBOOKS = runner.discover()


def _cfg(tmp_path: Path, **kw) -> RunConfig:
    return RunConfig(
        figures_dir=tmp_path / "f", results_dir=tmp_path / "r", executed_dir=tmp_path / "n", smoke=True, **kw
    )


def _fake_run(nb: Path, cfg: RunConfig, reads: dict) -> None:
    """Write the stamp and outputs an execution would leave, without a kernel."""
    parts = runner.fingerprint_parts(nb, cfg, reads)
    stamp = {"fingerprint": fp.combine(parts), "components": parts, "reads": reads, "figures": []}
    (cfg.executed_dir / ".stamps").mkdir(parents=True, exist_ok=True)
    (cfg.executed_dir / ".stamps" / f"{nb.stem}.json").write_text(json.dumps(stamp))
    (cfg.executed_dir / nb.name).write_text("{}")
    cfg.results_dir.mkdir(parents=True, exist_ok=True)
    runner.results_path(nb, cfg).write_text("{}")


@pytest.fixture
def twins(tmp_path) -> list[Path]:
    """Copies of two notebooks with their .py twins and smoke files (so edits stay in tmp)."""
    folder = tmp_path / "nb"
    (folder / "smoke").mkdir(parents=True)
    out = []
    for nb in NOTEBOOKS[:2]:
        for path in (nb, nb.with_suffix(".py"), nb.parent / "smoke" / f"{nb.stem}.yaml"):
            if path.exists():
                shutil.copy2(path, folder / path.relative_to(nb.parent))
        out.append(folder / nb.name)
    return out


def test_py_twin_edit_reruns_exactly_that_notebook(twins, tmp_path):
    cfg = _cfg(tmp_path)
    for nb in twins:
        _fake_run(nb, cfg, {})
    assert [runner.stale_reason(nb, cfg) for nb in twins] == [None, None]
    py = twins[0].with_suffix(".py")
    py.write_text(py.read_text() + "\n# %%\nprint('an edit in the .py twin only')\n")
    later = time.time() + 5
    os.utime(py, (later, later))
    assert runner.stale_reason(twins[0], cfg) == "source changed"
    assert runner.stale_reason(twins[1], cfg) is None
    # The newer twin is the one executed; the committed .ipynb is untouched.
    nb, source = fp.notebook_source(twins[0])
    assert source == py and "an edit in the .py twin only" in nb.cells[-1].source
    assert pairing.unpaired(twins[0].parent) == [f"{twins[0]} and {py.name} differ: run `jupytext --sync {py}`"]


def test_outputs_and_jupytext_metadata_do_not_change_the_source_digest(twins):
    nb = jupytext.read(twins[0])
    before = fp.source_digest(nb)
    nb.cells[1].outputs = (
        [{"output_type": "stream", "name": "stdout", "text": "x"}] if nb.cells[1].get("outputs") is not None else []
    )
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent", "text_representation": {"format_version": "9"}}
    assert fp.source_digest(nb) == before


def test_only_the_data_files_a_notebook_read_make_it_stale(twins, tmp_path):
    scratch = Path(REPO / "build" / f"test-fingerprint-{os.getpid()}")
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        read, other = scratch / "read.csv", scratch / "other.csv"
        read.write_text("a\n1\n")
        other.write_text("b\n2\n")
        cfg = _cfg(tmp_path)
        _fake_run(twins[0], cfg, {"files": [read.relative_to(REPO).as_posix()], "dirs": []})
        other.write_text("b\n3\n")  # like data/measured/cpu/ for a notebook that reads the paper's tables
        assert runner.stale_reason(twins[0], cfg) is None
        read.write_text("a\n2\n")
        assert runner.stale_reason(twins[0], cfg) == f"data changed: {read.relative_to(REPO).as_posix()}"
        read.unlink()
        assert runner.stale_reason(twins[0], cfg).startswith("data changed")
    finally:
        shutil.rmtree(scratch)


def test_a_folder_parameter_reruns_the_notebook_when_its_folder_appears_or_changes(twins, tmp_path):
    # A notebook that skips a section when its folder holds no table only tests for the table (no
    # read the audit hook sees): the folders its *_DIR(S) parameters name are hashed by listing.
    scratch = Path(REPO / "build" / f"test-param-dir-{os.getpid()}")
    rel = os.path.relpath(scratch, REPO / "notebooks")
    try:
        cfg = _cfg(tmp_path, extra_parameters={"PROBE_DIRS": [rel]})
        nb = jupytext.read(twins[0])
        assert scratch.resolve() in fp.folder_parameters(nb, {"PROBE_DIRS": [rel]})
        assert scratch.resolve() not in fp.folder_parameters(nb, {"FIGURES_DIR": rel}, outputs=[scratch])  # an output
        _fake_run(twins[0], cfg, {})
        assert runner.stale_reason(twins[0], cfg) is None
        scratch.mkdir(parents=True)
        reason = runner.stale_reason(twins[0], cfg)
        assert reason == f"param-dir changed: {scratch.relative_to(REPO).as_posix()}"
        _fake_run(twins[0], cfg, {})
        (scratch / "alpha.csv").write_text("a\n1\n")
        assert runner.stale_reason(twins[0], cfg) == reason
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_read_log_keeps_data_reads_and_drops_code_outputs_and_writes(tmp_path):
    table = REPO / "sdsl_lib" / "paper" / "data" / "table3_alpha_plane.csv"
    code = REPO / "sdsl_lib" / "io.py"
    out = tmp_path / "results"
    out.mkdir()
    (out / "x.json").write_text("{}")
    log = tmp_path / "reads"
    log.write_text(
        "\n".join(
            [
                f"R\t{table}",
                f"R\t{code}",
                f"R\t{out / 'x.json'}",
                f"R\t{REPO / 'README.md'}",
                f"W\t{REPO / 'README.md'}",  # written by the run itself: an output, not an input
                "R\t/etc/hostname",
                f"L\t{REPO / 'sdsl_lib' / 'paper' / 'data'}",
                f"L\t{REPO / 'sdsl_lib' / 'laws'}",  # a package folder the import system scanned
            ]
        )
    )
    assert fp.read_log(log, exclude=[out]) == {
        "files": ["sdsl_lib/paper/data/table3_alpha_plane.csv"],
        "dirs": ["sdsl_lib/paper/data"],
    }


def test_misspelled_parameter_is_one_line_error(capsys):
    nb = runner.discover(["05"])[0]
    cfg = RunConfig(extra_parameters={"N_PIONTS": 5})
    with pytest.raises(ValueError, match=r"05_nstar_scaling: unknown parameter N_PIONTS; its parameters cell defines"):
        runner.check_parameters(nb, cfg)
    assert runner.main(["--only", "05", "-p", "N_PIONTS=5", "--list"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("error: 05_nstar_scaling: unknown parameter N_PIONTS")


def test_known_parameter_is_accepted_and_typed_by_yaml():
    nb = runner.discover(["05"])[0]
    assert runner._parameter("N_POINTS=500") == ("N_POINTS", 500)
    assert runner.check_parameters(nb, RunConfig(extra_parameters={"N_POINTS": 500}))["N_POINTS"] == 500


def test_committed_notebooks_are_paired():
    assert pairing.unpaired() == []


@pytest.mark.slow
def test_kernel_run_records_reads_and_prints_no_noise(tmp_path, capfd):
    # A real kernel: the audit hook records the table the notebook read; no TCP warning, no
    # KeyboardInterrupt at shutdown, and DataFrames display through the readable-table formatter.
    folder = tmp_path / "nb"
    folder.mkdir()
    source = textwrap.dedent(
        """\
        # %% tags=["parameters"]
        FIGURES_DIR = "f"  # figures
        RESULTS_DIR = "r"  # results

        # %%
        import json
        from pathlib import Path
        from sdsl_lib import paper
        t3 = paper.table3()
        Path(RESULTS_DIR).mkdir(parents=True, exist_ok=True)
        (Path(RESULTS_DIR) / "99_probe.json").write_text(json.dumps({"figures": []}))
        t3
        """
    )
    jupytext.write(jupytext.reads(source, fmt="py:percent"), folder / "99_probe.ipynb")
    cfg = RunConfig(figures_dir=tmp_path / "f", results_dir=tmp_path / "r", executed_dir=tmp_path / "n")
    record = runner.execute(folder / "99_probe.ipynb", cfg)
    assert record["reads"]["files"] == ["sdsl_lib/paper/data/table3_alpha_plane.csv"]
    captured = capfd.readouterr()
    noise = captured.out + captured.err
    assert "without encryption" not in noise and "KeyboardInterrupt" not in noise, noise
    executed = jupytext.read(tmp_path / "n" / "99_probe.ipynb")
    html = executed.cells[-1].outputs[0]["data"]["text/html"]
    assert 'class="sdsl-table-frame"' in html and "NaN" not in html
    assert runner.stale_reason(folder / "99_probe.ipynb", cfg) is None
