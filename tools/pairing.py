"""Check that every notebook's jupytext twins agree (``make lint``; the pre-commit hook syncs them).

Each ``notebooks/NN_*.ipynb`` must have a ``.py`` twin (percent format) with the same cells: type,
source and tags. Outputs and metadata are ignored. Prints one line per notebook that fails and
exits 1; prints nothing and exits 0 when all agree.

Usage: ``python -m tools.pairing [NOTEBOOK_DIR]``
"""

from __future__ import annotations

import sys
from pathlib import Path

from tools.fingerprint import cell_key
from tools.runner import NOTEBOOK_DIR, NOTEBOOK_GLOB

__all__ = ["unpaired", "main"]


def unpaired(notebook_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """One message per notebook whose ``.py`` twin is missing or holds different cells."""
    import jupytext

    problems = []
    for nb_path in sorted(Path(notebook_dir).glob(NOTEBOOK_GLOB)):
        py = nb_path.with_suffix(".py")
        if not py.exists():
            problems.append(f"{nb_path}: no .py twin; pair it with `jupytext --set-formats ipynb,py:percent {nb_path}`")
        elif cell_key(jupytext.read(py)) != cell_key(jupytext.read(nb_path)):
            problems.append(f"{nb_path} and {py.name} differ: run `jupytext --sync {py}`")
    return problems


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    problems = unpaired(Path(args[0]) if args else NOTEBOOK_DIR)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
