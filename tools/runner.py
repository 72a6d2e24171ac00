"""Execute the notebooks with papermill: discovery, parameters, staleness, kernels, the command line.

See :mod:`tools.notebook_runner` for the usage and :mod:`tools.fingerprint` for what makes a
notebook stale.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from sdsl_lib.io import atomic_write_json, repo_root
from tools import fingerprint as fp

REPO = repo_root()
NOTEBOOK_DIR = REPO / "notebooks"
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


def check_parameters(notebook: Path, cfg: RunConfig, nb=None) -> dict:
    """The injected parameters, or ``ValueError`` naming one the ``parameters`` cell does not define.

    papermill only logs a warning for an unknown name and runs on with the default, so a typo
    (``N_PIONTS``) would silently give the default result.
    """
    nb = nb if nb is not None else fp.notebook_source(notebook)[0]
    params = injected_parameters(notebook, cfg)
    known = fp.parameter_names(nb)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"{Path(notebook).stem}: unknown parameter {unknown[0]}; its parameters cell defines "
            f"{', '.join(sorted(known)) or 'nothing'}"
        )
    return params


# --- Staleness -------------------------------------------------------------------------------------


def _outputs(cfg: RunConfig) -> list[Path]:
    return [cfg.figures_dir, cfg.results_dir]


def _stamp_path(notebook: Path, cfg: RunConfig) -> Path:
    return cfg.executed_dir / ".stamps" / f"{Path(notebook).stem}.json"


def _stamp(notebook: Path, cfg: RunConfig) -> dict:
    path = _stamp_path(notebook, cfg)
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        return {}  # a damaged stamp only means "run it again"


def results_path(notebook: Path, cfg: RunConfig) -> Path:
    """Where a notebook writes its headline numbers: ``RESULTS_DIR/<stem>.json``."""
    return cfg.results_dir / f"{Path(notebook).stem}.json"


def fingerprint_parts(notebook: Path, cfg: RunConfig, reads: dict | None = None) -> dict[str, str]:
    """The labelled digests of :func:`tools.fingerprint.components` for this notebook and run."""
    nb = fp.notebook_source(notebook)[0]
    if reads is None:
        reads = _stamp(notebook, cfg).get("reads")
    return fp.components(nb, injected_parameters(notebook, cfg), _outputs(cfg), reads)


def fingerprint(notebook: Path, cfg: RunConfig, reads: dict | None = None) -> str:
    """SHA-256 over everything that can change a notebook's outputs (see :mod:`tools.fingerprint`).

    ``reads`` defaults to the data files the notebook read on its last run (from its stamp).
    """
    return fp.combine(fingerprint_parts(notebook, cfg, reads))


def stale_reason(notebook: Path, cfg: RunConfig) -> str | None:
    """Why a notebook must run (a short phrase), or None when it is up to date."""
    if cfg.force:
        return "forced"
    record = _stamp(notebook, cfg)
    if not record:
        return "never run"
    parts = fingerprint_parts(notebook, cfg, record.get("reads"))
    if record.get("fingerprint") != fp.combine(parts):
        return fp.changed(record.get("components", {}), parts)
    executed = cfg.executed_dir / Path(notebook).name
    outputs = [executed, results_path(notebook, cfg)] + [cfg.figures_dir / f for f in record.get("figures", [])]
    missing = [p for p in outputs if not p.exists()]
    if missing:
        return f"output missing: {missing[0].name}"
    return None


# --- Execution ------------------------------------------------------------------------------------


def _kernel_manager_class():
    """A local kernel on IPC sockets, shut down by request only.

    Two sources of noise in ``make figures`` come from jupyter_client's defaults, not from the
    notebooks: ipykernel warns "Kernel is running over TCP without encryption" for every TCP kernel
    (a local kernel needs no TCP: IPC sockets live in the user's runtime folder), and
    ``shutdown_kernel`` first *interrupts* the kernel (SIGINT), which ipykernel logs as
    "ERROR | KeyboardInterrupt caught in kernel" when the signal lands inside a message handler. A
    notebook that finished has nothing to interrupt, so the interrupt is skipped while shutting down.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    class QuietKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        def _ip_default(self):
            # jupyter_client's default IPC path is "kernel-ipc" in the current folder, shared by every
            # kernel started from it: two at once would bind the same sockets. A unique prefix in the
            # user's runtime folder instead (cleanup_ipc_files removes the sockets at shutdown).
            from jupyter_core.paths import jupyter_runtime_dir

            os.makedirs(jupyter_runtime_dir(), exist_ok=True)
            return os.path.join(jupyter_runtime_dir(), f"sdsl-kernel-{uuid.uuid4().hex[:12]}-ipc")

        async def _async_interrupt_kernel(self):
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return QuietKernelManager


def _failure(exc: Exception) -> str:
    """One line for a failed notebook: the cell's exception type and message, not its traceback."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}".splitlines()[0]
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def execute(notebook: Path, cfg: RunConfig) -> dict:
    """Run one notebook with papermill now (no staleness check); return a summary record.

    Raises ``ValueError`` for an unknown injected parameter (before anything runs) and
    ``papermill.PapermillExecutionError`` when a cell fails; the partly executed notebook is then
    still written to ``cfg.executed_dir`` for inspection.
    """
    import papermill as pm

    notebook = Path(notebook).resolve()
    nb, twin = fp.notebook_source(notebook)
    params = check_parameters(notebook, cfg, nb)
    cfg.executed_dir.mkdir(parents=True, exist_ok=True)
    output = cfg.executed_dir / notebook.name
    # The Makefile exports MPLBACKEND=Agg for scripts; in the kernel we want inline figures so the
    # executed notebook (and its HTML) shows them. ipykernel only picks inline when it is unset.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("PYTHONHASHSEED", "0")
    log_fd, log = tempfile.mkstemp(prefix=f"{notebook.stem}.", suffix=".reads")
    os.close(log_fd)
    os.environ["SDSL_READS_LOG"], os.environ["SDSL_READS_ROOT"] = log, str(REPO)
    start = time.perf_counter()
    # Inject the parameters here rather than through execute_notebook: papermill would first infer
    # the notebook's parameters with a line regex that warns ("Unable to parse line") on any comment
    # holding an "=", to do the unknown-name check that check_parameters already did exactly.
    source_nb = copy.deepcopy(nb)  # the fingerprint is of the source, not of the parameterised notebook
    if params:
        from papermill.parameterize import parameterize_notebook

        # The metadata papermill's own loader adds (it reads them as attributes).
        nb.metadata.setdefault("papermill", {"default_parameters": {}, "parameters": {}, "environment_variables": {}})
        for cell in nb.cells:
            cell.metadata.setdefault("tags", [])
            cell.metadata.setdefault("papermill", {})
        nb = parameterize_notebook(nb, params, kernel_name=KERNEL_NAME, language="python")
    try:
        pm.execute_notebook(
            nb,
            str(output),
            parameters=None,
            kernel_name=KERNEL_NAME,
            language="python",
            cwd=str(notebook.parent),
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            kernel_manager_class=_kernel_manager_class(),
            extra_arguments=[f"--IPKernelApp.exec_files=[{str(fp.KERNEL_STARTUP)!r}]"],
        )
        # Another notebook's results file is an input (12 reads 10's fitted law); only this
        # notebook's own outputs are not.
        reads = fp.read_log(Path(log), exclude=[cfg.figures_dir, results_path(notebook, cfg), cfg.executed_dir])
    finally:
        os.unlink(log)
        del os.environ["SDSL_READS_LOG"]
    seconds = time.perf_counter() - start
    results = results_path(notebook, cfg)
    if not results.exists():
        raise RuntimeError(f"{notebook.name} ran but wrote no results file {results}")
    parts = fp.components(source_nb, params, _outputs(cfg), reads)
    record = {
        "notebook": notebook.name,
        "source": twin.name,
        "fingerprint": fp.combine(parts),
        "components": parts,
        "reads": reads,
        "figures": sorted(json.loads(results.read_text()).get("figures", [])),
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
        return {"ok": False, "notebook": Path(notebook).name, "error": _failure(exc)}


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


def _run_batch(todo: list[Path], cfg: RunConfig, jobs: int) -> list[dict]:
    fields = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    if jobs <= 1 or len(todo) == 1:
        return [_execute_worker(str(nb), fields) for nb in todo]
    # Separate processes (spawned, not forked: papermill's kernel clients hold zmq sockets).
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        return [f.result() for f in [pool.submit(_execute_worker, str(nb), fields) for nb in todo]]


def upstream(notebook: Path, notebooks: list[Path], cfg: RunConfig) -> set[Path]:
    """The notebooks among ``notebooks`` whose results this one reads.

    Known from its last run (the results files it read) and, before any run, from its source: a
    string literal naming another notebook's stem (``read_result("10_ladder", ...)``).
    """
    by_results = {fp.relpath(results_path(nb, cfg)): nb for nb in notebooks}
    found = {by_results[f] for f in _previous_reads(notebook, cfg) if f in by_results}
    nb = fp.notebook_source(notebook)[0]
    try:
        tree = ast.parse(fp._code_cells(nb))
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    found |= {other for other in notebooks if other.stem in literals or f"{other.stem}.json" in literals}
    found.discard(notebook)
    return found


def run_all(notebooks: list[Path], cfg: RunConfig, jobs: int = 2) -> list[dict]:
    """Run the stale notebooks among ``notebooks`` (in parallel with ``jobs`` kernels).

    A notebook waits for the stale notebooks whose results it reads (:func:`upstream`): they run in
    rounds, and one whose input was rewritten by an earlier round is checked again afterwards.
    Each notebook runs at most once per call.
    """
    records: dict[str, dict] = {}
    reasons = {nb: stale_reason(nb, cfg) for nb in notebooks}
    for nb in notebooks:
        print(f"  {nb.stem:<40} {'stale (' + reasons[nb] + ')' if reasons[nb] else 'up to date'}")
        if reasons[nb] is None:
            records[nb.name] = {"ok": True, "notebook": nb.name, "skipped": True}
    ran: set[Path] = set()
    for _ in range(len(notebooks)):
        stale = [nb for nb in notebooks if nb not in ran and (reasons.get(nb) or stale_reason(nb, cfg))]
        reasons = {}
        if not stale:
            break
        batch = [nb for nb in stale if not upstream(nb, notebooks, cfg) & set(stale)] or stale
        for r in _run_batch(batch, cfg, jobs):
            records[r["notebook"]] = r
            status = f"ran in {r['seconds']:.1f} s" if r["ok"] else f"FAILED: {r['error']}"
            print(f"  {Path(r['notebook']).stem:<40} {status}")
        ran.update(batch)
    return [records[nb.name] for nb in notebooks if nb.name in records]


def _previous_reads(notebook: Path, cfg: RunConfig) -> list[str]:
    return _stamp(notebook, cfg).get("reads", {}).get("files", [])


# --- Command line ---------------------------------------------------------------------------------


def _parameter(text: str) -> tuple[str, object]:
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name.isupper():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with an UPPER_CASE name, got {text!r}")
    return name, yaml.safe_load(value)


def _parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.notebook_runner", description=description)
    p.add_argument("--only", nargs="+", metavar="NB", help="notebooks to consider: stem or NN prefix (default: all)")
    p.add_argument("--force", action="store_true", help="run even if up to date")
    p.add_argument("--smoke", action="store_true", help="inject notebooks/smoke/<stem>.yaml (coarse grids)")
    p.add_argument(
        "-p",
        "--parameter",
        action="append",
        type=_parameter,
        default=[],
        metavar="NAME=VALUE",
        help="inject a parameter (VALUE is read as YAML); an unknown NAME is an error",
    )
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
    p.add_argument("--list", action="store_true", help="print which notebooks are stale and why, and exit")
    return p


def main(argv=None, description: str = "Execute the notebooks and build their HTML report.") -> int:
    from tools.report import build_report

    args = _parser(description).parse_args(argv)
    out = args.out if args.out is not None else (DEFAULT_SMOKE_OUT if args.smoke else None)
    try:
        cfg = RunConfig(
            figures_dir=args.out_figures or (out / "figures" if out else DEFAULT_FIGURES),
            results_dir=args.out_results or (out / "results" if out else DEFAULT_RESULTS),
            executed_dir=out / "notebooks" if out else DEFAULT_EXECUTED,
            smoke=args.smoke,
            force=args.force,
            extra_parameters=dict(args.parameter),
        )
        report_dir = out / "report" if out else DEFAULT_REPORT
        if args.report_only:
            print(f"report: {fp.relpath(build_report(cfg.executed_dir, report_dir, cfg.figures_dir))}")
            return 0
        notebooks = discover(args.only)
        for nb in notebooks:
            check_parameters(nb, cfg)  # every typo is refused before any notebook runs
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for nb in notebooks:
            print(f"  {nb.stem:<40} {stale_reason(nb, cfg) or 'up to date'}")
        return 0
    start = time.perf_counter()
    records = run_all(notebooks, cfg, jobs=args.jobs)
    failed = [r["notebook"] for r in records if not r["ok"]]
    print(f"notebooks: {len(records) - len(failed)} ok, {len(failed)} failed, {time.perf_counter() - start:.1f} s")
    if not args.no_report:
        print(f"report: {fp.relpath(build_report(cfg.executed_dir, report_dir, cfg.figures_dir))}")
    return 1 if failed else 0
