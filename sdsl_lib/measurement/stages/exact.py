r"""Stage ``exact`` (real target only): is our speculative decoding exact on it? Tables ``exactness``, ``chi_square``.

Both checks run the target in **fp32**: in bf16 a multi-token verification pass rounds differently
from a one-token pass and flips near-ties (greedy SD equalled greedy AR on 1/4 prompts in bf16, 4/4
in fp32; docs/field_notes.md "A real target"), which is rounding, not an error of the algorithm.

- greedy: on ``exact_prompts`` eval prompts, speculative output at the smallest and largest gamma
  must equal greedy decoding token for token (``first_mismatch`` names the first differing position);
- sampled: the first token of ``chi2_draws`` independent speculative runs (temperature
  ``sampled_temperature``, gamma 2) must follow the target's own next-token distribution
  :math:`p_T = \operatorname{softmax}(\ell / T)` after the prompt. Pearson's test
  :math:`\chi^2 = \sum_b (O_b - E_b)^2 / E_b` with :math:`E_b = n\,p_T(b)`; rare tokens are
  pooled: in order of decreasing :math:`p_T`, tokens join a bin until it expects at least 5
  draws (the remainder joins the last bin), dof = bins - 1. **Rule, stated before the data:** the test passes when
  :math:`p > 0.01`. It runs on two pairs (:func:`chi_square_drafts`): the smallest trained draft
  and the prompt-lookup draft. What it tests (accept with :math:`\min(1, p/q)`, else sample the
  residual :math:`\max(0, p - q)`) does not depend on which draft proposes, only on whether the
  proposal is soft (a trained draft) or one-hot (prompt lookup); and each pair costs about 8 minutes
  of fp32 decoding on 2 cores (every draw decodes the prompt afresh), so one pair of each kind.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from sdsl_lib.measurement.context import pair_unit, pairs

__all__ = [
    "CODE", "SETTINGS", "MIN_EXPECTED", "ALPHA_LEVEL", "pooled_chi_square", "chi_square_drafts", "fingerprint", "run", "merge",
]  # fmt: skip

CODE = (
    "sdsl_lib.measurement.stages.exact",
    "sdsl_lib.measurement.context",
    "sdsl_lib.measurement.decoding",
    "sdsl_lib.measurement.kv_cache",
    "sdsl_lib.measurement.lean_llama",
)
SETTINGS = ("gammas", "tput_new_tokens", "forward")
MIN_EXPECTED = 5.0
ALPHA_LEVEL = 0.01
_CHI2_GAMMA = 2


def pooled_chi_square(counts: np.ndarray, probs: np.ndarray, min_expected: float = MIN_EXPECTED) -> dict:
    """Pearson's chi-square of observed ``counts`` against ``probs``, rare bins pooled (module docstring)."""
    from scipy import stats

    counts, probs = np.asarray(counts, dtype=float), np.asarray(probs, dtype=float)
    if counts.shape != probs.shape or counts.sum() < 1:
        raise ValueError(f"counts and probs must have one shape and counts a positive sum, got {counts.shape}")
    expected = counts.sum() * probs / probs.sum()
    # Group tokens in order of decreasing probability until each group expects >= min_expected; the
    # grouping depends on p only (not on the draws), so the statistic keeps its chi-square law.
    obs, exp, o_acc, e_acc = [], [], 0.0, 0.0
    for i in np.argsort(-expected, kind="stable"):
        o_acc, e_acc = o_acc + counts[i], e_acc + expected[i]
        if e_acc >= min_expected:
            obs.append(o_acc)
            exp.append(e_acc)
            o_acc = e_acc = 0.0
    if exp:
        obs[-1], exp[-1] = obs[-1] + o_acc, exp[-1] + e_acc  # the remainder joins the last group
    if len(exp) < 2:
        raise ValueError(
            f"too few draws for a chi-square test: {int(counts.sum())} fill under two bins of {min_expected}"
        )
    res = stats.chisquare(obs, exp)
    return {"n_bins": len(exp), "statistic": float(res.statistic), "dof": len(exp) - 1, "p_value": float(res.pvalue)}


def chi_square_drafts(profile) -> list[str]:
    """The drafts whose pairs get the chi-square test: the first trained draft and every prompt-lookup draft."""
    trained = [d.name for d in profile.drafts if d.family != "prompt_lookup"]
    return trained[:1] + [d.name for d in profile.drafts if d.family == "prompt_lookup"]


def fingerprint(ctx, draft: str, target: str) -> str:
    m, r = ctx.profile.measure, ctx.profile.real
    return ctx.profile.fingerprint(
        "exact",
        ctx.code_fingerprint(CODE),
        {k: getattr(m, k) for k in SETTINGS},
        [r.exact_prompts, r.chi2_draws, r.sampled_temperature],
        ctx.train_record(draft)["fingerprint"],
        ctx.train_record(target)["fingerprint"],
    )


def _greedy(ctx, target, draft, prompts) -> list:
    from sdsl_lib.measurement.decoding import autoregressive_generate, speculative_generate

    m = ctx.profile.measure
    rows = []
    for k, prompt in enumerate(prompts):
        prompt = prompt.to(ctx.device)
        ref, _ = autoregressive_generate(target, prompt, m.tput_new_tokens)
        for g in sorted({min(m.gammas), max(m.gammas)}):
            out, _ = speculative_generate(target, draft, prompt, g, m.tput_new_tokens)
            diff = (out != ref).nonzero()
            rows.append(
                {"gamma": g, "prompt_idx": k, "new_tokens": m.tput_new_tokens, "matches_autoregressive": not len(diff),
                 "first_mismatch": int(diff[0, 0]) if len(diff) else None}
            )  # fmt: skip
    return rows


@torch.inference_mode()
def _chi_square(ctx, target, draft, prompt, unit: str) -> dict:
    from sdsl_lib.measurement.decoding import speculative_generate
    from sdsl_lib.measurement.models import model_seed

    r = ctx.profile.real
    temp, g = r.sampled_temperature, min(_CHI2_GAMMA, max(ctx.profile.measure.gammas))
    prompt = prompt.to(ctx.device)
    probs = torch.softmax(target(input_ids=prompt).logits[0, -1].float() / temp, -1).cpu().numpy()
    gen = torch.Generator(device=ctx.device).manual_seed(model_seed(ctx.profile.seed, f"chi2/{unit}"))
    counts = np.zeros(probs.size, dtype=np.int64)
    for _ in range(r.chi2_draws):
        out, _ = speculative_generate(target, draft, prompt, g, g + 1, temperature=temp, generator=gen)
        counts[int(out[0])] += 1
    res = pooled_chi_square(counts, probs)
    return {"temperature": temp, "gamma": g, "n_draws": r.chi2_draws, "min_expected": MIN_EXPECTED, **res,
            "passes": res["p_value"] > ALPHA_LEVEL}  # fmt: skip


def run(ctx) -> None:
    from tqdm.auto import tqdm

    if ctx.real is None:
        return  # the ladder's exactness is the throughput stage's matches_autoregressive (fp32 models)
    prompts = ctx.prompts(ctx.profile.real.exact_prompts, ctx.profile.measure.prompt_len)
    chi2_drafts = chi_square_drafts(ctx.profile)
    for dname, tname in tqdm(pairs(ctx.profile), desc="exactness", disable=not ctx.progress):
        unit, fp = pair_unit(dname, tname), fingerprint(ctx, dname, tname)
        if ctx.units.load("exact", unit, fp) is None:
            target, draft = ctx.model(tname), ctx.model(dname)
            rec = {"draft": dname, "target": tname, "greedy": _greedy(ctx, target, draft, prompts)}
            if dname in chi2_drafts:
                rec["chi2"] = _chi_square(ctx, target, draft, prompts[0], unit)
            ctx.units.save("exact", unit, fp, rec)
    merge(ctx)


def merge(ctx) -> None:
    """``exactness`` and ``chi_square`` from the current pair units (a stale one is refused)."""
    if ctx.real is None:
        return
    expected = {pair_unit(d, t): fingerprint(ctx, d, t) for d, t in pairs(ctx.profile)}
    recs = ctx.units.collect("exact", expected).values()
    greedy = pd.DataFrame([{"draft": r["draft"], "target": r["target"], **row} for r in recs for row in r["greedy"]])
    chi2 = pd.DataFrame([{"draft": r["draft"], "target": r["target"], **r["chi2"]} for r in recs if "chi2" in r])
    ctx.write_table("exactness", greedy, units=expected, dtype="target and drafts in fp32")
    ctx.write_table(
        "chi_square",
        chi2,
        units=expected,
        rule=f"passes when p > {ALPHA_LEVEL}; tokens pooled in order of p into bins expecting >= 5 draws",
    )
