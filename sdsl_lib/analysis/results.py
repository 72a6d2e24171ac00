"""Fit once, hand on: results JSON written with the provenance of the measured tables it used.

A result that several notebooks need (the ladder's Eq. 2 law from notebook 10, the Eq. 5 planes
from 11, N* from 12) is computed once by the notebook that owns it and written to its
``data/results/NN_*.json`` with :func:`provenance` (the sha256 of every measured table it read).
Later notebooks read it with :func:`read_result`, which refuses, with one line, a results file
computed from other tables than those on disk now.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sdsl_lib.analysis.tables import MeasuredData, table_fingerprints

__all__ = ["provenance", "read_result", "StaleResultError"]


class StaleResultError(ValueError):
    """A results file was computed from other measured tables than the current ones (one line)."""


def provenance(data: MeasuredData, tables, upstream=()) -> dict:
    """The provenance block of a results JSON.

    Parameters
    ----------
    data : MeasuredData
        The profile read.
    tables : sequence of str
        The measured tables this notebook read (keys of ``tables.FILES``).
    upstream : sequence of dict
        Results read from earlier notebooks (:func:`read_result`); their tables join this
        provenance, so a change upstream makes every downstream result stale too.
    """
    fp = table_fingerprints(data, sorted(set(tables)))
    for up in upstream:
        fp.update(up.get("provenance", {}).get("tables", {}))
    return {
        "profile": data.profile,
        "tables": dict(sorted(fp.items())),
        "upstream": sorted(u["notebook"] for u in upstream),
    }


def read_result(stem: str, results_dir: str | os.PathLike, data: MeasuredData) -> dict:
    """Read ``<results_dir>/<stem>.json`` and check it was computed from ``data``'s tables.

    Raises
    ------
    StaleResultError
        One line naming the file and the reason: missing, other profile, no provenance, or a
        measured table whose sha256 differs from the one the result was computed from.
    """
    path = Path(results_dir) / f"{stem}.json"
    if not path.is_file():
        raise StaleResultError(f"{path} is missing: run notebook {stem} first (it computes what this notebook reads)")
    result = json.loads(path.read_text())
    prov = result.get("provenance")
    if not prov or "tables" not in prov:
        raise StaleResultError(f"{path} carries no provenance: rerun notebook {stem}")
    if prov.get("profile") != data.profile:
        raise StaleResultError(
            f"{path} was computed on profile {prov.get('profile')!r}, not {data.profile!r}: rerun notebook {stem}"
        )
    now = table_fingerprints(data, list(prov["tables"]))
    for name, fp in prov["tables"].items():
        if fp["sha256"] != now[name]["sha256"]:
            raise StaleResultError(
                f"{path} is stale: {fp['file']} changed since it was written "
                f"(sha256 {fp['sha256'][:12]} then, {now[name]['sha256'][:12]} now); rerun notebook {stem}"
            )
    return result
