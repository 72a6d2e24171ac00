"""The measurement stages, dispatched from one explicit table (:data:`STAGES`, name -> :class:`Stage`).

Each stage computes its units (resumable, fingerprinted: :mod:`sdsl_lib.measurement.workdir`) and
then merges them into its own tables only (:func:`sdsl_lib.measurement.schema.stage_tables`):

========== ======================================================== =================================
stage      tables                                                   needs
========== ======================================================== =================================
train      models, loss_curves, loss_budget_points                  corpus, tokenizer
alpha      alpha, tar, acceptance_by_position                       train
calibrate  cost_calibration                                         train
throughput throughput, throughput_summary, acceptance_by_position_   train
           greedy; throughput_sampled(_summary) on a real target
exact      exactness, chi_square (real target only; fp32)               train
hf         hf_baseline, hf_summary                                  train (throughput for "best")
vllm       vllm_acceptance, vllm_acceptance_by_position,            train; ``--engine vllm`` (else
           vllm_throughput                                          skipped), a real target
========== ======================================================== =================================

A unit's fingerprint covers the code of its stage (:attr:`Stage.code`, hashed by
:func:`sdsl_lib.measurement.workdir.code_fingerprint`): editing ``stages/calibrate.py`` re-measures
the calibration and nothing else; editing ``decoding.py`` re-measures alpha, throughput and hf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sdsl_lib.measurement.stages import alpha, calibrate, exact, hf, throughput, train, vllm

__all__ = ["Stage", "STAGES"]


@dataclass(frozen=True)
class Stage:
    """One stage: the function that runs it, the modules whose code its units depend on, its doc line."""

    name: str
    run: Callable
    merge: Callable
    code: tuple
    doc: str


def _stage(module, doc: str) -> Stage:
    name = module.__name__.rsplit(".", 1)[-1]
    return Stage(name, module.run, module.merge, module.CODE, doc)


#: Stage name -> Stage, in the order ``--stage all`` runs them.
STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        _stage(train, "train the ladder: models, loss curves, L(N, D) points"),
        _stage(alpha, "acceptance three ways: alpha, TAR(gamma), acceptance by position"),
        _stage(calibrate, "forward latency for T = 1..T_max new tokens: the measured c"),
        _stage(throughput, "greedy tokens/s, autoregressive vs speculative at every gamma"),
        _stage(exact, "real target only: greedy exactness (fp32) and the chi-square test of sampling"),
        _stage(hf, "Hugging Face assisted generation beside our loop"),
        _stage(vllm, "--engine vllm only: vLLM's acceptance, tokens/s and greedy equality beside our loop"),
    )
}
