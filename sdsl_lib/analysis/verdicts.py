r"""Verdicts as data: a claim, an estimate with its interval and unit, a region fixed before looking.

Rule (the same for every measured claim of notebooks 10-13):

* the claim names a **region** of the estimate where it holds, fixed before the data are seen: an
  equivalence band :math:`|x - x_0| \le m` (:func:`equivalence`), or a side of a threshold
  :math:`x < t` / :math:`x > t` (:func:`one_sided`);
* **supported** when the whole interval lies inside the region;
* **contradicted** when the whole interval lies outside it;
* **inconclusive** otherwise, and whenever the interval is not finite.

A point estimate without an interval is never a verdict. Every :class:`Verdict` carries its unit,
region, rule and outcome into the results JSON; ``one_seed`` marks claims comparing models that
were each trained once (seed variance not propagated).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from sdsl_lib.analysis.stats import Interval

__all__ = ["OUTCOMES", "Verdict", "judge", "equivalence", "one_sided", "verdict_frame", "verdict_lines"]

OUTCOMES = ("supported", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Verdict:
    """One measured claim and how the rule judged it.

    ``margin`` is the region ``[low, high]`` where the claim holds (``None`` for an open end).
    """

    claim: str
    estimate: float
    ci: tuple
    unit: str
    margin: tuple
    rule: str
    outcome: str
    one_seed: bool = False
    note: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci)
        d["margin"] = [None if not math.isfinite(m) else m for m in self.margin]
        return d


def _outcome(lo: float, hi: float, low: float, high: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if lo > hi:
        raise ValueError(f"ci must have lower <= upper, got [{lo!r}, {hi!r}]")
    if low <= lo and hi <= high:
        return "supported"
    if hi < low or lo > high:
        return "contradicted"
    return "inconclusive"


def judge(claim: str, interval: Interval, region: tuple, rule: str, one_seed: bool = False, note: str = "") -> Verdict:
    """Apply the rule: the interval inside ``region`` -> supported, outside -> contradicted.

    Parameters
    ----------
    claim : str
        What is claimed, in words.
    interval : Interval
        The estimate and its interval (:mod:`sdsl_lib.analysis.stats`), with its unit.
    region : (low, high)
        Where the claim holds; ``-inf`` / ``inf`` for an open side. Fixed before looking.
    rule : str
        The region in words (goes into the results JSON).

    Examples
    --------
    >>> iv = Interval(0.01, 0.005, 0.015, "pair", 10, 1000)
    >>> judge("x is about 0", iv, (-0.02, 0.02), "|x| <= 0.02").outcome
    'supported'
    >>> judge("x is negative", iv, (-math.inf, 0.0), "x < 0").outcome
    'contradicted'
    >>> judge("x above 0.01", iv, (0.01, math.inf), "x > 0.01").outcome
    'inconclusive'
    """
    low, high = (float(v) for v in region)
    if math.isnan(low) or math.isnan(high) or low > high:
        raise ValueError(f"region must be (low, high) with low <= high, got {region!r}")
    lo, hi = float(interval.lower), float(interval.upper)
    out = _outcome(lo, hi, low, high)
    return Verdict(claim, float(interval.estimate), (lo, hi), interval.unit, (low, high), rule, out, one_seed, note)


def equivalence(claim: str, interval: Interval, reference: float, margin: float, **kw) -> Verdict:
    """The claim "the value equals ``reference``" with an equivalence margin: region ref +- margin."""
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    rule = f"|estimate - {reference:g}| <= {margin:g}"
    return judge(claim, interval, (reference - margin, reference + margin), rule, **kw)


def one_sided(claim: str, interval: Interval, threshold: float, side: str, **kw) -> Verdict:
    """The claim "the value is below / above ``threshold``" (``side`` "below" or "above")."""
    if side not in ("below", "above"):
        raise ValueError(f"side must be 'below' or 'above', got {side!r}")
    region = (-math.inf, threshold) if side == "below" else (threshold, math.inf)
    rule = f"estimate {'<' if side == 'below' else '>'} {threshold:g}"
    return judge(claim, interval, region, rule, **kw)


def verdict_frame(verdicts) -> pd.DataFrame:
    """The verdicts as a table (one row each)."""
    return pd.DataFrame([v.to_dict() for v in verdicts])


def verdict_lines(verdicts) -> list[str]:
    """One printable line per verdict: outcome, estimate, interval, unit, rule."""
    lines = []
    for v in verdicts:
        seed = "; one seed per model" if v.one_seed else ""
        lines.append(
            f"- {v.claim}: {v.outcome.upper()} (estimate {v.estimate:.4g}, 95% [{v.ci[0]:.4g}, {v.ci[1]:.4g}] "
            f"over {v.unit}; rule {v.rule}{seed})"
        )
    return lines
