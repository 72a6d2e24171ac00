"""Stage ``alpha``: acceptance three ways per (draft, target); tables ``alpha``, ``tar``, ``acceptance_by_position``.

- method (a), teacher forced: :math:`\\alpha = \\mathbb{E}[\\beta]`, :math:`\\beta = \\sum_x \\min(p, q)`
  on held-out windows (Leviathan et al.), with the greedy match rate beside it;
- method (b), SDSL Appendix B: TAR(:math:`\\gamma`) from sampling runs of our exact loop at
  temperature 1, inverted by :func:`sdsl_lib.laws.acceptance.alpha_from_tar`;
- the per-position acceptance of those runs.

One unit per pair. The table ``alpha`` holds this stage's estimates only; sizes, perplexities,
:math:`c` and the greedy acceptance of the throughput runs are joined by
:func:`sdsl_lib.measurement.join.alpha_with_context`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from sdsl_lib.measurement import models as ladder
from sdsl_lib.measurement.context import pair_unit, pairs

__all__ = ["CODE", "SETTINGS", "teacher_forced_acceptance", "mean_ci", "fingerprint", "run", "merge"]

CODE = (
    "sdsl_lib.measurement.stages.alpha",
    "sdsl_lib.measurement.context",
    "sdsl_lib.measurement.decoding",
    "sdsl_lib.measurement.kv_cache",
    "sdsl_lib.measurement.lean_llama",
    "sdsl_lib.laws.acceptance",
)
#: The measure settings an alpha unit depends on.
SETTINGS = ("gammas", "alpha_windows", "alpha_window_len", "tar_prompts", "tar_new_tokens", "prompt_len", "forward")

_ESTIMATES = (
    "alpha_tf",
    "alpha_tf_ci95_lower",
    "alpha_tf_ci95_upper",
    "alpha_tar",
    "alpha_tar_ci95_lower",
    "alpha_tar_ci95_upper",
    "alpha_tar_std_error",
    "alpha_tar_residual_std",
    "greedy_match_tf",
    "greedy_match_tf_ci95_lower",
    "greedy_match_tf_ci95_upper",
    "n_positions",
)


@torch.inference_mode()
def teacher_forced_acceptance(
    target, draft, windows: torch.Tensor, device, batch_size: int = 8, temperature: float = 1.0
):
    r"""Per-position :math:`\beta = \sum_x \min(p(x), q(x))` and greedy agreement on held-out windows.

    Both models read the same held-out tokens (teacher forcing); at every position ``p`` is the
    target's and ``q`` the draft's next-token distribution at ``temperature``. The mean of
    :math:`\beta` is Leviathan's :math:`\alpha = \mathbb{E}[\beta]` (method a); the mean of
    :math:`[\arg\max p = \arg\max q]` is the temperature-0 acceptance (greedy match rate).
    Equals :func:`sdsl_lib.laws.acceptance.acceptance_from_probs` on the same logits (tested).

    Returns
    -------
    beta, match : ndarray, shape (n_windows, window_len - 1)
    """
    betas, matches = [], []
    for i in range(0, windows.shape[0], batch_size):
        w = windows[i : i + batch_size, :-1].to(device)
        lp = target(input_ids=w, use_cache=False).logits.float() / temperature
        lq = draft(input_ids=w, use_cache=False).logits.float() / temperature
        betas.append(torch.minimum(lp.softmax(-1), lq.softmax(-1)).sum(-1).cpu())
        matches.append((lp.argmax(-1) == lq.argmax(-1)).cpu())
    return torch.cat(betas).double().numpy(), torch.cat(matches).numpy()


def mean_ci(per_unit: np.ndarray) -> tuple:
    """Mean and 95% t-interval over independent units (held-out windows or prompts)."""
    from scipy import stats

    x = np.asarray(per_unit, dtype=float)
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def fingerprint(ctx, draft: str, target: str) -> str:
    m = ctx.profile.measure
    return ctx.profile.fingerprint(
        "alpha",
        ctx.code_fingerprint(CODE),
        {k: getattr(m, k) for k in SETTINGS},
        ctx.train_record(draft)["fingerprint"],
        ctx.train_record(target)["fingerprint"],
    )


def _tar_runs(ctx, target, draft, prompts, unit: str) -> tuple[list, list]:
    """TAR(gamma) rows and per-position counts of the sampling runs (temperature 1) at every gamma."""
    from sdsl_lib.measurement.decoding import speculative_generate

    m = ctx.profile.measure
    tar_rows, pos_rows = [], []
    for gamma in m.gammas:
        n_full, attempts, accepts = [], np.zeros(gamma, np.int64), np.zeros(gamma, np.int64)
        t_run = 0.0
        for k, prompt in enumerate(prompts):
            seed = ladder.model_seed(ctx.profile.seed, f"{unit}/{gamma}/{k}")
            gen = torch.Generator(device=ctx.device).manual_seed(seed)
            _, st = speculative_generate(
                target, draft, prompt.to(ctx.device), gamma, m.tar_new_tokens, temperature=1.0, generator=gen
            )
            n_full.extend(st.full_iterations.tolist())
            attempts += st.position_attempts
            accepts += st.position_accepts
            t_run += st.total_time_s
        n_full = np.asarray(n_full, dtype=float)
        tar_rows.append(
            {
                "gamma": gamma,
                "n_iterations_full": int(n_full.size),
                "tar_no_bonus": float(n_full.mean()) if n_full.size else math.nan,
                "tar_no_bonus_std": float(n_full.std(ddof=1)) if n_full.size > 1 else math.nan,
                "tar_with_bonus": float(n_full.mean() + 1) if n_full.size else math.nan,
                "n_prompts": len(prompts),
                "new_tokens_per_prompt": m.tar_new_tokens,
                "time_s": t_run,
            }
        )
        pos_rows += [
            {"gamma": gamma, "position": i + 1, "attempts": int(attempts[i]), "accepts": int(accepts[i])}
            for i in range(gamma)
        ]
    return tar_rows, pos_rows


def masked_means(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-window mean of ``values`` over the positions ``mask`` scores (windows scoring none dropped)."""
    n = mask.sum(axis=1)
    keep = n > 0
    return (np.where(mask, values, 0.0).sum(axis=1)[keep] / n[keep]).astype(float)


def _measure_pair(ctx, dname: str, tname: str, windows, prompts) -> dict:
    from sdsl_lib.laws.acceptance import alpha_from_tar

    windows, mask = windows
    if not mask.any():
        raise ValueError(
            f"alpha_window_len ({windows.shape[1]}) must exceed the prompts' length: no position is scored"
        )
    target, draft = ctx.model(tname), ctx.model(dname)
    beta, match = teacher_forced_acceptance(target, draft, windows, ctx.device)
    a_mean, a_lo, a_hi = mean_ci(masked_means(beta, mask))
    g_mean, g_lo, g_hi = mean_ci(masked_means(match, mask))
    tar_rows, pos_rows = _tar_runs(ctx, target, draft, prompts, pair_unit(dname, tname))
    g_arr = np.array([r["gamma"] for r in tar_rows], dtype=float)
    b_arr = np.array([r["tar_no_bonus"] for r in tar_rows], dtype=float)
    ok = np.isfinite(b_arr)
    fit = alpha_from_tar(g_arr[ok], b_arr[ok], counts_bonus=False) if ok.sum() >= 2 else None
    nan = math.nan
    return {
        "draft": dname,
        "target": tname,
        "n_positions": int(mask.sum()),
        "n_windows": int(beta.shape[0]),
        "alpha_tf": a_mean,
        "alpha_tf_ci95_lower": a_lo,
        "alpha_tf_ci95_upper": a_hi,
        "greedy_match_tf": g_mean,
        "greedy_match_tf_ci95_lower": g_lo,
        "greedy_match_tf_ci95_upper": g_hi,
        "alpha_tar": fit.alpha if fit else nan,
        "alpha_tar_std_error": fit.std_error if fit else nan,
        "alpha_tar_ci95_lower": fit.ci95_lower if fit else nan,
        "alpha_tar_ci95_upper": fit.ci95_upper if fit else nan,
        "alpha_tar_residual_std": fit.residual_std if fit else nan,
        "tar": tar_rows,
        "positions": pos_rows,
    }


def run(ctx) -> None:
    from tqdm.auto import tqdm

    m = ctx.profile.measure
    windows = ctx.tf_windows(m.alpha_windows, m.alpha_window_len - 1)
    prompts = ctx.prompts(m.tar_prompts, m.prompt_len)
    for dname, tname in tqdm(pairs(ctx.profile), desc="alpha pairs", disable=not ctx.progress):
        fp = fingerprint(ctx, dname, tname)
        if ctx.units.load("alpha", pair_unit(dname, tname), fp) is None:
            rec = _measure_pair(ctx, dname, tname, windows, prompts)
            ctx.units.save("alpha", pair_unit(dname, tname), fp, rec)
    merge(ctx)


def merge(ctx) -> None:
    """``alpha``, ``tar`` and ``acceptance_by_position`` (temperature 1) from the current pair units."""
    expected = {pair_unit(d, t): fingerprint(ctx, d, t) for d, t in pairs(ctx.profile)}
    recs = ctx.units.collect("alpha", expected)
    alpha_rows, tar_rows, pos_rows = [], [], []
    for rec in recs.values():
        d, t = rec["draft"], rec["target"]
        alpha_rows.append({"draft": d, "target": t, **{k: rec[k] for k in _ESTIMATES}})
        tar_rows += [{"draft": d, "target": t, "temperature": 1.0, **r} for r in rec["tar"]]
        pos_rows += [{"draft": d, "target": t, "temperature": 1.0, **r} for r in rec["positions"]]
    if ctx.real is not None:
        # The repetition statistics of the scored text, beside every acceptance number (a looping
        # text makes acceptance meaningless; workload.is_looping states the rule).
        st = ctx.real.text_stats(ctx.profile.measure.alpha_windows)
        for row in alpha_rows:
            row.update(text_distinct_frac=st["distinct_frac_mean"], text_repeat4_rate=st["repeat4_rate_mean"],
                       text_looping=st["looping"])  # fmt: skip
    pos = pd.DataFrame(pos_rows)
    pos["acceptance_rate"] = pos["accepts"] / pos["attempts"].where(pos["attempts"] > 0)
    ctx.write_table(
        "alpha",
        pd.DataFrame(alpha_rows),
        units=expected,
        alpha_tar_convention="tar_no_bonus = mean accepted drafts per full iteration; "
        "alpha_from_tar(counts_bonus=False); truncated iterations dropped",
    )
    ctx.write_table("tar", pd.DataFrame(tar_rows), units=expected)
    ctx.write_table("acceptance_by_position", pos, units=expected)
