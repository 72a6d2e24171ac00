r"""A planner for practitioners: the draft to train, its lookahead and its gain, with 95% intervals.

Given a target (parameters :math:`M`, training tokens :math:`D'`) and the data a draft family is
trained on (:math:`D`), :func:`plan` answers the questions SDSL's laws answer, each with an interval
that propagates the uncertainty of the two fitted laws it chains:

* the throughput-optimal draft size :math:`N^*` (Eq. 9 maximised over :math:`N`, as in Table 5);
* the optimal lookahead :math:`\gamma^*` (Eq. 13) and the best integer lookahead (Eq. 3);
* the acceptance rate :math:`\alpha` there (Eq. 5 at the perplexities of Eq. 7-8);
* the tokens-per-FLOP gain over decoding with the target alone, :math:`2M\,\mathcal{T}(N^*)` (Eq. 4);
* optionally, on a given accelerator (:mod:`sdsl_lib.planner.hardware`), the tokens per second of the
  FLOP-optimal draft beside the latency-optimal one, per batch size.

Measured inputs replace the laws where a user has them: a measured :math:`\alpha` (``alpha``), or
measured perplexities fed straight into the plane (``draft_ppl``, ``target_ppl``).

Uncertainty (one draw = one plausible pair of laws; :math:`N^*` is recomputed per draw):

* the acceptance plane of Eq. 5: a pairs bootstrap over the 130 (draft, target) pairs of Tables 1-2
  (or the user's pairs), refitting :math:`\alpha = Ax + By + C` on each resample;
* the pre-training law of Eq. 7-8: each of :math:`E, A, B, \nu, \delta` drawn independently from a
  normal with Besiroglu et al.'s (2024) standard error, truncated to positive values. Besiroglu et
  al. estimate the five jointly and the estimates are correlated (:math:`A` with :math:`\nu`,
  :math:`B` with :math:`\delta`); this project carries only the marginal standard errors, not the
  covariance, so independence is an assumption, and it most likely overstates the spread.

Intervals are percentile intervals of the draws; point estimates are the library's, computed with
the published constants (they do not depend on the seed).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sdsl_lib import paper
from sdsl_lib.laws.acceptance import fit_alpha_plane
from sdsl_lib.laws.constants import BESIROGLU_2024, TABLE3_PLANE, AlphaPlane, ChinchillaLaw
from sdsl_lib.laws.optimal import optimal_draft_size
from sdsl_lib.laws.speculation import (
    expected_tokens_per_iteration,
    optimal_lookahead,
    optimal_throughput,
    throughput_per_flop,
)
from sdsl_lib.planner.hardware import HardwareSpec, _step_time

__all__ = [
    "UNCERTAINTY_MODES",
    "DEFAULT_BATCH_SIZES",
    "ESTIMATE_KEYS",
    "Plan",
    "HardwarePlan",
    "load_pairs",
    "check_pairs",
    "paper_pairs",
    "bootstrap_planes",
    "sample_laws",
    "draft_grid",
    "best_integer_lookahead",
    "plan",
]

#: Which fitted laws the draws resample: both, only the plane, only the pre-training law, or none.
UNCERTAINTY_MODES = ("all", "plane", "law", "none")
#: Batch sizes of the batch sweep (powers of two up to 256).
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Rows of :attr:`Plan.estimates` (and keys of the JSON ``estimates`` object), in display order.
ESTIMATE_KEYS = (
    "n_draft",
    "m_over_n",
    "gamma_star",
    "gamma_int",
    "alpha",
    "gain",
    "gain_int",
    "throughput_tokens_per_flop",
    "draft_ppl",
    "target_ppl",
)
_ESTIMATE_META = {
    "n_draft": ("params", "draft size N (throughput-optimal N* unless given)"),
    "m_over_n": ("ratio", "target-to-draft size ratio M/N"),
    "gamma_star": ("draft tokens/iteration", "optimal lookahead gamma* (Eq. 13, continuous)"),
    "gamma_int": ("draft tokens/iteration", "best integer lookahead (Eq. 3)"),
    "alpha": ("probability", "acceptance rate alpha"),
    "gain": ("x target-only", "tokens-per-FLOP gain over target-only decoding at gamma* (2M T, Eq. 4)"),
    "gain_int": ("x target-only", "tokens-per-FLOP gain at the best integer lookahead (Eq. 3)"),
    "throughput_tokens_per_flop": ("tokens/FLOP", "throughput T at gamma* (Eq. 4/9)"),
    "draft_ppl": ("perplexity", "draft perplexity x (Eq. 7, or given)"),
    "target_ppl": ("perplexity", "target perplexity y (Eq. 8, or given)"),
}

_POINT_GRID_POINTS = 10_000  # like Table 7's N grid; the golden-section refinement makes it exact
_DRAW_GRID_POINTS = 400  # coarse grid for the draws; refined the same way
_LATENCY_GRID_POINTS = 2_000  # N grid of the tokens-per-second search (0.5% steps over 4.5 decades)


# --------------------------------------------------------------------------------------------
# Inputs: the pairs of the acceptance plane
# --------------------------------------------------------------------------------------------
def paper_pairs() -> pd.DataFrame:
    """The 130 pairs of Tables 1-2 as ``draft_ppl, target_ppl, alpha``.

    Target perplexities follow Table 2 for every pair (erratum E1), the reading that reproduces the
    printed Table 3 plane, so the bootstrap is centred on the paper's own fit.
    """
    x, y, a = paper.plane_inputs("table2")
    return pd.DataFrame({"draft_ppl": x, "target_ppl": y, "alpha": a})


_PAIR_COLUMNS = ("draft_ppl", "target_ppl", "alpha")


def load_pairs(path: str | Path) -> pd.DataFrame:
    """Read a user's (draft, target) pairs: a CSV with columns ``draft_ppl, target_ppl, alpha``.

    Other columns (a ``source``, model names) are ignored. Raises ``ValueError`` starting with
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
    return check_pairs(pd.DataFrame(values, columns=list(_PAIR_COLUMNS), dtype=float))


def check_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Check (draft_ppl, target_ppl, alpha) pairs for the plane of Eq. 5; return them as floats.

    Perplexities must be >= 1, alpha in [0, 1], at least 4 pairs, and the design
    :math:`[x, y, 1]` must have rank 3: pairs whose draft and target perplexities are constant or
    move in lockstep (y = x + c) cannot separate A, B and C. Raises ``ValueError`` starting with
    ``pairs file``.
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
    design = np.column_stack([x - x.mean(), y - y.mean(), np.ones_like(x)])  # centred: rank is scale-free
    if np.linalg.matrix_rank(design / np.maximum(np.abs(design).max(axis=0), 1e-300)) < 3:
        raise ValueError(
            "pairs file cannot fit the plane alpha = A x + B y + C: draft_ppl and target_ppl must "
            "each vary, and not in lockstep (y = x + c)"
        )
    return out


# --------------------------------------------------------------------------------------------
# Draws of the two laws
# --------------------------------------------------------------------------------------------
def bootstrap_planes(
    pairs: pd.DataFrame, draws: int, rng: np.random.Generator, center: AlphaPlane | None = None
) -> np.ndarray:
    r"""Pairs-bootstrap draws of the acceptance plane :math:`\alpha = Ax + By + C` (Eq. 5).

    Each draw resamples the pairs with replacement and refits by least squares. A resample is a
    multinomial weighting of the pairs, so all draws are solved at once from weighted normal
    equations (the unit-weight case is :func:`sdsl_lib.laws.acceptance.fit_alpha_plane`; a test checks it).

    Parameters
    ----------
    pairs : DataFrame
        Columns ``draft_ppl, target_ppl, alpha``.
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
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    x, y, a = (pairs[c].to_numpy(float) for c in ("draft_ppl", "target_ppl", "alpha"))
    design = np.column_stack([x, y, np.ones_like(x)])
    n = x.size
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=draws).astype(float)
    xtwx = np.einsum("dn,ni,nj->dij", weights, design, design)
    xtwa = np.einsum("dn,ni,n->di", weights, design, a)
    # pinv: a resample of a small user set can hold too few distinct perplexities to pin the plane;
    # the minimum-norm solution keeps the draw instead of failing (130 pairs never come close).
    coef = np.einsum("dij,dj->di", np.linalg.pinv(xtwx), xtwa)
    if center is not None:
        full = fit_alpha_plane(x, y, a).plane
        coef = coef + (np.array([center.A, center.B, center.C]) - np.array([full.A, full.B, full.C]))
    return coef


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
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    out = {}
    for name in ("E", "A", "B", "nu", "delta"):
        mu, se = getattr(law, name), getattr(law, f"{name}_se")
        if not se:
            out[name] = np.full(draws, float(mu))
            continue
        out[name] = stats.truncnorm.rvs(-mu / se, np.inf, loc=mu, scale=se, size=draws, random_state=rng)
    return out


def _point_law(law: ChinchillaLaw) -> dict[str, np.ndarray]:
    return {k: np.array([float(getattr(law, k))]) for k in ("E", "A", "B", "nu", "delta")}


def _perplexity_draws(n, d, law: dict[str, np.ndarray]):
    r"""Eq. 2 exponentiated, :math:`e^{E + A N^{-\nu} + B D^{-\delta}}`, with one law per row.

    ``sdsl_lib.laws.pretraining.perplexity`` takes one law; here each row of ``n`` has its own constants
    (arrays of shape (rows,)), which is what lets all draws be evaluated in one pass.
    """
    c = {k: v[:, None] for k, v in law.items()}
    return np.exp(c["E"] + c["A"] * np.power(n, -c["nu"]) + c["B"] * np.power(d, -c["delta"]))


# --------------------------------------------------------------------------------------------
# The acceptance model for one set of rows (draws, or the single point estimate)
# --------------------------------------------------------------------------------------------
@dataclass
class _AlphaModel:
    """alpha(N) for R rows: each row has its own plane and law (or a given alpha/perplexity)."""

    m: float
    plane: np.ndarray  # (R, 3)
    law: dict | None  # arrays (R,), or None when no perplexity comes from the law
    d_draft: float | None
    d_target: float | None
    draft_ppl: float | None
    target_ppl: float | None
    alpha_given: np.ndarray | None  # (R,)

    @property
    def rows(self) -> int:
        return self.plane.shape[0] if self.alpha_given is None else self.alpha_given.shape[0]

    def x(self, n):
        if self.draft_ppl is not None:
            return np.full(np.broadcast_shapes(np.shape(n), (self.rows, 1)), self.draft_ppl)
        return _perplexity_draws(n, self.d_draft, self.law)

    def y(self):
        if self.target_ppl is not None:
            return np.full((self.rows, 1), self.target_ppl)
        return _perplexity_draws(np.array(self.m), self.d_target, self.law)

    def alpha(self, n):
        """Eq. 5 at the perplexities of Eq. 7-8 (or the given ones), clipped to [0, 1]; shape (R, k)."""
        n = np.asarray(n, float)
        if self.alpha_given is not None:
            return np.broadcast_to(self.alpha_given[:, None], np.broadcast_shapes(n.shape, (self.rows, 1)))
        p = self.plane
        return np.clip(p[:, 0:1] * self.x(n) + p[:, 1:2] * self.y() + p[:, 2:3], 0.0, 1.0)


def draft_grid(
    m_target: float, n_min: float = 1e6, n_max: float | None = None, points: int = _POINT_GRID_POINTS
) -> np.ndarray:
    """Log-spaced candidate draft sizes in ``[n_min, n_max]`` (default ``n_max = M/2``).

    Examples
    --------
    >>> g = draft_grid(70e9, points=5)
    >>> f"{g[0]:.0e}", f"{g[-1]:.1e}"
    ('1e+06', '3.5e+10')
    """
    n_max = 0.5 * m_target if n_max is None else n_max
    if not (0 < n_min < n_max < m_target):
        raise ValueError(
            f"the draft search range needs 0 < n_min < n_max < m_target, got n_min={n_min:g}, n_max={n_max:g}, m_target={m_target:g}"
        )
    return np.logspace(math.log10(n_min), math.log10(n_max), points)


def _search(model: _AlphaModel, grid: np.ndarray, iterations: int = 60) -> np.ndarray:
    """N* per row: grid argmax of Eq. 4 at alpha(N), then golden-section search in log N between
    the grid neighbours (the same scheme as :func:`sdsl_lib.laws.optimal.optimal_draft_size`)."""
    m = model.m
    thr = optimal_throughput(model.alpha(grid[None, :]), grid[None, :], m)
    best = np.argmax(thr, axis=1)
    lo = np.log(grid[np.maximum(best - 1, 0)])
    hi = np.log(grid[np.minimum(best + 1, grid.size - 1)])
    invphi = (math.sqrt(5.0) - 1.0) / 2.0

    def f(log_n):
        n = np.exp(log_n)
        return optimal_throughput(model.alpha(n), n, m)

    for _ in range(iterations):
        c1, c2 = hi - invphi * (hi - lo), lo + invphi * (hi - lo)
        vals = f(np.stack([c1, c2], axis=1))
        left = vals[:, 0] >= vals[:, 1]
        hi, lo = np.where(left, c2, hi), np.where(left, lo, c1)
    n_ref = np.exp(0.5 * (lo + hi))
    # Keep the grid point where refining did not improve on it (an optimum at the grid's edge).
    better = f(np.log(n_ref)[:, None])[:, 0] >= thr[np.arange(thr.shape[0]), best]
    return np.where(better, n_ref, grid[best])


def best_integer_lookahead(alpha, n_draft, m_target, gamma_max: int = 64):
    r"""The integer :math:`\gamma \in \{0, \dots, \gamma_{max}\}` that maximises Eq. 3.

    Eq. 3 is unimodal in :math:`\gamma`, so the integer optimum is the floor or the ceiling of
    Eq. 13's :math:`\gamma^*` (capped at ``gamma_max``; :math:`\alpha = 1` gives ``gamma_max``).

    Examples
    --------
    >>> int(best_integer_lookahead(0.6479, 117313808.6, 12853473280))   # gamma* = 8.11
    8
    """
    a = np.asarray(alpha, float)
    g_star = np.minimum(np.asarray(optimal_lookahead(a, n_draft, m_target), float), gamma_max)
    lo = np.floor(g_star)
    hi = np.minimum(lo + 1.0, gamma_max)
    take_hi = throughput_per_flop(a, hi, n_draft, m_target) > throughput_per_flop(a, lo, n_draft, m_target)
    out = np.where(take_hi, hi, lo).astype(int)
    return out.item() if out.ndim == 0 else out


def _summaries(alpha, n, m, gamma_max) -> dict[str, np.ndarray]:
    """Eq. 13, Eq. 4 and the best integer lookahead at (alpha, N) per row."""
    gamma_star = np.asarray(optimal_lookahead(alpha, n, m), float)
    thr = np.asarray(optimal_throughput(alpha, n, m), float)
    gamma_int = np.asarray(best_integer_lookahead(alpha, n, m, gamma_max))
    thr_int = np.asarray(throughput_per_flop(alpha, gamma_int, n, m), float)
    return {
        "n_draft": np.asarray(n, float),
        "m_over_n": m / np.asarray(n, float),
        "gamma_star": gamma_star,
        "gamma_int": gamma_int.astype(float),
        "alpha": np.asarray(alpha, float),
        "gain": thr * 2.0 * m,
        "gain_int": thr_int * 2.0 * m,
        "throughput_tokens_per_flop": thr,
    }


# --------------------------------------------------------------------------------------------
# Hardware: tokens per second on a roofline
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HardwarePlan:
    """Tokens per second of the FLOP-optimal and the latency-optimal draft on one accelerator."""

    hardware: HardwareSpec
    batch_size: int
    target_only_tokens_per_s: float
    flop_optimal: dict  # n_draft, gamma, alpha, tokens_per_s, speedup (the draft of Plan.estimates)
    latency_optimal: dict  # the same keys, maximised over N and integer gamma
    intervals: pd.DataFrame  # quantity, point, lower, upper over the draws
    batch_sweep: pd.DataFrame | None  # one row per batch size
    stops_paying_at_batch: int | None  # smallest swept batch where no draft/gamma beats the target
    notes: tuple = ()

    def to_dict(self) -> dict:
        return {
            "hardware": self.hardware.as_dict(),
            "batch_size": self.batch_size,
            "target_only_tokens_per_s": self.target_only_tokens_per_s,
            "flop_optimal": self.flop_optimal,
            "latency_optimal": self.latency_optimal,
            "intervals": {
                r.quantity: {"point": r.point, "lower": r.lower, "upper": r.upper} for r in self.intervals.itertuples()
            },
            "batch_sweep": None if self.batch_sweep is None else self.batch_sweep.to_dict(orient="records"),
            "stops_paying_at_batch": self.stops_paying_at_batch,
            "notes": list(self.notes),
        }


def _tokens_per_s(alpha, n_k, m, hw, batch, gammas, chunk=64):
    """Tokens/s for alpha (R, K) at draft sizes n_k (K,) and lookaheads ``gammas`` (G,): (R, K, G).

    Yields row chunks so that 1,000 draws x 400 sizes x 65 lookaheads never sit in memory at once.
    """
    td = _step_time(np.asarray(n_k, float), 1.0, batch, hw)  # one draft step of one token
    tv = _step_time(m, gammas + 1.0, batch, hw)  # one target step verifying gamma + 1 tokens
    seconds = gammas[None, :] * td[:, None] + tv[None, :]  # (K, G)
    for start in range(0, alpha.shape[0], chunk):
        a = alpha[start : start + chunk]
        e = np.asarray(expected_tokens_per_iteration(a[:, :, None], gammas[None, None, :]))
        yield start, batch * e / seconds[None]


def _latency_optimum(alpha, n_k, m, hw, batch, gamma_max):
    """Per row: the (N, integer gamma) maximising tokens/s over the grid n_k; dict of (R,) arrays."""
    gammas = np.arange(gamma_max + 1, dtype=float)
    rows = alpha.shape[0]
    out = {k: np.empty(rows) for k in ("n_draft", "gamma", "alpha", "tokens_per_s")}
    for start, tps in _tokens_per_s(alpha, n_k, m, hw, batch, gammas):
        flat = tps.reshape(tps.shape[0], -1).argmax(axis=1)
        k, g = np.unravel_index(flat, tps.shape[1:])
        sl = slice(start, start + tps.shape[0])
        # With gamma = 0 no draft runs: tokens/s do not depend on N, so report no draft size.
        out["n_draft"][sl] = np.where(g == 0, np.nan, np.asarray(n_k)[k])
        out["gamma"][sl] = gammas[g]
        out["alpha"][sl] = np.where(g == 0, np.nan, alpha[sl][np.arange(k.size), k])
        out["tokens_per_s"][sl] = tps[np.arange(k.size), k, g]
    return out


def _at_draft(alpha, n, m, hw, batch, gamma_max):
    """Per row: the best integer gamma for tokens/s at one draft size per row; dict of (R,) arrays."""
    gammas = np.arange(gamma_max + 1, dtype=float)
    n = np.asarray(n, float)
    a = np.asarray(alpha, float)
    e = np.asarray(expected_tokens_per_iteration(a[:, None], gammas[None, :]))
    seconds = gammas[None, :] * _step_time(n, 1.0, batch, hw)[:, None] + _step_time(m, gammas + 1.0, batch, hw)[None, :]
    tps = batch * e / seconds
    g = tps.argmax(axis=1)
    return {"n_draft": n, "gamma": gammas[g], "alpha": a, "tokens_per_s": tps[np.arange(g.size), g]}


def _first_row(d: dict, base: float) -> dict:
    """The point-estimate row of a per-row result, with its speed-up over the target alone."""
    return {k: float(v[0]) for k, v in d.items()} | {"speedup": float(d["tokens_per_s"][0]) / base}


def _hardware_plan(
    point_model,
    draw_model,
    n_point,
    n_draws,
    draft_given,
    m,
    hw,
    batch,
    gamma_max,
    n_min,
    n_max,
    batch_sizes,
    sweep,
    level,
) -> HardwarePlan:
    base = float(batch / _step_time(m, 1.0, batch, hw))
    grid = draft_grid(m, n_min, n_max, _LATENCY_GRID_POINTS)
    coarse = draft_grid(m, n_min, n_max, _DRAW_GRID_POINTS)

    def optimum(model, n_fixed, k_grid, b):
        if draft_given:
            return _at_draft(model.alpha(np.asarray(n_fixed)[:, None])[:, 0], n_fixed, m, hw, b, gamma_max)
        return _latency_optimum(model.alpha(k_grid[None, :]), k_grid, m, hw, b, gamma_max)

    def flop_opt(model, n_rows, b):
        return _at_draft(model.alpha(np.asarray(n_rows)[:, None])[:, 0], n_rows, m, hw, b, gamma_max)

    n_point = np.atleast_1d(n_point)
    fo, lo = flop_opt(point_model, n_point, batch), optimum(point_model, n_point, grid, batch)
    flop_optimal, latency_optimal = _first_row(fo, base), _first_row(lo, base)

    q = [(1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0]
    rows = []
    if draw_model is not None:
        fo_d = flop_opt(draw_model, n_draws, batch)
        lo_d = optimum(draw_model, n_draws, coarse, batch)
        for name, point, values in (
            ("flop_optimal_gamma", flop_optimal["gamma"], fo_d["gamma"]),
            ("flop_optimal_speedup", flop_optimal["speedup"], fo_d["tokens_per_s"] / base),
            ("latency_optimal_n_draft", latency_optimal["n_draft"], lo_d["n_draft"]),
            ("latency_optimal_gamma", latency_optimal["gamma"], lo_d["gamma"]),
            ("latency_optimal_speedup", latency_optimal["speedup"], lo_d["tokens_per_s"] / base),
        ):
            # nanquantile: draws in which no draft pays (gamma = 0) have no draft size.
            lower, upper = np.nanquantile(values, q) if not np.isnan(values).all() else (np.nan, np.nan)
            rows.append({"quantity": name, "point": point, "lower": float(lower), "upper": float(upper)})
    intervals = pd.DataFrame(rows, columns=["quantity", "point", "lower", "upper"])

    sweep_df, stops = None, None
    sizes = tuple(batch_sizes) if sweep else ()
    if sizes:
        recs = []
        for b in sizes:
            t_only = float(b / _step_time(m, 1.0, b, hw))
            f_b = _first_row(flop_opt(point_model, n_point, b), t_only)
            l_b = _first_row(optimum(point_model, n_point, grid, b), t_only)
            recs.append(
                {
                    "batch_size": int(b),
                    "target_only_tokens_per_s": t_only,
                    "target_step_bound": "compute"
                    if 2.0 * m * b / hw.peak_flops > hw.bytes_per_param * m / hw.bandwidth_bytes_per_s
                    else "memory",
                    "flop_optimal_gamma": int(f_b["gamma"]),
                    "flop_optimal_speedup": f_b["speedup"],
                    "latency_optimal_n_draft": l_b["n_draft"],
                    "latency_optimal_gamma": int(l_b["gamma"]),
                    "latency_optimal_speedup": l_b["speedup"],
                    "latency_optimal_tokens_per_s": l_b["tokens_per_s"],
                }
            )
        sweep_df = pd.DataFrame(recs)
        no_gain = sweep_df.loc[sweep_df["latency_optimal_gamma"] == 0, "batch_size"]
        stops = int(no_gain.iloc[0]) if len(no_gain) else None

    notes = []
    weights = hw.bytes_per_param * m
    if hw.memory_bytes is not None and weights > hw.memory_bytes:
        notes.append(
            f"the target's weights ({weights / 1e9:.0f} GB at {hw.bytes_per_param:g} bytes/param) exceed one "
            f"{hw.name}'s {hw.memory_bytes / 1e9:.0f} GB; these numbers use one device's bandwidth and FLOP/s: "
            "for a tensor-parallel group of k devices multiply both by k (custom hardware)"
        )
    if latency_optimal["gamma"] == 0:
        notes.append(
            f"at batch {batch} no draft and lookahead beats the target alone on {hw.name}: speculation does not pay"
        )
    if not draft_given and latency_optimal["gamma"] > 0 and not grid[0] < latency_optimal["n_draft"] < grid[-1]:
        notes.append("the latency-optimal draft lies at an end of the search range; widen it (n_min/n_max)")
    return HardwarePlan(hw, int(batch), base, flop_optimal, latency_optimal, intervals, sweep_df, stops, tuple(notes))


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """The planner's answer: point estimates with percentile intervals, and how they were made."""

    inputs: dict
    alpha_source: str  # which path gave alpha, in words
    draft_source: str  # "searched ..." or "given"
    estimates: pd.DataFrame  # index ESTIMATE_KEYS; columns point, lower, upper, unit, description
    draws: pd.DataFrame  # one row per draw (empty when uncertainty is "none")
    uncertainty: dict
    notes: tuple = ()
    hardware: HardwarePlan | None = None

    def point(self, key: str) -> float:
        return float(self.estimates.loc[key, "point"])

    def interval(self, key: str) -> tuple[float, float]:
        return float(self.estimates.loc[key, "lower"]), float(self.estimates.loc[key, "upper"])

    def to_dict(self) -> dict:
        """JSON-ready: keys ``inputs, paths, uncertainty, estimates, hardware, notes``."""
        est = {
            k: {"point": r.point, "lower": r.lower, "upper": r.upper, "unit": r.unit, "description": r.description}
            for k, r in self.estimates.iterrows()
        }
        return _finite(
            {
                "inputs": self.inputs,
                "paths": {"alpha": self.alpha_source, "draft": self.draft_source},
                "uncertainty": self.uncertainty,
                "estimates": est,
                "hardware": None if self.hardware is None else self.hardware.to_dict(),
                "notes": list(self.notes),
            }
        )


def _finite(obj):
    """Replace inf/NaN by None and numpy scalars by Python ones so the dict is strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _percentiles(v: np.ndarray, q) -> np.ndarray:
    """Percentiles of draws that may hold inf (gamma* when alpha = 1 in a draw).

    Linear interpolation next to an inf draw gives NaN (numpy computes a + (b - a) t), so draws with
    non-finite values use the step-function (inverted-CDF) percentile: inf sorts to the top and an
    end point is inf exactly when that share of the draws is.
    """
    if np.isfinite(v).all():
        return np.quantile(v, q)
    return np.quantile(v, q, method="inverted_cdf")


def _check_positive(name: str, value, unit: str):
    if value is None:
        return None
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0 ({unit}), got {value!r}")
    return v


def plan(
    target_params: float,
    target_tokens: float | None = None,
    draft_tokens: float | None = None,
    *,
    draft_params: float | None = None,
    alpha: float | None = None,
    alpha_se: float | None = None,
    draft_ppl: float | None = None,
    target_ppl: float | None = None,
    pairs: pd.DataFrame | str | Path | None = None,
    plane: AlphaPlane | None = None,
    law: ChinchillaLaw = BESIROGLU_2024,
    draws: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    uncertainty: str = "all",
    n_min: float = 1e6,
    n_max: float | None = None,
    gamma_max: int = 64,
    hardware: HardwareSpec | None = None,
    batch_size: int = 1,
    batch_sweep: bool = False,
    batch_sizes=DEFAULT_BATCH_SIZES,
) -> Plan:
    r"""Plan a draft for a target: :math:`N^*`, :math:`\gamma^*`, :math:`\alpha` and the gain, with intervals.

    Parameters
    ----------
    target_params : float
        Target parameters :math:`M > 0`.
    target_tokens : float, optional
        Target training tokens :math:`D'`; needed unless ``target_ppl`` or ``alpha`` is given.
    draft_tokens : float, optional
        Draft training tokens :math:`D`; needed unless ``draft_ppl`` or ``alpha`` is given.
    draft_params : float, optional
        Evaluate this draft (:math:`0 < N < M`) instead of searching for :math:`N^*`. Required with
        ``alpha`` or ``draft_ppl`` (they describe one particular draft).
    alpha : float, optional
        Measured acceptance rate in (0, 1): replaces Eq. 5 and Eq. 7-8.
    alpha_se : float, optional
        Standard error of ``alpha``; its draws are normal, truncated to (0, 1). Without it the
        measured alpha is taken as exact.
    draft_ppl, target_ppl : float, optional
        Measured perplexities (>= 1, on the plane's evaluation set) fed into Eq. 5 in place of Eq. 7
        or Eq. 8.
    pairs : DataFrame or path, optional
        The user's (draft_ppl, target_ppl, alpha) pairs: the plane is refitted on them and they are
        bootstrapped. Default: the paper's 130 pairs and Table 3's plane.
    plane : AlphaPlane, optional
        Point-estimate plane (default Table 3, or the fit on ``pairs``).
    law : ChinchillaLaw
        Pre-training law (default Besiroglu et al. 2024, as SDSL).
    draws, seed, confidence :
        Number of draws (>= 1), seed, and interval level in (0, 1).
    uncertainty : {"all", "plane", "law", "none"}
        Which laws the draws resample.
    n_min, n_max : float
        Draft-size search range (default 1e6 to M/2).
    gamma_max : int
        Largest integer lookahead considered (>= 1).
    hardware : HardwareSpec, optional
        Adds tokens per second on this accelerator (:class:`HardwarePlan`).
    batch_size : int
        Sequences decoded together (>= 1) for the hardware mode.
    batch_sweep : bool
        Also tabulate the hardware result over ``batch_sizes``.

    Returns
    -------
    Plan

    Examples
    --------
    >>> p = plan(12853473280, 180e9, 180e9, draws=50)            # Table 5: OPT-13B with OPT drafts
    >>> f"{p.point('n_draft'):.6e}", round(p.point('gamma_star'), 2), int(p.point('gamma_int'))
    ('1.173138e+08', 8.11, 8)
    """
    m = _check_positive("target_params", target_params, "parameters")
    d_target = _check_positive("target_tokens", target_tokens, "tokens")
    d_draft = _check_positive("draft_tokens", draft_tokens, "tokens")
    n_given = _check_positive("draft_params", draft_params, "parameters")
    if draft_ppl is not None and not (math.isfinite(float(draft_ppl)) and float(draft_ppl) >= 1.0):
        raise ValueError(f"draft_ppl must be a perplexity >= 1, got {draft_ppl!r}")
    if target_ppl is not None and not (math.isfinite(float(target_ppl)) and float(target_ppl) >= 1.0):
        raise ValueError(f"target_ppl must be a perplexity >= 1, got {target_ppl!r}")
    if alpha is not None and not (0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if alpha_se is not None:
        if alpha is None:
            raise ValueError("alpha_se needs alpha")
        if not (math.isfinite(float(alpha_se)) and float(alpha_se) >= 0):
            raise ValueError(f"alpha_se must be >= 0, got {alpha_se!r}")
    if isinstance(draws, bool) or int(draws) != draws or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if uncertainty not in UNCERTAINTY_MODES:
        raise ValueError(f"uncertainty must be one of {', '.join(UNCERTAINTY_MODES)}, got {uncertainty!r}")
    if int(gamma_max) != gamma_max or gamma_max < 1:
        raise ValueError(f"gamma_max must be an integer >= 1, got {gamma_max!r}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if n_given is not None and n_given >= m:
        raise ValueError(
            f"draft_params must be smaller than target_params (SDSL's model needs N < M), got {n_given:g} >= {m:g}"
        )
    if n_given is None and (alpha is not None or draft_ppl is not None):
        raise ValueError("draft_params is required with alpha or draft_ppl (they describe one particular draft)")
    n_max_v = 0.5 * m if n_max is None else _check_positive("n_max", n_max, "parameters")
    n_min_v = _check_positive("n_min", n_min, "parameters")
    if not n_min_v < n_max_v < m:
        raise ValueError(
            f"n_min and n_max must satisfy n_min < n_max < target_params, got {n_min_v:g}, {n_max_v:g}, {m:g}"
        )

    uses_law_x = alpha is None and draft_ppl is None
    uses_law_y = alpha is None and target_ppl is None
    if uses_law_x and d_draft is None:
        raise ValueError("draft_tokens is required unless alpha or draft_ppl is given (Eq. 7 needs the draft's data)")
    if uses_law_y and d_target is None:
        raise ValueError(
            "target_tokens is required unless alpha or target_ppl is given (Eq. 8 needs the target's data)"
        )
    uses_law = uses_law_x or uses_law_y
    uses_plane = alpha is None

    # The plane: the paper's (Table 3, bootstrapped over Tables 1-2) or the user's pairs.
    if pairs is None:
        pair_df, pair_source = paper_pairs(), "the paper's 130 pairs (Tables 1-2)"
        point_plane = plane if plane is not None else TABLE3_PLANE
    else:
        pair_df = load_pairs(pairs) if not isinstance(pairs, pd.DataFrame) else check_pairs(pairs)
        pair_source = f"{len(pair_df)} user pairs" + ("" if isinstance(pairs, pd.DataFrame) else f" from {pairs}")
        point_plane = (
            plane
            if plane is not None
            else fit_alpha_plane(pair_df["draft_ppl"], pair_df["target_ppl"], pair_df["alpha"]).plane
        )
    plane_vec = np.array([[point_plane.A, point_plane.B, point_plane.C]])

    if alpha is not None:
        alpha_source = "measured (given)"
    elif draft_ppl is not None and target_ppl is not None:
        alpha_source = "predicted from Eq. 5 at the given (measured) perplexities"
    elif draft_ppl is not None:
        alpha_source = "predicted from Eq. 5 with the given draft perplexity and the Eq. 8 target perplexity"
    elif target_ppl is not None:
        alpha_source = "predicted from Eq. 5 with Eq. 7 draft perplexities and the given target perplexity"
    else:
        alpha_source = "predicted from Eq. 5 with Eq. 7-8 perplexities"

    def model(plane_rows, law_rows, alpha_rows):
        return _AlphaModel(
            m,
            plane_rows,
            law_rows if uses_law else None,
            d_draft,
            d_target,
            None if draft_ppl is None else float(draft_ppl),
            None if target_ppl is None else float(target_ppl),
            alpha_rows,
        )

    point_model = model(plane_vec, _point_law(law), None if alpha is None else np.array([float(alpha)]))

    # Point estimate. On the all-law path this IS sdsl_lib.laws.optimal.optimal_draft_size (the Table 5
    # computation) on the planner's grid; other paths use the same grid-and-refine on their alpha(N).
    grid = draft_grid(m, n_min_v, n_max_v, _POINT_GRID_POINTS)
    if n_given is not None:
        n_point = np.array([n_given])
        draft_source = "given"
    elif uses_law_x and uses_law_y:
        n_point = np.array([optimal_draft_size(m, d_draft, d_target, n_grid=grid, plane=point_plane, law=law).n_star])
        draft_source = f"searched: Eq. 9 maximised over N in [{n_min_v:.3g}, {n_max_v:.3g}] (sdsl_lib.laws.optimal.optimal_draft_size)"
    else:
        n_point = _search(point_model, grid)
        draft_source = f"searched: Eq. 4 at Eq. 5's alpha maximised over N in [{n_min_v:.3g}, {n_max_v:.3g}]"
    a_point = point_model.alpha(n_point[:, None])[:, 0]
    point = _summaries(a_point, n_point, m, gamma_max)
    point["draft_ppl"] = point_model.x(n_point[:, None])[:, 0] if uses_plane else np.array([np.nan])
    point["target_ppl"] = point_model.y()[:, 0] if uses_plane else np.array([np.nan])

    # Draws. Independent child generators per source: switching one source off leaves the other's
    # draws unchanged, so the decomposition by --uncertainty is comparable run to run.
    resample_plane = uses_plane and uncertainty in ("all", "plane")
    resample_law = uses_law and uncertainty in ("all", "law")
    resample_alpha = alpha is not None and bool(alpha_se) and uncertainty != "none"
    any_draws = resample_plane or resample_law or resample_alpha
    plane_rng, law_rng, alpha_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(3))
    draws = int(draws)
    draw_df = pd.DataFrame(columns=list(ESTIMATE_KEYS))
    draw_model = None
    n_draws = None
    q = [(1.0 - confidence) / 2.0, 1.0 - (1.0 - confidence) / 2.0]
    lower = {k: float(point[k][0]) for k in ESTIMATE_KEYS}
    upper = dict(lower)
    if any_draws:
        planes = (
            bootstrap_planes(pair_df, draws, plane_rng, center=point_plane if pairs is None else None)
            if resample_plane
            else np.repeat(plane_vec, draws, axis=0)
        )
        laws = (
            sample_laws(law, draws, law_rng)
            if resample_law
            else {k: np.repeat(v, draws) for k, v in _point_law(law).items()}
        )
        alphas = None
        if alpha is not None:
            alphas = np.full(draws, float(alpha))
            if resample_alpha:
                a0, se = float(alpha), float(alpha_se)
                alphas = stats.truncnorm.rvs(
                    -a0 / se, (1.0 - a0) / se, loc=a0, scale=se, size=draws, random_state=alpha_rng
                )
        draw_model = model(planes, laws, alphas)
        if n_given is not None:
            n_draws = np.full(draws, n_given)
        else:
            n_draws = _search(draw_model, draft_grid(m, n_min_v, n_max_v, _DRAW_GRID_POINTS))
        a_draws = draw_model.alpha(n_draws[:, None])[:, 0]
        vals = _summaries(a_draws, n_draws, m, gamma_max)
        vals["draft_ppl"] = draw_model.x(n_draws[:, None])[:, 0] if uses_plane else np.full(draws, np.nan)
        vals["target_ppl"] = np.broadcast_to(draw_model.y()[:, 0], (draws,)) if uses_plane else np.full(draws, np.nan)
        draw_df = pd.DataFrame({k: np.asarray(vals[k], float) for k in ESTIMATE_KEYS})
        for k in ESTIMATE_KEYS:
            v = draw_df[k].to_numpy()
            if np.isnan(v).all():
                continue
            lo_v, hi_v = _percentiles(v, q)
            lower[k], upper[k] = float(lo_v), float(hi_v)

    est = pd.DataFrame(
        {
            "point": [float(point[k][0]) for k in ESTIMATE_KEYS],
            "lower": [lower[k] for k in ESTIMATE_KEYS],
            "upper": [upper[k] for k in ESTIMATE_KEYS],
            "unit": [_ESTIMATE_META[k][0] for k in ESTIMATE_KEYS],
            "description": [_ESTIMATE_META[k][1] for k in ESTIMATE_KEYS],
        },
        index=pd.Index(ESTIMATE_KEYS, name="quantity"),
    )
    if not uses_plane:
        est = est.drop(index=["draft_ppl", "target_ppl"])

    unc = {
        "draws": draws if any_draws else 0,
        "seed": int(seed),
        "confidence": confidence,
        "mode": uncertainty,
        "plane": (
            f"pairs bootstrap over {pair_source}, refitting Eq. 5 per draw"
            + (" (deviations added to Table 3's coefficients)" if pairs is None else "")
        )
        if resample_plane
        else "fixed",
        "law": (
            "independent normals with Besiroglu et al. (2024) standard errors, truncated to positive values; "
            "the published estimates are correlated and their covariance is not used, so this likely overstates the spread"
        )
        if resample_law
        else "fixed",
        "alpha": "truncated normal on (0, 1) with the given standard error"
        if resample_alpha
        else ("taken as exact (no --alpha-se)" if alpha is not None else "from the plane"),
        "interval": "percentile interval of the draws",
    }

    notes = []
    if uses_plane:
        lo_x, hi_x = pair_df["draft_ppl"].min(), pair_df["draft_ppl"].max()
        lo_y, hi_y = pair_df["target_ppl"].min(), pair_df["target_ppl"].max()
        x0, y0 = est.loc["draft_ppl", "point"], est.loc["target_ppl", "point"]
        if not lo_x <= x0 <= hi_x or not lo_y <= y0 <= hi_y:
            notes.append(
                f"extrapolation: the plane was fitted on draft perplexities {lo_x:.1f}-{hi_x:.1f} and target perplexities "
                f"{lo_y:.1f}-{hi_y:.1f}; this plan uses x = {x0:.4g}, y = {y0:.4g}"
                + (
                    " (Eq. 7-8 give perplexities on the pre-training law's data, not on the plane's evaluation set: SDSL does the same)"
                    if uses_law
                    else ""
                )
            )
    if uses_plane:
        raw = float(
            plane_vec[0, 0] * est.loc["draft_ppl", "point"]
            + plane_vec[0, 1] * est.loc["target_ppl", "point"]
            + plane_vec[0, 2]
        )
        if not 0.0 <= raw <= 1.0:
            notes.append(
                f"the plane predicts alpha = {raw:.4g} here, outside [0, 1]; it is clipped to {min(max(raw, 0.0), 1.0):g}, "
                "so the estimates are not meaningful (check the token counts or give measured inputs)"
            )
    if n_given is None and (n_point[0] >= 0.999 * n_max_v or n_point[0] <= 1.001 * n_min_v):
        notes.append("N* lies at an end of the search range; widen it (n_min/n_max)")
    if point["gamma_star"][0] == 0:
        notes.append("speculation does not pay for this pair in the FLOP model (gamma* = 0)")
    if n_given is None:
        notes.append(
            "the optimum is flat: throughput within 0.1% of the maximum spans roughly +-25% of N* (SDSL Table 5 discussion)"
        )

    hw_plan = None
    if hardware is not None:
        hw_plan = _hardware_plan(
            point_model,
            draw_model,
            n_point,
            n_draws,
            n_given is not None,
            m,
            hardware,
            int(batch_size),
            int(gamma_max),
            n_min_v,
            n_max_v,
            batch_sizes,
            batch_sweep,
            confidence,
        )

    inputs = _finite(
        {
            "target_params": m,
            "target_tokens": d_target,
            "draft_tokens": d_draft,
            "draft_params": n_given,
            "alpha": alpha,
            "alpha_se": alpha_se,
            "draft_ppl": draft_ppl,
            "target_ppl": target_ppl,
            "pairs": "paper" if pairs is None else (str(pairs) if not isinstance(pairs, pd.DataFrame) else "DataFrame"),
            "plane": {"A": point_plane.A, "B": point_plane.B, "C": point_plane.C},
            "law": {k: getattr(law, k) for k in ("E", "A", "B", "nu", "delta")} if uses_law else None,
            "n_min": n_min_v,
            "n_max": n_max_v,
            "gamma_max": int(gamma_max),
            "batch_size": int(batch_size),
        }
    )
    return Plan(inputs, alpha_source, draft_source, est, draw_df, unc, tuple(notes), hw_plan)
