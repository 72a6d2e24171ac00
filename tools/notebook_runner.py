r"""Execute the notebooks (``make figures``) and build their HTML report (``make report``).

Usage::

    python -m tools.notebook_runner                 # run stale notebooks, then the report
    python -m tools.notebook_runner --only 04 05    # just these (stem or its NN prefix)
    python -m tools.notebook_runner --force         # rerun even if up to date
    python -m tools.notebook_runner -p N_POINTS=500 --only 05 --out /tmp/try   # inject a parameter
    python -m tools.notebook_runner --smoke --out /tmp/smoke   # coarse grids, outputs under /tmp/smoke
    python -m tools.notebook_runner --report        # rebuild build/report/ from executed notebooks (= --report-only)
    python -m tools.notebook_runner --list          # which notebooks are stale, and why

Notebooks are found by the glob ``notebooks/[0-9][0-9]_*.ipynb`` (so later notebooks join without
touching this file) and run with papermill on the ``python3`` kernel, working directory
``notebooks/``. Each writes its figures to ``FIGURES_DIR`` (default ``figures/``) and its headline
numbers to ``RESULTS_DIR/<stem>.json`` (default ``data/results/``); the executed copy goes to
``build/notebooks/`` and the HTML report to ``build/report/``.

**Only stale notebooks run** (:mod:`tools.fingerprint`): the fingerprint covers the notebook's
source (either jupytext twin: the newer one runs when they differ), the injected parameters, the
``sdsl_lib`` code it imports, the data files it read on its last run (recorded in the kernel), the
output folders and the library versions. A parameter the notebook's ``parameters`` cell does not
define is an error, before anything runs.

**Smoke runs** (``--smoke``) inject ``notebooks/smoke/<stem>.yaml`` (coarser grids, fewer
replicates; the same code path) and must write somewhere other than ``figures/``: by default under
``build/smoke/``.

The work is split in three modules, re-exported here: :mod:`tools.runner` (discovery, parameters,
execution, command line), :mod:`tools.fingerprint` (what makes a notebook stale) and
:mod:`tools.report` (the offline HTML report).
"""

from __future__ import annotations

import sys

from tools.fingerprint import parameter_names, sdsl_dependencies
from tools.report import build_report
from tools.runner import (
    DEFAULT_EXECUTED,
    DEFAULT_FIGURES,
    DEFAULT_REPORT,
    DEFAULT_RESULTS,
    KERNEL_NAME,
    NOTEBOOK_GLOB,
    RunConfig,
    check_parameters,
    discover,
    execute,
    fingerprint,
    injected_parameters,
    results_path,
    run_all,
    run_notebook,
    smoke_overrides,
    stale_reason,
    upstream,
)
from tools.runner import main as _main

__all__ = [
    "NOTEBOOK_GLOB",
    "KERNEL_NAME",
    "DEFAULT_EXECUTED",
    "DEFAULT_FIGURES",
    "DEFAULT_REPORT",
    "DEFAULT_RESULTS",
    "RunConfig",
    "discover",
    "smoke_overrides",
    "injected_parameters",
    "check_parameters",
    "parameter_names",
    "sdsl_dependencies",
    "fingerprint",
    "stale_reason",
    "results_path",
    "execute",
    "run_notebook",
    "run_all",
    "upstream",
    "build_report",
    "main",
]


def main(argv=None) -> int:
    """The command line of ``make figures`` / ``make report`` (see the module docstring)."""
    return _main(argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
