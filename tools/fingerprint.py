"""What a notebook's outputs depend on, hashed: the staleness test of ``make figures``.

A notebook is up to date when the stamp beside its executed copy holds the same fingerprint and
every output it listed still exists. The fingerprint is a SHA-256 over named components, each hashed
on its own so that ``--list`` can say which one changed:

``source``
    The cells (type, source, tags) of the notebook as it will run. Either twin counts: when the
    jupytext ``.py`` twin and the ``.ipynb`` disagree, the newer file is the one executed
    (:func:`notebook_source`), so an edit to the ``.py`` alone reruns exactly that notebook. Outputs
    and jupytext metadata are not part of it.
``parameters``, ``outputs``, ``versions``, ``kernel``
    The injected parameters, the output folders, the versions of Python and of the libraries that
    change numbers or pixels, and the kernel start-up code (:mod:`tools.kernel_startup`).
``src:<file>``
    Every ``sdsl_lib`` module the notebook imports, followed through the package's own imports.
``data:<file>`` and ``dir:<folder>``
    The files the notebook *read* on its last run, and the listings of the folders it scanned,
    as recorded inside the kernel by an audit hook (:mod:`tools.kernel_startup`). Only what it read
    counts: a change to ``data/measured/cpu/`` does not rerun a notebook that only reads the
    paper's tables.
``param-dir:<folder>``
    The listing (or absence) of every folder a ``*_DIR`` or ``*_DIRS`` parameter names (default or
    injected; relative to ``notebooks/``). A notebook that skips a section when its folder holds no
    table only *tests* for the table, which the audit hook does not see: without this, a run
    committed into that folder later would not rerun it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
from pathlib import Path

from sdsl_lib.io import repo_root

__all__ = [
    "VERSIONED",
    "notebook_source",
    "cell_key",
    "source_digest",
    "parameter_names",
    "folder_parameters",
    "sdsl_dependencies",
    "read_log",
    "components",
    "combine",
]

REPO = repo_root()
KERNEL_STARTUP = Path(__file__).with_name("kernel_startup.py")

#: Libraries whose version changes a result or a pixel: part of the fingerprint.
VERSIONED = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "seaborn", "sympy")

#: Paths under the repository that are never data inputs: code and source are tracked on their own
#: (``src:`` and ``source``), and the environment and build trees are not the notebook's data.
_NOT_INPUTS = (".venv", ".git", "build", "notebooks", ".ipynb_checkpoints", "__pycache__")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- The notebook's own source -------------------------------------------------------------------


def cell_key(nb) -> list:
    """What the twins must share: (cell type, source, sorted tags) of every cell."""
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def notebook_source(notebook: Path):
    """The notebook to execute and the twin it came from: ``(NotebookNode, Path)``.

    When the ``.py`` twin holds the same cells as the ``.ipynb`` (the committed state), the
    ``.ipynb`` runs. When they differ, the newer file wins, as with ``jupytext --sync``: an editor
    that saved the ``.py`` is executed without a manual sync. The ``.ipynb``'s notebook metadata
    (kernelspec, jupytext pairing) is kept either way.
    """
    import jupytext

    notebook = Path(notebook)
    nb = jupytext.read(notebook)
    twin = notebook.with_suffix(".py")
    if not twin.exists() or notebook.suffix != ".ipynb":
        return nb, notebook
    text = jupytext.read(twin)
    if cell_key(text) == cell_key(nb) or notebook.stat().st_mtime >= twin.stat().st_mtime:
        return nb, notebook
    text.metadata = nb.metadata
    return text, twin


def source_digest(nb) -> str:
    """SHA-256 of a notebook's cells (type, source, tags) and kernel name; outputs are ignored."""
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    return _digest(json.dumps([kernel, cell_key(nb)]).encode())


def _parameter_assignments(nb):
    """``(name, value node)`` of each plain assignment in the cell tagged ``parameters``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                for t in targets:
                    if isinstance(t, ast.Name):
                        yield t.id, node.value


def parameter_names(nb) -> set[str]:
    """Names assigned in the cell tagged ``parameters`` (empty when there is none)."""
    return {name for name, _ in _parameter_assignments(nb)}


def folder_parameters(nb, parameters: dict | None = None, outputs=()) -> list[Path]:
    """The folders that ``*_DIR`` and ``*_DIRS`` parameters name: literal defaults of the cell tagged
    ``parameters``, overridden by ``parameters`` (injected values), resolved against ``notebooks/``.
    The run's ``outputs`` folders (figures, results) are what it writes, not inputs: left out."""
    values = {}
    for name, node in _parameter_assignments(nb):
        try:
            values[name] = ast.literal_eval(node)
        except (ValueError, TypeError):  # a computed default (or none): not a folder name to list
            continue
    values.update(parameters or {})
    skip = {Path(p).resolve() for p in outputs}
    folders = []
    for name, value in sorted(values.items()):
        if not name.endswith(("_DIR", "_DIRS")):
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, str) and v and (folder := (REPO / "notebooks" / v).resolve()) not in skip:
                folders.append(folder)
    return folders


# --- Library code it imports ---------------------------------------------------------------------


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != "sdsl_lib":
        return None
    base = REPO.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(source: str, package: str | None = None) -> set[str]:
    """``sdsl_lib`` modules imported by Python source (relative imports resolved against ``package``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level and package:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # "from sdsl_lib import plotting" imports the submodule sdsl_lib.plotting.
            found.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] == "sdsl_lib"}


def _code_cells(nb) -> str:
    # The code of a notebook as one Python source (magics dropped).
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            # IPython magics and shell escapes are not Python: drop them before parsing.
            lines.extend(ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!")))
    return "\n".join(lines)


def sdsl_dependencies(notebook) -> list[Path]:
    """Source files of every ``sdsl_lib`` module the notebook imports, followed transitively.

    ``notebook`` is a path (either twin, see :func:`notebook_source`) or a NotebookNode. The kernel
    start-up imports :mod:`sdsl_lib.nbtools`, so it is always listed.
    """
    nb = notebook_source(notebook)[0] if isinstance(notebook, (str, Path)) else notebook
    pending = {"sdsl_lib", "sdsl_lib.nbtools"} | _imports(_code_cells(nb))
    seen: dict[str, Path] = {}
    while pending:
        module = pending.pop()
        path = _module_file(module)
        if path is None or module in seen:
            continue
        seen[module] = path
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        pending |= _imports(path.read_text(), package) - set(seen)
        if "." in module:
            # Importing a submodule runs its package's __init__ first.
            pending.add(module.rsplit(".", 1)[0])
    return sorted(set(seen.values()))


# --- Data it reads -------------------------------------------------------------------------------


def read_log(log: Path, exclude: list[Path]) -> dict[str, list[str]]:
    """The repository files a run read and the folders it listed, from the kernel's audit log.

    Each log line is ``R<TAB>path``, ``W<TAB>path`` or ``L<TAB>folder``. Files the run wrote itself,
    files under ``exclude`` (its output folders) and code or build paths (see ``_NOT_INPUTS``) are
    dropped, and so are listings of Python package folders (the import system scans them). Returns ``{"files": [...], "dirs": [...]}`` with paths relative to the repository.
    """
    reads, writes, dirs = set(), set(), set()
    if Path(log).exists():
        for line in Path(log).read_text(errors="replace").splitlines():
            kind, _, path = line.partition("\t")
            {"R": reads, "W": writes, "L": dirs}.get(kind, set()).add(path)
    excluded = [Path(p).resolve() for p in exclude]

    def keep(path: str, is_file: bool) -> str | None:
        p = Path(path)
        if not p.is_relative_to(REPO) or any(p == e or p.is_relative_to(e) for e in excluded):
            return None
        rel = p.relative_to(REPO)
        if rel.parts and rel.parts[0] in _NOT_INPUTS or "__pycache__" in rel.parts:
            return None
        if is_file and (p.suffix in (".py", ".pyc") or not p.is_file()):
            return None
        return rel.as_posix()

    files = {k for path in reads - writes if (k := keep(path, True))}
    # Python's import system lists the folders of packages it imports from: those are code, not data.
    folders = {
        k
        for path in dirs
        if (k := keep(path, False)) and (REPO / k).is_dir() and not (REPO / k / "__init__.py").exists()
    }
    return {"files": sorted(files), "dirs": sorted(folders)}


def _listing(folder: Path) -> bytes:
    return "\n".join(sorted(p.name for p in folder.iterdir())).encode()


# --- The fingerprint -----------------------------------------------------------------------------


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def components(nb, parameters: dict, outputs: list[Path], reads: dict | None = None) -> dict[str, str]:
    """Label -> SHA-256 of everything that can change a notebook's outputs (see the module docstring).

    ``reads`` is the record of :func:`read_log` from the notebook's last run (``None`` before the
    first run: the notebook is stale then anyway). A file it read that has since gone hashes as
    ``"missing"``.
    """
    out = {
        "source": source_digest(nb),
        "parameters": _digest(json.dumps(parameters, sort_keys=True, default=str).encode()),
        "outputs": _digest(json.dumps([str(p) for p in outputs]).encode()),
        "versions": _digest(json.dumps(_versions(), sort_keys=True).encode()),
        "kernel": _digest(KERNEL_STARTUP.read_bytes()),
    }
    for path in sdsl_dependencies(nb):
        out[f"src:{path.relative_to(REPO).as_posix()}"] = _digest(path.read_bytes())
    for folder in folder_parameters(nb, parameters, outputs):
        label = f"param-dir:{relpath(folder)}"
        out[label] = _digest(_listing(folder)) if folder.is_dir() else "missing"
    reads = reads or {}
    for rel in reads.get("files", []):
        path = REPO / rel
        out[f"data:{rel}"] = _digest(path.read_bytes()) if path.is_file() else "missing"
    for rel in reads.get("dirs", []):
        path = REPO / rel
        out[f"dir:{rel}"] = _digest(_listing(path)) if path.is_dir() else "missing"
    return out


def combine(parts: dict[str, str]) -> str:
    """One SHA-256 over the labelled component digests (order-independent)."""
    h = hashlib.sha256()
    for label in sorted(parts):
        h.update(label.encode() + b"\0" + parts[label].encode() + b"\n")
    return h.hexdigest()


def changed(old: dict[str, str], new: dict[str, str]) -> str:
    """A short phrase naming the first component that differs between two records."""
    for label in sorted(set(old) | set(new)):
        if old.get(label) != new.get(label):
            kind, _, what = label.partition(":")
            return f"{kind} changed: {what}" if what else f"{kind} changed"
    return "inputs changed"


def relpath(path: Path) -> str:
    """``path`` relative to the repository when it lies inside, else as given."""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return os.fspath(path)
