"""The work folder of a measurement run: finished units, their fingerprints, and the state of the code.

A *unit* is the smallest piece of work that is kept once finished: a trained model, one pair's
alpha, the cost calibration, one pair's throughput block, one HF comparison. Each is a JSON file
holding its result and a *fingerprint*: a hash of every setting it depends on, of the fingerprints
of the units it was made from, and of the code of its stage (:func:`code_fingerprint`). So

- a rerun skips a unit whose file exists with the fingerprint it would get now, and redoes it
  otherwise (other settings, other upstream models, or other code: a one-line change in a stage
  module re-measures that stage's units and only those);
- a merge (units -> table) takes only units with the current fingerprint
  (:meth:`UnitStore.collect`): a stale one is refused with :class:`StaleUnitError`, never merged;
- a unit file that cannot be read is named, moved aside (``<file>.corrupt``, ``.corrupt-1``, ...)
  and redone.

No torch here.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import subprocess
import sys
from pathlib import Path

from sdsl_lib.io import atomic_write_json, repo_root

__all__ = ["StaleUnitError", "UnitStore", "code_fingerprint", "git_state", "quarantine"]


class StaleUnitError(RuntimeError):
    """A unit needed by a merge is missing or was made with other settings or code."""


def _module_source(module_name: str) -> str:
    """The source text of an importable module (a seam for tests that simulate an edit)."""
    module = importlib.import_module(module_name)
    return Path(module.__file__).read_text(encoding="utf-8")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def code_fingerprint(*module_names: str) -> str:
    """Hash of the code of ``module_names``: their syntax trees without docstrings.

    Comments, blank lines, formatting and docstrings do not count (they cannot change a number);
    any change to a statement does.
    """
    h = hashlib.sha256()
    for name in module_names:
        tree = _strip_docstrings(ast.parse(_module_source(name)))
        h.update(name.encode())
        h.update(ast.dump(tree, annotate_fields=False).encode())
    return h.hexdigest()[:16]


def git_state() -> dict:
    """``git_commit`` and ``git_dirty`` (uncommitted changes to tracked files, with up to 20 of their paths)."""
    root = repo_root()

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    if head.returncode != 0:
        return {"git_commit": None, "git_dirty": None}
    changed = [line[3:] for line in status.stdout.splitlines() if line.strip()]
    return {"git_commit": head.stdout.strip(), "git_dirty": bool(changed), "git_dirty_files": changed[:20]}


def quarantine(path: Path, reason: str) -> Path:
    """Move a damaged work file aside (``<name>.corrupt``, ``.corrupt-1``, ...) and say so in one line."""
    dest = path.with_name(path.name + ".corrupt")
    k = 0
    while dest.exists():
        k += 1
        dest = path.with_name(f"{path.name}.corrupt-{k}")
    path.replace(dest)
    print(f"[sdsl measure] {path}: {reason}; moved to {dest.name}, redoing it", file=sys.stderr)
    return dest


class UnitStore:
    """Finished units under ``<work_dir>/units/<stage>/<unit>.json`` (trained models under
    ``<work_dir>/models/<name>/train_result.json``, beside their checkpoint)."""

    def __init__(self, work_dir: Path):
        self.work_dir = Path(work_dir)

    def path(self, stage: str, unit: str) -> Path:
        if stage == "train":
            return self.work_dir / "models" / unit / "train_result.json"
        return self.work_dir / "units" / stage / f"{unit}.json"

    def read(self, stage: str, unit: str) -> dict | None:
        """The stored record (any fingerprint), None if absent; a damaged file is quarantined."""
        path = self.path(stage, unit)
        if not path.is_file():
            return None
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            quarantine(path, f"unreadable unit ({type(exc).__name__})")
            return None
        if not isinstance(rec, dict) or not isinstance(rec.get("fingerprint"), str):
            quarantine(path, "unit without a fingerprint")
            return None
        return rec

    def load(self, stage: str, unit: str, fingerprint: str) -> dict | None:
        """The stored record if it was made with ``fingerprint``, else None (missing, stale or damaged)."""
        rec = self.read(stage, unit)
        return rec if rec is not None and rec["fingerprint"] == fingerprint else None

    def save(self, stage: str, unit: str, fingerprint: str, rec: dict) -> dict:
        rec = dict(rec, fingerprint=fingerprint)
        atomic_write_json(self.path(stage, unit), rec)
        return rec

    def collect(self, stage: str, expected: dict) -> dict:
        """Records of every unit in ``expected`` (unit -> fingerprint), in that order.

        Raises
        ------
        StaleUnitError
            When one is missing or carries another fingerprint: it was made with other settings,
            other upstream models or other code, and merging it would mix two experiments.
        """
        out = {}
        for unit, fp in expected.items():
            rec = self.read(stage, unit)
            if rec is None:
                raise StaleUnitError(f"{stage} unit {unit!r} is missing; run --stage {stage}")
            if rec["fingerprint"] != fp:
                raise StaleUnitError(
                    f"{stage} unit {unit!r} is stale (fingerprint {rec['fingerprint']}, current {fp}: "
                    f"made with other settings or code); refusing to merge it, run --stage {stage}"
                )
            out[unit] = rec
        return out
