r"""Execute the notebooks (``make figures``) and build their HTML report (``make report``).

Usage::

    python -m tools.notebook_runner                 # run stale notebooks, then the report
    python -m tools.notebook_runner --only 04 05    # just these (stem or its NN prefix)
    python -m tools.notebook_runner --force         # rerun even if up to date
    python -m tools.notebook_runner --smoke --out /tmp/smoke   # coarse grids, outputs under /tmp/smoke
    python -m tools.notebook_runner --report        # rebuild build/report/ from executed notebooks (= --report-only)
    python -m tools.notebook_runner --list          # which notebooks are stale, and why

Notebooks are found by the glob ``notebooks/[0-9][0-9]_*.ipynb`` (so later notebooks join without
touching this file) and run with papermill on the ``python3`` kernel, working directory
``notebooks/``. Each writes its figures to ``FIGURES_DIR`` (default ``figures/``) and its headline
numbers to ``RESULTS_DIR/<stem>.json`` (default ``data/results/``); the executed copy goes to
``build/notebooks/`` and the HTML report to ``build/report/``.

**Only stale notebooks run.** A notebook is up to date when a stamp file beside its executed copy
holds the same fingerprint and every output it listed still exists. The fingerprint hashes the
notebook's bytes, the parameters injected into it, the source of every ``sdsl_lib`` module it imports
(followed transitively through the package's own imports, ``sdsl_lib/__init__.py`` included), every
input file under ``data/`` (the output folder ``data/results/`` excepted), the output folders, and
the versions of Python and the numerical libraries that change the numbers or the pixels.

**Smoke runs** (``--smoke``) inject ``notebooks/smoke/<stem>.yaml`` (coarser grids, fewer
replicates; the same code path) and must write somewhere other than ``figures/``: by default under
``build/smoke/``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import html
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from sdsl_lib.io import atomic_write_json, atomic_write_text, repo_root

__all__ = [
    "NOTEBOOK_GLOB",
    "KERNEL_NAME",
    "RunConfig",
    "discover",
    "smoke_overrides",
    "injected_parameters",
    "sdsl_dependencies",
    "fingerprint",
    "stale_reason",
    "execute",
    "run_notebook",
    "run_all",
    "build_report",
    "main",
]

REPO = repo_root()
NOTEBOOK_DIR = REPO / "notebooks"
SMOKE_DIR = NOTEBOOK_DIR / "smoke"
DEFAULT_FIGURES = REPO / "figures"
DEFAULT_RESULTS = REPO / "data" / "results"
BUILD_DIR = REPO / "build"
DEFAULT_EXECUTED = BUILD_DIR / "notebooks"
DEFAULT_REPORT = BUILD_DIR / "report"
DEFAULT_SMOKE_OUT = BUILD_DIR / "smoke"

#: Which notebooks are executed: two-digit prefix, underscore, slug.
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
#: The kernel the notebooks run on (``python -m ipykernel install --sys-prefix --name python3``).
KERNEL_NAME = "python3"
#: Libraries whose version changes a result or a pixel: part of the fingerprint.
_VERSIONED = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "seaborn", "sympy")


@dataclass
class RunConfig:
    """Where one execution writes, and what it injects."""

    figures_dir: Path = DEFAULT_FIGURES
    results_dir: Path = DEFAULT_RESULTS
    executed_dir: Path = DEFAULT_EXECUTED
    smoke: bool = False
    force: bool = False
    extra_parameters: dict = field(default_factory=dict)

    def __post_init__(self):
        self.figures_dir = Path(self.figures_dir).resolve()
        self.results_dir = Path(self.results_dir).resolve()
        self.executed_dir = Path(self.executed_dir).resolve()
        if self.smoke and self.figures_dir == DEFAULT_FIGURES.resolve():
            raise ValueError("a smoke run must not write to figures/: give --out or --out-figures")
        if self.smoke and self.results_dir == DEFAULT_RESULTS.resolve():
            raise ValueError("a smoke run must not write to data/results/: give --out or --out-results")


# --- Discovery and parameters -------------------------------------------------------------------


def discover(only=None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks to run, in name order; ``only`` filters by stem or by its ``NN`` prefix."""
    notebooks = sorted(Path(notebook_dir).glob(NOTEBOOK_GLOB))
    if not only:
        return notebooks
    chosen = []
    for key in only:
        key = Path(key).stem
        hits = [nb for nb in notebooks if nb.stem == key or nb.stem.split("_", 1)[0] == key]
        if not hits:
            raise ValueError(f"--only {key!r} matches no notebook; known: {', '.join(nb.stem for nb in notebooks)}")
        chosen.extend(nb for nb in hits if nb not in chosen)
    return sorted(chosen)


def smoke_overrides(notebook: Path) -> dict:
    """The smoke parameters of a notebook (``notebooks/smoke/<stem>.yaml``), or ``{}``."""
    import yaml

    path = Path(notebook).parent / "smoke" / f"{Path(notebook).stem}.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and k.isupper() for k in data):
        raise ValueError(f"{path} must map UPPER_CASE parameter names to values")
    return data


def injected_parameters(notebook: Path, cfg: RunConfig) -> dict:
    """Parameters papermill injects: smoke overrides, non-default output folders, then extras.

    Default output folders are not injected, so an ordinary run's executed notebook shows the
    relative paths of its ``parameters`` cell rather than this machine's absolute paths.
    """
    params = dict(smoke_overrides(notebook)) if cfg.smoke else {}
    if cfg.figures_dir != DEFAULT_FIGURES.resolve():
        params["FIGURES_DIR"] = str(cfg.figures_dir)
    if cfg.results_dir != DEFAULT_RESULTS.resolve():
        params["RESULTS_DIR"] = str(cfg.results_dir)
    params.update(cfg.extra_parameters)
    return params


# --- Fingerprint ----------------------------------------------------------------------------------


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


def _code_cells(notebook: Path) -> str:
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            # IPython magics and shell escapes are not Python: drop them before parsing.
            lines.extend(ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!")))
    return "\n".join(lines)


def sdsl_dependencies(notebook: Path) -> list[Path]:
    """Source files of every ``sdsl_lib`` module the notebook imports, followed transitively."""
    pending = {"sdsl_lib"} | _imports(_code_cells(notebook))
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


def _input_files(cfg: RunConfig) -> list[Path]:
    data = REPO / "data"
    excluded = {DEFAULT_RESULTS.resolve(), cfg.results_dir}
    files = []
    for path in sorted(data.rglob("*")) if data.exists() else []:
        if path.is_file() and not any(parent in excluded for parent in path.resolve().parents):
            files.append(path)
    return files


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def fingerprint(notebook: Path, cfg: RunConfig) -> str:
    """SHA-256 over everything that can change a notebook's outputs (see the module docstring)."""
    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + hashlib.sha256(data).digest())

    add("notebook", Path(notebook).read_bytes())
    add("parameters", json.dumps(injected_parameters(notebook, cfg), sort_keys=True, default=str).encode())
    add("outputs", json.dumps([str(cfg.figures_dir), str(cfg.results_dir)]).encode())
    add("versions", json.dumps(_versions(), sort_keys=True).encode())
    for path in sdsl_dependencies(notebook):
        add(f"src:{path.relative_to(REPO)}", path.read_bytes())
    for path in _input_files(cfg):
        add(f"data:{path.relative_to(REPO)}", path.read_bytes())
    return h.hexdigest()


def _stamp_path(notebook: Path, cfg: RunConfig) -> Path:
    return cfg.executed_dir / ".stamps" / f"{Path(notebook).stem}.json"


def results_path(notebook: Path, cfg: RunConfig) -> Path:
    """Where a notebook writes its headline numbers: ``RESULTS_DIR/<stem>.json``."""
    return cfg.results_dir / f"{Path(notebook).stem}.json"


def stale_reason(notebook: Path, cfg: RunConfig, key: str | None = None) -> str | None:
    """Why a notebook must run (a short phrase), or None when it is up to date."""
    if cfg.force:
        return "forced"
    stamp = _stamp_path(notebook, cfg)
    if not stamp.exists():
        return "never run"
    record = json.loads(stamp.read_text())
    if record.get("fingerprint") != (key or fingerprint(notebook, cfg)):
        return "inputs changed"
    executed = cfg.executed_dir / Path(notebook).name
    outputs = [executed, results_path(notebook, cfg)] + [cfg.figures_dir / f for f in record.get("figures", [])]
    missing = [p for p in outputs if not p.exists()]
    if missing:
        return f"output missing: {missing[0].name}"
    return None


# --- Execution ------------------------------------------------------------------------------------


def execute(notebook: Path, cfg: RunConfig) -> dict:
    """Run one notebook with papermill now (no staleness check); return a summary record.

    Raises ``papermill.PapermillExecutionError`` when a cell fails; the partly executed notebook is
    still written to ``cfg.executed_dir`` for inspection.
    """
    import papermill as pm

    notebook = Path(notebook).resolve()
    key = fingerprint(notebook, cfg)
    params = injected_parameters(notebook, cfg)
    cfg.executed_dir.mkdir(parents=True, exist_ok=True)
    output = cfg.executed_dir / notebook.name
    # The Makefile exports MPLBACKEND=Agg for scripts; in the kernel we want inline figures so the
    # executed notebook (and its HTML) shows them. ipykernel only picks inline when it is unset.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("PYTHONHASHSEED", "0")
    start = time.perf_counter()
    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=params,
        kernel_name=KERNEL_NAME,
        cwd=str(notebook.parent),
        progress_bar=False,
        log_output=False,
        request_save_on_cell_execute=False,
    )
    seconds = time.perf_counter() - start
    results = results_path(notebook, cfg)
    if not results.exists():
        raise RuntimeError(f"{notebook.name} ran but wrote no results file {results}")
    figures = json.loads(results.read_text()).get("figures", [])
    record = {
        "notebook": notebook.name,
        "fingerprint": key,
        "figures": sorted(figures),
        "seconds": round(seconds, 1),
        "parameters": params,
    }
    atomic_write_json(_stamp_path(notebook, cfg), record)
    return record


def _execute_worker(notebook: str, cfg_fields: dict) -> dict:
    # Top-level so a spawned process can import it; a failure comes back as data, not an exception.
    cfg = RunConfig(**cfg_fields)
    try:
        return {"ok": True, **execute(Path(notebook), cfg)}
    except Exception as exc:  # noqa: BLE001 - report every failure, keep running the others
        return {"ok": False, "notebook": Path(notebook).name, "error": f"{type(exc).__name__}: {str(exc)[-2000:]}"}


def run_notebook(notebook: Path, out_dir: Path, smoke: bool = True, extra_parameters: dict | None = None) -> dict:
    """Run one notebook with every output under ``out_dir`` (``figures/``, ``results/``, ``notebooks/``).

    The entry point of the tests: the same code path as ``make figures``, with the smoke overrides.
    """
    out_dir = Path(out_dir)
    cfg = RunConfig(
        figures_dir=out_dir / "figures",
        results_dir=out_dir / "results",
        executed_dir=out_dir / "notebooks",
        smoke=smoke,
        force=True,
        extra_parameters=dict(extra_parameters or {}),
    )
    return execute(Path(notebook), cfg)


def run_all(notebooks: list[Path], cfg: RunConfig, jobs: int = 2) -> list[dict]:
    """Run the stale notebooks among ``notebooks`` (in parallel with ``jobs`` kernels)."""
    from tqdm import tqdm

    todo, records = [], []
    for nb in notebooks:
        reason = stale_reason(nb, cfg)
        if reason is None:
            records.append({"ok": True, "notebook": nb.name, "skipped": True})
            print(f"  {nb.stem:<40} up to date")
        else:
            todo.append(nb)
            print(f"  {nb.stem:<40} stale ({reason})")
    if not todo:
        return records
    fields = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    bar = tqdm(total=len(todo), desc="notebooks", unit="nb", file=sys.stdout)
    if jobs <= 1 or len(todo) == 1:
        results = []
        for nb in todo:
            results.append(_execute_worker(str(nb), fields))
            bar.update()
    else:
        # Separate processes (spawned, not forked: papermill's kernel clients hold zmq sockets).
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_execute_worker, str(nb), fields) for nb in todo]
            results = []
            for fut in futures:
                results.append(fut.result())
                bar.update()
    bar.close()
    for r in results:
        status = f"ran in {r['seconds']:.1f} s" if r["ok"] else f"FAILED\n{r['error']}"
        print(f"  {Path(r['notebook']).stem:<40} {status}")
    return records + results


# --- Report ---------------------------------------------------------------------------------------


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def build_report(
    executed_dir: Path = DEFAULT_EXECUTED, report_dir: Path = DEFAULT_REPORT, figures_dir: Path = DEFAULT_FIGURES
) -> Path:
    """Convert every executed notebook to HTML (only those newer than their page) and write an index."""
    import nbformat
    from nbconvert import HTMLExporter

    executed_dir, report_dir, figures_dir = Path(executed_dir), Path(report_dir), Path(figures_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(executed_dir.glob(NOTEBOOK_GLOB))
    if not notebooks:
        raise FileNotFoundError(f"no executed notebooks in {executed_dir}: run `make figures` first")
    exporter = HTMLExporter(template_name="lab")
    rows = []
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        page = report_dir / f"{path.stem}.html"
        if not page.exists() or page.stat().st_mtime < path.stat().st_mtime:
            body, _ = exporter.from_notebook_node(nb)
            atomic_write_text(page, body)
        stamp = executed_dir / ".stamps" / f"{path.stem}.json"
        record = json.loads(stamp.read_text()) if stamp.exists() else {}
        failed = any(
            o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
        )
        figs = ", ".join(
            f'<a href="{html.escape(os.path.relpath(figures_dir / f, report_dir))}">{html.escape(Path(f).stem)}</a>'
            for f in record.get("figures", [])
            if f.endswith(".png")
        )
        status = "failed" if failed else (f"{record['seconds']} s" if "seconds" in record else "ran")
        rows.append(
            f'<tr><td><a href="{page.name}">{html.escape(path.stem)}</a></td><td>{html.escape(_title(nb))}</td>'
            f"<td>{status}</td><td>{figs}</td></tr>"
        )
    index = report_dir / "index.html"
    atomic_write_text(
        index,
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>SDSL companion: executed notebooks</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:75em}td,th{padding:.3em .8em;text-align:left;"
        "vertical-align:top;border-bottom:1px solid #ddd}</style></head><body>\n"
        "<h1>SDSL companion: executed notebooks</h1>\n"
        "<p>Each notebook reproduces one group of derivations, tables and figures of "
        "<i>Speculative Decoding Scaling Laws</i> (arXiv:2603.11053). Regenerate with <code>make figures</code>.</p>\n"
        "<table><tr><th>Notebook</th><th>What it reproduces</th><th>Run time</th><th>Figures</th></tr>\n"
        + "\n".join(rows)
        + "\n</table></body></html>\n",
    )
    return index


# --- Command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.notebook_runner", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", metavar="NB", help="notebooks to consider: stem or NN prefix (default: all)")
    p.add_argument("--force", action="store_true", help="run even if up to date")
    p.add_argument("--smoke", action="store_true", help="inject notebooks/smoke/<stem>.yaml (coarse grids)")
    p.add_argument("--out", type=Path, help="put figures/, results/, notebooks/ and report/ under this folder")
    p.add_argument("--out-figures", type=Path, help="figures folder (default figures/, or OUT/figures)")
    p.add_argument("--out-results", type=Path, help="results folder (default data/results/, or OUT/results)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="notebooks run at once (default 2)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument(
        "--report-only",
        "--report",
        dest="report_only",
        action="store_true",
        help="only rebuild the HTML report (`make report`)",
    )
    p.add_argument("--list", action="store_true", help="print which notebooks are stale and exit")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    out = args.out if args.out is not None else (DEFAULT_SMOKE_OUT if args.smoke else None)
    cfg = RunConfig(
        figures_dir=args.out_figures or (out / "figures" if out else DEFAULT_FIGURES),
        results_dir=args.out_results or (out / "results" if out else DEFAULT_RESULTS),
        executed_dir=out / "notebooks" if out else DEFAULT_EXECUTED,
        smoke=args.smoke,
        force=args.force,
    )
    report_dir = out / "report" if out else DEFAULT_REPORT
    if args.report_only:
        print(f"report: {build_report(cfg.executed_dir, report_dir, cfg.figures_dir)}")
        return 0
    notebooks = discover(args.only)
    if args.list:
        for nb in notebooks:
            print(f"  {nb.stem:<40} {stale_reason(nb, cfg) or 'up to date'}")
        return 0
    start = time.perf_counter()
    records = run_all(notebooks, cfg, jobs=args.jobs)
    failed = [r["notebook"] for r in records if not r["ok"]]
    print(f"notebooks: {len(records) - len(failed)} ok, {len(failed)} failed, {time.perf_counter() - start:.1f} s")
    if not args.no_report:
        print(f"report: {build_report(cfg.executed_dir, report_dir, cfg.figures_dir)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
