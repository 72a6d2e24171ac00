"""The measurement chain: train the ladder, then measure alpha, costs and throughput for every pair.

Run it with ``python -m sdsl_lib.measurement --profile smoke`` (or ``python -m
sdsl_lib.measurement.pipeline``; ``make measure PROFILE=...``). ``--stage`` picks stages from the
table :data:`sdsl_lib.measurement.stages.STAGES`; ``--profile-file`` adds profiles from a TOML file
(:mod:`sdsl_lib.measurement.profile_file`).

Where things go
    Results (the tidy CSVs of :mod:`sdsl_lib.measurement.schema`, each with a JSON provenance
    sidecar) go to ``build/measured/<profile>/`` in a checkout (ignored by git), else to
    ``<cache>/measured/<profile>/``: a measurement never dirties the tracked tree unless asked.
    Committing new measured data is explicit: ``--out data/measured/<profile>``.
    Checkpoints and finished units go to the work folder ``<cache>/runs/<profile>/``.

Resumability
    Every finished unit (a trained model, one pair's alpha, the cost calibration, one pair's
    throughput block, one HF comparison) is written atomically with a fingerprint of the settings
    and the code it depends on (:mod:`sdsl_lib.measurement.workdir`). A rerun skips units whose
    fingerprint matches, redoes the rest, and merges each stage's units into that stage's own
    tables; a stale unit is never merged. Ctrl-C keeps every finished unit.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from sdsl_lib.io import repo_root
from sdsl_lib.measurement import corpus
from sdsl_lib.measurement.cli import main
from sdsl_lib.measurement.profiles import Profile, get_profile

__all__ = [
    "STAGES",
    "ENGINES",
    "default_out_dir",
    "run_profile",
    "main",
]  # and, loaded on use: Context, teacher_forced_acceptance

#: Stage names in run order (the dispatch table is :data:`sdsl_lib.measurement.stages.STAGES`).
STAGES = ("train", "alpha", "calibrate", "throughput", "exact", "hf", "vllm")


#: Measurement engines: our loop (every stage but vllm) or vLLM (stages train and vllm).
ENGINES = ("ours", "vllm")


def __getattr__(name):
    # Torch-backed names load on first use, so that ``--help`` and bad input answer at once.
    if name == "Context":
        from sdsl_lib.measurement.context import Context

        return Context
    if name == "teacher_forced_acceptance":
        from sdsl_lib.measurement.stages.alpha import teacher_forced_acceptance

        return teacher_forced_acceptance
    raise AttributeError(name)


def default_out_dir(profile_name: str, cache: Path | None = None) -> Path:
    """``build/measured/<profile>`` in a checkout (git ignores ``build/``), else ``<cache>/measured/<profile>``."""
    root = repo_root()
    if (root / "pyproject.toml").is_file():
        return root / "build" / "measured" / profile_name
    return (cache if cache is not None else corpus.cache_dir()) / "measured" / profile_name


def _resolve_stages(stages, engine: str = "ours") -> tuple:
    """Stages in run order. ``--engine vllm`` runs train and vllm only ("all" = both); our engine never runs vllm."""
    stages = (stages,) if isinstance(stages, str) else tuple(stages)
    bad = [s for s in stages if s not in STAGES + ("all",)]
    if bad:
        raise ValueError(f"stages must be among {STAGES + ('all',)}, got {bad}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    allowed = ("train", "vllm") if engine == "vllm" else tuple(s for s in STAGES if s != "vllm")
    if "all" not in stages and (wrong := [s for s in stages if s not in allowed]):
        raise ValueError(f"engine {engine!r} runs stages {allowed}, got {wrong}")
    return allowed if "all" in stages else tuple(s for s in STAGES if s in stages)


def _quiet() -> None:
    """Silence transformers' and huggingface_hub's bars, advisories and warnings (``--no-progress``)."""
    import warnings

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def run_profile(
    profile_name: str | Profile,
    out_dir: str | os.PathLike | None = None,
    stages=("all",),
    cache: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    threads: int | None = None,
    engine: str = "ours",
    engine_settings: dict | None = None,
) -> Path:
    """Run the measurement chain of a profile and write its tables to ``out_dir``.

    Parameters
    ----------
    profile_name : str or Profile
        A built-in profile (``"smoke"``, ``"cpu"``, ``"gpu"``, ...) or a :class:`Profile`
        (e.g. from :func:`sdsl_lib.measurement.profile_file.load_profile_file`). A profile without
        a target (``"cpu-seeds"``) runs only with ``stages=("train",)``.
    out_dir : path, optional
        Results folder (default :func:`default_out_dir`, outside the tracked tree).
    stages : sequence of str
        Any of :data:`STAGES`, or ``"all"`` (run in table order).
    cache : path, optional
        Cache for corpus and tokenizer (default ``$SDSL_CACHE`` or ``~/.cache/sdsl-companion``).
    work_dir : path, optional
        Checkpoints and per-unit results (default ``<cache>/runs/<profile>``).
    device : str, optional
        ``"cuda"`` or ``"cpu"``; default CUDA when present.
    progress : bool
        Progress bars and one line per stage on stderr; False silences every bar and warning.
    threads : int, optional
        torch CPU threads (default ``$SDSL_THREADS``, ``$OMP_NUM_THREADS``, the profile's).
    engine : {"ours", "vllm"}
        ``"vllm"``: stage vllm measures the pairs with vLLM (:mod:`sdsl_lib.measurement.stages.vllm`).
    engine_settings : dict, optional
        Stage vllm's settings (``python``, ``engine_kwargs``, ``prompts``, ``gammas``,
        ``new_tokens``, ``batch_sizes``); unset ones come from the profile.

    Returns
    -------
    Path of the results folder.
    """
    from sdsl_lib.measurement import timing
    from sdsl_lib.measurement.context import Context
    from sdsl_lib.measurement.profile_file import validate_profile
    from sdsl_lib.measurement.stages import STAGES as TABLE

    profile = profile_name if isinstance(profile_name, Profile) else get_profile(profile_name)
    stages = _resolve_stages(stages, engine)
    validate_profile(profile, stages=stages)  # a profile without a target may run stage train alone
    if not progress:
        _quiet()
    cache = Path(cache) if cache is not None else corpus.cache_dir()
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(profile.name, cache)
    work_dir = Path(work_dir) if work_dir is not None else cache / "runs" / profile.name
    dev = timing.pick_device(device)
    n_threads, source = timing.resolve_threads(profile.cpu_threads, threads)
    timing.configure_threads(n_threads, dev)
    ctx = Context(profile, out_dir, cache, work_dir, dev, progress)
    ctx.threads_source = source
    ctx.engine, ctx.engine_settings = engine, dict(engine_settings or {})
    if progress:
        print(
            f"[sdsl measure] profile {profile.name}: results {out_dir}, work {work_dir}, "
            f"{n_threads} torch threads (from {source})",
            file=sys.stderr,
        )
    for name in stages:
        stage = TABLE[name]
        ctx.stage, ctx.stage_code = name, ctx.code_fingerprint(stage.code)
        t0 = time.perf_counter()
        stage.run(ctx)
        if progress:
            print(f"[sdsl measure] stage {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    ctx.stage = None
    return out_dir


if __name__ == "__main__":
    sys.exit(main())
