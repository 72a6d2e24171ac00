"""Stage ``train``: obtain every model of the profile; tables ``models``, ``loss_curves``, ``loss_budget_points``.

One unit per model (``<work>/models/<name>/train_result.json`` beside its checkpoint). How a model
is obtained depends on its family (:data:`FAMILIES`): ``"ladder"`` trains it from scratch
(:func:`sdsl_lib.measurement.models.train_model`). A new family (say a pretrained checkpoint with
distilled drafts) adds one function here that writes ``<work>/models/<name>/model`` and returns the
same record keys (parameter counts, losses, perplexities, curve, budget points), and its name in
:data:`sdsl_lib.measurement.profile_file.FAMILIES_KNOWN`.
"""

from __future__ import annotations

import math

import pandas as pd

from sdsl_lib.measurement import models as ladder

__all__ = ["CODE", "FAMILIES", "fingerprint", "run", "train_one", "merge"]

#: The code a trained model depends on.
CODE = ("sdsl_lib.measurement.stages.train", "sdsl_lib.measurement.models", "sdsl_lib.measurement.tokenizer")


def _train_ladder(ctx, spec) -> dict:
    return ladder.train_model(
        spec,
        ctx.profile,
        ctx.ids["train"],
        ctx.ids["validation"],
        ctx.ids["test"],
        ctx.model_dir(spec.name),
        device=ctx.device,
        progress=ctx.progress,
    )


def _real(name: str):
    def obtain(ctx, spec) -> dict:
        from sdsl_lib.measurement.stages import train_real

        return train_real.FAMILIES[name](ctx, spec)

    return obtain


#: Model family -> function(ctx, spec) returning the unit record of a model it has written.
#: The real-target families live in :mod:`sdsl_lib.measurement.stages.train_real`.
FAMILIES = {"ladder": _train_ladder, **{f: _real(f) for f in ("pretrained", "distill", "prompt_lookup")}}
#: The code a model of a real-target family depends on (besides :data:`CODE`).
CODE_REAL = (
    "sdsl_lib.measurement.stages.train_real",
    "sdsl_lib.measurement.distill",
    "sdsl_lib.measurement.real_inputs",
    "sdsl_lib.measurement.workload",
    "sdsl_lib.measurement.prompt_lookup",
)


def fingerprint(ctx, spec) -> str:
    """The settings of ``spec`` and of the shared recipe, and the train code.

    A ladder model's fingerprint is unchanged by the real-target fields (``source`` empty, no
    ``real`` recipe); a real-target model's adds the recipe, the target's identity and their code.
    """
    fields = {k: v for k, v in spec.__dict__.items() if not (k == "source" and v == "")}
    if spec.family == "ladder":
        return ctx.profile.fingerprint(fields, ctx.code_fingerprint(CODE))
    import dataclasses

    return ctx.profile.fingerprint(
        fields, dataclasses.asdict(ctx.profile.real), ctx.real.identity, ctx.code_fingerprint(CODE + CODE_REAL)
    )


def train_one(ctx, spec) -> dict:
    """Obtain model ``spec`` now and store its unit."""
    rec = FAMILIES[spec.family](ctx, spec)
    return ctx.units.save("train", spec.name, fingerprint(ctx, spec), rec)


def run(ctx) -> None:
    from tqdm.auto import tqdm

    for spec in tqdm(ctx.profile.models, desc="train ladder", disable=not ctx.progress):
        if ctx.units.load("train", spec.name, fingerprint(ctx, spec)) is None:
            train_one(ctx, spec)
    merge(ctx)


def _model_row(ctx, spec, r: dict) -> dict:
    shape = r.get("shape", {})  # a real-target family reads its shape from the checkpoint
    return {
        "model": spec.name,
        "role": spec.role,
        "n_params": r["n_params_total"],
        "n_params_non_embedding": r["n_params_non_embedding"],
        "n_params_embedding": r["n_params_embedding"],
        "d_model": shape.get("d_model", spec.d_model),
        "n_layers": shape.get("n_layers", spec.n_layers),
        "n_heads": shape.get("n_heads", spec.n_heads),
        "d_ff": shape.get("d_ff", spec.d_ff),
        "vocab_size": shape.get("vocab_size", ctx.profile.vocab_size),
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


def _curve_rows(name: str, r: dict) -> list:
    return [
        {
            "model": name,
            "step": c["step"],
            "n_tokens": c["n_tokens"],
            "lr": c["lr"],
            "train_loss_nats": c["train_loss"],
            "val_loss_subset_nats": c["val_loss_subset"],
        }
        for c in r["curve"]
    ]


def _point_rows(name: str, r: dict) -> list:
    return [
        {
            "model": name,
            "n_params": r["n_params_total"],
            "n_params_non_embedding": r["n_params_non_embedding"],
            "n_tokens": b["n_tokens"],
            "n_steps": b["n_steps"],
            "budget_frac": b["frac"],
            "val_loss_nats": b["val_loss"],
            "val_ppl": math.exp(b["val_loss"]),
            "branch": b["branch"],
        }
        for b in r["budget_points"]
    ]


def merge(ctx) -> None:
    """The three train tables from the current model units (a stale one is refused)."""
    expected = {s.name: fingerprint(ctx, s) for s in ctx.profile.models}
    recs = ctx.units.collect("train", expected)
    specs = {s.name: s for s in ctx.profile.models}
    models = [_model_row(ctx, specs[n], r) for n, r in recs.items()]
    curves = [row for n, r in recs.items() for row in _curve_rows(n, r)]
    points = [row for n, r in recs.items() for row in _point_rows(n, r)]
    extra = {"head": {n: {k: r[k] for k in ("head_vocab", "head_coverage") if k in r} for n, r in recs.items()}}
    ctx.write_table("models", pd.DataFrame(models), units=expected, **extra)
    ctx.write_table("loss_curves", pd.DataFrame(curves), units=expected)
    points = pd.DataFrame(points).sort_values(["n_params", "n_tokens"], kind="stable")
    ctx.write_table("loss_budget_points", points, units=expected)
