"""Profiles from a TOML file, and the rules every profile obeys (built in or read from a file).

A user measures their own ladder without editing code::

    python -m sdsl_lib.measurement --profile-file my_ladder.toml --profile mine

with ``my_ladder.toml``::

    [profiles.mine]
    base = "smoke"          # optional: start from a built-in profile's settings
    vocab_size = 512
    seed = 0
    cpu_threads = 2

    [profiles.mine.train]   # any field of TrainSpec
    batch_size = 8
    seq_len = 64

    [profiles.mine.measure] # any field of MeasureSpec
    gammas = [1, 2, 3]

    [profiles.mine.real]    # any field of RealSpec (real-target profiles: base = "smollm2", ...)
    workload = "smollm2-r5" # data/workloads/<name>

    [[profiles.mine.models]] # replaces the base's models; d_ff defaults to ~8/3 d_model
    name = "d-xs"
    role = "draft"
    d_model = 32
    n_layers = 1
    n_heads = 2
    train_tokens = 20480
    lr = 5e-3

Every value is checked (:func:`validate_profile`): a bad one raises ``ValueError`` naming the
file, the key and its valid range, before anything is trained.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from sdsl_lib.measurement.profiles import PROFILES, MeasureSpec, ModelSpec, Profile, RealSpec, TrainSpec, _ff

__all__ = ["load_profile_file", "profile_from_dict", "validate_profile", "FAMILIES_KNOWN"]

#: Model families the train stage knows (kept in step with ``stages.train.FAMILIES`` by a test).
FAMILIES_KNOWN = ("ladder", "pretrained", "distill", "prompt_lookup")
#: Families that train nothing (no step budget to check).
_UNTRAINED = ("pretrained", "prompt_lookup")

# (kind, lo, hi): kind int / float / bool / str / ints / floats / strs (tuples); ranges inclusive.
_INF = math.inf
_RULES = {
    TrainSpec: {
        "batch_size": ("int", 1, _INF),
        "seq_len": ("int", 2, 1024),
        "warmup_frac": ("float", 0, 0.5),
        "decay_frac": ("float", 0, 1),
        "branch_fracs": ("floats", 0.01, 0.99),
        "weight_decay": ("float", 0, _INF),
        "beta1": ("float", 0, 0.9999),
        "beta2": ("float", 0, 0.9999),
        "grad_clip": ("float", 1e-9, _INF),
        "eval_every": ("int", 1, _INF),
        "eval_windows_curve": ("int", 1, _INF),
        "eval_windows_final": ("int", 1, _INF),
        "cuda_bf16": ("bool", 0, 1),
    },
    MeasureSpec: {
        "gammas": ("ints", 1, 64),
        "alpha_windows": ("int", 2, _INF),
        "alpha_window_len": ("int", 3, 2048),
        "tar_prompts": ("int", 1, _INF),
        "tar_new_tokens": ("int", 1, 1024),
        "tput_prompts": ("int", 1, _INF),
        "tput_new_tokens": ("int", 1, 1024),
        "prompt_len": ("int", 1, 1024),
        "calib_prefix_len": ("int", 1, 1024),
        "calib_max_tokens": ("int", 1, 256),
        "calib_repeats": ("int", 1, _INF),
        "hf_pairs": ("strs", 0, 0),
        "hf_gammas": ("ints", 1, 64),
        "hf_prompts": ("int", 1, _INF),
        "hf_repeats": ("int", 1, _INF),
        "forward": ("str", 0, 0),
    },
    ModelSpec: {
        "name": ("str", 0, 0),
        "role": ("str", 0, 0),
        "d_model": ("int", 1, 65536),
        "n_layers": ("int", 1, 1024),
        "n_heads": ("int", 1, 1024),
        "d_ff": ("int", 1, _INF),
        "train_tokens": ("int", 1, _INF),
        "lr": ("float", 1e-12, 1.0),
        "family": ("str", 0, 0),
    },
    RealSpec: {
        "workload": ("str", 0, 0),
        "head_vocab": ("int", 0, 1_000_000),
        "loss": ("str", 0, 0),
        "soft_weight": ("float", 0, 1),
        "top_k": ("int", 1, 4096),
        "init": ("str", 0, 0),
        "timing_dtype": ("str", 0, 0),
        "sampled_temperature": ("float", 1e-6, 100),
        "exact_prompts": ("int", 1, _INF),
        "chi2_draws": ("int", 1, _INF),
        "load_limit_cores": ("float", 0, _INF),
        "gen_eval": ("int", 1, _INF),
        "gen_train": ("int", 1, _INF),
        "gen_sampled": ("int", 0, _INF),
        "gen_max_new": ("int", 1, 4096),
        "gen_min_distinct": ("float", 0, 1),
    },
    Profile: {
        "name": ("str", 0, 0),
        "vocab_size": ("int", 260, 1_000_000),
        "seed": ("int", 0, 2**31 - 1),
        "cpu_threads": ("int", 1, 4096),
    },
}


def _check_value(value, rule, where: str):
    kind, lo, hi = rule
    rng = f" in [{lo:g}, {hi:g}]" if kind not in ("str", "strs", "bool") else ""
    if kind in ("ints", "floats", "strs"):
        if not isinstance(value, (list, tuple)) or (kind != "strs" and not value):
            raise ValueError(f"{where} must be a non-empty list of {kind[:-1]}{rng}, got {value!r}")
        return tuple(_check_value(v, (kind[:-1], lo, hi), f"{where}[{i}]") for i, v in enumerate(value))
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str) and value != "",
    }[kind]
    if not ok or (kind in ("int", "float") and not lo <= value <= hi):
        what = {"str": "a non-empty string", "int": f"an int{rng}", "float": f"a float{rng}", "bool": "true or false"}
        raise ValueError(f"{where} must be {what[kind]}, got {value!r}")
    return float(value) if kind == "float" else value


def _check_fields(obj, where: str) -> None:
    for name, rule in _RULES[type(obj)].items():
        value = getattr(obj, name)
        if value is None and name == "eval_windows_final":
            continue  # None: every window of the split
        _check_value(value, rule, f"{where}.{name}")


#: The RealSpec fields that take one of a few words.
_REAL_CHOICES = {"loss": ("hard", "soft", "mix"), "init": ("rand", "pca"), "timing_dtype": ("bf16", "fp32", "fp16w")}


def _check_real(r: RealSpec, where: str) -> None:
    _check_fields(r, where)
    for name, choices in _REAL_CHOICES.items():
        if getattr(r, name) not in choices:
            raise ValueError(f"{where}.{name} must be one of {choices}, got {getattr(r, name)!r}")
    if "/" in r.workload or r.workload.startswith("."):
        raise ValueError(f"{where}.workload must name a folder of data/workloads (no '/'), got {r.workload!r}")


def _check_models(p: Profile, where: str, train_only: bool = False) -> None:
    names = [m.name for m in p.models]
    tokens_per_step = p.train.batch_size * p.train.seq_len
    for i, m in enumerate(p.models):
        here = f"{where}.models[{i}]"
        _check_fields(m, here)
        if "/" in m.name or "__" in m.name or m.name != m.name.strip():
            raise ValueError(
                f"{here}.name must not hold '/', '__' or outer spaces (pair names use them), got {m.name!r}"
            )
        if m.role not in ("draft", "target"):
            raise ValueError(f"{here}.role must be 'draft' or 'target', got {m.role!r}")
        if m.family not in FAMILIES_KNOWN:
            raise ValueError(f"{here}.family must be one of {FAMILIES_KNOWN}, got {m.family!r}")
        if m.d_model % m.n_heads:
            raise ValueError(f"{here}.n_heads must divide d_model = {m.d_model}, got {m.n_heads}")
        if m.family not in _UNTRAINED and m.train_tokens // tokens_per_step < 4:
            raise ValueError(
                f"{here}.train_tokens must give at least 4 steps of batch_size x seq_len = {tokens_per_step} tokens,"
                f" got {m.train_tokens}"
            )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{where}.models must have distinct names, got {dup[0]!r} twice")
    if p.real is None and any(m.family != "ladder" for m in p.models):
        raise ValueError(f"{where}: families {FAMILIES_KNOWN[1:]} need a real-target profile (its `real` settings)")
    if p.real is not None and (len(p.targets) != 1 or p.targets[0].family != "pretrained"):
        raise ValueError(f"{where}.models must hold exactly one target of family 'pretrained' on a real target")
    if train_only and p.models:
        return  # stage train obtains each model on its own: no pair, so no target needed
    if not p.drafts or not p.targets:
        hint = " (a profile without a target can run only --stage train)" if p.drafts and not p.targets else ""
        raise ValueError(
            f"{where}.models must hold at least one draft and one target{hint}, got roles {[m.role for m in p.models]}"
        )


def validate_profile(p: Profile, where: str | None = None, stages=None) -> Profile:
    """Check every field of ``p`` and the rules between them; return ``p`` or raise ``ValueError``.

    ``stages``: the stages the run will execute (names of ``pipeline.STAGES``). A profile needs a
    draft and a target, except for a run of stage ``train`` alone: that obtains each model on its
    own, so a profile of drafts only (the seed replicates ``cpu-seeds``) is valid for it. ``None``
    (the default, and every profile read from a file): the full rules.
    """
    where = where or f"profile {p.name!r}"
    stages = (stages,) if isinstance(stages, str) else None if stages is None else tuple(stages)
    train_only = bool(stages) and set(stages) <= {"train"}
    _check_fields(p, where)
    _check_fields(p.train, f"{where}.train")
    _check_fields(p.measure, f"{where}.measure")
    _check_models(p, where, train_only)
    if p.real is not None:
        _check_real(p.real, f"{where}.real")
    m = p.measure
    from sdsl_lib.measurement.lean_llama import FORWARDS

    if m.forward not in FORWARDS:
        raise ValueError(f"{where}.measure.forward must be one of {FORWARDS}, got {m.forward!r}")
    drafts, targets = {d.name for d in p.drafts}, {t.name for t in p.targets}
    for i, spec in enumerate(m.hf_pairs):
        d, _, t = spec.partition("/")
        if spec != "best" and (d not in drafts or t not in targets):
            raise ValueError(
                f"{where}.measure.hf_pairs[{i}] must be 'best' or 'draft/target' with a draft of {sorted(drafts)} "
                f"and a target of {sorted(targets)}, got {spec!r}"
            )
    if m.prompt_len + max(m.tput_new_tokens, m.tar_new_tokens) > 4 * p.train.seq_len + 1024:
        raise ValueError(
            f"{where}.measure.prompt_len + new tokens must fit the models' {4 * p.train.seq_len + 1024} positions, "
            f"got {m.prompt_len} + {max(m.tput_new_tokens, m.tar_new_tokens)}"
        )
    return p


def _build(cls, data: dict, where: str, base=None):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]} is not a setting (known: {', '.join(sorted(fields))})")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    if cls is ModelSpec:
        missing = [f for f in ("name", "role", "d_model", "n_layers", "n_heads", "train_tokens") if f not in kw]
        if missing:
            raise ValueError(f"{where}.{missing[0]} is required")
        if isinstance(kw.get("d_model"), int) and not isinstance(kw["d_model"], bool):
            kw.setdefault("d_ff", _ff(kw["d_model"]))
    return dataclasses.replace(base, **kw) if base is not None else cls(**kw)


def profile_from_dict(name: str, data: dict, where: str) -> Profile:
    """A validated :class:`Profile` from the table ``data`` (see the module docstring)."""
    data = dict(data)
    base_name = data.pop("base", None)
    if base_name is not None and base_name not in PROFILES:
        raise ValueError(f"{where}.base must be one of {sorted(PROFILES)}, got {base_name!r}")
    base = PROFILES.get(base_name) if base_name else None
    train = _build(TrainSpec, data.pop("train", {}), f"{where}.train", base.train if base else None)
    measure = _build(MeasureSpec, data.pop("measure", {}), f"{where}.measure", base.measure if base else None)
    raw_real, real = data.pop("real", None), {}
    if raw_real is not None:
        if not isinstance(raw_real, dict):
            raise ValueError(f"{where}.real must be a table ([profiles.{name}.real])")
        if base is None or base.real is None:
            raise ValueError(f"{where}.real needs a real-target base profile (base = 'smollm2', 'smollm2-smoke', ...)")
        real = {"real": _build(RealSpec, raw_real, f"{where}.real", base.real)}
    raw_models = data.pop("models", None)
    if raw_models is None and base is None:
        raise ValueError(f"{where}.models is required (a list of tables) when no base profile is given")
    if raw_models is not None and not (isinstance(raw_models, list) and all(isinstance(m, dict) for m in raw_models)):
        raise ValueError(f"{where}.models must be an array of tables ([[profiles.{name}.models]])")
    models = (
        tuple(_build(ModelSpec, m, f"{where}.models[{i}]") for i, m in enumerate(raw_models))
        if raw_models is not None
        else base.models
    )
    fields = {f.name for f in dataclasses.fields(Profile)} - {"name", "models", "train", "measure", "real"}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(
            f"{where}.{unknown[0]} is not a setting (known: base, models, train, measure, real, {', '.join(sorted(fields))})"
        )
    kw = dict(name=name, models=models, train=train, measure=measure, **real, **data)
    p = dataclasses.replace(base, **kw) if base is not None else Profile(**kw)
    return validate_profile(p, where)


def load_profile_file(path: str | os.PathLike) -> dict[str, Profile]:
    """Every profile of a TOML file (``[profiles.<name>]`` tables), validated.

    Raises ``ValueError`` (one line, naming the file and the key) on a missing or unparsable file,
    an unknown key, a bad value, or a name that shadows a built-in profile.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (declared for 3.10 only)
        import tomli as tomllib

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--profile-file must name an existing TOML file, got {str(path)!r}")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    profiles = doc.get("profiles")
    if not isinstance(profiles, dict) or not profiles or set(doc) - {"profiles"}:
        raise ValueError(f"{path}: must hold [profiles.<name>] tables and nothing else, got keys {sorted(doc)}")
    out = {}
    for name, data in profiles.items():
        where = f"{path}: profiles.{name}"
        if name in PROFILES:
            raise ValueError(f"{where}: the name shadows a built-in profile ({sorted(PROFILES)}); pick another")
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a table")
        try:
            out[name] = profile_from_dict(name, data, where)
        except TypeError as exc:  # a dataclass refused a value of the wrong shape
            raise ValueError(f"{where}: {exc}") from None
    return out
