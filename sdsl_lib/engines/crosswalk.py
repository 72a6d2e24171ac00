r"""One language for every engine's acceptance numbers: counters in, Leviathan's :math:`\alpha` out.

Every engine counts the same events under different names and conventions. Write, for one
verification step (a "draft"), :math:`k` for the lookahead (vLLM's ``num_speculative_tokens``,
the paper's :math:`\gamma`), :math:`a \in \{0..k\}` for the draft tokens accepted (bonus token
excluded), and over a workload :math:`D` drafts, :math:`T` draft tokens, :math:`A = \sum a`
accepted, :math:`c_i` drafts with :math:`a > i` (accepted at 0-based position :math:`i`):

.. math::

    L = 1 + A/D \quad\text{(mean acceptance length, bonus included)}, \qquad
    r = A/T \quad\text{(draft acceptance rate)},

    \rho_i = c_i / D \quad\text{(per-position rate, vLLM's log line)}, \qquad
    \kappa_i = c_i / c_{i-1},\ c_{-1} = D \quad\text{(conditional rate)}.

Under Leviathan et al.'s i.i.d. model each position is accepted with probability :math:`\alpha`, so
:math:`\kappa_i = \alpha` for every i and :math:`\mathbb{E}[a] = \alpha(1-\alpha^k)/(1-\alpha)`
(App. B's :math:`n`, :func:`sdsl_lib.laws.speculation.expected_accepted_drafts`); :math:`L` is
then Eq. 12's TAR. :func:`acceptance_report` inverts that mean for :math:`\alpha`, gives an interval
and tests whether the :math:`\kappa_i` are equal.

The converters map other engines' statistics onto :class:`SpecCounters`; docs/engines.md tabulates
what each engine calls what.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, stats

from sdsl_lib.laws.acceptance import alpha_from_tar, tar_model

__all__ = [
    "SpecCounters",
    "counters_from_accept_counts",
    "alpha_from_mean_accepted",
    "iid_departure_test",
    "acceptance_report",
    "alpha_across_lookaheads",
    "from_hf_assisted",
    "from_sglang",
    "from_trtllm",
    "from_llamacpp",
]

NGRAM_NOTE = (
    "ngram: num_drafts counts only the steps whose n-gram lookup found a match; steps without a "
    "match are plain decoding steps and appear in no counter, so these rates describe matched steps only"
)


@dataclass(frozen=True)
class SpecCounters:
    """Cumulative speculative-decoding counts in vLLM's convention (bonus token excluded).

    ``num_drafts`` and ``accepted_per_pos`` are ``None`` where an engine does not report them.
    ``a - b`` subtracts a snapshot ``b`` taken earlier on the same engine.
    """

    num_drafts: int | None
    num_draft_tokens: int
    accepted: int
    accepted_per_pos: tuple[int, ...] | None = None
    engine: str = "vllm"
    method: str | None = None

    def __post_init__(self):
        for name in ("num_drafts", "num_draft_tokens", "accepted"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or v < 0):
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.accepted > self.num_draft_tokens:
            raise ValueError(f"accepted ({self.accepted}) must not exceed num_draft_tokens ({self.num_draft_tokens})")
        pos = self.accepted_per_pos
        if pos is not None:
            if any(int(c) != c or c < 0 for c in pos):
                raise ValueError("accepted_per_pos must hold non-negative integers")
            if any(b > a for a, b in zip(pos, pos[1:])):
                raise ValueError(
                    f"accepted_per_pos must be non-increasing (a draft stops at its first rejection), got {pos}"
                )
            if sum(pos) != self.accepted:
                raise ValueError(f"accepted_per_pos must sum to accepted ({self.accepted}), got {sum(pos)}")
            if self.num_drafts is not None and pos and pos[0] > self.num_drafts:
                raise ValueError(f"accepted_per_pos[0] ({pos[0]}) must not exceed num_drafts ({self.num_drafts})")

    def __sub__(self, before: SpecCounters) -> SpecCounters:
        def diff(a, b, name):
            if a is None or b is None:
                return None
            if a < b:
                raise ValueError(
                    f"{name} fell from {b} to {a}: the snapshots are not from one engine run, or are swapped"
                )
            return a - b

        pos = None
        if self.accepted_per_pos is not None and before.accepted_per_pos is not None:
            k = max(len(self.accepted_per_pos), len(before.accepted_per_pos))
            pa = list(self.accepted_per_pos) + [0] * (k - len(self.accepted_per_pos))
            pb = list(before.accepted_per_pos) + [0] * (k - len(before.accepted_per_pos))
            pos = tuple(diff(a, b, f"accepted_per_pos[{i}]") for i, (a, b) in enumerate(zip(pa, pb)))
        return replace(
            self,
            num_drafts=diff(self.num_drafts, before.num_drafts, "num_drafts"),
            num_draft_tokens=diff(self.num_draft_tokens, before.num_draft_tokens, "num_draft_tokens"),
            accepted=diff(self.accepted, before.accepted, "accepted"),
            accepted_per_pos=pos,
        )


def counters_from_accept_counts(accepted_per_draft, k: int, engine: str = "sdsl", draft_lengths=None) -> SpecCounters:
    """Counters from one accepted-draft count per verification step (bonus excluded), e.g. our own loop's.

    Parameters
    ----------
    accepted_per_draft : array_like of int
        :math:`a_j \\in [0, k]` for each draft j.
    k : int
        Lookahead :math:`k \\ge 1`.
    draft_lengths : array_like of int, optional
        Tokens proposed in each draft (default: all :math:`k`).
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    a = np.asarray(accepted_per_draft)
    if a.ndim != 1 or (a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() > k)):
        raise ValueError(f"accepted_per_draft must be a 1-D array of integers in [0, {k}]")
    lengths = np.full(a.size, int(k)) if draft_lengths is None else np.asarray(draft_lengths)
    if lengths.shape != a.shape or (a > lengths).any():
        raise ValueError("draft_lengths must match accepted_per_draft and be >= it elementwise")
    pos = tuple(int((a > i).sum()) for i in range(int(k)))
    return SpecCounters(int(a.size), int(lengths.sum()), int(a.sum()), pos, engine=engine)


def _mean_accepted(alpha: float, k: int) -> float:
    return float(tar_model(alpha, k, counts_bonus=False))


def alpha_from_mean_accepted(mean_accepted: float, k: int) -> float:
    r"""Invert :math:`\mathbb{E}[a] = \alpha(1-\alpha^k)/(1-\alpha)` (App. B's :math:`n`) at one lookahead.

    ``alpha_from_tar`` needs two or more lookaheads (its residual variance has n - 1 degrees of
    freedom); with one :math:`k` the equation has exactly one root in [0, 1], found by Brent's
    method on the project's own Eq. 12 (:func:`sdsl_lib.laws.acceptance.tar_model`).

    Parameters
    ----------
    mean_accepted : float
        Accepted draft tokens per draft, in :math:`[0, k]`.
    k : int
        Lookahead :math:`k \ge 1`.
    """
    if not 0.0 <= mean_accepted <= k:
        raise ValueError(f"mean_accepted must lie in [0, k={k}], got {mean_accepted!r}")
    if mean_accepted == 0.0:
        return 0.0
    if mean_accepted == k:
        return 1.0
    return float(optimize.brentq(lambda a: _mean_accepted(a, k) - mean_accepted, 0.0, 1.0, xtol=1e-14))


def _alpha_interval(c: SpecCounters, k: int, level: float) -> tuple[float, float, float]:
    # Delta method on the mean accepted count: its sampling variance comes from the empirical
    # distribution of a, recovered exactly from the per-position counts (n_a = c_{a-1} - c_a), so it
    # assumes independent drafts but not i.i.d. positions. The interval for the mean is mapped
    # through the monotone inverse, which keeps it inside [0, 1].
    d = c.num_drafts
    cc = np.array([d, *c.accepted_per_pos, 0], dtype=float)
    n_a = cc[:-1] - cc[1:]
    values = np.arange(n_a.size, dtype=float)
    mean = float(values @ n_a) / d
    var = float(((values - mean) ** 2) @ n_a) / max(d - 1, 1)
    se = float(np.sqrt(var / d))
    z = float(stats.norm.ppf(0.5 + level / 2))
    lo = alpha_from_mean_accepted(min(max(mean - z * se, 0.0), k), k)
    hi = alpha_from_mean_accepted(min(max(mean + z * se, 0.0), k), k)
    return se, lo, hi


def iid_departure_test(accepted_per_pos, num_drafts: int) -> dict:
    r"""Likelihood-ratio (G) test that the conditional rates :math:`\kappa_i` are equal across positions.

    Position i is a binomial trial for the :math:`c_{i-1}` drafts that reached it, with
    :math:`c_i` successes; the likelihood of the whole data factors into these binomials, so the
    G statistic of the 2 x m table (accepted, rejected per reached position) against one common rate
    is :math:`\chi^2_{m-1}` under the i.i.d. model. The common rate's MLE is
    :math:`\hat\alpha = \sum_i c_i / \sum_i c_{i-1}`.

    Returns
    -------
    dict
        ``statistic``, ``dof``, ``p_value``, ``alpha_mle``, ``positions_tested`` and ``test``.
        With one reached position, or when every reached position accepted all (or none), the
        rates cannot differ: statistic 0, p-value 1.
    """
    c = np.array([num_drafts, *accepted_per_pos], dtype=float)
    reached, acc = c[:-1], c[1:]
    keep = reached > 0
    reached, acc = reached[keep], acc[keep]
    out = {"test": "G (likelihood-ratio) test of equal conditional rates, chi-square reference"}
    alpha_mle = float(acc.sum() / reached.sum()) if reached.sum() > 0 else float("nan")
    rej = reached - acc
    if reached.size < 2 or acc.sum() == 0 or rej.sum() == 0:
        return {**out, "statistic": 0.0, "dof": max(int(reached.size) - 1, 0), "p_value": 1.0,
                "alpha_mle": alpha_mle, "positions_tested": int(reached.size)}  # fmt: skip
    g, p, dof, _ = stats.chi2_contingency(np.vstack([acc, rej]), correction=False, lambda_="log-likelihood")
    return {**out, "statistic": float(g), "dof": int(dof), "p_value": float(p), "alpha_mle": alpha_mle,
            "positions_tested": int(reached.size)}  # fmt: skip


def acceptance_report(c: SpecCounters, k: int | None = None, level: float = 0.95) -> dict:
    r"""Every acceptance number from one set of counters, each under an explicit name.

    Parameters
    ----------
    c : SpecCounters
        Counts over the workload (subtract a baseline snapshot first).
    k : int, optional
        ``num_speculative_tokens``; default the number of per-position counters.
    level : float
        Interval coverage in (0, 1).

    Returns
    -------
    dict
        ``mean_acceptance_length`` (:math:`1 + A/D`, bonus included), ``mean_accepted_per_draft``
        (:math:`A/D`), ``draft_acceptance_rate`` (:math:`A/T`), ``per_position_rate``
        (:math:`c_i/D`), ``conditional_rate`` (:math:`c_i/c_{i-1}`, ``None`` where nothing reached
        position i), ``alpha`` with ``alpha_ci_lower``/``alpha_ci_upper`` and ``alpha_method``,
        ``iid_test`` and ``notes``. Quantities an engine does not report are ``None``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    pos = c.accepted_per_pos
    if k is None:
        k = len(pos) if pos else None
    if k is not None and (int(k) != k or k < 1):
        raise ValueError(f"k (num_speculative_tokens) must be an integer >= 1, got {k!r}")
    if pos is not None and k is not None and len(pos) > k:
        raise ValueError(f"k={k} is smaller than the {len(pos)} per-position counters")
    d, t, a = c.num_drafts, c.num_draft_tokens, c.accepted
    rep: dict = {"engine": c.engine, "method": c.method, "num_speculative_tokens": k, "num_drafts": d,
                 "num_draft_tokens": t, "num_accepted_tokens": a,
                 "accepted_per_pos": list(pos) if pos is not None else None,
                 "bonus_token": "excluded from every count; mean_acceptance_length adds it back (the +1)",
                 "draft_acceptance_rate": a / t if t else None, "notes": []}  # fmt: skip
    if c.method == "ngram":
        rep["notes"].append(NGRAM_NOTE)
    have_d = bool(d)
    rep["mean_accepted_per_draft"] = a / d if have_d else None
    rep["mean_acceptance_length"] = 1.0 + a / d if have_d else None
    if pos is not None and have_d:
        padded = list(pos) + [0] * ((k or len(pos)) - len(pos))
        rep["per_position_rate"] = [ci / d for ci in padded]
        prev = [d, *padded[:-1]]
        rep["conditional_rate"] = [ci / p if p else None for ci, p in zip(padded, prev)]
    else:
        rep["per_position_rate"] = rep["conditional_rate"] = None
    rep.update(alpha=None, alpha_ci_lower=None, alpha_ci_upper=None, alpha_std_error_mean=None, iid_test=None)
    rep["alpha_method"] = None
    if not (have_d and k):
        rep["notes"].append("alpha needs num_drafts and num_speculative_tokens; this source lacks one of them")
        return rep
    if t != k * d:
        rep["notes"].append(
            f"num_draft_tokens ({t}) != k * num_drafts ({k * d}): drafts had variable length, so the "
            "i.i.d. inversion (which assumes k tokens per draft) and the i.i.d. test are approximate"
        )
    rep["alpha"] = alpha_from_mean_accepted(a / d, k)
    rep["alpha_method"] = "invert E[accepted per draft] = alpha (1 - alpha^k) / (1 - alpha) (App. B, Eq. 12 minus 1)"
    rep["level"] = level
    if pos is not None:
        se, lo, hi = _alpha_interval(replace(c, accepted_per_pos=tuple(padded)), k, level)
        rep.update(alpha_ci_lower=lo, alpha_ci_upper=hi, alpha_std_error_mean=se)
        rep["alpha_interval_method"] = (
            "delta method: Wald interval for the mean accepted count (variance from the per-position "
            "counts, drafts assumed independent), mapped through the inverse"
        )
        rep["iid_test"] = iid_departure_test(padded, d)
    return rep


def alpha_across_lookaheads(ks, counters) -> dict:
    """:math:`\\alpha` from runs at several lookaheads by the project's TAR inverse (App. B.2).

    Parameters
    ----------
    ks : sequence of int
        Lookaheads, at least two distinct.
    counters : sequence of SpecCounters
        One per lookahead, each with ``num_drafts``.

    Returns
    -------
    dict
        ``alpha``, ``ci95_lower``, ``ci95_upper`` and ``std_error`` from
        :func:`sdsl_lib.laws.acceptance.alpha_from_tar` (bonus excluded, ``counts_bonus=False``).
    """
    if len(ks) != len(counters):
        raise ValueError(f"ks and counters must have equal lengths, got {len(ks)} and {len(counters)}")
    if any(not c.num_drafts for c in counters):
        raise ValueError("counters must each have num_drafts > 0")
    fit = alpha_from_tar(list(ks), [c.accepted / c.num_drafts for c in counters], counts_bonus=False)
    return {"alpha": fit.alpha, "ci95_lower": fit.ci95_lower, "ci95_upper": fit.ci95_upper, "std_error": fit.std_error}


def from_hf_assisted(n_matches, candidate_lengths) -> SpecCounters:
    """Counters from Hugging Face assisted generation's per-iteration ``n_matches``.

    ``generate(assistant_model=...)`` reports no counts; ``n_matches`` is the local variable of
    ``GenerationMixin._assisted_decoding`` (transformers/generation/utils.py) that is passed to
    ``AssistedCandidateGenerator.update_candidate_strategy`` (transformers/generation/
    candidate_generator.py): the candidate tokens that matched, **bonus excluded**; each iteration
    then emits ``n_matches + 1`` tokens. ``candidate_lengths`` are the proposed lengths (variable under
    the default "heuristic" schedule; constant with ``num_assistant_tokens_schedule="constant"`` and
    ``assistant_confidence_threshold=0``).
    """
    m = np.asarray(n_matches)
    lengths = np.asarray(candidate_lengths)
    k = int(lengths.max()) if lengths.size else 1
    return counters_from_accept_counts(m, k, engine="hf", draft_lengths=lengths)


def from_sglang(accepted_incl_bonus: int, forward_ct: int, draft_tokens_per_round: int) -> SpecCounters:
    """Counters from SGLang's scheduler statistics (chain drafting, ``--speculative-eagle-topk 1``).

    SGLang's ``accept len`` is ``spec_num_accepted_tokens / spec_num_forward_ct`` where the scheduler
    adds ``num_accepted_tokens + batch_size`` per verify step: **bonus included** (sglang
    python/sglang/srt/managers/scheduler_metrics_mixin.py, ``log_decode_stats``; the same quantity
    is the ``spec_accept_length`` Prometheus gauge). Its ``accept rate`` is
    ``(accepted_incl_bonus - forward_ct) / (forward_ct * (speculative_num_draft_tokens - 1))``, the
    draft acceptance rate (bonus excluded). ``draft_tokens_per_round`` is
    ``speculative_num_draft_tokens - 1`` (= ``speculative_num_steps`` for a chain).
    """
    if forward_ct < 0 or accepted_incl_bonus < forward_ct:
        raise ValueError("accepted_incl_bonus must be >= forward_ct >= 0 (each verify step yields its bonus token)")
    if draft_tokens_per_round < 1:
        raise ValueError(f"draft_tokens_per_round must be >= 1, got {draft_tokens_per_round}")
    return SpecCounters(
        forward_ct, forward_ct * draft_tokens_per_round, accepted_incl_bonus - forward_ct, engine="sglang"
    )


def from_trtllm(num_draft_tokens: int, num_accepted_tokens: int, num_requests_with_draft_tokens: int) -> SpecCounters:
    """Counters from TensorRT-LLM's per-iteration ``specDecodingStats``, summed over iterations.

    ``numDraftTokens`` and ``numAcceptedTokens`` (draft tokens accepted, **bonus excluded**) and
    ``numRequestsWithDraftTokens`` (one verify step per request per iteration) are fields of
    ``SpecDecodingStats`` in cpp/include/tensorrt_llm/executor/types.h, exported as
    ``trtllm_spec_decode_num_{draft,accepted}_tokens``. Its ``acceptanceLength`` gauge and the LLM
    API's per-request ``avg_decoded_tokens_per_iter`` count the target's own token (**bonus
    included**), i.e. they are :math:`1 + A/D`; recompute from the counts rather than averaging
    gauges, which weights iterations instead of drafts.
    """
    return SpecCounters(num_requests_with_draft_tokens, num_draft_tokens, num_accepted_tokens, engine="trtllm")


def from_llamacpp(n_draft_total: int, n_draft_accepted: int, n_drafts: int | None = None) -> SpecCounters:
    """Counters from llama.cpp's server line ``draft acceptance rate = r (A accepted / T generated)``.

    Printed per slot by tools/server/server.cpp (``n_draft_accepted / n_draft_total``, **bonus
    excluded**); the JSON timings carry ``draft_n`` and ``draft_n_accepted``. The number of drafts is
    not reported, and llama.cpp's drafts have variable length (``--draft-max``, ``--draft-min``,
    ``--draft-p-min`` stop them early), so :math:`\\alpha` needs ``n_drafts`` from elsewhere.
    """
    return SpecCounters(n_drafts, n_draft_total, n_draft_accepted, engine="llama.cpp")
