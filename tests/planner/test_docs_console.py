"""Console blocks in README.md and docs/*.md show what the commands print today (issue: stale digits).

Each ```console block starting with ``$ sdsl ...`` is run through :func:`sdsl_lib.cli.main`; every line it
shows (a ``...`` line elides the rest) must be a line of the real output, stdout and stderr together.
"""

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from sdsl_lib.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks():
    for doc in DOCS:
        for i, block in enumerate(re.findall(r"```console\n(.*?)```", doc.read_text(), flags=re.S)):
            lines = block.rstrip("\n").split("\n")
            if lines[0].startswith("$ sdsl "):
                yield pytest.param(lines[0][2:], lines[1:], id=f"{doc.name}-{i}")


@pytest.mark.parametrize(("command", "shown"), list(_blocks()))
def test_console_block_matches_the_command(command, shown):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(shlex.split(command)[1:])
        except SystemExit:
            pass
    printed = {ln.rstrip() for ln in (out.getvalue() + err.getvalue()).splitlines()}
    for line in shown:
        if line.strip() in ("...", ""):
            continue
        assert line.rstrip() in printed, f"{command!r} no longer prints {line!r}"


def test_the_docs_have_console_blocks():
    assert len(list(_blocks())) >= 3
