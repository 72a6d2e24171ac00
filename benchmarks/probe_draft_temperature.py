"""Would a draft sampled at its own temperature be accepted more often? Teacher-forced, no timing.

Speculative sampling is exact for *any* proposal q: the target's law p_T comes out whatever q the
draft draws from, as long as the acceptance test min(1, p_T / q) and the residual use that same q
(Leviathan et al., Theorem 3.5; tests/measurement/test_decoding.py checks our loop by chi-square).
The loop today draws the draft at the target's temperature T. A distilled draft is trained toward
the target's top-k law at T = 1 and may be broader than the target; sharpening it (T_draft < T) can
raise the overlap beta = sum_x min(p_T(x), q_{T_draft}(x)), which is the acceptance per drafted token
(the paper's alpha at T = 1 is the case T = T_draft = 1).

This script measures beta on the alpha stage's held-out windows (teacher forced, fp32, the trained
drafts of a run's work folder) for T_draft on a grid at the target temperature ``--temperature``,
with the 95% interval over windows (``stages.alpha.mean_ci``). Nothing is timed: run it any time.

    .venv/bin/python benchmarks/probe_draft_temperature.py --profile-file docs/recipes/smollm2_bf16.toml \\
        --profile smollm2-bf16 --work-dir cache/runs/smollm2-bf16
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch


def overlaps(target, draft, windows: torch.Tensor, mask: np.ndarray, temperature: float, draft_temps, batch: int = 8):
    """Per T_draft: masked per-window means of beta = sum_x min(p_T, q_{T_draft}) (n_windows,)."""
    from sdsl_lib.measurement.stages.alpha import masked_means

    betas = {t: [] for t in draft_temps}
    with torch.inference_mode():
        for i in range(0, windows.shape[0], batch):
            w = windows[i : i + batch, :-1]
            p = (target(input_ids=w, use_cache=False).logits.float() / temperature).softmax(-1)
            lq = draft(input_ids=w, use_cache=False).logits.float()
            for t in draft_temps:
                betas[t].append(torch.minimum(p, (lq / t).softmax(-1)).sum(-1).double().numpy())
    return {t: masked_means(np.concatenate(b), mask) for t, b in betas.items()}


def main(argv=None) -> None:
    from sdsl_lib.measurement import corpus
    from sdsl_lib.measurement.context import Context
    from sdsl_lib.measurement.profile_file import load_profile_file
    from sdsl_lib.measurement.stages.alpha import mean_ci

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile-file", type=Path, required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--work-dir", type=Path, required=True, help="the run's work folder (its trained drafts)")
    ap.add_argument("--temperature", type=float, default=0.7, help="the target's sampling temperature (> 0)")
    ap.add_argument("--draft-temperature", type=float, action="append", help="T_draft (repeatable; default a grid)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    temps = sorted(args.draft_temperature or [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0])
    if args.temperature <= 0 or min(temps) <= 0:
        ap.error(f"--temperature and every --draft-temperature must be > 0, got {args.temperature} and {temps}")
    torch.set_num_threads(args.threads)
    profile = load_profile_file(args.profile_file)[args.profile]
    with tempfile.TemporaryDirectory() as out:
        ctx = Context(profile, Path(out), corpus.cache_dir(), args.work_dir, torch.device("cpu"), progress=False)
        m = profile.measure
        windows, mask = ctx.tf_windows(m.alpha_windows, m.alpha_window_len)
        target = ctx.model(profile.targets[0].name)
        print(f"beta = sum_x min(p_T, q_Tdraft), T = {args.temperature:g}, {windows.shape[0]} windows, "
              f"{int(mask.sum())} positions (mean over windows, 95% interval)")  # fmt: skip
        for spec in profile.drafts:
            if spec.family == "prompt_lookup":  # a one-hot proposal: its temperature changes nothing
                continue
            per_t = overlaps(target, ctx.model(spec.name), windows, mask, args.temperature, temps)
            for t in temps:
                mean, lo, hi = mean_ci(per_t[t])
                print(f"  {spec.name:16s} T_draft {t:4.2f}: beta {mean:.4f} [{lo:.4f}, {hi:.4f}]")


if __name__ == "__main__":
    main()
