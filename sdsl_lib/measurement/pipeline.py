"""The measurement chain: train the ladder, then measure alpha, costs and throughput for every pair.

Run it with ``python -m sdsl_lib.measurement.pipeline --profile cpu`` (``--stage`` train / alpha / calibrate /
throughput / hf / all, ``--out`` for the results folder, default ``data/measured/<profile>/``).

Resumability: every finished unit (a trained model, one pair's alpha, one model's cost
calibration, one pair's throughput block) is written atomically to its own file under the work
folder (default ``<cache>/runs/<profile>/``, outside git) together with a fingerprint of the settings
it depends on. A rerun skips units whose file exists with a matching fingerprint, redoes the rest,
and then merges all units into the tidy CSVs (each with a JSON provenance sidecar).

Stages and outputs (columns documented in ``data/measured/README.md``):

- ``train``: ``models.csv``, ``loss_curves.csv``, ``loss_budget_points.csv``;
- ``alpha``: ``alpha.csv`` (three estimates side by side), ``tar.csv``, ``acceptance_by_position.csv``;
- ``calibrate``: ``cost_calibration.csv``;
- ``throughput``: ``throughput.csv`` (per prompt) and ``throughput_summary.csv``;
- ``hf``: ``hf_baseline.csv`` (Hugging Face assisted generation beside our loop).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sdsl_lib.io import atomic_write_csv, atomic_write_json, repo_root, write_sidecar
from sdsl_lib.measurement import corpus, timing
from sdsl_lib.measurement import models as ladder
from sdsl_lib.measurement import tokenizer as bpe
from sdsl_lib.measurement.profiles import Profile, get_profile

__all__ = ["STAGES", "Context", "run_profile", "main"]

STAGES = ("train", "alpha", "calibrate", "throughput", "hf")


class Context:
    """Everything the stages share: profile, folders, device, tokenizer and token streams."""

    def __init__(
        self, profile: Profile, out_dir: Path, cache: Path, work_dir: Path, device: torch.device, progress: bool
    ):
        self.profile, self.out_dir, self.cache, self.work_dir = profile, out_dir, cache, work_dir
        self.device, self.progress = device, progress
        works = corpus.load_works(cache)
        self.split = corpus.split_works(works)
        self.tokenizer = bpe.get_tokenizer([works[n] for n in self.split["train"]], profile.vocab_size, cache)
        self.ids = {k: bpe.encode_works(self.tokenizer, [works[n] for n in v]) for k, v in self.split.items()}
        self._models: dict = {}

    # -- bookkeeping -------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        return self.work_dir / "models" / name

    def unit_path(self, stage: str, unit: str) -> Path:
        return self.work_dir / "units" / stage / f"{unit}.json"

    def load_unit(self, stage: str, unit: str, fingerprint: str):
        """The stored result of a unit if it is finished with the same settings, else None."""
        path = self.unit_path(stage, unit)
        if not path.is_file():
            return None
        rec = json.loads(path.read_text())
        return rec if rec.get("fingerprint") == fingerprint else None

    def save_unit(self, stage: str, unit: str, fingerprint: str, rec: dict) -> dict:
        rec = dict(rec, fingerprint=fingerprint)
        atomic_write_json(self.unit_path(stage, unit), rec)
        return rec

    def train_record(self, name: str) -> dict:
        path = self.model_dir(name) / "train_result.json"
        if not path.is_file():
            raise FileNotFoundError(f"model {name!r} is not trained yet ({path}); run the train stage first")
        return json.loads(path.read_text())

    def model(self, name: str):
        if name not in self._models:
            self._models[name] = ladder.load_model(self.model_dir(name), self.device)
        return self._models[name]

    def sidecar(self, path: Path, **extra):
        write_sidecar(
            path,
            profile=self.profile.name,
            config=self.profile.to_dict(),
            seed=self.profile.seed,
            device=str(self.device),
            hardware=timing.hardware_info(self.device),
            torch_threads=torch.get_num_threads(),
            corpus=corpus.CORPUS_REQUIREMENT,
            corpus_sha256=corpus.CORPUS_SHA256,
            split=self.split,
            **extra,
        )

    def write_csv(self, name: str, df: pd.DataFrame, **extra) -> Path:
        path = self.out_dir / name
        atomic_write_csv(path, df)
        self.sidecar(path, **extra)
        return path

    def prompts(self, n: int, length: int, split: str = "test") -> list:
        """``n`` held-out prompts of ``length`` tokens, evenly spaced over the ``split`` stream."""
        ids = self.ids[split].astype(np.int64)
        starts = np.linspace(0, len(ids) - length - 1, n).round().astype(int)
        return [torch.as_tensor(ids[s : s + length])[None, :] for s in starts]


# -- stage: train ------------------------------------------------------------------------------
def stage_train(ctx: Context) -> None:
    from tqdm.auto import tqdm

    p = ctx.profile
    for spec in tqdm(p.models, desc="train ladder", disable=not ctx.progress):
        fp = p.fingerprint(spec.__dict__)
        path = ctx.model_dir(spec.name) / "train_result.json"
        if path.is_file() and json.loads(path.read_text()).get("fingerprint") == fp:
            continue
        rec = ladder.train_model(
            spec,
            p,
            ctx.ids["train"],
            ctx.ids["validation"],
            ctx.ids["test"],
            ctx.model_dir(spec.name),
            device=ctx.device,
            progress=ctx.progress,
        )
        rec["fingerprint"] = fp
        atomic_write_json(path, rec)
    merge_train(ctx)


def merge_train(ctx: Context) -> None:
    models, curves, points = [], [], []
    for spec in ctx.profile.models:
        r = ctx.train_record(spec.name)
        models.append(
            {
                "model": spec.name,
                "role": spec.role,
                "n_params": r["n_params_total"],
                "n_params_non_embedding": r["n_params_non_embedding"],
                "n_params_embedding": r["n_params_embedding"],
                "d_model": spec.d_model,
                "n_layers": spec.n_layers,
                "n_heads": spec.n_heads,
                "d_ff": spec.d_ff,
                "vocab_size": ctx.profile.vocab_size,
                "n_tokens": r["n_tokens"],
                "n_steps": r["n_steps"],
                "lr_max": spec.lr,
                "val_loss_nats": r["val_loss"],
                "val_ppl": r["val_ppl"],
                "test_loss_nats": r["test_loss"],
                "test_ppl": r["test_ppl"],
                "val_tokens": r["val_tokens"],
                "test_tokens": r["test_tokens"],
                "train_time_s": r["train_time_s"],
                "device": r["device"],
                "torch_threads": r["torch_threads"],
            }
        )
        for c in r["curve"]:
            curves.append(
                {
                    "model": spec.name,
                    "step": c["step"],
                    "n_tokens": c["n_tokens"],
                    "lr": c["lr"],
                    "train_loss_nats": c["train_loss"],
                    "val_loss_subset_nats": c["val_loss_subset"],
                }
            )
        for b in r["budget_points"]:
            points.append(
                {
                    "model": spec.name,
                    "n_params": r["n_params_total"],
                    "n_params_non_embedding": r["n_params_non_embedding"],
                    "n_tokens": b["n_tokens"],
                    "n_steps": b["n_steps"],
                    "budget_frac": b["frac"],
                    "val_loss_nats": b["val_loss"],
                    "val_ppl": math.exp(b["val_loss"]),
                    "branch": b["branch"],
                }
            )
    ctx.write_csv("models.csv", pd.DataFrame(models))
    ctx.write_csv("loss_curves.csv", pd.DataFrame(curves))
    ctx.write_csv("loss_budget_points.csv", pd.DataFrame(points).sort_values(["n_params", "n_tokens"]))


# -- stage: alpha (three estimates) ---------------------------------------------------------------
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


def _mean_ci(per_unit: np.ndarray) -> tuple:
    """Mean and 95% t-interval over independent units (held-out windows or prompts)."""
    from scipy import stats

    x = np.asarray(per_unit, dtype=float)
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def _pairs(p: Profile):
    return [(d.name, t.name) for t in p.targets for d in p.drafts]


def _pair_unit(draft: str, target: str) -> str:
    return f"{draft}__{target}"


def stage_alpha(ctx: Context) -> None:
    from tqdm.auto import tqdm

    from sdsl_lib.laws.acceptance import alpha_from_tar
    from sdsl_lib.measurement.decoding import speculative_generate

    p, m = ctx.profile, ctx.profile.measure
    windows = ladder.eval_windows(ctx.ids["test"], m.alpha_window_len - 1, m.alpha_windows)
    prompts = ctx.prompts(m.tar_prompts, m.prompt_len)
    for dname, tname in tqdm(_pairs(p), desc="alpha pairs", disable=not ctx.progress):
        unit = _pair_unit(dname, tname)
        fp = p.fingerprint(
            "alpha", m.__dict__, ctx.train_record(dname)["fingerprint"], ctx.train_record(tname)["fingerprint"]
        )
        if ctx.load_unit("alpha", unit, fp) is not None:
            continue
        target, draft = ctx.model(tname), ctx.model(dname)
        beta, match = teacher_forced_acceptance(target, draft, windows, ctx.device)
        a_mean, a_lo, a_hi = _mean_ci(beta.mean(axis=1))
        g_mean, g_lo, g_hi = _mean_ci(match.mean(axis=1))
        tar_rows, pos_rows = [], []
        for gamma in m.gammas:
            n_full, attempts, accepts = [], np.zeros(gamma, np.int64), np.zeros(gamma, np.int64)
            t_run = 0.0
            for k, prompt in enumerate(prompts):
                gen = torch.Generator(device=ctx.device).manual_seed(ladder.model_seed(p.seed, f"{unit}/{gamma}/{k}"))
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
        g_arr = np.array([r["gamma"] for r in tar_rows], dtype=float)
        b_arr = np.array([r["tar_no_bonus"] for r in tar_rows], dtype=float)
        ok = np.isfinite(b_arr)
        fit = alpha_from_tar(g_arr[ok], b_arr[ok], counts_bonus=False) if ok.sum() >= 2 else None
        ctx.save_unit(
            "alpha",
            unit,
            fp,
            {
                "draft": dname,
                "target": tname,
                "n_positions": int(beta.size),
                "n_windows": int(beta.shape[0]),
                "alpha_tf": a_mean,
                "alpha_tf_ci95_lower": a_lo,
                "alpha_tf_ci95_upper": a_hi,
                "greedy_match_tf": g_mean,
                "greedy_match_tf_ci95_lower": g_lo,
                "greedy_match_tf_ci95_upper": g_hi,
                "alpha_tar": fit.alpha if fit else math.nan,
                "alpha_tar_std_error": fit.std_error if fit else math.nan,
                "alpha_tar_ci95_lower": fit.ci95_lower if fit else math.nan,
                "alpha_tar_ci95_upper": fit.ci95_upper if fit else math.nan,
                "alpha_tar_residual_std": fit.residual_std if fit else math.nan,
                "tar": tar_rows,
                "positions": pos_rows,
            },
        )
    merge_alpha(ctx)


def _models_frame(ctx: Context) -> pd.DataFrame:
    rows = []
    for spec in ctx.profile.models:
        r = ctx.train_record(spec.name)
        rows.append(
            {
                "model": spec.name,
                "n_params": r["n_params_total"],
                "n_params_non_embedding": r["n_params_non_embedding"],
                "n_tokens": r["n_tokens"],
                "test_ppl": r["test_ppl"],
                "val_ppl": r["val_ppl"],
            }
        )
    return pd.DataFrame(rows).set_index("model")


def merge_alpha(ctx: Context) -> None:
    """alpha.csv, tar.csv, acceptance_by_position.csv (the latter also with greedy throughput runs)."""
    p = ctx.profile
    mf = _models_frame(ctx)
    calib = _calibration_medians(ctx)
    greedy = _greedy_acceptance_from_throughput(ctx)
    alpha_rows, tar_rows, pos_rows = [], [], []
    for dname, tname in _pairs(p):
        rec = json.loads(ctx.unit_path("alpha", _pair_unit(dname, tname)).read_text())
        d, t = mf.loc[dname], mf.loc[tname]
        row = {
            "draft": dname,
            "target": tname,
            "n_params_draft": int(d.n_params),
            "n_params_target": int(t.n_params),
            "n_tokens_draft": int(d.n_tokens),
            "n_tokens_target": int(t.n_tokens),
            "draft_test_ppl": d.test_ppl,
            "target_test_ppl": t.test_ppl,
            "draft_val_ppl": d.val_ppl,
            "target_val_ppl": t.val_ppl,
        }
        row.update(
            {
                k: rec[k]
                for k in (
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
            }
        )
        g = greedy.get((dname, tname))
        row["greedy_acceptance_run"] = g if g is not None else math.nan
        row["c_flops"] = d.n_params / t.n_params
        row["c_flops_non_embedding"] = d.n_params_non_embedding / t.n_params_non_embedding
        row["c_measured"] = (calib[dname] / calib[tname]) if calib else math.nan
        alpha_rows.append(row)
        for r in rec["tar"]:
            tar_rows.append({"draft": dname, "target": tname, "temperature": 1.0, **r})
        for r in rec["positions"]:
            pos_rows.append({"draft": dname, "target": tname, "temperature": 1.0, **r})
    pos_rows += _greedy_positions_from_throughput(ctx)
    pos = pd.DataFrame(pos_rows)
    pos["acceptance_rate"] = pos["accepts"] / pos["attempts"].where(pos["attempts"] > 0)
    ctx.write_csv(
        "alpha.csv",
        pd.DataFrame(alpha_rows),
        alpha_tar_convention="tar_no_bonus = mean accepted drafts per full iteration; "
        "alpha_from_tar(counts_bonus=False); truncated iterations dropped",
    )
    ctx.write_csv("tar.csv", pd.DataFrame(tar_rows))
    ctx.write_csv("acceptance_by_position.csv", pos)


# -- stage: calibrate ----------------------------------------------------------------------------
def stage_calibrate(ctx: Context) -> None:
    from tqdm.auto import tqdm

    p, m = ctx.profile, ctx.profile.measure
    fp = _calibrate_fingerprint(ctx)
    if ctx.load_unit("calibrate", "all_models", fp) is None:
        prefix = ctx.prompts(1, m.calib_prefix_len)[0]
        lat = {s.name: [] for s in p.models}
        # Models alternate within each round (A B C .. A B C ..) so machine-load drift hits all alike.
        for _ in tqdm(range(m.calib_repeats), desc="calibrate", disable=not ctx.progress):
            for s in p.models:
                lat[s.name].append(
                    timing.forward_latency(
                        ctx.model(s.name), prefix, m.calib_max_tokens, repeats=1, warmup=1, device=ctx.device
                    )[0].tolist()
                )
        ctx.save_unit("calibrate", "all_models", fp, {"latency_s": lat, "prefix_len": m.calib_prefix_len})
    merge_calibrate(ctx)
    if all(ctx.unit_path("alpha", _pair_unit(d, t)).is_file() for d, t in _pairs(ctx.profile)):
        merge_alpha(ctx)


def _calibrate_fingerprint(ctx: Context) -> str:
    p, m = ctx.profile, ctx.profile.measure
    return p.fingerprint(
        "calibrate",
        m.calib_prefix_len,
        m.calib_max_tokens,
        m.calib_repeats,
        [ctx.train_record(s.name)["fingerprint"] for s in p.models],
    )


def _calibration_medians(ctx: Context) -> dict:
    """One-token latency per model from the calibration unit; empty if it is missing or stale
    (made for other models or settings, e.g. before the profile changed)."""
    rec = ctx.load_unit("calibrate", "all_models", _calibrate_fingerprint(ctx))
    if rec is None:
        return {}
    return {k: float(np.median(np.asarray(v)[:, 0])) for k, v in rec["latency_s"].items()}


def merge_calibrate(ctx: Context) -> None:
    rec = json.loads(ctx.unit_path("calibrate", "all_models").read_text())
    mf = _models_frame(ctx)
    rows = []
    for s in ctx.profile.models:
        a = np.asarray(rec["latency_s"][s.name])
        med = np.median(a, axis=0)
        for t in range(a.shape[1]):
            rows.append(
                {
                    "model": s.name,
                    "role": s.role,
                    "n_params": int(mf.loc[s.name].n_params),
                    "n_new_tokens": t + 1,
                    "prefix_len_tokens": rec["prefix_len"],
                    "latency_median_s": med[t],
                    "latency_p025_s": np.percentile(a[:, t], 2.5),
                    "latency_p975_s": np.percentile(a[:, t], 97.5),
                    "n_repeats": a.shape[0],
                    "latency_rel_one_token": med[t] / med[0],
                }
            )
    ctx.write_csv("cost_calibration.csv", pd.DataFrame(rows))


# -- stage: throughput ---------------------------------------------------------------------------
def stage_throughput(ctx: Context) -> None:
    from tqdm.auto import tqdm

    from sdsl_lib.measurement.decoding import autoregressive_generate, speculative_generate

    p, m = ctx.profile, ctx.profile.measure
    prompts = ctx.prompts(m.tput_prompts, m.prompt_len)
    configs = [0] + list(m.gammas)  # 0 stands for plain autoregressive decoding of the target
    for dname, tname in tqdm(_pairs(p), desc="throughput pairs", disable=not ctx.progress):
        unit = _pair_unit(dname, tname)
        fp = _throughput_fingerprint(ctx, dname, tname)
        if ctx.load_unit("throughput", unit, fp) is not None:
            continue
        target, draft = ctx.model(tname), ctx.model(dname)
        # Warm-up: every code path once (allocator, kernels, first-call overheads) before any timing.
        warm = prompts[0].to(ctx.device)
        autoregressive_generate(target, warm, 4)
        for g in (1, max(m.gammas)):
            speculative_generate(target, draft, warm, g, 2 * g + 2)
        rows = []
        for k, prompt in enumerate(prompts):
            prompt = prompt.to(ctx.device)
            order = configs[k % len(configs) :] + configs[: k % len(configs)]  # rotate: interleaved
            ref = None
            outs = {}
            for g in order:
                if g == 0:
                    ids, st = autoregressive_generate(target, prompt, m.tput_new_tokens)
                    ref = ids
                    rows.append(
                        {
                            "prompt_idx": k,
                            "method": "autoregressive",
                            "gamma": 0,
                            "new_tokens": st.new_tokens,
                            "time_s": st.total_time_s,
                            "tokens_per_s": st.tokens_per_s,
                        }
                    )
                else:
                    ids, st = speculative_generate(target, draft, prompt, g, m.tput_new_tokens)
                    outs[g] = ids
                    rows.append(
                        {
                            "prompt_idx": k,
                            "method": "speculative",
                            "gamma": g,
                            "new_tokens": st.new_tokens,
                            "time_s": st.total_time_s,
                            "tokens_per_s": st.tokens_per_s,
                            "iterations": st.iterations,
                            "drafted": st.drafted,
                            "accepted": st.accepted,
                            "draft_time_s": st.draft_time_s,
                            "verify_time_s": st.verify_time_s,
                            "position_attempts": st.position_attempts.tolist(),
                            "position_accepts": st.position_accepts.tolist(),
                        }
                    )
            for r in rows:
                if r["prompt_idx"] == k and r["method"] == "speculative":
                    # Greedy speculative decoding must reproduce greedy decoding token for token.
                    r["matches_autoregressive"] = bool(torch.equal(outs[r["gamma"]], ref))
        ctx.save_unit(
            "throughput", unit, fp, {"draft": dname, "target": tname, "rows": rows, "prompt_len": m.prompt_len}
        )
    merge_throughput(ctx)
    if all(ctx.unit_path("alpha", _pair_unit(d, t)).is_file() for d, t in _pairs(p)):
        merge_alpha(ctx)


def _throughput_fingerprint(ctx: Context, dname: str, tname: str) -> str:
    return ctx.profile.fingerprint(
        "throughput",
        ctx.profile.measure.__dict__,
        ctx.train_record(dname)["fingerprint"],
        ctx.train_record(tname)["fingerprint"],
    )


def _throughput_units(ctx: Context):
    """Finished throughput units of the current pairs (stale ones, from other settings, skipped)."""
    for dname, tname in _pairs(ctx.profile):
        rec = ctx.load_unit("throughput", _pair_unit(dname, tname), _throughput_fingerprint(ctx, dname, tname))
        if rec is not None:
            yield dname, tname, rec


def _greedy_acceptance_from_throughput(ctx: Context) -> dict:
    out = {}
    for d, t, rec in _throughput_units(ctx):
        att = sum(sum(r["position_attempts"]) for r in rec["rows"] if r["method"] == "speculative")
        acc = sum(sum(r["position_accepts"]) for r in rec["rows"] if r["method"] == "speculative")
        out[(d, t)] = acc / att if att else math.nan
    return out


def _greedy_positions_from_throughput(ctx: Context) -> list:
    rows = []
    for d, t, rec in _throughput_units(ctx):
        for g in sorted({r["gamma"] for r in rec["rows"] if r["method"] == "speculative"}):
            sel = [r for r in rec["rows"] if r["method"] == "speculative" and r["gamma"] == g]
            att = np.sum([r["position_attempts"] for r in sel], axis=0)
            acc = np.sum([r["position_accepts"] for r in sel], axis=0)
            rows += [
                {
                    "draft": d,
                    "target": t,
                    "temperature": 0.0,
                    "gamma": g,
                    "position": i + 1,
                    "attempts": int(att[i]),
                    "accepts": int(acc[i]),
                }
                for i in range(g)
            ]
    return rows


def merge_throughput(ctx: Context) -> None:
    rows, summary = [], []
    for d, t, rec in _throughput_units(ctx):
        df = pd.DataFrame(rec["rows"]).drop(columns=["position_attempts", "position_accepts"], errors="ignore")
        df.insert(0, "target", t)
        df.insert(0, "draft", d)
        ar = df[df.method == "autoregressive"].set_index("prompt_idx")["tokens_per_s"]
        df["speedup_vs_autoregressive"] = df["tokens_per_s"].to_numpy() / ar.loc[df["prompt_idx"]].to_numpy()
        rows.append(df)
        for (method, g), grp in df.groupby(["method", "gamma"]):
            tps, spd = grp["tokens_per_s"].to_numpy(), grp["speedup_vs_autoregressive"].to_numpy()
            s = {
                "draft": d,
                "target": t,
                "method": method,
                "gamma": g,
                "n_prompts": len(grp),
                "tokens_per_s_median": np.median(tps),
                "tokens_per_s_p025": np.percentile(tps, 2.5),
                "tokens_per_s_p975": np.percentile(tps, 97.5),
                "speedup_median": np.median(spd),
                "speedup_p025": np.percentile(spd, 2.5),
                "speedup_p975": np.percentile(spd, 97.5),
            }
            if method == "speculative":
                s["tokens_per_iteration_mean"] = grp["new_tokens"].sum() / grp["iterations"].sum()
                s["all_match_autoregressive"] = bool(grp["matches_autoregressive"].all())
            summary.append(s)
    if not rows:
        return
    ctx.write_csv(
        "throughput.csv",
        pd.concat(rows, ignore_index=True),
        timing="greedy (temperature 0), batch 1, configurations interleaved per prompt "
        "(rotated order), one warm-up of each code path per pair",
    )
    ctx.write_csv("throughput_summary.csv", pd.DataFrame(summary), interval="2.5 and 97.5 percentiles over prompts")


# -- stage: hf (peer baseline) -------------------------------------------------------------------
def _hf_pairs(ctx: Context) -> list:
    """Pairs for the HF baseline: explicit "draft/target" names, or "best" = per target, the draft
    with the highest median speculative speedup (any gamma) in the throughput stage."""
    out = []
    summary = ctx.out_dir / "throughput_summary.csv"
    for spec in ctx.profile.measure.hf_pairs:
        if spec != "best":
            d, t = spec.split("/")
            out.append((d, t))
            continue
        if not summary.is_file():
            raise FileNotFoundError(f"hf pairs 'best' need {summary}; run the throughput stage first")
        s = pd.read_csv(summary)
        s = s[s.method == "speculative"]
        for t, grp in s.groupby("target"):
            out.append((grp.loc[grp.speedup_median.idxmax(), "draft"], t))
    return out


def stage_hf(ctx: Context) -> None:
    from tqdm.auto import tqdm

    from sdsl_lib.measurement.hf_baseline import compare_with_hf, summarise_comparison

    p, m = ctx.profile, ctx.profile.measure
    prompts = [x.to(ctx.device) for x in ctx.prompts(m.hf_prompts, m.prompt_len)]
    todo = [(d, t, g) for d, t in _hf_pairs(ctx) for g in m.hf_gammas]
    frames, summaries = [], []
    for d, t, g in tqdm(todo, desc="hf baseline", disable=not ctx.progress):
        unit = f"{_pair_unit(d, t)}__g{g}"
        fp = p.fingerprint("hf", m.__dict__, ctx.train_record(d)["fingerprint"], ctx.train_record(t)["fingerprint"])
        rec = ctx.load_unit("hf", unit, fp)
        if rec is None:
            df = compare_with_hf(ctx.model(t), ctx.model(d), prompts, g, m.tput_new_tokens, m.hf_repeats)
            rec = ctx.save_unit(
                "hf", unit, fp, {"draft": d, "target": t, "gamma": g, "rows": json.loads(df.to_json(orient="records"))}
            )
        df = pd.DataFrame(rec["rows"])
        for col, val in (("gamma", g), ("target", t), ("draft", d)):
            if col not in df.columns:
                df.insert(0, col, val)
        frames.append(df)
        summaries.append({"draft": d, "target": t, "gamma": g, **summarise_comparison(df)})
    if frames:
        ctx.write_csv(
            "hf_baseline.csv",
            pd.concat(frames, ignore_index=True),
            hf_settings="assistant generation_config: num_assistant_tokens=gamma, "
            "num_assistant_tokens_schedule='constant', assistant_confidence_threshold=0",
        )
        ctx.write_csv(
            "hf_summary.csv",
            pd.DataFrame(summaries).rename(
                columns={
                    "ratio_median": "ours_over_hf_speed_ratio_median",
                    "ratio_ci95_lower": "ours_over_hf_speed_ratio_p025",
                    "ratio_ci95_upper": "ours_over_hf_speed_ratio_p975",
                    "acceptance": "ours_accepted_over_drafted",
                }
            ),
            interval="2.5 and 97.5 percentiles over prompts of time_hf / time_ours",
        )


# -- driver ------------------------------------------------------------------------------------
_STAGE_FUNCS = {
    "train": "stage_train",
    "alpha": "stage_alpha",
    "calibrate": "stage_calibrate",
    "throughput": "stage_throughput",
    "hf": "stage_hf",
}


def run_profile(
    profile_name: str,
    out_dir: str | os.PathLike | None = None,
    stages=("all",),
    cache: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
) -> Path:
    """Run the measurement chain of ``profile_name`` and write its tidy CSVs to ``out_dir``.

    Parameters
    ----------
    profile_name : {"smoke", "cpu", "gpu"}
    out_dir : path, optional
        Results folder (default ``data/measured/<profile>/`` in the repository).
    stages : sequence of str
        Any of :data:`STAGES`, or ``"all"`` (in that order).
    cache : path, optional
        Cache for corpus and tokenizer (default :func:`sdsl_lib.measurement.corpus.cache_dir`).
    work_dir : path, optional
        Checkpoints and per-unit results (default ``<cache>/runs/<profile>``).
    device : str, optional
        ``"cuda"`` or ``"cpu"``; default CUDA when present.

    Returns
    -------
    Path of the results folder.
    """
    profile = get_profile(profile_name)
    if isinstance(stages, str):
        stages = (stages,)
    stages = tuple(stages)
    bad = [s for s in stages if s not in STAGES + ("all",)]
    if bad:
        raise ValueError(f"stages must be among {STAGES + ('all',)}, got {bad}")
    if "all" in stages:
        stages = STAGES
    cache = Path(cache) if cache is not None else corpus.cache_dir()
    out_dir = Path(out_dir) if out_dir is not None else repo_root() / "data" / "measured" / profile.name
    work_dir = Path(work_dir) if work_dir is not None else cache / "runs" / profile.name
    dev = timing.pick_device(device)
    timing.configure_threads(profile.cpu_threads, dev)
    ctx = Context(profile, out_dir, cache, work_dir, dev, progress)
    for stage in STAGES:
        if stage in stages:
            t0 = time.perf_counter()
            globals()[_STAGE_FUNCS[stage]](ctx)
            if progress:
                print(f"[sdsl measure] stage {stage} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return out_dir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sdsl_lib.measurement.pipeline", description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="cpu", help="smoke, cpu (default) or gpu")
    ap.add_argument(
        "--stage", action="append", choices=STAGES + ("all",), help="stage to run (repeatable; default all)"
    )
    ap.add_argument("--out", default=None, help="results folder (default data/measured/<profile>/)")
    ap.add_argument("--work-dir", default=None, help="checkpoints and unit results (default <cache>/runs/<profile>)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        out = run_profile(
            args.profile,
            args.out,
            tuple(args.stage or ("all",)),
            work_dir=args.work_dir,
            device=args.device,
            progress=not args.no_progress,
        )
    except corpus.CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
