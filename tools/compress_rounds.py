"""Recompress a workload extension's finished round files in place before they are committed.

``sdsl_lib.measurement.workload.save_round`` writes ``round_<r>.npz`` with ``np.savez`` (int64
tokens, about 460 KB a round of 57.5k tokens). ``np.load`` reads a compressed archive the same way,
so a folder meant for git (``data/workloads/partial/<workload>/``, see its README) is recompressed
with ``np.savez_compressed``: the same arrays, names and dtypes, about 4x smaller. Each file is
checked equal after the rewrite and replaced atomically; files already compressed are left alone.

    .venv/bin/python -m tools.compress_rounds data/workloads/partial/smollm2-rounds-fp16w
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np


def is_compressed(path: Path) -> bool:
    """True when every member of the ``.npz`` archive is deflated."""
    with zipfile.ZipFile(path) as z:
        return all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())


def compress_round(path: Path) -> bool:
    """Rewrite ``path`` compressed (same arrays); return False when it already was."""
    path = Path(path)
    if is_compressed(path):
        return False
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    tmp = path.with_name(path.stem + ".compress.npz")
    np.savez_compressed(tmp, **arrays)
    with np.load(tmp) as g:
        if sorted(g.files) != sorted(arrays) or any(
            g[k].dtype != v.dtype or not np.array_equal(g[k], v) for k, v in arrays.items()
        ):
            tmp.unlink()
            raise RuntimeError(f"{path}: the compressed copy differs from the original; left it untouched")
    tmp.replace(path)
    return True


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a --cache folder of workload_extend (round_<r>.npz files)")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        ap.error(f"folder must be a directory, got {str(args.folder)!r}")
    # Skip the writer's temporary files (<stem>.part.npz): a round still being written is not finished.
    rounds = sorted(p for p in args.folder.glob("round_*.npz") if ".part" not in p.name)
    done = [p.name for p in rounds if compress_round(p)]
    print(f"{args.folder}: {len(done)} of {len(rounds)} round files recompressed")


if __name__ == "__main__":
    main()
