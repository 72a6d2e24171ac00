"""The measurement command line: ``python -m sdsl_lib.measurement`` (and ``... .measurement.pipeline``).

Every bad input (an unknown profile or stage, a bad number, a folder that is a file, a bad profile
file, a bad environment variable) is answered with **one line** naming the argument, exit status 2,
before anything is trained. Ctrl-C prints one line and exits 130; finished units are kept.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["build_parser", "main"]

PROG = "python -m sdsl_lib.measurement"
_STAGE_NAMES = ("train", "alpha", "calibrate", "throughput", "exact", "hf", "vllm")  # == pipeline.STAGES (tested)

EPILOG = """\
profiles: smoke (seconds; tests), cpu (default; ~30 min of training on 2 cores, ~10 min of measuring),
  cpu-seeds (the cpu drafts x 3 seeds, no target: --stage train only; ~18 min), gpu (one H200;
  ~2 x 10 min), smollm2 (the real target SmolLM2-135M-Instruct and 5 distilled drafts; ~2.2 h on
  2 cores), smollm2-gpu (the same drafts on one H200; docs/gpu.md), smollm2-smoke (a tiny stand-in
  target; seconds), or any profile of --profile-file.
  --target DIR --draft DIR [--draft DIR ...] measures your own checkpoints (with the smollm2 settings;
  the workload is generated once by the target, ~20 min for a 135M model on 2 cores).
stages (run in this order): train, alpha, calibrate, throughput, exact, hf; or all.
engine: --engine vllm runs stage vllm (and train): vLLM measures the same pairs on the same prompts
  (acceptance -> alpha, per position, tokens/s at batch 1 and 8, greedy equality with our fp32
  output) into vllm_*.csv with an engine column; needs `make vllm-env` (or --vllm-python), greedy only.
  e.g. --profile smollm2 --engine vllm --stage vllm --out data/measured/smollm2
  GPU (CUDA build of vLLM in that interpreter): --vllm-arg tensor_parallel_size=2 --vllm-arg dtype=bfloat16

output: by default build/measured/<profile>/ in a checkout (git ignores build/), else
  $SDSL_CACHE/measured/<profile>/. Committing measured data is explicit:
  --out data/measured/<profile>.

environment:
  SDSL_CACHE       cache for the corpus, the tokenizer, checkpoints and finished units
                   (default ~/.cache/sdsl-companion; the work folder is <cache>/runs/<profile>)
  SDSL_THREADS     torch CPU threads (--threads overrides it)
  SDSL_VLLM_PYTHON interpreter with vLLM for --engine vllm (default <checkout>/.venv-vllm/bin/python)
  OMP_NUM_THREADS  respected when neither --threads nor SDSL_THREADS is set (it is not overridden
                   by the profile's cpu_threads); the number used and its source go into every sidecar
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


class BadInput(ValueError):
    """Bad command-line input (one line, exit status 2)."""


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog=PROG,
        description="Train the model ladder, then measure alpha, costs and throughput for every (draft, target) pair.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--profile", default="cpu", help="profile to run (default cpu; see below)")
    ap.add_argument("--profile-file", metavar="FILE", help="TOML file of extra profiles ([profiles.<name>] tables)")
    ap.add_argument(
        "--stage", action="append", choices=_STAGE_NAMES + ("all",), help="stage to run (repeatable; default all)"
    )
    ap.add_argument(
        "--target", metavar="DIR", help="a Hugging Face causal-LM folder: measure it with the --draft folders"
    )
    ap.add_argument(
        "--draft", action="append", metavar="DIR", help="a draft folder sharing the target's tokenizer (repeatable)"
    )
    ap.add_argument("--out", metavar="DIR", help="results folder (default build/measured/<profile>/, see below)")
    ap.add_argument("--work-dir", metavar="DIR", help="checkpoints and finished units (default <cache>/runs/<profile>)")
    ap.add_argument("--device", help="cpu, cuda or cuda:<index> (default: cuda when present)")
    ap.add_argument("--threads", type=_positive_int, metavar="N", help="torch CPU threads (overrides SDSL_THREADS)")
    ap.add_argument("--engine", choices=("ours", "vllm"), default="ours", help="measurement engine (default ours)")
    ap.add_argument(
        "--vllm-python", metavar="PY", help="interpreter with vLLM (default $SDSL_VLLM_PYTHON or .venv-vllm)"
    )
    ap.add_argument(
        "--vllm-arg", action="append", metavar="KEY=VALUE", help="passed to vllm.LLM (JSON value or string; repeatable)"
    )
    ap.add_argument("--vllm-prompts", type=_positive_int, metavar="N", help="eval prompts (default: throughput's)")
    ap.add_argument("--vllm-gamma", type=_positive_int, action="append", metavar="G", help="gamma (repeatable)")
    ap.add_argument("--vllm-new-tokens", type=_positive_int, metavar="N", help="new tokens per prompt")
    ap.add_argument("--vllm-batch", type=_positive_int, action="append", metavar="B", help="batch size (default 1, 8)")
    ap.add_argument(
        "--no-progress", action="store_true", help="no progress bars, stage lines or library warnings (errors only)"
    )
    return ap


def _check_dir(value: str | None, what: str) -> None:
    """A folder that exists or can be made: not a file, under a writable folder."""
    if value is None:
        return
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise BadInput(f"{what} must name a folder, got the file {str(path)!r}")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise BadInput(f"{what} must lie under a folder, but {str(parent)!r} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInput(f"{what} must be writable, {str(parent)!r} is not")


def _engine_settings(args) -> dict:
    """Stage vllm's settings from the --vllm-* options (checked here, before anything runs)."""
    import json

    given = [o for o in ("vllm_python", "vllm_arg", "vllm_prompts", "vllm_gamma", "vllm_new_tokens", "vllm_batch")
             if getattr(args, o)]  # fmt: skip
    if args.engine != "vllm":
        if given:
            raise BadInput(f"argument --{given[0].replace('_', '-')}: needs --engine vllm")
        if args.stage and "vllm" in args.stage:
            raise BadInput("argument --stage: vllm needs --engine vllm")
        return {}
    if args.stage and (wrong := [s for s in args.stage if s not in ("train", "vllm", "all")]):
        raise BadInput(f"argument --stage: --engine vllm runs stages train and vllm, got {wrong[0]!r}")
    from sdsl_lib.engines.vllm_backend import default_python

    python = args.vllm_python or default_python()
    if not Path(python).expanduser().is_file():
        raise BadInput(
            f"argument --vllm-python: must be an interpreter with vLLM (run `make vllm-env`), got {python!r}"
        )
    kwargs = {}
    for item in args.vllm_arg or ():
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise BadInput(f"argument --vllm-arg: must be KEY=VALUE with KEY an identifier, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return {"python": str(Path(python).expanduser()), "engine_kwargs": kwargs, "prompts": args.vllm_prompts,
            "gammas": args.vllm_gamma, "new_tokens": args.vllm_new_tokens, "batch_sizes": args.vllm_batch}  # fmt: skip


def _resolve(args) -> dict:
    """Check every input before anything runs; the keyword arguments of ``run_profile``."""
    from sdsl_lib.measurement.profiles import get_profile

    extra = {}
    if args.target is not None or args.draft:
        from sdsl_lib.measurement.profiles import checkpoint_profile

        if args.target is None or not args.draft:
            raise BadInput("arguments --target and --draft go together: one --target DIR and at least one --draft DIR")
        for what, d in [("--target", args.target), *(("--draft", x) for x in args.draft)]:
            if not (Path(d).expanduser() / "config.json").is_file():
                raise BadInput(
                    f"argument {what}: must be a Hugging Face checkpoint folder (with config.json), got {d!r}"
                )
        prof = checkpoint_profile(args.target, args.draft)
        extra, args.profile = {prof.name: prof}, prof.name
    if args.profile_file is not None:
        from sdsl_lib.measurement.profile_file import load_profile_file

        try:
            extra = load_profile_file(args.profile_file)
        except ValueError as exc:
            raise BadInput(f"argument --profile-file: {exc}") from None
    try:
        profile = get_profile(args.profile, extra)
    except ValueError:
        from sdsl_lib.measurement.profiles import PROFILES

        known = sorted({*PROFILES, *extra})
        raise BadInput(f"argument --profile: must be one of {known}, got {args.profile!r}") from None
    from sdsl_lib.measurement.profile_file import validate_profile

    try:  # the rules run_profile applies, here so that a breach is one line (a drafts-only profile: train alone)
        validate_profile(profile, stages=args.stage or ("all",))
    except ValueError as exc:
        raise BadInput(f"argument --profile: {exc}") from None
    _check_dir(args.out, "argument --out")
    _check_dir(args.work_dir, "argument --work-dir")
    _check_dir(os.environ.get("SDSL_CACHE") or None, "environment variable SDSL_CACHE")
    from sdsl_lib.measurement import timing

    try:
        timing.resolve_threads(profile.cpu_threads, args.threads)
    except ValueError as exc:
        raise BadInput(f"environment variable {exc}") from None
    try:
        timing.pick_device(args.device)
    except ValueError as exc:
        raise BadInput(f"argument --device: {exc}") from None
    engine_settings = _engine_settings(args)
    return dict(
        engine=args.engine,
        engine_settings=engine_settings,
        profile_name=profile,
        out_dir=args.out,
        stages=tuple(args.stage or ("all",)),
        work_dir=args.work_dir,
        device=args.device,
        progress=not args.no_progress,
        threads=args.threads,
    )


def main(argv=None) -> int:
    """Run the command; return its exit status (0 done, 1 refused data, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        kwargs = _resolve(args)
    except BadInput as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    from sdsl_lib.measurement import corpus
    from sdsl_lib.measurement.pipeline import run_profile
    from sdsl_lib.measurement.real_target import RealTargetError
    from sdsl_lib.measurement.schema import SchemaError
    from sdsl_lib.measurement.workdir import StaleUnitError
    from sdsl_lib.measurement.workload import LoopingWorkloadError

    try:
        out = run_profile(**kwargs)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished units are kept, rerun the same command to resume", file=sys.stderr)
        return 130
    except (corpus.CorpusError, RealTargetError, LoopingWorkloadError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (SchemaError, StaleUnitError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0
