"""MathJax for the offline report: fetched once with ``npm pack``, pinned by SHA-256, cached outside git.

nbconvert's pages load MathJax (and require.js) from a CDN, which offline readers cannot reach:
the math then shows as raw TeX. The report ships MathJax 3 inside ``build/report/mathjax/``
instead: the npm package's tarball is fetched by ``npm pack`` into the cache folder
(``$SDSL_CACHE/mathjax`` or ``~/.cache/sdsl-companion/mathjax``), checked against
:data:`MATHJAX_SHA256`, and the few files a TeX-to-CommonHTML page needs are copied out of it:
``es5/tex-chtml.js``, its web fonts and the TeX extensions it may autoload. A tarball placed in the
cache by hand (for a machine without npm) is used when its checksum matches.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from sdsl_lib.io import atomic_write_bytes
from sdsl_lib.measurement.corpus import cache_dir

__all__ = ["MATHJAX_VERSION", "MATHJAX_SHA256", "MathJaxError", "tarball", "install"]

MATHJAX_VERSION = "3.2.2"
#: SHA-256 of ``mathjax-3.2.2.tgz`` as ``npm pack mathjax@3.2.2`` delivers it.
MATHJAX_SHA256 = "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09"
#: The entry point, relative to the report's ``mathjax/`` folder.
ENTRY = "es5/tex-chtml.js"
#: Members of the tarball the pages need (prefixes under ``package/``).
_NEEDED = (ENTRY, "es5/output/chtml/fonts/woff-v2/", "es5/input/tex/extensions/")


class MathJaxError(RuntimeError):
    """MathJax could not be fetched, or the cached tarball does not match its checksum."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tarball(cache: Path | None = None) -> Path:
    """The verified MathJax tarball in the cache, fetched with ``npm pack`` when absent."""
    folder = Path(cache) if cache is not None else cache_dir() / "mathjax"
    path = folder / f"mathjax-{MATHJAX_VERSION}.tgz"
    if path.exists() and _sha256(path) == MATHJAX_SHA256:
        return path
    if shutil.which("npm") is None:
        raise MathJaxError(
            f"MathJax is not cached ({path}) and npm is not installed: install npm (Debian: apt-get install npm) "
            f"or put the output of `npm pack mathjax@{MATHJAX_VERSION}` there"
        )
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["npm", "pack", f"mathjax@{MATHJAX_VERSION}", "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        fetched = Path(tmp) / path.name
        if done.returncode != 0 or not fetched.exists():
            reason = (done.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise MathJaxError(f"`npm pack mathjax@{MATHJAX_VERSION}` failed: {reason}")
        digest = _sha256(fetched)
        if digest != MATHJAX_SHA256:
            raise MathJaxError(f"mathjax-{MATHJAX_VERSION}.tgz has sha256 {digest}, expected {MATHJAX_SHA256}")
        atomic_write_bytes(path, fetched.read_bytes())
    return path


def install(report_dir: Path, cache: Path | None = None) -> str:
    """Copy MathJax's page files into ``report_dir/mathjax/``; return the entry script's relative URL.

    Files already there with the same size are kept, so rebuilding the report is cheap.
    """
    dest = Path(report_dir) / "mathjax"
    with tarfile.open(tarball(cache), "r:gz") as tar:
        for member in tar.getmembers():
            rel = PurePosixPath(member.name).relative_to("package").as_posix()
            if not member.isfile() or not any(rel == n or (n.endswith("/") and rel.startswith(n)) for n in _NEEDED):
                continue
            target = dest / rel
            if target.exists() and target.stat().st_size == member.size:
                continue
            atomic_write_bytes(target, tar.extractfile(member).read())
    return f"mathjax/{ENTRY}"
