"""The measurement chain: train the ladder, then measure alpha, costs and throughput for every pair.

Run it with ``python -m sdsl_lib.measure --profile cpu`` (``--stage`` train / alpha / calibrate /
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

from . import bpe, corpus, ladder, timing
from .io import atomic_write_csv, atomic_write_json, repo_root, write_sidecar
from .profiles import Profile, get_profile

__all__ = ["STAGES", "Context", "run_profile", "main"]

STAGES = ("train", "alpha", "calibrate", "throughput", "hf")


class Context:
    """Everything the stages share: profile, folders, device, tokenizer and token streams."""

    def __init__(self, profile: Profile, out_dir: Path, cache: Path, work_dir: Path,
                 device: torch.device, progress: bool):
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
        write_sidecar(path, profile=self.profile.name, config=self.profile.to_dict(), seed=self.profile.seed,
                      device=str(self.device), hardware=timing.hardware_info(self.device),
                      torch_threads=torch.get_num_threads(), corpus=corpus.CORPUS_REQUIREMENT,
                      corpus_sha256=corpus.CORPUS_SHA256, split=self.split, **extra)

    def write_csv(self, name: str, df: pd.DataFrame, **extra) -> Path:
        path = self.out_dir / name
        atomic_write_csv(path, df)
        self.sidecar(path, **extra)
        return path

    def prompts(self, n: int, length: int, split: str = "test") -> list:
        """``n`` held-out prompts of ``length`` tokens, evenly spaced over the ``split`` stream."""
        ids = self.ids[split].astype(np.int64)
        starts = np.linspace(0, len(ids) - length - 1, n).round().astype(int)
        return [torch.as_tensor(ids[s:s + length])[None, :] for s in starts]


# -- stage: train ------------------------------------------------------------------------------
def stage_train(ctx: Context) -> None:
    from tqdm.auto import tqdm

    p = ctx.profile
    for spec in tqdm(p.models, desc="train ladder", disable=not ctx.progress):
        fp = p.fingerprint(spec.__dict__)
        path = ctx.model_dir(spec.name) / "train_result.json"
        if path.is_file() and json.loads(path.read_text()).get("fingerprint") == fp:
            continue
        rec = ladder.train_model(spec, p, ctx.ids["train"], ctx.ids["validation"], ctx.ids["test"],
                                 ctx.model_dir(spec.name), device=ctx.device, progress=ctx.progress)
        rec["fingerprint"] = fp
        atomic_write_json(path, rec)
    merge_train(ctx)


def merge_train(ctx: Context) -> None:
    models, curves, points = [], [], []
    for spec in ctx.profile.models:
        r = ctx.train_record(spec.name)
        models.append({
            "model": spec.name, "role": spec.role, "n_params": r["n_params_total"],
            "n_params_non_embedding": r["n_params_non_embedding"], "n_params_embedding": r["n_params_embedding"],
            "d_model": spec.d_model, "n_layers": spec.n_layers, "n_heads": spec.n_heads, "d_ff": spec.d_ff,
            "vocab_size": ctx.profile.vocab_size, "n_tokens": r["n_tokens"], "n_steps": r["n_steps"],
            "lr_max": spec.lr, "val_loss_nats": r["val_loss"], "val_ppl": r["val_ppl"],
            "test_loss_nats": r["test_loss"], "test_ppl": r["test_ppl"], "val_tokens": r["val_tokens"],
            "test_tokens": r["test_tokens"], "train_time_s": r["train_time_s"], "device": r["device"],
            "torch_threads": r["torch_threads"],
        })
        for c in r["curve"]:
            curves.append({"model": spec.name, "step": c["step"], "n_tokens": c["n_tokens"], "lr": c["lr"],
                           "train_loss_nats": c["train_loss"], "val_loss_subset_nats": c["val_loss_subset"]})
        for b in r["budget_points"]:
            points.append({"model": spec.name, "n_params": r["n_params_total"],
                           "n_params_non_embedding": r["n_params_non_embedding"], "n_tokens": b["n_tokens"],
                           "n_steps": b["n_steps"], "budget_frac": b["frac"], "val_loss_nats": b["val_loss"],
                           "val_ppl": math.exp(b["val_loss"]), "branch": b["branch"]})
    ctx.write_csv("models.csv", pd.DataFrame(models))
    ctx.write_csv("loss_curves.csv", pd.DataFrame(curves))
    ctx.write_csv("loss_budget_points.csv", pd.DataFrame(points).sort_values(["n_params", "n_tokens"]))


# -- driver ------------------------------------------------------------------------------------
_STAGE_FUNCS = {"train": "stage_train", "alpha": "stage_alpha", "calibrate": "stage_calibrate",
                "throughput": "stage_throughput", "hf": "stage_hf"}


def run_profile(profile_name: str, out_dir: str | os.PathLike | None = None, stages=("all",),
                cache: str | os.PathLike | None = None, work_dir: str | os.PathLike | None = None,
                device: str | None = None, progress: bool = True) -> Path:
    """Run the measurement chain of ``profile_name`` and write its tidy CSVs to ``out_dir``.

    Parameters
    ----------
    profile_name : {"smoke", "cpu", "gpu"}
    out_dir : path, optional
        Results folder (default ``data/measured/<profile>/`` in the repository).
    stages : sequence of str
        Any of :data:`STAGES`, or ``"all"`` (in that order).
    cache : path, optional
        Cache for corpus and tokenizer (default :func:`sdsl_lib.corpus.cache_dir`).
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
    ap = argparse.ArgumentParser(prog="python -m sdsl_lib.measure", description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="cpu", help="smoke, cpu (default) or gpu")
    ap.add_argument("--stage", action="append", choices=STAGES + ("all",),
                    help="stage to run (repeatable; default all)")
    ap.add_argument("--out", default=None, help="results folder (default data/measured/<profile>/)")
    ap.add_argument("--work-dir", default=None, help="checkpoints and unit results (default <cache>/runs/<profile>)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        out = run_profile(args.profile, args.out, tuple(args.stage or ("all",)), work_dir=args.work_dir,
                          device=args.device, progress=not args.no_progress)
    except corpus.CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
