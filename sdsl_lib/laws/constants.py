"""Every published constant the laws use, each a frozen dataclass with its citation.

The paper reuses symbols (A, B, C name both the acceptance plane of Eq. 5 and the Chinchilla law of
Eq. 2; gamma is both the lookahead and a regression coefficient of Eq. 10). Here each constant lives
in its own dataclass so the names cannot collide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "AlphaPlane",
    "ChinchillaLaw",
    "NstarLinearLaw",
    "NstarFullLaw",
    "Table7Grid",
    "TABLE3_PLANE",
    "BESIROGLU_2024",
    "HOFFMANN_2022",
    "TABLE8_NSTAR_FULL",
    "TABLE9_NSTAR_LINEAR",
    "TABLE7_GRID",
    "TABLE7_GRID_AS_PRINTED",
    "PAPER",
]

#: The paper every constant below refers to.
PAPER = "Bozorgkhoo & Molybog (2026), Speculative Decoding Scaling Laws, arXiv:2603.11053"


@dataclass(frozen=True)
class AlphaPlane:
    r"""Coefficients of the acceptance plane :math:`\alpha = A x + B y + C` (Eq. 5).

    ``x`` is the draft's perplexity and ``y`` the target's. Standard errors are optional (``None``
    for a plane fitted without them).
    """

    A: float
    B: float
    C: float
    A_se: float | None = None
    B_se: float | None = None
    C_se: float | None = None
    source: str = ""


@dataclass(frozen=True)
class ChinchillaLaw:
    r"""Pre-training law :math:`L(N, D) = E + A / N^{\nu} + B / D^{\delta}` in nats (Eq. 2).

    ``nu`` and ``delta`` are the paper's names for the exponents (Chinchilla's alpha and beta).
    Standard errors are optional.
    """

    E: float
    A: float
    B: float
    nu: float
    delta: float
    E_se: float | None = None
    A_se: float | None = None
    B_se: float | None = None
    nu_se: float | None = None
    delta_se: float | None = None
    source: str = ""


@dataclass(frozen=True)
class NstarLinearLaw:
    r"""Pooled draft-size law :math:`N^* = \mu M + M_0` (Eq. 11, Table 9); ``*_moe`` = 95% half-widths."""

    mu: float
    M0: float
    mu_moe: float
    M0_moe: float
    r2: float
    source: str = ""

    def __call__(self, m_target):
        """Evaluate :math:`\\mu M + M_0`."""
        return self.mu * np.asarray(m_target, dtype=float) + self.M0


@dataclass(frozen=True)
class NstarFullLaw:
    r"""Four-term law :math:`N^*/M = \mu + M_0/M + \gamma \ln D + \gamma' \ln D'` (Eq. 10, Table 8).

    ``gamma_lnD`` and ``gamma_prime_lnDprime`` are regression coefficients, not lookaheads.
    """

    mu: float
    M0: float
    gamma_lnD: float
    gamma_prime_lnDprime: float
    mu_moe: float
    M0_moe: float
    gamma_lnD_moe: float
    gamma_prime_lnDprime_moe: float
    r2: float
    source: str = ""


@dataclass(frozen=True)
class Table7Grid:
    """The mesh of the numerical optimisation (Table 7): log-spaced N, M, D and D'."""

    n_low: float
    n_high: float
    n_points: int
    m_low: float
    m_high: float
    m_points: int
    d_low: float
    d_high: float
    d_points: int
    source: str = ""

    def n_grid(self) -> np.ndarray:
        return np.logspace(np.log10(self.n_low), np.log10(self.n_high), self.n_points)

    def m_grid(self) -> np.ndarray:
        return np.logspace(np.log10(self.m_low), np.log10(self.m_high), self.m_points)

    def d_grid(self) -> np.ndarray:
        return np.logspace(np.log10(self.d_low), np.log10(self.d_high), self.d_points)


TABLE3_PLANE = AlphaPlane(
    A=-0.0067,
    B=0.012971,
    C=0.642084,
    A_se=0.000607,
    B_se=0.001545,
    C_se=0.021228,
    source=f"{PAPER}, Table 3 (Eq. 5 fitted on the 130 pairs of Tables 1-2)",
)

BESIROGLU_2024 = ChinchillaLaw(
    E=1.8172,
    A=482.01,
    B=2085.43,
    nu=0.3478,
    delta=0.3658,
    # Standard errors as reported by Besiroglu et al. (2024); SDSL prints only the estimates.
    E_se=0.03,
    A_se=124.58,
    B_se=1293.23,
    nu_se=0.02,
    delta_se=0.02,
    source=(
        "Besiroglu, Erdil, Barnett & You (2024), Chinchilla scaling: a replication attempt, "
        "arXiv:2404.10102; the law SDSL uses in Eq. 7-8 (with the exponent signs corrected)"
    ),
)

HOFFMANN_2022 = ChinchillaLaw(
    E=1.69,
    A=406.4,
    B=410.7,
    nu=0.34,
    delta=0.28,
    source="Hoffmann et al. (2022), Training compute-optimal LLMs (Chinchilla), arXiv:2203.15556, approach 3",
)

TABLE9_NSTAR_LINEAR = NstarLinearLaw(
    mu=2.71e-3,
    M0=8.71e7,
    mu_moe=4.38e-5,
    M0_moe=2.18e6,
    r2=0.9865,
    source=f"{PAPER}, Table 9 (Eq. 11, OLS with HC3 errors, 288 grid optima)",
)

TABLE8_NSTAR_FULL = NstarFullLaw(
    mu=4.89e-3,
    M0=7.23e7,
    gamma_lnD=-6.07e-5,
    gamma_prime_lnDprime=1.16e-6,
    mu_moe=7.64e-4,
    M0_moe=1.46e6,
    gamma_lnD_moe=1.79e-5,
    gamma_prime_lnDprime_moe=1.78e-5,
    r2=0.978,
    source=f"{PAPER}, Table 8 (Eq. 10, OLS with HC3 errors, natural log)",
)

#: Table 7 as the paper most plausibly used it. The printed upper limit of D and D' is 1e13, which does
#: not reproduce the published fits of Tables 8-9; upper limits from about 9e13 to 1.2e14 do, and 1e14
#: is the round value in that range (erratum E4 in data/paper/errata.csv), so it is the default here.
TABLE7_GRID = Table7Grid(
    n_low=1e8,
    n_high=1e10,
    n_points=10_000,
    m_low=13e9,
    m_high=110e9,
    m_points=8,
    d_low=1e12,
    d_high=1e14,
    d_points=6,
    source=f"{PAPER}, Table 7 (D, D' upper limit 1e14 instead of the printed 1e13: erratum E4, most plausible reading)",
)

#: Table 7 exactly as printed (D and D' up to 1e13), for comparison.
TABLE7_GRID_AS_PRINTED = Table7Grid(
    n_low=1e8,
    n_high=1e10,
    n_points=10_000,
    m_low=13e9,
    m_high=110e9,
    m_points=8,
    d_low=1e12,
    d_high=1e13,
    d_points=6,
    source=f"{PAPER}, Table 7 as printed",
)
