r"""Extend a committed workload with more sampled continuations of every train prompt, resumably.

The command that made ``data/workloads/smollm2``'s extension (its sidecar, ``settings.extension``:
3 rounds at T = 0.7, seed ``2000 + 1000 * round + batch start``, batches of 64, 160 new tokens,
bf16). The defaults are those recorded settings, so::

    python -m sdsl_lib.measurement.workload_extend --workload data/workloads/smollm2

regenerates the committed folder: a workload that already records an extension is first cut back
to its base (the recorded rounds of every train prompt, checked against the record, are dropped), so
a rerun rebuilds the extension instead of stacking a second one. Generation is
:func:`sdsl_lib.measurement.workload.extend_sampled` (the library function the original script
called), then :func:`~sdsl_lib.measurement.workload.save_workload`.

Resumable per round: each finished round is written atomically to ``--cache`` as
``round_<r>.npz`` (``tokens`` int64, flat, and ``offsets``: the continuations of the train prompts
in increasing prompt id), beside ``settings.json`` (target, seed, temperature, batch, tokens, dtype
and a hash of the base's train prompts). A rerun reuses the rounds whose settings match and refuses
a folder made with other settings; round ``r`` does not depend on the number of rounds asked for,
so ``--rounds 4`` after 3 generates one. The target is loaded only when a round is missing.
The rounds a workload already records are themselves a cache: when the record's settings equal the
command's (seed, temperature, batch, new tokens, dtype), they are written to ``--cache`` as round
files before anything is generated, so on a fresh machine ``--rounds 8`` on the committed 3-round
workload generates rounds 3-7 only.

Exit status: 0 done, 2 bad input (one line naming the argument), 130 interrupted (finished rounds
are kept; rerun the same command).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import numpy as np

from sdsl_lib.measurement import workload

__all__ = ["DEFAULTS", "build_parser", "strip_extension", "cache_settings", "open_cache", "run", "main"]

PROG = "python -m sdsl_lib.measurement.workload_extend"
#: The settings recorded in data/workloads/smollm2/target_tokens.json, settings.extension.
DEFAULTS = {"rounds": 3, "seed": 2000, "temperature": 0.7, "batch": 64, "max_new": 160, "dtype": "bf16"}
SETTINGS_FILE = "settings.json"


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        # T = 0 is greedy: every round would repeat the committed greedy continuation.
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (sampling), got {value!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", required=True, type=Path, help="workload folder (prompts.json, target_tokens.*)")
    ap.add_argument(
        "--rounds", type=_int_at_least(1), default=d["rounds"], help="sampled continuations per train prompt"
    )
    ap.add_argument(
        "--seed", type=_int_at_least(0), default=d["seed"], help="round r, batch b is seeded seed + 1000 r + b"
    )
    ap.add_argument("--temperature", type=_positive_float, default=d["temperature"], help="sampling temperature (> 0)")
    ap.add_argument("--batch", type=_int_at_least(1), default=d["batch"], help="prompts per generate() call")
    ap.add_argument(
        "--max-new", type=_int_at_least(1), default=d["max_new"], help="new tokens per continuation at most"
    )
    ap.add_argument("--dtype", choices=("bf16", "fp32", "fp16w"), default=d["dtype"],
                    help="numerics of the target (fp16w: fp16 weights for fbgemm, on hosts without bf16 units)")  # fmt: skip
    ap.add_argument("--target", type=Path, default=None, help="a Hugging Face checkpoint folder (default: SmolLM2)")
    ap.add_argument("--out", type=Path, default=None, help="where the extended workload goes (default: --workload)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder of the finished rounds (default: $SDSL_CACHE/workload_extend/<workload name>)")  # fmt: skip
    ap.add_argument("--adopt-cache", action="store_true",
                    help="round files in --cache without settings.json were made with these settings: record them")  # fmt: skip
    ap.add_argument("--why", default=None,
                    help="why the workload is extended, recorded in its sidecar (default: the reason the workload already records)")  # fmt: skip
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def strip_extension(wl: workload.Workload) -> workload.Workload:
    """The workload without the extension its sidecar records (``settings.extension``), checked.

    The extension is the last ``rounds x n_train`` sequences: per round, one sampled continuation of
    every train prompt in increasing prompt id, at the recorded temperature, ``new_tokens`` in all.
    A workload without a record comes back unchanged; one whose tail does not match its record
    raises ``ValueError`` naming ``--workload``.
    """
    ext = wl.sidecar.get("settings", {}).get("extension")
    if not ext:
        return wl
    pids = sorted({s.prompt_id for s in wl.select("train")})
    k = int(ext["rounds"]) * len(pids)
    tail = wl.seqs[len(wl.seqs) - k :] if 0 < k <= len(wl.seqs) else []
    t = float(np.float32(ext["temperature"]))
    ok = (
        len(tail) == k
        and [s.prompt_id for s in tail] == pids * int(ext["rounds"])
        and all(s.split == "train" and float(np.float32(s.temperature)) == t for s in tail)
        and ("new_tokens" not in ext or sum(len(s.cont) for s in tail) == int(ext["new_tokens"]))
    )
    if not ok:
        raise ValueError(
            f"argument --workload: its sidecar records an extension ({ext['rounds']} rounds at T = {ext['temperature']}) "
            "that its last sequences do not match; it cannot be cut back to its base"
        )
    settings = {key: v for key, v in wl.sidecar["settings"].items() if key != "extension"}
    sidecar = {key: v for key, v in wl.sidecar.items() if key != "repetition"}
    return replace(wl, seqs=wl.seqs[: len(wl.seqs) - k], sidecar=dict(sidecar, settings=settings))


def _train_prompts_sha256(wl: workload.Workload) -> str:
    h = hashlib.sha256()
    train = {}
    for s in wl.select("train"):
        train.setdefault(s.prompt_id, s.prompt)
    for pid in sorted(train):
        h.update(f"{pid}:".encode())
        h.update(np.asarray(train[pid], dtype=np.int64).tobytes())
    return h.hexdigest()


def cache_settings(base: workload.Workload, target: str, args: argparse.Namespace) -> dict:
    """What a round's tokens depend on (not the number of rounds): the key of a ``--cache`` folder."""
    return {
        "train_prompts_sha256": _train_prompts_sha256(base),
        "target_sha256": target,
        "seed": args.seed,
        "temperature": args.temperature,
        "batch": args.batch,
        "max_new_tokens": args.max_new,
        "dtype": args.dtype,
    }


def open_cache(cache: Path, settings: dict, adopt: bool = False) -> Path:
    """``cache`` ready for :func:`~sdsl_lib.measurement.workload.extend_sampled`'s ``part_dir``.

    Writes ``settings.json`` in a new folder; reuses a folder whose ``settings.json`` equals
    ``settings``; refuses (``ValueError`` naming ``--cache``) one made with other settings, and one
    holding round files but no ``settings.json`` unless ``adopt`` (``--adopt-cache``).
    """
    from sdsl_lib.io import atomic_write_json

    cache = Path(cache)
    if cache.exists() and not cache.is_dir():
        raise ValueError(f"argument --cache: must be a folder, got the file {str(cache)!r}")
    record = cache / SETTINGS_FILE
    if record.is_file():
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise ValueError(f"argument --cache: {record} is not JSON; delete the folder to start again") from None
        if old != settings:
            diff = sorted(k for k in {*old, *settings} if old.get(k) != settings.get(k))
            raise ValueError(
                f"argument --cache: {cache} holds rounds made with other settings ({', '.join(diff)} differ); "
                "pass another --cache or delete it"
            )
        return cache
    if sorted(cache.glob("round_*.npz")) and not adopt:
        raise ValueError(
            f"argument --cache: {cache} holds round files but no {SETTINGS_FILE} (made by another script?); "
            "move them aside, or pass --adopt-cache if they were made with exactly these settings"
        )
    atomic_write_json(record, settings)
    return cache


def _recorded_seed(ext: dict) -> int | None:
    """The base seed of a recorded extension (an int, or the leading int of its "2000 + ..." text)."""
    seed = ext.get("seed")
    if isinstance(seed, int):
        return seed
    head = str(seed).split(" ", 1)[0]
    return int(head) if head.isdigit() else None


def seed_cache_from_record(wl: workload.Workload, base: workload.Workload, cache: Path, args) -> list[int]:
    """Write the rounds ``wl`` records (its extension) to ``cache`` as round files; return those written.

    Only when the record was made with the command's settings (otherwise its rounds are other
    tokens and nothing is written) and only for rounds not cached yet. Round ``r`` is the ``r``-th
    block of the recorded tail: one continuation per train prompt, in increasing prompt id.
    """
    ext = wl.sidecar.get("settings", {}).get("extension")
    if not ext:
        return []
    dtypes = {"bf16": "bfloat16", "fp32": "float32", "fp16w": "fp16w"}
    same = (
        _recorded_seed(ext) == args.seed
        and float(np.float32(ext.get("temperature", -1))) == float(np.float32(args.temperature))
        and int(ext.get("batch", -1)) == args.batch
        and int(ext.get("max_new_tokens", -1)) == args.max_new
        and ext.get("dtype") in (args.dtype, dtypes[args.dtype])
    )
    if not same:
        return []
    n_train = len({s.prompt_id for s in base.select("train")})
    tail = wl.seqs[len(base.seqs) :]
    written = []
    for r in range(int(ext["rounds"])):
        part = Path(cache) / f"round_{r}.npz"
        if part.is_file():
            continue
        workload.save_round(part, [s.cont for s in tail[r * n_train : (r + 1) * n_train]])
        written.append(r)
    return written


def _target_identity(args: argparse.Namespace) -> str:
    from sdsl_lib.measurement import real_target

    if args.target is None:
        return real_target.GGUF_SHA256
    if not (args.target / "config.json").is_file():
        raise ValueError(f"argument --target: must be a Hugging Face checkpoint folder, got {str(args.target)!r}")
    from sdsl_lib.measurement.real_inputs import target_identity

    return target_identity(str(args.target), args.target)


def _load_target(args: argparse.Namespace):
    """(model, tokenizer) of the target in ``--dtype`` (SmolLM2's cached checkpoint unless ``--target``)."""
    from sdsl_lib.measurement import real_target

    path = args.target if args.target is not None else real_target.checkpoint_dir(args.dtype)
    return real_target.load_checkpoint(path, dtype=args.dtype), real_target.load_tokenizer(path)


def _save_atomically(out: Path, prompts: list, seqs: list, sidecar: dict) -> Path:
    # save_workload writes the .npz in place; build the folder beside ``out`` and swap each file in.
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        workload.save_workload(tmp, prompts, seqs, sidecar)
        for name in ("target_tokens.npz", "prompts.json", "target_tokens.json"):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _versions() -> dict:
    out = {}
    for name in ("torch", "transformers", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def run(args: argparse.Namespace, load_target=None, argv=None) -> Path:
    """Extend ``args.workload`` (cut back to its base first) and write it to ``args.out``; return that folder.

    ``load_target(args) -> (model, tokenizer)`` is called only when a round is missing (default: the
    checkpoint of ``--target``, or SmolLM2's in ``--dtype``); ``argv`` is recorded as the command.
    """
    from tqdm.auto import tqdm

    from sdsl_lib.measurement.corpus import cache_dir
    from sdsl_lib.measurement.workdir import git_state

    try:
        wl = workload.load_workload(args.workload)
    except ValueError as exc:
        raise ValueError(f"argument --workload: {exc}") from None
    base = strip_extension(wl)
    if len(base.seqs) < len(wl.seqs):
        print(
            f"{args.workload}: its recorded extension ({len(wl.seqs) - len(base.seqs)} sequences) is rebuilt from the base"
        )
    if not base.select("train"):
        raise ValueError(f"argument --workload: {args.workload} holds no train sequences to extend")
    identity = _target_identity(args)
    named = base.sidecar.get("target_gguf_sha256", base.sidecar.get("target_sha256"))
    if named is not None and named != identity:
        raise ValueError(
            f"argument --target: the workload was generated by the target {named[:12]}..., not {identity[:12]}...; "
            "its extension must come from the same model"
        )
    cache = (
        args.cache if args.cache is not None else cache_dir() / "workload_extend" / Path(args.workload).resolve().name
    )
    open_cache(cache, cache_settings(base, identity, args), args.adopt_cache)
    reused = seed_cache_from_record(wl, base, cache, args)
    if reused:
        print(f"rounds {reused} are the workload's recorded ones (same settings): written to {cache}, not regenerated")
    missing = [r for r in range(args.rounds) if not (cache / f"round_{r}.npz").is_file()]
    model = tok = None
    if missing:
        print(f"generating rounds {missing} of {args.rounds} into {cache} (finished rounds are kept)")
        model, tok = (load_target or _load_target)(args)
    bar = tqdm(total=args.rounds, desc="rounds", unit="round", disable=args.no_progress)
    with bar:
        new = workload.extend_sampled(
            model, tok, base, args.rounds, args.temperature, args.seed, max_new=args.max_new, batch=args.batch,
            part_dir=cache, progress=lambda done, total: bar.update(done - bar.n),
        )  # fmt: skip
    previous = wl.sidecar.get("settings", {}).get("extension", {})
    # A new reason replaces the recorded one (the reason of the extension it rebuilds may not hold).
    why = args.why or previous.get("why")
    n_train = len({s.prompt_id for s in base.select("train")})
    extension = {
        "what": f"sdsl_lib.measurement.workload.extend_sampled: {args.rounds} more T={args.temperature:g} continuations "
        f"of every one of the {n_train} train prompts",
        **({"why": why} if why else {}),
        "command": " ".join([PROG, *map(shlex.quote, argv if argv is not None else sys.argv[1:])]),
        "rounds": args.rounds,
        "seed": f"{args.seed} + 1000 * round + batch start (batches of {args.batch}, prompts sorted by length)",
        "temperature": args.temperature,
        "batch": args.batch,
        "max_new_tokens": args.max_new,
        "dtype": args.dtype,
        "new_tokens": int(sum(len(s.cont) for s in new)),
        "date": _dt.date.today().isoformat(),
        "versions": _versions(),
        **git_state(),
    }
    settings = dict(base.sidecar.get("settings", {}), extension=extension)
    out = args.out if args.out is not None else args.workload
    return _save_atomically(Path(out), base.prompts, base.seqs + new, dict(base.sidecar, settings=settings))


def main(argv=None) -> int:
    """Run the command; return its exit status (0 done, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from sdsl_lib.measurement.real_target import RealTargetError

    try:
        out = run(args, argv=argv)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished rounds are kept, rerun the same command to resume", file=sys.stderr)
        return 130
    except RealTargetError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        if not str(exc).startswith("argument "):
            raise  # not bad input: keep the traceback
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
