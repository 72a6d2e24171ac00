r"""The draft-size laws fitted to the grid optima: Eq. 10 (Table 8) and Eq. 11 (Table 9).

Both are OLS fits with HC3 (MacKinnon-White) errors on the output of
:func:`sdsl_lib.laws.optimal.nstar_grid`, laid out like the paper's tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from sdsl_lib.laws._validate import as_array, check_design, check_positive

__all__ = ["NstarFit", "fit_nstar_linear", "fit_nstar_full"]


@dataclass(frozen=True)
class NstarFit:
    """An OLS fit with HC3 errors, laid out like Tables 8-9."""

    table: pd.DataFrame  # parameter, estimate, std_error, margin_of_error_95, ci95_lower, ci95_upper
    r2: float
    r2_adj: float
    n: int

    def estimate(self, name: str) -> float:
        return float(self.table.set_index("parameter").loc[name, "estimate"])


def _ols_hc3(y: np.ndarray, design: np.ndarray, names) -> tuple[pd.DataFrame, object]:
    """OLS with HC3 errors, laid out like Tables 8-9.

    The columns are scaled to unit norm before fitting and the results scaled back (OLS estimates,
    HC3 errors and intervals are all equivariant under column scaling). Unscaled, the design of
    Eq. 10 (columns 1, 1/M, ln D, ln D' with M ~ 1e10) has condition number ~1e12 and the solver
    loses about four digits of every estimate.
    """
    check_design(f"the columns of df ({', '.join(names)})", design)
    scale = np.linalg.norm(design, axis=0)
    res = sm.OLS(y, design / scale).fit(cov_type="HC3")
    ci = np.asarray(res.conf_int(0.05)) / scale[:, None]
    table = pd.DataFrame(
        {
            "parameter": names,
            "estimate": np.asarray(res.params) / scale,
            "std_error": np.asarray(res.bse) / scale,
            "margin_of_error_95": (ci[:, 1] - ci[:, 0]) / 2.0,
            "ci95_lower": ci[:, 0],
            "ci95_upper": ci[:, 1],
        }
    )
    return table, res


def _check_grid_df(df: pd.DataFrame, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"df is missing columns {missing}; pass the output of nstar_grid()")
    if len(df) < 5:
        raise ValueError(f"df needs at least 5 grid optima, got {len(df)}")
    for c in columns:
        check_positive(f"df[{c!r}]", as_array(f"df[{c!r}]", df[c]))


def fit_nstar_linear(df: pd.DataFrame) -> NstarFit:
    r"""Pooled OLS :math:`N^* = \mu M + M_0` with HC3 errors (Eq. 11, Table 9).

    Data-size variation is left in the residual. Margins are 95% normal half-widths of the HC3
    intervals (statsmodels ``cov_type="HC3"``).

    Parameters
    ----------
    df : DataFrame
        Grid optima with columns ``m_target, n_star`` (the output of :func:`nstar_grid`); at least
        5 rows.

    Returns
    -------
    NstarFit
        Estimates, HC3 standard errors, margins and CIs of ``mu, M0``, with :math:`R^2`.

    References
    ----------
    SDSL §4.3, Eq. 11 and Table 9.

    Examples
    --------
    >>> df = pd.DataFrame({"m_target": [1e10, 2e10, 4e10, 8e10, 1.6e11], "n_star": [1.1e8, 1.4e8, 2.0e8, 3.1e8, 5.5e8]})
    >>> round(fit_nstar_linear(df).estimate("mu"), 5)
    0.00292
    """
    _check_grid_df(df, ["m_target", "n_star"])
    design = np.column_stack([df["m_target"].to_numpy(float), np.ones(len(df))])
    table, res = _ols_hc3(df["n_star"].to_numpy(float), design, ["mu", "M0"])
    return NstarFit(table, float(res.rsquared), float(res.rsquared_adj), len(df))


def fit_nstar_full(df: pd.DataFrame) -> NstarFit:
    r"""OLS :math:`N^*/M = \mu + M_0/M + \gamma\ln D + \gamma'\ln D'` with HC3 errors (Eq. 10, Table 8).

    The logarithms are natural (the base that reproduces Table 8). ``gamma_lnD`` and
    ``gamma_prime_lnDprime`` are regression coefficients, not lookaheads. Margins are 95% normal
    half-widths of the HC3 intervals.

    Parameters
    ----------
    df : DataFrame
        Grid optima with columns ``m_target, d_draft, d_target, n_star`` (the output of
        :func:`nstar_grid`); at least 5 rows.

    Returns
    -------
    NstarFit
        Estimates, HC3 standard errors, margins and CIs of ``mu, M0, gamma_lnD,
        gamma_prime_lnDprime``, with :math:`R^2`.

    References
    ----------
    SDSL §4.3, Eq. 10 and Table 8.

    Examples
    --------
    >>> m, d, dp = (np.array(v) for v in np.meshgrid([1e10, 3e10, 1e11], [1e12, 1e13], [1e12, 1e13]))
    >>> df = pd.DataFrame({"m_target": m.ravel(), "d_draft": d.ravel(), "d_target": dp.ravel()})
    >>> df["n_star"] = df.m_target * (3e-3 - 5e-5 * np.log(df.d_draft)) + 7e7
    >>> fit = fit_nstar_full(df)
    >>> f"{fit.estimate('mu'):.2e} {fit.estimate('M0'):.2e} {fit.estimate('gamma_lnD'):.2e}"
    '3.00e-03 7.00e+07 -5.00e-05'
    """
    _check_grid_df(df, ["m_target", "d_draft", "d_target", "n_star"])
    m = df["m_target"].to_numpy(float)
    design = np.column_stack(
        [np.ones(len(df)), 1.0 / m, np.log(df["d_draft"].to_numpy(float)), np.log(df["d_target"].to_numpy(float))]
    )
    table, res = _ols_hc3(df["n_star"].to_numpy(float) / m, design, ["mu", "M0", "gamma_lnD", "gamma_prime_lnDprime"])
    return NstarFit(table, float(res.rsquared), float(res.rsquared_adj), len(df))
