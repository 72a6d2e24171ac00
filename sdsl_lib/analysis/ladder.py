r"""Closing the loop: SDSL's predictions tested against the measured model ladder.

:mod:`sdsl_lib.measurement.pipeline` trains a ladder of small drafts and targets and measures, for every
(draft, target) pair, the acceptance rate three ways, the per-position acceptance, the cost of each
model's decode step and the wall-clock speed-up of speculative decoding. This module turns those
tidy CSVs (``data/measured/<profile>/``, columns in ``data/measured/README.md``) into the quantities
the paper predicts, so that notebooks 10-13 only tell the story:

- loaders: :func:`measured_dir`, :func:`load_measured`;
- the pre-training law on the ladder (Eq. 2): :func:`fit_ladder_law`, :func:`law_comparison`,
  :func:`law_multistart_spread`;
- acceptance (Eq. 5, Table 4, Eq. 12): :func:`alpha_three_ways`, :func:`alpha_disagreement`,
  :func:`fit_ladder_plane`, :func:`per_target_forms`, :func:`position_acceptance`,
  :func:`iid_check`, :func:`tar_vs_eq12`;
- throughput (Eq. 1, 3, 13, Table 5): :func:`best_gamma_by_pair`, :func:`measured_optimal_draft`,
  :func:`bootstrap_optimal_draft`, :func:`speedup_predictions`, :func:`optimal_gamma_table`,
  :func:`flop_gain_measured`, :func:`predicted_nstar`, :func:`nstar_bootstrap`;
- why wall-clock differs from FLOPs: :func:`one_token_latency`, :func:`step_cost_model`,
  :func:`verification_cost_curve`, :func:`wallclock_speedup`, :func:`latency_optimal_draft`;
- latency against distance to N* (Table 6, Figure 4): :func:`latency_table`;
- :func:`json_safe` for results files (NaN becomes ``null``).

No law is defined here: Eq. 1, 3, 4, 5, 9, 12 and 13 come from :mod:`sdsl_lib.laws.speculation`,
:mod:`sdsl_lib.laws.acceptance`, :mod:`sdsl_lib.laws.pretraining` and :mod:`sdsl_lib.laws.optimal`. The one
extension, :func:`wallclock_speedup` (Eq. 1 with a verification cost that grows with the number of
scored tokens), is written through :func:`sdsl_lib.laws.speculation.speedup`.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from sdsl_lib.io import repo_root
from sdsl_lib.laws.acceptance import fit_alpha_plane, fit_alpha_vs_draft_ppl, tar_model
from sdsl_lib.laws.constants import BESIROGLU_2024, AlphaPlane, ChinchillaLaw
from sdsl_lib.laws.optimal import OptimalDraft, optimal_draft_size, predicted_alpha
from sdsl_lib.laws.pretraining import ChinchillaFit, fit_chinchilla
from sdsl_lib.laws.speculation import expected_accepted_drafts, optimal_lookahead, speedup

__all__ = [
    "FILES",
    "MeasuredData",
    "measured_dir",
    "load_measured",
    "fit_ladder_law",
    "law_comparison",
    "law_multistart_spread",
    "alpha_three_ways",
    "alpha_disagreement",
    "LadderPlane",
    "fit_ladder_plane",
    "per_target_forms",
    "position_acceptance",
    "iid_check",
    "tar_vs_eq12",
    "best_gamma_by_pair",
    "measured_optimal_draft",
    "bootstrap_optimal_draft",
    "speedup_predictions",
    "optimal_gamma_table",
    "flop_gain_measured",
    "nstar_grid_for",
    "predicted_nstar",
    "nstar_bootstrap",
    "ChainPrediction",
    "predict_chain",
    "one_token_latency",
    "step_cost_model",
    "verification_cost_curve",
    "wallclock_speedup",
    "latency_optimal_draft",
    "latency_table",
    "paired_time_difference",
    "mean_ci",
    "interval_verdict",
    "json_safe",
]

#: The measured files and the columns this module reads from each (``data/measured/README.md``).
FILES = {
    "models": (
        "models.csv",
        ["model", "role", "n_params", "n_params_non_embedding", "n_tokens", "val_loss_nats", "val_ppl", "test_ppl"],
    ),
    "loss_curves": ("loss_curves.csv", ["model", "step", "n_tokens", "train_loss_nats", "val_loss_subset_nats"]),
    "loss_budget_points": (
        "loss_budget_points.csv",
        ["model", "n_params", "n_params_non_embedding", "n_tokens", "val_loss_nats", "branch"],
    ),
    "alpha": (
        "alpha.csv",
        [
            "draft",
            "target",
            "n_params_draft",
            "n_params_target",
            "n_tokens_draft",
            "n_tokens_target",
            "draft_val_ppl",
            "target_val_ppl",
            "draft_test_ppl",
            "target_test_ppl",
            "alpha_tf",
            "alpha_tf_ci95_lower",
            "alpha_tf_ci95_upper",
            "alpha_tar",
            "alpha_tar_ci95_lower",
            "alpha_tar_ci95_upper",
            "greedy_match_tf",
            "greedy_match_tf_ci95_lower",
            "greedy_match_tf_ci95_upper",
            "greedy_acceptance_run",
            "c_flops",
            "c_measured",
        ],
    ),
    "tar": ("tar.csv", ["draft", "target", "gamma", "n_iterations_full", "tar_no_bonus", "tar_no_bonus_std"]),
    "acceptance_by_position": (
        "acceptance_by_position.csv",
        ["draft", "target", "temperature", "gamma", "position", "attempts", "accepts"],
    ),
    "cost_calibration": (
        "cost_calibration.csv",
        ["model", "role", "n_params", "n_new_tokens", "latency_median_s", "latency_p025_s", "latency_p975_s"],
    ),
    "throughput": (
        "throughput.csv",
        [
            "draft",
            "target",
            "gamma",
            "method",
            "prompt_idx",
            "new_tokens",
            "time_s",
            "tokens_per_s",
            "speedup_vs_autoregressive",
        ],
    ),
    "throughput_summary": (
        "throughput_summary.csv",
        [
            "draft",
            "target",
            "method",
            "gamma",
            "n_prompts",
            "speedup_median",
            "speedup_p025",
            "speedup_p975",
            "tokens_per_iteration_mean",
        ],
    ),
    "hf_baseline": ("hf_baseline.csv", ["draft", "target", "engine", "gamma", "tokens_per_s"]),
}
_OPTIONAL = ("hf_baseline",)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasuredData:
    """The tidy tables of one measured profile (``None`` for a table not loaded or absent)."""

    profile: str
    path: Path
    models: pd.DataFrame | None = None
    loss_curves: pd.DataFrame | None = None
    loss_budget_points: pd.DataFrame | None = None
    alpha: pd.DataFrame | None = None
    tar: pd.DataFrame | None = None
    acceptance_by_position: pd.DataFrame | None = None
    cost_calibration: pd.DataFrame | None = None
    throughput: pd.DataFrame | None = None
    throughput_summary: pd.DataFrame | None = None
    hf_baseline: pd.DataFrame | None = None
    sidecars: dict = field(default_factory=dict)

    @property
    def drafts(self) -> list[str]:
        """Draft names, smallest first."""
        m = self.models
        return list(m[m.role == "draft"].sort_values("n_params")["model"])

    @property
    def targets(self) -> list[str]:
        """Target names, smallest first."""
        m = self.models
        return list(m[m.role == "target"].sort_values("n_params")["model"])


def measured_dir(profile: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The folder of a measured profile: ``<root>/data/measured/<profile>/`` (or ``profile`` itself
    when it names an existing folder).

    Raises ``ValueError`` naming the profiles that exist when the folder is missing.
    """
    p = Path(profile)
    if p.is_dir() and (p / "models.csv").is_file():
        return p
    base = (Path(root) if root is not None else repo_root()) / "data" / "measured"
    path = base / str(profile)
    if not path.is_dir():
        have = sorted(q.name for q in base.iterdir() if q.is_dir()) if base.is_dir() else []
        raise ValueError(
            f"profile must name a measured folder under {base} (have: {have or 'none'}), got {str(profile)!r}"
        )
    return path


def load_measured(profile: str | os.PathLike, root: str | os.PathLike | None = None, require=None) -> MeasuredData:
    """Read the tidy CSVs of a measured profile and check the columns this module uses.

    Parameters
    ----------
    profile : str or path
        ``"cpu"``, ``"smoke"``, ``"gpu"``... (a folder under ``data/measured/``), or a folder.
    root : path, optional
        Repository root (default: this checkout).
    require : sequence of str, optional
        Table names (keys of :data:`FILES`) that must be present; default every table but
        ``hf_baseline``. Tables present but not required are loaded too.

    Returns
    -------
    MeasuredData

    Raises
    ------
    ValueError
        When a required file is missing, or a present file lacks a column listed in :data:`FILES`.
    """
    import json

    path = measured_dir(profile, root)
    require = [k for k in FILES if k not in _OPTIONAL] if require is None else list(require)
    unknown = [k for k in require if k not in FILES]
    if unknown:
        raise ValueError(f"require must be among {list(FILES)}, got {unknown}")
    tables, sidecars = {}, {}
    for key, (name, columns) in FILES.items():
        f = path / name
        if not f.is_file():
            if key in require:
                raise ValueError(
                    f"{path} lacks {name} (needed: {require}); run `python -m sdsl_lib.measurement.pipeline --profile {path.name}`"
                )
            continue
        df = pd.read_csv(f)
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"{f} lacks columns {missing}; see data/measured/README.md for the schema")
        tables[key] = df
        side = f.with_name(f.name + ".json")
        if side.is_file():
            sidecars[key] = json.loads(side.read_text())
    return MeasuredData(profile=path.name, path=path, sidecars=sidecars, **tables)


# ---------------------------------------------------------------------------------------------
# Small statistics helpers
# ---------------------------------------------------------------------------------------------


def mean_ci(x, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval over independent units (prompts, windows).

    Examples
    --------
    >>> m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    >>> round(m, 3), round(lo, 3), round(hi, 3)
    (2.0, -0.484, 4.484)
    """
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return math.nan, math.nan, math.nan
    m = float(a.mean())
    if a.size < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))
    return m, m - half, m + half


def interval_verdict(lo, hi, *, below=None, above=None, contains=None, within=None) -> str:
    """Verdict on a claim from a 95% interval ``[lo, hi]`` of our estimate.

    Exactly one of: ``below=b`` (the claim says the value is < b), ``above=a`` (> a),
    ``contains=v`` (the value equals v) or ``within=w`` (the value lies in [-w, w], e.g. a log error).
    Returns ``"supported"`` when the whole interval agrees, ``"contradicted"`` when the whole interval
    disagrees (for ``contains``: v lies outside it), and ``"inconclusive"`` when the interval straddles
    a boundary or is not finite.

    Examples
    --------
    >>> interval_verdict(-0.02, -0.01, below=0), interval_verdict(0.01, 0.02, below=0), interval_verdict(-0.01, 0.01, below=0)
    ('supported', 'contradicted', 'inconclusive')
    >>> interval_verdict(0.3, 0.4, contains=0.35), interval_verdict(0.3, 0.4, contains=0.5)
    ('supported', 'contradicted')
    >>> interval_verdict(-0.05, 0.08, within=0.1), interval_verdict(0.2, 0.4, within=0.1), interval_verdict(0.05, 0.2, within=0.1)
    ('supported', 'contradicted', 'inconclusive')
    """
    given = [v is not None for v in (below, above, contains, within)]
    if sum(given) != 1:
        raise ValueError("give exactly one of below, above, contains, within")
    lo = float(lo) if lo is not None else math.nan
    hi = float(hi) if hi is not None else math.nan
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if below is not None:
        return "supported" if hi < below else ("contradicted" if lo > below else "inconclusive")
    if above is not None:
        return "supported" if lo > above else ("contradicted" if hi < above else "inconclusive")
    if within is not None:
        if within < 0:
            raise ValueError(f"within must be >= 0, got {within!r}")
        return (
            "supported"
            if -within <= lo and hi <= within
            else ("contradicted" if lo > within or hi < -within else "inconclusive")
        )
    return "supported" if lo <= contains <= hi else "contradicted"


def json_safe(obj):
    """Recursively turn numpy scalars into Python numbers and NaN/inf into ``None`` (strict JSON).

    Examples
    --------
    >>> json_safe({"a": np.float64("nan"), "b": [np.int64(2), 0.5], "c": np.bool_(True)})
    {'a': None, 'b': [2, 0.5], 'c': True}
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def _need(df: pd.DataFrame, name: str, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")


# ---------------------------------------------------------------------------------------------
# Pre-training law on the ladder (Eq. 2)
# ---------------------------------------------------------------------------------------------


def fit_ladder_law(
    points: pd.DataFrame,
    params_column: str = "n_params",
    loss_column: str = "val_loss_nats",
    bootstrap: int = 0,
    seed: int = 0,
    grid: dict | None = None,
) -> ChinchillaFit:
    r"""Fit the Chinchilla form :math:`L(N, D) = E + A/N^{\nu} + B/D^{\delta}` (Eq. 2) to the ladder.

    A thin wrapper of :func:`sdsl_lib.laws.pretraining.fit_chinchilla` (Hoffmann et al.'s approach 3,
    Huber loss on log-loss) on the ``loss_budget_points.csv`` rows: every model at every token budget
    (the main run and its cool-down branches).

    Parameters
    ----------
    points : DataFrame
        ``loss_budget_points.csv``.
    params_column : {"n_params", "n_params_non_embedding"}
        Which parameter count plays N. SDSL's N and M are total counts; Kaplan et al. argue for
        non-embedding counts, which matter here because the embedding is most of a tiny model.
    loss_column : str
        Held-out loss in nats (validation split by default: the plane is then fitted on validation
        perplexities, so the chain law -> perplexity -> plane stays on one split).
    bootstrap, seed :
        As in :func:`fit_chinchilla` (pairs bootstrap with local restarts: the intervals describe
        the curvature around this optimum, not the other optima the multistart finds, see
        :func:`law_multistart_spread`).
    grid : dict, optional
        Initial values per parameter (keys ``a, b, e, nu, delta``); default :func:`fit_chinchilla`'s
        3^5 grid. A smaller grid is faster (each start costs one L-BFGS run).
    """
    _need(points, "points", [params_column, "n_tokens", loss_column])
    return fit_chinchilla(
        points[params_column].to_numpy(float),
        points["n_tokens"].to_numpy(float),
        points[loss_column].to_numpy(float),
        bootstrap=bootstrap,
        seed=seed,
        grid=grid,
        source=f"fitted on the measured ladder ({params_column}, {loss_column})",
    )


def law_comparison(fit: ChinchillaFit, reference: ChinchillaLaw = BESIROGLU_2024) -> pd.DataFrame:
    """Our fitted constants beside a published law's, with bootstrap intervals when present.

    Columns: ``parameter, ours, ci95_lower, ci95_upper, reference, reference_se, ours_over_reference,
    reference_in_ci``. Exponents and E are comparable across setups; A and B are not (their units
    depend on the tokenizer and the scale of N and D), but are listed for completeness.
    """
    rows = []
    boot = fit.bootstrap.set_index("parameter") if fit.bootstrap is not None else None
    for p in ("E", "A", "B", "nu", "delta"):
        ours, ref = getattr(fit.law, p), getattr(reference, p)
        lo = float(boot.loc[p, "ci95_lower"]) if boot is not None else math.nan
        hi = float(boot.loc[p, "ci95_upper"]) if boot is not None else math.nan
        rows.append(
            {
                "parameter": p,
                "ours": ours,
                "ci95_lower": lo,
                "ci95_upper": hi,
                "reference": ref,
                "reference_se": getattr(reference, f"{p}_se"),
                "ours_over_reference": ours / ref,
                "reference_in_ci": bool(lo <= ref <= hi) if boot is not None else None,
            }
        )
    return pd.DataFrame(rows)


def law_multistart_spread(
    points: pd.DataFrame,
    params_column: str = "n_params",
    loss_column: str = "val_loss_nats",
    rel_tolerance: float = 0.05,
    grid: dict | None = None,
) -> pd.DataFrame:
    r"""How weakly the ladder identifies the law: every local optimum the multistart finds.

    Runs :func:`fit_chinchilla` from each initial point of ``grid`` separately (the same grid it
    searches internally) and returns one row per start with the optimum it reached, its objective,
    and ``near_best``: objective within ``rel_tolerance`` of the best. When near-best fits disagree
    on :math:`E`, :math:`\nu` or :math:`\delta` by large factors, the data do not pin them down:
    with few sizes over one decade and one epoch, :math:`E` and :math:`A/N^{\nu}` trade off.
    """
    _need(points, "points", [params_column, "n_tokens", loss_column])
    grid = grid or {
        "a": [0.0, 5.0, 10.0],
        "b": [0.0, 5.0],
        "e": [-1.0, 1.0],
        "nu": [0.1, 0.4, 1.0],
        "delta": [0.1, 0.4],
    }
    n, d, l = (points[c].to_numpy(float) for c in (params_column, "n_tokens", loss_column))
    rows = []
    keys = ("a", "b", "e", "nu", "delta")
    for start in itertools.product(*(grid[k] for k in keys)):
        f = fit_chinchilla(n, d, l, grid={k: [v] for k, v in zip(keys, start)})
        rows.append(
            {"E": f.law.E, "A": f.law.A, "B": f.law.B, "nu": f.law.nu, "delta": f.law.delta, "objective": f.objective}
        )
    out = pd.DataFrame(rows).sort_values("objective").reset_index(drop=True)
    best = out["objective"].min()
    out["near_best"] = out["objective"] <= best * (1.0 + rel_tolerance) + 1e-15
    return out


# ---------------------------------------------------------------------------------------------
# Acceptance: three estimates, the plane (Eq. 5), Table 4, positions and Eq. 12
# ---------------------------------------------------------------------------------------------

#: The acceptance estimates of ``alpha.csv``: column stem and what it measures.
ALPHA_METHODS = {
    "alpha_tf": "teacher-forced sum-min: mean over held-out positions of sum_x min(p, q), temperature 1 (Leviathan's alpha = E[beta])",
    "alpha_tar": "TAR inverse: Eq. 12 (accepted drafts, no bonus) fitted over gamma to speculative sampling at T = 1 on generated text (App. B)",
    "greedy_match_tf": "greedy match: share of held-out positions where argmax p = argmax q (temperature-0 acceptance)",
    "greedy_acceptance_run": "greedy acceptance in the timed runs: accepted / proposed drafts (depends on gamma through truncation; no CI)",
}


def alpha_three_ways(alpha: pd.DataFrame) -> pd.DataFrame:
    """The acceptance estimates of every pair in long form: ``draft, target, method, alpha,
    ci95_lower, ci95_upper``.

    Methods are the keys of :data:`ALPHA_METHODS`; ``greedy_acceptance_run`` carries no interval.
    """
    _need(alpha, "alpha", FILES["alpha"][1])
    frames = []
    for m in ALPHA_METHODS:
        lo, hi = (f"{m}_ci95_lower", f"{m}_ci95_upper")
        frames.append(
            pd.DataFrame(
                {
                    "draft": alpha["draft"],
                    "target": alpha["target"],
                    "method": m,
                    "alpha": alpha[m].astype(float),
                    "ci95_lower": alpha[lo].astype(float) if lo in alpha else np.nan,
                    "ci95_upper": alpha[hi].astype(float) if hi in alpha else np.nan,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def alpha_disagreement(alpha: pd.DataFrame, a: str = "alpha_tar", b: str = "alpha_tf") -> dict:
    r"""How far two acceptance estimates disagree over the pairs.

    Per pair the difference :math:`a - b` with a 95% interval that adds the two half-widths in
    quadrature (independent estimates, normal approximation); over pairs the mean difference with a
    t-interval, the mean absolute difference, the share of pairs whose two intervals overlap, and
    Spearman's rank correlation (do both rank the drafts the same way?).

    Returns
    -------
    dict with keys ``per_pair`` (DataFrame), ``mean_diff``, ``mean_diff_ci95``, ``mean_abs_diff``,
    ``share_overlapping``, ``spearman_rho``, ``n_pairs``.

    Examples
    --------
    >>> df = pd.DataFrame({"draft": ["a", "b", "c"], "target": "t", "x": [0.5, 0.6, 0.7],
    ...                    "x_ci95_lower": [0.45, 0.55, 0.65], "x_ci95_upper": [0.55, 0.65, 0.75],
    ...                    "y": [0.4, 0.5, 0.6], "y_ci95_lower": [0.35, 0.45, 0.55], "y_ci95_upper": [0.45, 0.55, 0.65]})
    >>> r = alpha_disagreement(df, "x", "y")
    >>> round(r["mean_diff"], 3), r["share_overlapping"], round(r["spearman_rho"], 3)
    (0.1, 1.0, 1.0)
    """
    _need(alpha, "alpha", ["draft", "target", a, b])
    da, db = alpha[a].to_numpy(float), alpha[b].to_numpy(float)

    def half(col):
        lo, hi = f"{col}_ci95_lower", f"{col}_ci95_upper"
        if lo in alpha and hi in alpha:
            return (alpha[hi].to_numpy(float) - alpha[lo].to_numpy(float)) / 2.0
        return np.zeros(len(alpha))

    ha, hb = half(a), half(b)
    diff = da - db
    h = np.sqrt(ha**2 + hb**2)
    per = pd.DataFrame(
        {
            "draft": alpha["draft"],
            "target": alpha["target"],
            a: da,
            b: db,
            "diff": diff,
            "diff_ci95_lower": diff - h,
            "diff_ci95_upper": diff + h,
            "overlap": np.abs(diff) <= ha + hb,
        }
    )
    ok = np.isfinite(diff)
    m, lo, hi = mean_ci(diff[ok])
    rho = float(stats.spearmanr(da[ok], db[ok]).statistic) if ok.sum() >= 3 else math.nan
    return {
        "per_pair": per,
        "mean_diff": m,
        "mean_diff_ci95": [lo, hi],
        "mean_abs_diff": float(np.abs(diff[ok]).mean()) if ok.any() else math.nan,
        "share_overlapping": float(per.loc[ok, "overlap"].mean()) if ok.any() else math.nan,
        "spearman_rho": rho,
        "n_pairs": int(ok.sum()),
    }


@dataclass(frozen=True)
class LadderPlane:
    """The acceptance plane fitted on the ladder's pairs (our Table 3).

    ``identified`` is False when the target perplexity did not vary (one target): B is then not
    identifiable, set to 0, and A, C come from a least-squares line in the draft perplexity alone.
    """

    plane: AlphaPlane
    table: pd.DataFrame  # parameter, estimate, std_error, margin_of_error_95, ci95_lower, ci95_upper
    r2: float
    mse: float
    n: int
    identified: bool
    alpha_column: str
    ppl_split: str


def fit_ladder_plane(alpha: pd.DataFrame, alpha_column: str = "alpha_tf", ppl_split: str = "val") -> LadderPlane:
    r"""Fit :math:`\alpha = A x + B y + C` (Eq. 5) on the ladder's pairs (our Table 3).

    Parameters
    ----------
    alpha : DataFrame
        ``alpha.csv``.
    alpha_column : str
        Which estimate plays :math:`\alpha` (``alpha_tf``, ``alpha_tar``, ``greedy_match_tf``...).
    ppl_split : {"val", "test"}
        Which held-out perplexities play x and y.

    Notes
    -----
    Uses :func:`sdsl_lib.laws.acceptance.fit_alpha_plane` (Table 3's conventions) whenever there are at
    least 4 pairs and both perplexities vary. With a single target, :math:`B` multiplies a constant and
    is confounded with :math:`C`: the fit then drops the y term (``identified=False``). The smoke
    profile (one target) takes that branch.

    Examples
    --------
    >>> df = pd.DataFrame({"draft_val_ppl": [20., 25, 30, 20, 25, 30], "target_val_ppl": [10., 10, 10, 15, 15, 15]})
    >>> df["a"] = 0.6 - 0.01 * df.draft_val_ppl + 0.02 * df.target_val_ppl
    >>> p = fit_ladder_plane(df, "a")
    >>> round(p.plane.A, 4), round(p.plane.B, 4), round(p.plane.C, 4), p.identified
    (-0.01, 0.02, 0.6, True)
    """
    if ppl_split not in ("val", "test"):
        raise ValueError(f"ppl_split must be 'val' or 'test', got {ppl_split!r}")
    xcol, ycol = f"draft_{ppl_split}_ppl", f"target_{ppl_split}_ppl"
    _need(alpha, "alpha", [xcol, ycol, alpha_column])
    ok = np.isfinite(alpha[alpha_column].to_numpy(float))
    x, y, a = (alpha.loc[ok, c].to_numpy(float) for c in (xcol, ycol, alpha_column))
    if np.unique(x).size < 2:
        raise ValueError(f"alpha needs at least 2 distinct draft perplexities to fit a plane, got {np.unique(x).size}")
    if x.size >= 4 and np.unique(y).size >= 2:
        f = fit_alpha_plane(x, y, a)
        return LadderPlane(f.plane, f.table, f.r2, f.mse, f.n, True, alpha_column, ppl_split)
    # Reduced fit: alpha = A x + C (B = 0, not identifiable from one target perplexity).
    design = np.column_stack([x, np.ones_like(x)])
    res = sm.OLS(a, design).fit()
    dof = res.df_resid
    se = np.asarray(res.bse) if dof > 0 else np.full(2, np.nan)
    t = stats.t.ppf(0.975, dof) if dof > 0 else np.nan
    est = np.asarray(res.params)
    table = pd.DataFrame(
        {
            "parameter": ["A", "B", "C"],
            "estimate": [est[0], 0.0, est[1]],
            "std_error": [se[0], np.nan, se[1]],
            "margin_of_error_95": [t * se[0], np.nan, t * se[1]],
            "ci95_lower": [est[0] - t * se[0], np.nan, est[1] - t * se[1]],
            "ci95_upper": [est[0] + t * se[0], np.nan, est[1] + t * se[1]],
        }
    )
    plane = AlphaPlane(
        A=float(est[0]), B=0.0, C=float(est[1]), source="fit_ladder_plane (reduced: one target perplexity)"
    )
    r2 = float(res.rsquared) if np.ptp(a) > 0 else math.nan
    return LadderPlane(plane, table, r2, float(res.ssr / a.size), int(a.size), False, alpha_column, ppl_split)


def per_target_forms(alpha: pd.DataFrame, alpha_column: str = "alpha_tf", ppl_split: str = "val") -> pd.DataFrame:
    """Table 4 on the ladder: for each target, alpha against draft perplexity in the linear, log and
    power forms (:func:`sdsl_lib.laws.acceptance.fit_alpha_vs_draft_ppl`).

    Targets with fewer than 3 drafts (or no spread in alpha) get no rows: two points fit any
    two-parameter curve exactly. Columns: ``target, form, p1, p1_moe95, ..., mse, r2, n``.
    """
    xcol = f"draft_{ppl_split}_ppl"
    _need(alpha, "alpha", ["target", xcol, alpha_column])
    rows = []
    for tgt, g in alpha.groupby("target", sort=False):
        g = g[np.isfinite(g[alpha_column].to_numpy(float))]
        if len(g) < 3 or np.ptp(g[alpha_column].to_numpy(float)) == 0:
            continue
        for form in ("linear", "log", "power"):
            try:
                f = fit_alpha_vs_draft_ppl(g[xcol].to_numpy(float), g[alpha_column].to_numpy(float), form)
            except (RuntimeError, ValueError):  # curve_fit may not converge on a handful of points
                continue
            rows.append({"target": tgt, **f.as_row(), "n": f.n})
    return pd.DataFrame(rows)


def position_acceptance(pos: pd.DataFrame) -> pd.DataFrame:
    """Acceptance by draft position pooled over lookaheads, with Wilson 95% intervals.

    ``acceptance_by_position.csv`` counts, for each (pair, temperature, gamma, position i), how often
    position i was reached (all earlier drafts accepted) and how often it was then accepted. The draft
    at position i does not know gamma, so counts are pooled over gamma. Returns one row per
    (draft, target, temperature, position) with ``attempts, accepts, rate, ci95_lower, ci95_upper``.

    Examples
    --------
    >>> pos = pd.DataFrame({"draft": "d", "target": "t", "temperature": 1.0, "gamma": [1, 2, 2],
    ...                     "position": [1, 1, 2], "attempts": [10, 10, 8], "accepts": [8, 8, 4]})
    >>> position_acceptance(pos)[["position", "attempts", "accepts", "rate"]].to_dict("records")
    [{'position': 1, 'attempts': 20, 'accepts': 16, 'rate': 0.8}, {'position': 2, 'attempts': 8, 'accepts': 4, 'rate': 0.5}]
    """
    from statsmodels.stats.proportion import proportion_confint

    _need(pos, "pos", FILES["acceptance_by_position"][1])
    g = pos.groupby(["draft", "target", "temperature", "position"], as_index=False)[["attempts", "accepts"]].sum()
    g = g[g["attempts"] > 0].reset_index(drop=True)
    g["attempts"] = g["attempts"].astype(int)
    g["accepts"] = g["accepts"].astype(int)
    g["rate"] = g["accepts"] / g["attempts"]
    lo, hi = proportion_confint(g["accepts"].to_numpy(), g["attempts"].to_numpy(), alpha=0.05, method="wilson")
    g["ci95_lower"], g["ci95_upper"] = lo, hi
    return g


def iid_check(pos: pd.DataFrame, alpha: pd.DataFrame | None = None, alpha_column: str = "alpha_tf") -> pd.DataFrame:
    r"""How far the i.i.d. assumption behind Eq. 12 is off, per pair and temperature.

    Eq. 12 assumes every draft position is accepted with the same probability :math:`\alpha`,
    independently. Measured conditional rates :math:`a_i` (position i accepted, given it was reached)
    are compared with a constant:

    - ``alpha_pooled``: the maximum-likelihood constant (all accepts / all attempts);
    - ``chi2_p``: homogeneity test of :math:`a_1 = a_2 = \dots` (2 x K contingency table);
    - ``logit_slope`` (with 95% interval): trend of logit :math:`a_i` per position (binomial GLM);
      negative when later positions are accepted less (drafts drift off after an accepted run),
      positive when accepted runs select easy stretches of text;
    - ``max_abs_dev``: largest :math:`|a_i - \alpha_{pooled}|` over positions;
    - ``tokens_positional`` vs ``tokens_iid``: expected accepted drafts per iteration at the largest
      gamma, :math:`\sum_{i\le\gamma}\prod_{j\le i} a_j` against Eq. 12's
      :math:`\alpha(1-\alpha^\gamma)/(1-\alpha)` at ``alpha_pooled``; ``tokens_rel_error`` is their
      relative gap (the error Eq. 12 makes through the i.i.d. assumption alone);
    - with ``alpha`` given: ``alpha_ref`` (that pair's ``alpha_column``) and ``mean_abs_dev_ref``,
      the attempt-weighted mean :math:`|a_i - \alpha_{ref}|`.
    """
    pa = position_acceptance(pos)
    ref = None
    if alpha is not None:
        _need(alpha, "alpha", ["draft", "target", alpha_column])
        ref = alpha.set_index(["draft", "target"])[alpha_column]
    rows = []
    for (d, t, temp), g in pa.groupby(["draft", "target", "temperature"], sort=False):
        g = g.sort_values("position")
        att, acc = g["attempts"].to_numpy(float), g["accepts"].to_numpy(float)
        a_pool = acc.sum() / att.sum()
        rates = acc / att
        chi2_p = math.nan
        table = np.vstack([acc, att - acc])
        if g.shape[0] >= 2 and (table.sum(axis=1) > 0).all():
            chi2_p = float(stats.chi2_contingency(table)[1])
        slope, s_lo, s_hi = math.nan, math.nan, math.nan
        if g.shape[0] >= 2 and 0 < acc.sum() < att.sum():
            from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    res = sm.GLM(
                        np.column_stack([acc, att - acc]),
                        sm.add_constant(g["position"].to_numpy(float)),
                        family=sm.families.Binomial(),
                    ).fit()
                    fitted = True
                except (ValueError, np.linalg.LinAlgError):
                    fitted = False
            # Perfect separation (every reached position accepted, say) leaves the slope unidentified.
            if fitted and not any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
                slope = float(res.params[1])
                s_lo, s_hi = (float(v) for v in np.asarray(res.conf_int())[1])
        # Positional chain: a run reaches position i only if 1..i-1 were accepted, so
        # E[accepted drafts] = sum_i prod_{j<=i} a_j (positions never reached count as 0).
        gmax = int(pos.loc[(pos.draft == d) & (pos.target == t) & (pos.temperature == temp), "gamma"].max())
        full = np.zeros(gmax)
        k = min(gmax, rates.size)
        full[:k] = rates[:k]
        tok_pos = float(np.cumprod(full).sum())
        tok_iid = float(expected_accepted_drafts(a_pool, gmax))
        row = {
            "draft": d,
            "target": t,
            "temperature": float(temp),
            "gamma_max": gmax,
            "n_positions": int(g.shape[0]),
            "attempts": int(att.sum()),
            "alpha_pooled": float(a_pool),
            "chi2_p": chi2_p,
            "logit_slope": slope,
            "logit_slope_ci95_lower": s_lo,
            "logit_slope_ci95_upper": s_hi,
            "max_abs_dev": float(np.max(np.abs(rates - a_pool))),
            "tokens_positional": tok_pos,
            "tokens_iid": tok_iid,
            "tokens_rel_error": (tok_iid - tok_pos) / tok_pos if tok_pos > 0 else math.nan,
        }
        if ref is not None and (d, t) in ref.index:
            a_ref = float(ref.loc[(d, t)])
            row["alpha_ref"] = a_ref
            row["mean_abs_dev_ref"] = float(np.sum(att * np.abs(rates - a_ref)) / att.sum())
        rows.append(row)
    return pd.DataFrame(rows)


def tar_vs_eq12(tar: pd.DataFrame, alpha: pd.DataFrame, alpha_column: str = "alpha_tf") -> pd.DataFrame:
    r"""Measured TAR(gamma) (accepted drafts per full iteration, temperature 1) against Eq. 12.

    Eq. 12 without the bonus token, :math:`\alpha(1-\alpha^\gamma)/(1-\alpha)`, is evaluated at the
    pair's ``alpha_column``. ``rel_error`` = predicted / measured - 1; the interval of the measured
    mean is a normal one from ``tar_no_bonus_std`` over ``n_iterations_full`` iterations.
    """
    _need(tar, "tar", FILES["tar"][1])
    _need(alpha, "alpha", ["draft", "target", alpha_column])
    df = tar.merge(alpha[["draft", "target", alpha_column]], on=["draft", "target"], how="left")
    ok = np.isfinite(df[alpha_column].to_numpy(float))
    df = df[ok].copy()
    df["tar_predicted"] = np.asarray(
        tar_model(df[alpha_column].to_numpy(float).clip(0, 1), df["gamma"].to_numpy(float), counts_bonus=False)
    )
    half = 1.96 * df["tar_no_bonus_std"] / np.sqrt(df["n_iterations_full"].clip(lower=1))
    df["tar_ci95_lower"], df["tar_ci95_upper"] = df["tar_no_bonus"] - half, df["tar_no_bonus"] + half
    df["rel_error"] = df["tar_predicted"] / df["tar_no_bonus"] - 1.0
    return df.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Throughput: measured optimum, Eq. 1, Eq. 13 and the predicted N* (Table 5)
# ---------------------------------------------------------------------------------------------


def best_gamma_by_pair(summary: pd.DataFrame) -> pd.DataFrame:
    """For each pair, the lookahead with the highest median speed-up and that speed-up.

    Returns ``draft, target, best_gamma, speedup, speedup_p025, speedup_p975`` (the percentiles are
    over prompts, as in ``throughput_summary.csv``).

    Examples
    --------
    >>> s = pd.DataFrame({"draft": "d", "target": "t", "method": "speculative", "gamma": [1, 2, 3],
    ...                   "speedup_median": [1.1, 1.4, 1.2], "speedup_p025": 1.0, "speedup_p975": 1.5})
    >>> best_gamma_by_pair(s)[["best_gamma", "speedup"]].to_dict("records")
    [{'best_gamma': 2, 'speedup': 1.4}]
    """
    _need(summary, "summary", ["draft", "target", "method", "gamma", "speedup_median", "speedup_p025", "speedup_p975"])
    s = summary[summary["method"] == "speculative"]
    idx = s.groupby(["draft", "target"], sort=False)["speedup_median"].idxmax()
    out = s.loc[idx, ["draft", "target", "gamma", "speedup_median", "speedup_p025", "speedup_p975"]]
    out = out.rename(columns={"gamma": "best_gamma", "speedup_median": "speedup"}).reset_index(drop=True)
    out["best_gamma"] = out["best_gamma"].astype(int)
    return out


def measured_optimal_draft(summary: pd.DataFrame, models: pd.DataFrame, size_column: str = "n_params") -> pd.DataFrame:
    """Per target, the draft with the highest measured speed-up (at its best lookahead).

    Sizes (``m_target``, ``n_draft``) are read from ``models[size_column]``.

    Returns ``target, m_target, draft, n_draft, best_gamma, speedup, speedup_p025, speedup_p975,
    runner_up, runner_up_speedup``.
    """
    best = best_gamma_by_pair(summary)
    size = models.set_index("model")[size_column].astype(float)
    rows = []
    for t, g in best.groupby("target", sort=False):
        g = g.sort_values("speedup", ascending=False)
        top = g.iloc[0]
        rows.append(
            {
                "target": t,
                "m_target": size[t],
                "draft": top["draft"],
                "n_draft": size[top["draft"]],
                "best_gamma": int(top["best_gamma"]),
                "speedup": top["speedup"],
                "speedup_p025": top["speedup_p025"],
                "speedup_p975": top["speedup_p975"],
                "runner_up": g.iloc[1]["draft"] if len(g) > 1 else None,
                "runner_up_speedup": g.iloc[1]["speedup"] if len(g) > 1 else math.nan,
            }
        )
    return pd.DataFrame(rows)


def bootstrap_optimal_draft(
    throughput: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Resample prompts to see how firmly the fastest draft and its speed-up are identified.

    Every pair is timed on the same prompts, so one bootstrap draw resamples prompt indices once and
    applies them to every (draft, gamma) of a target: per draw, each draft's score is its best
    median speed-up over gamma, and the fastest draft wins the draw.

    Returns
    -------
    shares : DataFrame
        ``target, draft, share``: the fraction of draws each draft is fastest.
    best : DataFrame
        ``target, draft, gamma, speedup, speedup_ci95_lower, speedup_ci95_upper``: the fastest
        configuration on the observed prompts (highest median speed-up) and the percentile interval
        of its median speed-up across draws.
    """
    _need(throughput, "throughput", ["draft", "target", "method", "gamma", "prompt_idx", "speedup_vs_autoregressive"])
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    spec = throughput[throughput["method"] == "speculative"]
    shares, best_rows = [], []
    for t, g in spec.groupby("target", sort=False):
        cube = g.pivot_table(
            index=["draft", "gamma"], columns="prompt_idx", values="speedup_vs_autoregressive", aggfunc="mean"
        )
        vals = cube.to_numpy(float)  # (draft x gamma, prompts)
        drafts = cube.index.get_level_values("draft").to_numpy()
        names = list(dict.fromkeys(drafts))
        idx = rng.integers(0, vals.shape[1], size=(n_boot, vals.shape[1]))
        med = np.nanmedian(vals[:, idx], axis=2)  # (configs, draws)
        per_draft = np.stack([np.nanmax(med[drafts == d], axis=0) for d in names])  # (drafts, draws)
        win = np.argmax(per_draft, axis=0)
        for i, d in enumerate(names):
            shares.append({"target": t, "draft": d, "share": float(np.mean(win == i))})
        observed = np.nanmedian(vals, axis=1)
        k = int(np.nanargmax(observed))
        best_rows.append(
            {
                "target": t,
                "draft": cube.index[k][0],
                "gamma": int(cube.index[k][1]),
                "speedup": float(observed[k]),
                "speedup_ci95_lower": float(np.percentile(med[k], 2.5)),
                "speedup_ci95_upper": float(np.percentile(med[k], 97.5)),
            }
        )
    return pd.DataFrame(shares), pd.DataFrame(best_rows)


def speedup_predictions(
    summary: pd.DataFrame,
    alpha: pd.DataFrame,
    alpha_column: str = "greedy_match_tf",
    calibration: pd.DataFrame | None = None,
) -> pd.DataFrame:
    r"""Measured speed-up of every (pair, gamma) beside Eq. 1 under two cost models.

    .. math:: S = \frac{1 - \alpha^{\gamma + 1}}{(1 - \alpha)(\gamma c + 1)} \qquad \text{(Eq. 1)}

    - ``speedup_eq1_measured_c``: Eq. 1 with the pair's measured acceptance (``alpha_column``) and the
      measured step-cost ratio ``c_measured`` (one draft step / one target step, cost calibration);
    - ``speedup_flop_model``: Eq. 1 with the paper's :math:`c = N/M` (``c_flops``).

    - with ``calibration`` (``cost_calibration.csv``): ``speedup_wallclock_measured_cv``, Eq. 1 with the
      measured c and the target's measured verification cost :math:`v(\gamma+1)`
      (:func:`wallclock_speedup`, :func:`verification_cost_curve`); NaN where :math:`\gamma + 1`
      tokens were not calibrated.

    ``log_ratio_*`` = ln(predicted / measured median): 0 is perfect, 0.1 is about 10% too high.
    The throughput runs decode greedily, so the matching acceptance is a temperature-0 one
    (``greedy_match_tf``, or ``greedy_acceptance_run`` which comes from these very runs and so
    isolates the cost model); ``alpha_tf`` (temperature 1) answers a different question.
    """
    _need(
        alpha, "alpha", ["draft", "target", alpha_column, "c_measured", "c_flops", "n_params_draft", "n_params_target"]
    )
    s = summary[summary["method"] == "speculative"].merge(
        alpha[["draft", "target", alpha_column, "c_measured", "c_flops", "n_params_draft", "n_params_target"]],
        on=["draft", "target"],
        how="left",
    )
    a = s[alpha_column].to_numpy(float).clip(0.0, 1.0)
    g = s["gamma"].to_numpy(float)
    s["alpha_used"] = a
    s["speedup_eq1_measured_c"] = np.asarray(speedup(np.nan_to_num(a), g, s["c_measured"].to_numpy(float)))
    s["speedup_flop_model"] = np.asarray(speedup(np.nan_to_num(a), g, s["c_flops"].to_numpy(float)))
    cols = ["speedup_eq1_measured_c", "speedup_flop_model"]
    if calibration is not None:
        v = np.full(len(s), np.nan)
        for t in s["target"].unique():
            curve = verification_cost_curve(calibration, t).set_index("n_new_tokens")["v"]
            rows = (s["target"] == t).to_numpy()
            v[rows] = curve.reindex(s.loc[rows, "gamma"].astype(int) + 1).to_numpy(float)
        ok = np.isfinite(v)
        out = np.full(len(s), np.nan)
        out[ok] = np.asarray(wallclock_speedup(np.nan_to_num(a[ok]), g[ok], s["c_measured"].to_numpy(float)[ok], v[ok]))
        s["v_verify"] = v
        s["speedup_wallclock_measured_cv"] = out
        cols.append("speedup_wallclock_measured_cv")
    bad = ~np.isfinite(a)
    s.loc[bad, cols] = np.nan
    for col in cols:
        s[f"log_ratio_{col.removeprefix('speedup_')}"] = np.log(s[col] / s["speedup_median"])
    return s.reset_index(drop=True)


def _gamma_star_c(alpha, c):
    """Eq. 13 with a cost ratio c in place of N/M (Eq. 3 depends on N and M only through c = N/M);
    0 where c >= 1 (a draft step as slow as a target step never pays)."""
    a = np.asarray(alpha, dtype=float)
    cc = np.asarray(c, dtype=float)
    a, cc = np.broadcast_arrays(a, cc)
    out = np.zeros(a.shape)
    ok = np.isfinite(a) & np.isfinite(cc) & (cc > 0) & (cc < 1)
    out[ok] = np.asarray(optimal_lookahead(a[ok].clip(0, 1), cc[ok], 1.0))
    out[~(np.isfinite(a) & np.isfinite(cc))] = np.nan
    return out


def optimal_gamma_table(
    summary: pd.DataFrame, alpha: pd.DataFrame, alpha_column: str = "greedy_match_tf"
) -> pd.DataFrame:
    r"""Measured best lookahead of each pair against Eq. 13.

    Columns: ``best_gamma`` (measured, integer, among the gammas timed); ``gamma_eq13_flops``
    (Eq. 13 with :math:`c = N/M`, continuous, the paper's model); ``gamma_eq13_measured_c`` (Eq. 13
    with the measured step-cost ratio); ``gamma_eq1_measured_c_int`` (the best timed gamma under Eq. 1
    with the measured c: the integer counterpart of the previous one).
    """
    best = best_gamma_by_pair(summary)
    a = alpha.set_index(["draft", "target"])
    key = list(zip(best["draft"], best["target"]))
    al = a.loc[key, alpha_column].to_numpy(float)
    c_meas, n, m = (a.loc[key, col].to_numpy(float) for col in ("c_measured", "n_params_draft", "n_params_target"))
    best["alpha_used"] = al
    best["c_measured"] = c_meas
    best["c_flops"] = n / m
    ok = np.isfinite(al)
    g13 = np.full(len(best), np.nan)
    g13[ok] = np.asarray(optimal_lookahead(al[ok].clip(0, 1), n[ok], m[ok]))
    best["gamma_eq13_flops"] = g13
    best["gamma_eq13_measured_c"] = _gamma_star_c(al, c_meas)
    gammas = np.sort(summary.loc[summary["method"] == "speculative", "gamma"].unique()).astype(float)
    sp = np.asarray(speedup(np.nan_to_num(al)[:, None].clip(0, 1), gammas[None, :], np.nan_to_num(c_meas)[:, None]))
    best["gamma_eq1_measured_c_int"] = np.where(ok, gammas[np.argmax(sp, axis=1)], np.nan)
    return best


def flop_gain_measured(summary: pd.DataFrame, alpha: pd.DataFrame) -> pd.DataFrame:
    r"""The paper's FLOP metric evaluated with measured tokens per iteration (Eq. 3 without the alpha law).

    .. math:: \text{gain} = \mathcal{T}\cdot 2M = \frac{\overline{\text{tokens/iteration}}\; M}{M + \gamma N}

    per (pair, gamma), and per pair its maximum over gamma. Comparing its argmax draft with the
    wall-clock fastest one separates the cost model (FLOPs vs seconds) from the acceptance law.
    """
    _need(summary, "summary", ["draft", "target", "method", "gamma", "tokens_per_iteration_mean"])
    s = summary[summary["method"] == "speculative"].merge(
        alpha[["draft", "target", "n_params_draft", "n_params_target"]], on=["draft", "target"]
    )
    n, m, g = (s[c].to_numpy(float) for c in ("n_params_draft", "n_params_target", "gamma"))
    s["flop_gain"] = s["tokens_per_iteration_mean"].to_numpy(float) * m / (m + g * n)
    return s


def nstar_grid_for(m_max: float, n_min: float = 1e3, n_points: int = 2000) -> np.ndarray:
    """Log-spaced draft sizes from ``n_min`` up to (not including) ``m_max``: the N* search grid."""
    if not (0 < n_min < m_max):
        raise ValueError(f"n_min must lie in (0, m_max={m_max:g}), got {n_min!r}")
    if n_points < 3:
        raise ValueError(f"n_points must be >= 3, got {n_points}")
    return np.logspace(np.log10(n_min), np.log10(m_max), n_points + 1)[:-1]


def predicted_nstar(
    m_target, d_draft, d_target, plane: AlphaPlane, law: ChinchillaLaw, n_min: float = 1e3, n_points: int = 2000
) -> tuple[OptimalDraft, np.ndarray]:
    r"""SDSL's predicted optimal draft size from laws fitted on the ladder (our Table 5).

    .. math:: N^* = \arg\max_N \mathcal{T}(N; M, D, D'),\quad
              \tilde\alpha = A\,e^{L(N, D)} + B\,e^{L(M, D')} + C \qquad \text{(Eq. 9)}

    Calls :func:`sdsl_lib.laws.optimal.optimal_draft_size` with the fitted ``plane`` and ``law`` on
    :func:`nstar_grid_for` (``n_min`` up to the largest target). Returns the optimum and a boolean
    array, True where N* sits on the lower edge of the grid: the law then sees no acceptance gain
    from a bigger draft worth its FLOPs, and N* is "as small as the grid allows", not an interior
    maximum.
    """
    m = np.atleast_1d(np.asarray(m_target, dtype=float))
    grid = nstar_grid_for(float(m.max()), n_min, n_points)
    opt = optimal_draft_size(m_target, d_draft, d_target, n_grid=grid, plane=plane, law=law)
    edge = np.asarray(opt.n_star) <= grid[1]
    return opt, edge


def nstar_bootstrap(
    alpha: pd.DataFrame,
    law_draws: pd.DataFrame,
    m_target,
    d_draft,
    d_target,
    alpha_column: str = "alpha_tf",
    ppl_split: str = "val",
    n_min: float = 1e3,
    n_points: int = 600,
    seed: int = 0,
) -> np.ndarray:
    r"""Bootstrap distribution of the predicted N*: both fitted laws resampled together.

    Draw k pairs the Chinchilla law's k-th bootstrap draw (``law_draws``, from
    ``fit_chinchilla(..., bootstrap=K).draws``) with a plane refitted on pairs resampled with
    replacement, and maximises Eq. 9 with both. Draws whose plane cannot be fitted (a resample with
    a single draft perplexity) give NaN.

    Returns
    -------
    ndarray, shape (len(law_draws), n_targets)
    """
    _need(law_draws, "law_draws", ["E", "A", "B", "nu", "delta"])
    rng = np.random.default_rng(seed)
    m = np.atleast_1d(np.asarray(m_target, dtype=float))
    out = np.full((len(law_draws), m.size), np.nan)
    for k, (_, lw) in enumerate(law_draws.iterrows()):
        sample = alpha.iloc[rng.integers(0, len(alpha), len(alpha))]
        try:
            plane = fit_ladder_plane(sample, alpha_column, ppl_split).plane
        except ValueError:
            continue
        law = ChinchillaLaw(E=lw["E"], A=lw["A"], B=lw["B"], nu=lw["nu"], delta=lw["delta"], source="bootstrap draw")
        opt, _ = predicted_nstar(m, d_draft, d_target, plane, law, n_min, n_points)
        out[k] = np.atleast_1d(opt.n_star)
    return out


@dataclass(frozen=True)
class ChainPrediction:
    """SDSL's chain run on the ladder: law fitted on (N, D, loss), plane fitted on the pairs, N* per target."""

    law_fit: ChinchillaFit
    plane_fit: LadderPlane
    targets: (
        pd.DataFrame
    )  # target, m_target, d_draft, d_target, n_star, throughput, gamma_star, alpha, gain, at_grid_edge
    n_grid: np.ndarray


def predict_chain(
    data: MeasuredData,
    alpha_column: str = "alpha_tf",
    ppl_split: str = "val",
    params_column: str = "n_params",
    bootstrap: int = 0,
    seed: int = 0,
    n_min: float = 1e3,
    n_points: int = 2000,
    law_fit: ChinchillaFit | None = None,
    law_grid: dict | None = None,
) -> ChainPrediction:
    r"""Run SDSL's predictor end to end on the ladder (our Table 5).

    1. Eq. 2: :func:`fit_ladder_law` on ``loss_budget_points`` (``params_column`` plays N);
    2. Eq. 5: :func:`fit_ladder_plane` on the pairs (``alpha_column`` against ``ppl_split``
       perplexities);
    3. Eq. 9: :func:`predicted_nstar` for every target, with :math:`D` = the drafts' training tokens
       (their median: the ladder trains every draft on the same budget) and :math:`D'` = the
       target's.

    ``law_fit`` skips step 1 (pass one already fitted, e.g. with bootstrap draws); ``law_grid`` is
    the start grid of step 1 (see :func:`fit_ladder_law`).
    """
    if data.models is None or data.loss_budget_points is None or data.alpha is None:
        raise ValueError("data must hold models, loss_budget_points and alpha (load_measured with those tables)")
    fit = (
        law_fit
        if law_fit is not None
        else fit_ladder_law(data.loss_budget_points, params_column, bootstrap=bootstrap, seed=seed, grid=law_grid)
    )
    plane = fit_ladder_plane(data.alpha, alpha_column, ppl_split)
    m = data.models.set_index("model")
    tg = data.targets
    size_col = params_column
    m_t = m.loc[tg, size_col].to_numpy(float)
    d_draft = float(np.median(m.loc[data.drafts, "n_tokens"].to_numpy(float)))
    d_t = m.loc[tg, "n_tokens"].to_numpy(float)
    opt, edge = predicted_nstar(m_t, d_draft, d_t, plane.plane, fit.law, n_min, n_points)
    df = pd.DataFrame(
        {
            "target": tg,
            "m_target": m_t,
            "d_draft": d_draft,
            "d_target": d_t,
            "n_star": np.atleast_1d(opt.n_star),
            "throughput": np.atleast_1d(opt.throughput),
            "gamma_star": np.atleast_1d(opt.gamma_star),
            "alpha": np.atleast_1d(opt.alpha),
            "gain": np.atleast_1d(opt.gain),
            "at_grid_edge": np.atleast_1d(edge),
        }
    )
    return ChainPrediction(fit, plane, df, nstar_grid_for(float(m_t.max()), n_min, n_points))


# ---------------------------------------------------------------------------------------------
# Why wall-clock differs from FLOPs: step cost and verification cost
# ---------------------------------------------------------------------------------------------


def one_token_latency(calibration: pd.DataFrame) -> pd.DataFrame:
    """Each model's decode-step latency (one new token on a warm KV cache): ``model, role, n_params,
    latency_s, latency_p025_s, latency_p975_s``."""
    _need(calibration, "calibration", FILES["cost_calibration"][1])
    one = calibration[calibration["n_new_tokens"] == 1]
    return (
        one[["model", "role", "n_params"]]
        .assign(
            latency_s=one["latency_median_s"].to_numpy(float),
            latency_p025_s=one["latency_p025_s"].to_numpy(float),
            latency_p975_s=one["latency_p975_s"].to_numpy(float),
        )
        .sort_values("n_params")
        .reset_index(drop=True)
    )


def step_cost_model(calibration: pd.DataFrame) -> dict:
    r"""Affine model of the decode-step time across the ladder: :math:`t(N) = t_0 + k N`.

    SDSL's :math:`c = N/M` assumes :math:`t_0 = 0`. A fixed per-step cost :math:`t_0` (Python,
    framework dispatch, kernel launches; at batch 1 it is not amortised) keeps the draft's step from
    getting cheaper than :math:`t_0` however small the draft, so the measured
    :math:`c = t(N)/t(M) \ge t_0/t(M)`. Ordinary least squares over the models' one-token latencies.

    Returns
    -------
    dict with ``t0_s``, ``t0_ci95``, ``k_s_per_param``, ``k_ci95``, ``r2``, ``n_models`` and
    ``c_floor_by_target`` (:math:`t_0 / t(M)` per target: the smallest c any draft can reach).
    """
    lat = one_token_latency(calibration)
    if len(lat) < 3:
        raise ValueError(f"calibration needs at least 3 models for an affine fit with an interval, got {len(lat)}")
    res = sm.OLS(lat["latency_s"].to_numpy(float), sm.add_constant(lat["n_params"].to_numpy(float))).fit()
    ci = np.asarray(res.conf_int(0.05))
    t0, k = (float(v) for v in res.params)
    targets = lat[lat["role"] == "target"]
    floor = {r["model"]: t0 / r["latency_s"] for _, r in targets.iterrows()}
    return {
        "t0_s": t0,
        "t0_ci95": [float(ci[0, 0]), float(ci[0, 1])],
        "k_s_per_param": k,
        "k_ci95": [float(ci[1, 0]), float(ci[1, 1])],
        "r2": float(res.rsquared),
        "n_models": int(len(lat)),
        "c_floor_by_target": floor,
    }


def verification_cost_curve(calibration: pd.DataFrame, model: str) -> pd.DataFrame:
    r"""Cost of scoring T tokens in one pass relative to one: :math:`v(T) = t(T)/t(1)` for ``model``.

    Eq. 1 takes :math:`v(\gamma + 1) = 1` (verification as cheap as one decode step). Returns
    ``n_new_tokens, v, v_p025, v_p975`` (the percentiles are those of t(T) divided by the median t(1)).
    """
    _need(calibration, "calibration", FILES["cost_calibration"][1])
    c = calibration[calibration["model"] == model].sort_values("n_new_tokens")
    if c.empty:
        raise ValueError(f"model must be one of {sorted(calibration['model'].unique())}, got {model!r}")
    t1 = float(c.loc[c["n_new_tokens"] == 1, "latency_median_s"].iloc[0])
    return pd.DataFrame(
        {
            "n_new_tokens": c["n_new_tokens"].astype(int).to_numpy(),
            "v": c["latency_median_s"].to_numpy(float) / t1,
            "v_p025": c["latency_p025_s"].to_numpy(float) / t1,
            "v_p975": c["latency_p975_s"].to_numpy(float) / t1,
        }
    )


def wallclock_speedup(alpha, gamma, c, v=1.0):
    r"""Eq. 1 with a verification pass that costs :math:`v` target steps instead of one.

    .. math:: S = \frac{1 - \alpha^{\gamma+1}}{(1 - \alpha)(\gamma c + v)}
              = \frac{1}{v}\, S_{\text{Eq. 1}}\!\left(\alpha, \gamma, \frac{c}{v}\right)

    with :math:`v = v(\gamma + 1)` from :func:`verification_cost_curve`. :math:`v = 1` is Eq. 1.

    Examples
    --------
    >>> round(wallclock_speedup(0.8, 4, 0.05), 4) == round(speedup(0.8, 4, 0.05), 4)
    True
    >>> round(wallclock_speedup(0.8, 4, 0.05, 1.5), 4)
    1.9774
    """
    v = np.asarray(v, dtype=float)
    if (v <= 0).any():
        raise ValueError(f"v must be > 0 (a verification pass takes time), got {v[v <= 0].ravel()[0]!r}")
    c = np.asarray(c, dtype=float)
    out = np.asarray(speedup(alpha, gamma, c / v)) / v
    return out.item() if out.ndim == 0 else out


def latency_optimal_draft(
    m_target: float,
    d_draft: float,
    d_target: float,
    plane: AlphaPlane,
    law: ChinchillaLaw,
    t0_s: float,
    k_s_per_param: float,
    t_target_s: float,
    v_curve: pd.DataFrame,
    gammas,
    n_grid,
) -> tuple[dict, pd.DataFrame]:
    r"""The draft size that maximises predicted wall-clock speed-up (not tokens per FLOP).

    Same acceptance chain as Eq. 9 (:func:`sdsl_lib.laws.optimal.predicted_alpha` with the fitted plane and
    law), but the cost of a draft step is the affine :math:`t(N) = t_0 + kN` of
    :func:`step_cost_model` relative to the target's measured step, and verifying :math:`\gamma + 1`
    tokens costs :math:`v(\gamma+1)` target steps (:func:`verification_cost_curve`); the lookahead is
    the best integer among ``gammas`` with a measured :math:`v`.

    Returns
    -------
    best : dict
        ``n_star``, ``speedup``, ``gamma``, ``alpha``, ``c`` at the maximum, ``at_grid_edge``.
    curve : DataFrame
        ``n_draft, alpha, c, gamma, speedup`` along ``n_grid``.
    """
    n = np.asarray(n_grid, dtype=float)
    n = n[n < m_target]
    if n.size == 0:
        raise ValueError(f"n_grid must hold draft sizes below m_target={m_target:g}")
    v_map = dict(zip(v_curve["n_new_tokens"].astype(int), v_curve["v"].astype(float)))
    g = np.array([x for x in gammas if int(x) + 1 in v_map], dtype=float)
    if g.size == 0:
        raise ValueError("gammas must include a lookahead whose gamma + 1 has a measured verification cost")
    v = np.array([v_map[int(x) + 1] for x in g])
    a = np.asarray(predicted_alpha(n, m_target, d_draft, d_target, plane, law), dtype=float)
    c = (t0_s + k_s_per_param * n) / t_target_s
    s = np.asarray(wallclock_speedup(a[:, None], g[None, :], np.maximum(c, 0.0)[:, None], v[None, :]))
    j = np.argmax(s, axis=1)
    best_s = s[np.arange(n.size), j]
    i = int(np.argmax(best_s))
    curve = pd.DataFrame({"n_draft": n, "alpha": a, "c": c, "gamma": g[j], "speedup": best_s})
    best = {
        "n_star": float(n[i]),
        "speedup": float(best_s[i]),
        "gamma": float(g[j[i]]),
        "alpha": float(a[i]),
        "c": float(c[i]),
        "at_grid_edge": bool(i == 0 or i == n.size - 1),
    }
    return best, curve


# ---------------------------------------------------------------------------------------------
# Latency against distance to N* (Table 6, Figure 4)
# ---------------------------------------------------------------------------------------------


def latency_table(
    throughput: pd.DataFrame,
    models: pd.DataFrame,
    n_star: dict,
    gamma_by_pair: pd.DataFrame | None = None,
    size_column: str = "n_params",
) -> pd.DataFrame:
    r"""Table 6 on the ladder: TTFT, TTOT and TPOT per pair with 95% intervals over prompts.

    Parameters
    ----------
    throughput : DataFrame
        ``throughput.csv`` (per prompt).
    models : DataFrame
        ``models.csv`` (parameter counts).
    n_star : dict
        Target name -> predicted N* (the x axis is :math:`|N - N^*|/M`).
    gamma_by_pair : DataFrame, optional
        ``draft, target, best_gamma``: which lookahead represents each pair (default: its
        best-median-speed-up gamma, :func:`best_gamma_by_pair` on the per-prompt data).
    size_column : str
        Column of ``models`` holding N and M (the one the law and N* used).

    Notes
    -----
    TTOT is the whole generation call (``time_s``), TPOT = TTOT / new tokens. TTFT is the prefill
    time (``prefill_time_s``) when the measurement recorded it; otherwise it is derived as
    ``time_s - draft_time_s - verify_time_s`` (prefill plus the loop's bookkeeping outside the timed
    draft and verify regions: an upper bound on the prefill) and ``ttft_source`` says so.
    The autoregressive target runs are listed as ``draft = "(none)"`` rows for reference.
    """
    _need(throughput, "throughput", FILES["throughput"][1])
    size = models.set_index("model")[size_column].astype(float)
    tp = throughput.copy()
    if gamma_by_pair is None:
        s = (
            tp[tp["method"] == "speculative"]
            .groupby(["draft", "target", "gamma"], as_index=False)["speedup_vs_autoregressive"]
            .median()
        )
        s = s.rename(columns={"speedup_vs_autoregressive": "speedup_median"}).assign(
            method="speculative", speedup_p025=np.nan, speedup_p975=np.nan
        )
        gamma_by_pair = best_gamma_by_pair(s)
    if "prefill_time_s" in tp.columns and tp["prefill_time_s"].notna().any():
        tp["ttft_s"] = tp["prefill_time_s"]
        source = "prefill_time_s"
    else:
        tp["ttft_s"] = tp["time_s"] - tp.get("draft_time_s", np.nan) - tp.get("verify_time_s", np.nan)
        source = "time_s - draft_time_s - verify_time_s"
    tp["ttot_s"] = tp["time_s"]
    tp["tpot_s"] = tp["time_s"] / tp["new_tokens"]
    rows = []
    sel = tp[tp["method"] == "speculative"].merge(
        gamma_by_pair[["draft", "target", "best_gamma"]], on=["draft", "target"]
    )
    sel = sel[sel["gamma"] == sel["best_gamma"]]
    groups = [(k, g) for k, g in sel.groupby(["target", "draft"], sort=False)]
    ar = tp[tp["method"] == "autoregressive"]
    groups += [((t, "(none)"), g) for t, g in ar.groupby("target", sort=False)]
    for (t, d), g in groups:
        m = size[t]
        n = size[d] if d in size.index else math.nan
        row = {
            "target": t,
            "draft": d,
            "m_target": m,
            "n_draft": n,
            "gamma": int(g["gamma"].iloc[0]),
            "n_prompts": int(len(g)),
            "n_star": float(n_star.get(t, math.nan)),
            "distance": abs(n - n_star.get(t, math.nan)) / m if d != "(none)" else math.nan,
            "ttft_source": source if d != "(none)" else "time_s - (no loop timers)",
        }
        for metric in ("ttft_s", "ttot_s", "tpot_s"):
            vals = g[metric].to_numpy(float) if not (d == "(none)" and metric == "ttft_s") else np.array([])
            mu, lo, hi = mean_ci(vals)
            row[metric], row[f"{metric}_ci95_lower"], row[f"{metric}_ci95_upper"] = mu, lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


def paired_time_difference(
    throughput: pd.DataFrame, target: str, a: tuple, b: tuple, metric: str = "time_s"
) -> tuple[float, float, float]:
    """Mean per-prompt difference of a timing between two configurations of one target, with a t-interval.

    Every configuration of a target is timed on the same prompts, so the difference is paired by
    ``prompt_idx`` (machine-load drift between prompts cancels). ``a`` and ``b`` are
    ``(draft, gamma)``; returns ``(mean of a - b, ci95_lower, ci95_upper)`` in the metric's unit.

    Examples
    --------
    >>> tp = pd.DataFrame({"target": "t", "draft": ["x"] * 3 + ["y"] * 3, "gamma": 2, "method": "speculative",
    ...                    "prompt_idx": [0, 1, 2] * 2, "time_s": [1.0, 2.0, 3.0, 0.9, 1.8, 2.9]})
    >>> [round(v, 3) for v in paired_time_difference(tp, "t", ("x", 2), ("y", 2))]
    [0.133, -0.01, 0.277]
    """
    _need(throughput, "throughput", ["target", "draft", "gamma", "prompt_idx", metric])
    t = throughput[throughput["target"] == target]

    def one(cfg):
        d, g = cfg
        s = t[(t["draft"] == d) & (t["gamma"] == g)].groupby("prompt_idx")[metric].mean()
        if s.empty:
            raise ValueError(f"no timed runs of draft {d!r} at gamma {g} for target {target!r}")
        return s

    sa, sb = one(a), one(b)
    common = sa.index.intersection(sb.index)
    return mean_ci((sa.loc[common] - sb.loc[common]).to_numpy(float))
