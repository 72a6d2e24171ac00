"""The paper's tables as data: loaders for the package data ``sdsl_lib/paper/data/`` (as printed, errata noted).

Every table of SDSL is a tidy CSV in this package's ``data/`` folder with a ``source`` column;
``errata.csv`` lists each known misprint with its evidence, and ``SHA256SUMS`` pins the bytes. The
files ship inside the installed package and are read through :mod:`importlib.resources`, so the
loaders work from a wheel as well as from a checkout (where ``data/paper/`` is a link to the same
folder). These loaders return DataFrames and, where the paper has a known misprint, say which
reading they apply.
"""

from __future__ import annotations

import hashlib
import io
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DATA_DIR",
    "alpha_pairs",
    "table3",
    "table4",
    "table5",
    "table6",
    "table7",
    "table8",
    "table9",
    "models",
    "errata",
    "verify_checksums",
    "DRAFT_FAMILY_TOKENS",
    "TARGET_PPL_READINGS",
    "target_ppl",
    "plane_inputs",
]

#: Folder of the transcribed tables (package data; a ``pathlib.Path`` for an ordinary install).
DATA_DIR = files("sdsl_lib.paper") / "data"

#: Training tokens SDSL assumes for each draft family (Table 5; the "1.4T" of one row is erratum E2).
DRAFT_FAMILY_TOKENS = {"OPT": 180e9, "Qwen1.5": 2.4e12, "Qwen2.5": 18e12}


def _read(name: str) -> pd.DataFrame:
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the paper's tables ship inside the package (sdsl_lib/paper/data/)")
    # Read the bytes rather than a path: package data may live in a zip, not on the file system.
    return pd.read_csv(io.BytesIO(path.read_bytes()), keep_default_na=False, na_values=[""])


def alpha_pairs() -> pd.DataFrame:
    """Tables 1-2: the 130 (draft, target) pairs with alpha, its 95% half-width and both perplexities.

    ``target_ppl_as_printed`` keeps each table's own value: Table 2 swaps Qwen2.5-32B and -72B
    relative to Table 1 (erratum E1, flagged in ``note``).
    """
    df = _read("alpha_pairs_tables1_2.csv")
    df["note"] = df["note"].fillna("")
    return df


def table3() -> pd.DataFrame:
    """Table 3: the alpha plane of Eq. 5 (estimates, SE, margins, CIs; MSE and R^2 rows)."""
    return _read("table3_alpha_plane.csv")


def table4() -> pd.DataFrame:
    """Table 4: linear, log and power fits of alpha against draft perplexity, per target."""
    return _read("table4_per_target_fits.csv")


def table5(corrected: bool = True) -> pd.DataFrame:
    """Table 5: N* and T(N*) per target and draft family.

    With ``corrected`` (default) a column ``draft_tokens_D`` gives the draft data SDSL actually used:
    the family's value of :data:`DRAFT_FAMILY_TOKENS`, which fixes the "1.4T" misprint (E2).
    """
    df = _read("table5_optimal_draft.csv")
    df["note"] = df["note"].fillna("")
    if corrected:
        df["draft_tokens_D"] = df["draft_family"].map(DRAFT_FAMILY_TOKENS).astype(float)
    return df


def table6() -> pd.DataFrame:
    """Table 6: latency of OPT-13B with each of the 10 drafts (TTFT, TTOT, TPOT, 95% margins)."""
    return _read("table6_latency_opt13b.csv")


def table7() -> pd.DataFrame:
    """Table 7: the optimisation grid as printed (see erratum E4 for the data-size range)."""
    return _read("table7_grid.csv")


def table8() -> pd.DataFrame:
    """Table 8: the Eq. 10 fit (mu, M0, gamma, gamma'; R^2 row)."""
    return _read("table8_nstar_full_fit.csv")


def table9() -> pd.DataFrame:
    """Table 9: the Eq. 11 fit (mu, M0; R^2 row)."""
    return _read("table9_nstar_linear_fit.csv")


def models() -> pd.DataFrame:
    """The 23 models of the study: family, role (draft/target), parameters and training tokens."""
    return _read("models.csv")


def errata() -> pd.DataFrame:
    """Known misprints of the paper, each with its correction, evidence and the check that shows it."""
    return _read("errata.csv")


def verify_checksums(data_dir: Path | None = None) -> dict[str, bool]:
    """Compare every file listed in ``SHA256SUMS`` with its bytes; returns ``{file: ok}``."""
    folder = Path(data_dir) if data_dir is not None else DATA_DIR
    result = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        name = name.lstrip("*")
        path = folder / name
        result[name] = path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest
    return result


#: Readings of erratum E1 (Tables 1 and 2 swap the Qwen2.5-32B/72B target perplexities):
#: ``"table2"`` gives every pair Table 2's value (the only reading that reproduces all 17 printed
#: cells of Table 3, so the authors fitted Eq. 5 with it), ``"table1"`` Table 1's, ``"as_printed"``
#: each pair its own table's.
TARGET_PPL_READINGS = ("table2", "table1", "as_printed")


def target_ppl(reading: str = "table2", pairs: pd.DataFrame | None = None) -> np.ndarray:
    """Target perplexity y of each of the 130 pairs under one reading of erratum E1.

    Parameters
    ----------
    reading : {"table2", "table1", "as_printed"}
        See :data:`TARGET_PPL_READINGS`; ``"table2"`` (default) reproduces Table 3 to every digit.
    pairs : DataFrame, optional
        The frame of :func:`alpha_pairs` (re-read when omitted); the result follows its rows.

    Examples
    --------
    >>> y = target_ppl("table2")
    >>> df = alpha_pairs()
    >>> float(y[(df.target == "Qwen2.5-32B").to_numpy()].std())   # one value per target
    0.0
    """
    if reading not in TARGET_PPL_READINGS:
        raise ValueError(f"reading must be one of {TARGET_PPL_READINGS}, got {reading!r}")
    df = alpha_pairs() if pairs is None else pairs
    if reading == "as_printed":
        return df["target_ppl_as_printed"].to_numpy(float)
    lookup = df[df["table"] == reading].groupby("target")["target_ppl_as_printed"].first()
    return df["target"].map(lookup).to_numpy(float)


def plane_inputs(reading: str = "table2") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(draft_ppl, target_ppl, alpha) of the 130 pairs, ready for ``fit_alpha_plane``.

    ``reading`` chooses the target perplexities of the two swapped Qwen2.5 targets (erratum E1,
    :func:`target_ppl`); the default reproduces Table 3.
    """
    df = alpha_pairs()
    return df["draft_ppl"].to_numpy(float), target_ppl(reading, df), df["alpha"].to_numpy(float)
