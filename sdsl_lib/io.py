"""Atomic, byte-stable writes and provenance sidecars.

Every finished result in this project (a CSV of measurements, a results JSON, a checkpoint) is
written through these helpers so that an interrupted run never leaves a half-written file behind:
the bytes go to a temporary file in the same folder, are flushed to disk, and are then renamed over
the target in one step (``os.replace`` is atomic on POSIX).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_write_csv",
    "provenance",
    "write_sidecar",
    "repo_root",
]

#: Float format used for every CSV the project writes: 10 significant digits, stable across reruns.
CSV_FLOAT_FORMAT = "%.10g"


def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``)."""
    return Path(__file__).resolve().parent.parent


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, paths: make them JSON-native so results files stay readable.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically (byte-stable for equal content)."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_write_csv(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV (no index, 10 significant digits, ``\\n`` line ends) atomically."""
    text = df.to_csv(index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n")
    return atomic_write_text(path, text)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(**extra: Any) -> dict[str, Any]:
    """A provenance record: date, git commit, host, Python and key library versions, plus ``extra``."""
    versions: dict[str, str] = {}
    for name in ("numpy", "scipy", "pandas", "statsmodels", "torch", "transformers", "tokenizers"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "unknown")
        except ImportError:
            continue
    record: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }
    record.update(extra)
    return record


def write_sidecar(data_path: str | os.PathLike, **extra: Any) -> Path:
    """Write ``<data_path>.json`` beside a data file with its :func:`provenance` record."""
    data_path = Path(data_path)
    return atomic_write_json(data_path.with_name(data_path.name + ".json"), provenance(**extra))
