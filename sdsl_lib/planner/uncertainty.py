r"""The planner's uncertainty: draws of the acceptance plane (Eq. 5) and of the pre-training law (Eq. 2).

One draw is one plausible pair of laws; :math:`N^*` is recomputed per draw.

* **The plane: a cluster bootstrap by target, plus the per-pair scatter.** Most of the plane's
  residual variance lies between targets (the ten pairs of a target share its perplexity and its
  systematic offset), so the pairs are not independent: resampling pairs gives standard errors
  several times too small. Each draw resamples *targets* with replacement, keeps all their pairs,
  and refits :math:`lpha = Ax + By + C`. The plane is a mean; a draft that is yet to be trained
  will sit off it by its own residual, so each draw also adds one leave-one-target-out residual, drawn from
  all pairs (between-target and within-target parts together). The interval of :math:`lpha` is
  then a prediction interval for the new pair, not a confidence interval for the mean.
* **The law: independent truncated normals** within Besiroglu et al.'s (2024) standard errors.
  Independence is an assumption (the published covariance is not carried): it most likely
  overstates the spread.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sdsl_lib import paper
from sdsl_lib.laws._validate import check_design
from sdsl_lib.laws.acceptance import fit_alpha_plane
from sdsl_lib.laws.constants import AlphaPlane, ChinchillaLaw

__all__ = [
    "LAW_KEYS",
    "paper_pairs",
    "load_pairs",
    "check_pairs",
    "clusters",
    "bootstrap_planes",
    "plane_residuals",
    "sample_laws",
    "law_rows",
    "percentiles",
]

LAW_KEYS = ("E", "A", "B", "nu", "delta")
_PAIR_COLUMNS = ("draft_ppl", "target_ppl", "alpha")


def paper_pairs() -> pd.DataFrame:
    """The 130 pairs of Tables 1-2 as ``draft_ppl, target_ppl, alpha, target``.

    Target perplexities follow Table 2 for every pair (erratum E1), the reading that reproduces the
    printed Table 3 plane, so the bootstrap is centred on the paper's own fit.
    """
    x, y, a = paper.plane_inputs("table2")
    return pd.DataFrame({"draft_ppl": x, "target_ppl": y, "alpha": a, "target": paper.alpha_pairs()["target"]})


def load_pairs(path: str | Path) -> pd.DataFrame:
    """Read a user's (draft, target) pairs: a CSV with columns ``draft_ppl, target_ppl, alpha``.

    A ``target`` column, if present, labels the target of each pair (the bootstrap's cluster);
    other columns (a ``source``, model names) are ignored. Raises ``ValueError`` starting with
    ``pairs file`` on any problem, naming the line where there is one: a missing or unreadable
    file, a row with more or fewer fields than the header, missing or repeated columns, empty or
    non-numeric values, perplexities below 1, alpha outside [0, 1], fewer than 4 pairs, or pairs
    that cannot pin the plane's 3 coefficients (see :func:`check_pairs`).

    Examples
    --------
    >>> import io, tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
    ...     _ = f.write("draft_ppl,target_ppl,alpha\\n12,10,.7\\n14,10,.6\\n12,12,.75\\n16,11,.6\\n")
    >>> len(load_pairs(f.name)); os.unlink(f.name)
    4
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pairs file {str(path)!r} does not exist (or is not a file)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, strict=True)
            rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"pairs file {str(path)!r} is not a readable UTF-8 CSV ({str(exc).splitlines()[0]})") from None
    if not rows:
        raise ValueError(
            f"pairs file {str(path)!r} is empty; it needs a header draft_ppl,target_ppl,alpha and >= 4 rows"
        )
    header = [cell.strip() for cell in rows[0][1]]
    missing = [c for c in _PAIR_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"pairs file must have columns draft_ppl,target_ppl,alpha; missing {','.join(missing)}")
    repeated = [c for c in _PAIR_COLUMNS if header.count(c) > 1]
    if repeated:
        raise ValueError(f"pairs file header repeats column {repeated[0]}")
    where = {c: header.index(c) for c in _PAIR_COLUMNS}
    values = {c: [] for c in _PAIR_COLUMNS}
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ValueError(f"pairs file line {line} has {len(row)} fields, the header has {len(header)}")
        for col, i in where.items():
            text = row[i].strip()
            try:
                v = float(text)
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                shown = "an empty value" if not text else repr(text)
                raise ValueError(f"pairs file column {col} must be numeric and finite; line {line} holds {shown}")
            values[col].append(v)
    table = pd.DataFrame(values, columns=list(_PAIR_COLUMNS), dtype=float)
    if "target" in header:
        table["target"] = [row[header.index("target")].strip() for _, row in rows[1:]]
    return check_pairs(table)


def check_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Check (draft_ppl, target_ppl, alpha) pairs for the plane of Eq. 5; return them as floats.

    Perplexities must be >= 1, alpha in [0, 1], at least 4 pairs, and the design
    :math:`[x, y, 1]` must be well conditioned: pairs whose draft and target perplexities are
    constant or move in lockstep (y = x + c) cannot separate A, B and C. An optional ``target``
    column (any labels) names the cluster of each pair for the bootstrap. Raises ``ValueError``
    starting with ``pairs file``.
    """
    missing = [c for c in _PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs file must have columns draft_ppl,target_ppl,alpha; missing {','.join(missing)}")
    out = pairs[list(_PAIR_COLUMNS)].apply(pd.to_numeric, errors="coerce").astype(float).reset_index(drop=True)
    if not np.isfinite(out.to_numpy()).all():
        raise ValueError("pairs file values must be numeric and finite")
    for col in ("draft_ppl", "target_ppl"):
        if (out[col] < 1.0).any():
            raise ValueError(f"pairs file column {col} must be >= 1 (a perplexity), got {out[col].min():g}")
    if ((out["alpha"] < 0.0) | (out["alpha"] > 1.0)).any():
        bad = out.loc[(out["alpha"] < 0.0) | (out["alpha"] > 1.0), "alpha"].iloc[0]
        raise ValueError(f"pairs file column alpha must lie in [0, 1], got {bad:g}")
    if len(out) < 4:
        raise ValueError(f"pairs file needs at least 4 pairs to fit the 3-coefficient plane, got {len(out)}")
    x, y = out["draft_ppl"].to_numpy(), out["target_ppl"].to_numpy()
    try:  # the law library's own rule for a plane fit (one rule, not a copy)
        check_design("draft_ppl and target_ppl", np.column_stack([x - x.mean(), y - y.mean(), np.ones_like(x)]))
    except ValueError:
        raise ValueError(
            "pairs file cannot fit the plane alpha = A x + B y + C: draft_ppl and target_ppl must "
            "each vary, and not in lockstep (y = x + c)"
        ) from None
    if "target" in pairs.columns:
        out["target"] = pairs["target"].astype(str).to_numpy()
    return out


def clusters(pairs: pd.DataFrame) -> np.ndarray:
    """Cluster index per pair: the ``target`` column, else the distinct target perplexities.

    Pairs that share a target share its perplexity, so without labels equal ``target_ppl`` values
    identify a target; with every value distinct this is the ordinary pairs bootstrap.
    """
    key = pairs["target"] if "target" in pairs.columns else pairs["target_ppl"]
    return pd.factorize(key)[0]


def _weighted_planes(design: np.ndarray, a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares planes, one per row of ``weights`` (draws x pairs): (draws, 3)."""
    xtwx = np.einsum("dn,ni,nj->dij", weights, design, design)
    xtwa = np.einsum("dn,ni,n->di", weights, design, a)
    # pinv: a resample of few targets can hold too few distinct perplexities to pin the plane;
    # the minimum-norm solution keeps the draw instead of failing.
    return np.einsum("dij,dj->di", np.linalg.pinv(xtwx), xtwa)


def bootstrap_planes(
    pairs: pd.DataFrame, draws: int, rng: np.random.Generator, center: AlphaPlane | None = None
) -> np.ndarray:
    r"""Cluster-bootstrap draws of the plane :math:`\alpha = Ax + By + C` (Eq. 5), resampling targets.

    Each draw resamples the clusters of :func:`clusters` with replacement (a target keeps all its
    pairs) and refits by least squares. A resample is a multinomial weighting of the clusters, so all
    draws are solved at once from weighted normal equations (the unit-weight case is
    :func:`sdsl_lib.laws.acceptance.fit_alpha_plane`; a test checks it).

    Parameters
    ----------
    pairs : DataFrame
        Columns ``draft_ppl, target_ppl, alpha`` (and optionally ``target``).
    draws : int
        Number of bootstrap draws (>= 1).
    rng : numpy.random.Generator
    center : AlphaPlane, optional
        If given, each draw is returned as ``center + (draw - full-sample fit)``: the bootstrap
        deviations around the estimate the user quotes. The paper's pairs are transcribed to 4
        digits, so their refit differs from Table 3 by up to 0.2% (B); centring on Table 3 keeps
        the point estimate at the middle of its own interval.

    Returns
    -------
    ndarray, shape (draws, 3)
        Columns A, B, C.
    """
    if isinstance(draws, bool) or int(draws) != draws or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    x, y, a = (pairs[c].to_numpy(float) for c in _PAIR_COLUMNS)
    design = np.column_stack([x, y, np.ones_like(x)])
    cluster = clusters(pairs)
    k = int(cluster.max()) + 1
    weights = rng.multinomial(k, np.full(k, 1.0 / k), size=int(draws)).astype(float)[:, cluster]
    coef = _weighted_planes(design, a, weights)
    if center is not None:
        full = fit_alpha_plane(x, y, a).plane
        coef = coef + (np.array([center.A, center.B, center.C]) - np.array([full.A, full.B, full.C]))
    return coef


def plane_residuals(pairs: pd.DataFrame) -> np.ndarray:
    r"""Leave-one-target-out residuals :math:`\alpha_i - \hat\alpha_{(-t)}(x_i, y_i)`, one per pair.

    The plane is refitted without each target (cluster of :func:`clusters`) and that target's pairs
    are scored against it: the error of predicting a pair of a target the fit has not seen, which
    is what the planner is asked for. In-sample residuals would be too small: with 13 targets the
    fit absorbs part of the between-target offsets. The held-out fits are the bootstrap's weighted
    least squares with the target's weight set to 0 (minimum-norm where too few pairs are left).
    """
    x, y, a = (pairs[c].to_numpy(float) for c in _PAIR_COLUMNS)
    design = np.column_stack([x, y, np.ones_like(x)])
    cluster = clusters(pairs)
    held_out = cluster[None, :] == np.arange(int(cluster.max()) + 1)[:, None]  # (targets, pairs)
    planes = _weighted_planes(design, a, (~held_out).astype(float))
    # Each pair against the plane fitted without its own target.
    return a - np.einsum("ni,ni->n", design, planes[cluster])


def sample_laws(law: ChinchillaLaw, draws: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    r"""Draws of the pre-training law :math:`L = E + A/N^{\nu} + B/D^{\delta}` within its standard errors.

    Each constant is drawn independently from a normal centred on the estimate with the published
    standard error, truncated to positive values (all five are positive by construction). Constants
    without a standard error stay fixed.

    Notes
    -----
    Independence is an assumption: the published fit's covariance (strong for :math:`A, \nu` and
    :math:`B, \delta`) is not carried by this project, and ignoring it most likely overstates the
    spread of the predicted perplexities.

    Returns
    -------
    dict
        ``{"E", "A", "B", "nu", "delta"}`` -> arrays of shape (draws,).
    """
    if isinstance(draws, bool) or int(draws) != draws or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    out = {}
    for name in LAW_KEYS:
        mu, se = getattr(law, name), getattr(law, f"{name}_se")
        if not se:
            out[name] = np.full(int(draws), float(mu))
            continue
        out[name] = stats.truncnorm.rvs(-mu / se, np.inf, loc=mu, scale=se, size=int(draws), random_state=rng)
    return out


def law_rows(law: ChinchillaLaw | dict, rows: int | None = None) -> ChinchillaLaw:
    """A :class:`ChinchillaLaw` whose fields are column arrays (rows, 1): one law per row of draws."""
    values = law if isinstance(law, dict) else {k: np.full(rows or 1, float(getattr(law, k))) for k in LAW_KEYS}
    return ChinchillaLaw(**{k: np.asarray(values[k], float)[:, None] for k in LAW_KEYS})


def percentiles(v: np.ndarray, q) -> np.ndarray:
    """Percentiles of draws that may hold inf (gamma* when alpha = 1 in a draw).

    Linear interpolation next to an inf draw gives NaN (numpy computes a + (b - a) t), so draws with
    non-finite values use the step-function (inverted-CDF) percentile: inf sorts to the top and an
    end point is inf exactly when that share of the draws is.
    """
    if np.isfinite(v).all():
        return np.quantile(v, q)
    return np.quantile(v, q, method="inverted_cdf")
