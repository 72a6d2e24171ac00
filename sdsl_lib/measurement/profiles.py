"""Measurement profiles: which models to train, on how many tokens, and how much to measure.

One code path, three sizes (house style: smoke settings run the same code on coarser grids):

``smoke``
    three tiny models and a few dozen steps: the whole chain in well under a minute, for tests.
``cpu``
    the default, sized for 2 shared CPU cores: 5 drafts and 2 targets spanning more than 30x in
    parameters (both counting and not counting embeddings), in steps of 8 x 256 tokens: drafts 400
    steps (D = 0.82M tokens), targets 800 (D' = 1.64M, about 1.1 epochs of the training split).
    Budget: ladder training about 30 minutes, all measurements about 10 minutes.
``gpu``
    larger models and token budgets sized for one 10-minute command on one H200 (bf16 training,
    tf32 matmuls, CUDA-synchronised timing). Defined but not yet run.

Every model shares the tokenizer (:mod:`sdsl_lib.measurement.tokenizer`) and the training recipe
(:func:`sdsl_lib.measurement.models.train_model`): AdamW with a warmup-stable-decay (WSD) schedule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

__all__ = ["ModelSpec", "TrainSpec", "MeasureSpec", "Profile", "PROFILES", "get_profile"]


@dataclass(frozen=True)
class ModelSpec:
    """Shape of one Llama-style causal LM of the ladder (role ``"draft"`` or ``"target"``)."""

    name: str
    role: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    #: Tokens of training (D for a draft, D' for a target), rounded down to whole steps.
    train_tokens: int
    #: Peak learning rate of the WSD schedule (smaller models tolerate larger rates).
    lr: float = 3e-3
    #: How the model is obtained: ``"ladder"`` (trained from scratch by the train stage). Other
    #: families (e.g. a pretrained checkpoint) register in :data:`sdsl_lib.measurement.stages.train.FAMILIES`.
    family: str = "ladder"


@dataclass(frozen=True)
class TrainSpec:
    """The training recipe shared by all models of a profile."""

    batch_size: int = 16
    seq_len: int = 256
    warmup_frac: float = 0.05
    #: Fraction of the steps spent in the linear decay to zero at the end of the WSD schedule.
    decay_frac: float = 0.2
    #: Token budgets, as fractions of each model's ``train_tokens``, at which a cool-down branch is
    #: taken from the stable phase to record an extra (N, D, loss) point; 1.0 (the main run) is implied.
    branch_fracs: tuple = (0.25, 0.5)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    #: Evaluate the held-out loss (on ``eval_windows_curve`` windows) every this many steps.
    eval_every: int = 50
    eval_windows_curve: int = 16
    #: Windows of ``seq_len`` tokens used for the final held-out losses (None: all of the split).
    eval_windows_final: int | None = None
    #: On CUDA: train under bf16 autocast (tf32 matmuls are always allowed there).
    cuda_bf16: bool = True


@dataclass(frozen=True)
class MeasureSpec:
    """How much to measure for each (draft, target) pair."""

    gammas: tuple = tuple(range(1, 10))
    #: Teacher-forced alpha (method a): number of held-out test windows and their length.
    alpha_windows: int = 32
    alpha_window_len: int = 256
    #: TAR runs (method b, temperature 1): prompts per gamma and new tokens per prompt.
    tar_prompts: int = 4
    tar_new_tokens: int = 48
    #: Throughput (greedy): prompts, new tokens per prompt, and prompt length in tokens.
    tput_prompts: int = 8
    tput_new_tokens: int = 64
    prompt_len: int = 64
    #: Cost calibration: prefix length of the warm KV cache, largest T, repeats per T.
    calib_prefix_len: int = 64
    calib_max_tokens: int = 16
    calib_repeats: int = 15
    #: HF assisted generation baseline: which pairs ("best" = the best draft of each target by
    #: teacher-forced alpha; or explicit "draft/target" names), which gammas, prompts and repeats.
    hf_pairs: tuple = ("best",)
    hf_gammas: tuple = (1, 3, 5)
    hf_prompts: int = 4
    hf_repeats: int = 1


@dataclass(frozen=True)
class Profile:
    name: str
    models: tuple
    train: TrainSpec = field(default_factory=TrainSpec)
    measure: MeasureSpec = field(default_factory=MeasureSpec)
    vocab_size: int = 4096
    seed: int = 0
    #: torch CPU threads (set explicitly, recorded in every sidecar).
    cpu_threads: int = 2

    @property
    def drafts(self):
        return tuple(m for m in self.models if m.role == "draft")

    @property
    def targets(self):
        return tuple(m for m in self.models if m.role == "target")

    def model(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise ValueError(f"name must be one of {[m.name for m in self.models]}, got {name!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self, *parts) -> str:
        """Short hash of the settings a result depends on (stored in each unit's done marker)."""
        blob = json.dumps(
            [self.vocab_size, self.seed, dataclasses.asdict(self.train), *parts], sort_keys=True, default=str
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _ff(d: int) -> int:
    # Llama's SwiGLU width: about 8/3 d (so the MLP has ~8 d^2 weights), rounded up to a multiple of 32.
    return int(-(-(8 * d // 3) // 32) * 32)


_SMOKE = Profile(
    name="smoke",
    models=(
        ModelSpec("d-xs", "draft", 32, 1, 2, _ff(32), train_tokens=40 * 8 * 64, lr=5e-3),
        ModelSpec("d-s", "draft", 48, 1, 2, _ff(48), train_tokens=40 * 8 * 64, lr=5e-3),
        ModelSpec("t-s", "target", 64, 2, 2, _ff(64), train_tokens=40 * 8 * 64, lr=5e-3),
    ),
    train=TrainSpec(
        batch_size=8, seq_len=64, eval_every=10, eval_windows_curve=4, eval_windows_final=16, branch_fracs=(0.5,)
    ),
    measure=MeasureSpec(
        gammas=(1, 2, 3),
        alpha_windows=4,
        alpha_window_len=64,
        tar_prompts=2,
        tar_new_tokens=12,
        tput_prompts=2,
        tput_new_tokens=12,
        prompt_len=16,
        calib_prefix_len=16,
        calib_max_tokens=4,
        calib_repeats=3,
        hf_gammas=(2,),
        hf_prompts=1,
    ),
    vocab_size=512,
)

# cpu: sized for 2 (shared) CPU cores. Training speed measured here at batch 16 x 256: ~24k tok/s
# at 0.25M parameters, ~12k at 1.1M, ~3.2k at 5.9M, ~1.7k at 11M. Three lessons shaped it (the
# numbers are in data/measured/README.md, "How the cpu ladder was chosen"):
# - steps, not tokens, limit these tiny models: 192 steps of 16 x 256 tokens left every model early
#   in training and the targets no better than the best draft, so the recipe takes 8 x 256-token
#   steps, more of them;
# - at equal steps bigger is *not* better here: after 800 steps the 3-layer 1.1M model (val loss
#   4.21) beat 192x4 (4.30), 320x3 (4.31), 256x6 (4.35) and 448x3 (4.55 at peak rate 2.5e-3); the
#   compute-optimal size for ~1M tokens is far below 1M parameters, so Eq. 2's "more N, lower loss
#   at fixed D" fails at this budget. SDSL lets D and D' differ, and as in the paper's settings the
#   targets see more data: 800 steps (D' = 1.64M tokens, ~1.1 epochs) against the drafts' 400
#   (D = 0.82M), which puts every target above every draft;
# - at batch 1 on a CPU a step costs per layer, not per parameter: wide 3-layer targets (320x3,
#   448x3) were so cheap to step that the best draft cost 0.46 of a target step and speculation
#   lost (0.92x at best). Deep targets (6 and 8 layers) keep drafting cheap relative to verifying.
# About 30 minutes of training on idle cores, branches included.
_CPU_TRAIN = TrainSpec(
    batch_size=8, seq_len=256, eval_every=50, eval_windows_curve=16, eval_windows_final=None, branch_fracs=(0.25, 0.5)
)
_CPU_TOKENS_DRAFT = 400 * _CPU_TRAIN.batch_size * _CPU_TRAIN.seq_len
_CPU_TOKENS_TARGET = 800 * _CPU_TRAIN.batch_size * _CPU_TRAIN.seq_len
_CPU = Profile(
    name="cpu",
    models=(
        ModelSpec("d0-48x2", "draft", 48, 2, 3, _ff(48), _CPU_TOKENS_DRAFT, lr=4e-3),
        ModelSpec("d1-64x2", "draft", 64, 2, 4, _ff(64), _CPU_TOKENS_DRAFT, lr=4e-3),
        ModelSpec("d2-96x2", "draft", 96, 2, 4, _ff(96), _CPU_TOKENS_DRAFT, lr=3e-3),
        ModelSpec("d3-128x3", "draft", 128, 3, 4, _ff(128), _CPU_TOKENS_DRAFT, lr=3e-3),
        ModelSpec("d4-192x4", "draft", 192, 4, 6, _ff(192), _CPU_TOKENS_DRAFT, lr=2.5e-3),
        ModelSpec("t0-256x6", "target", 256, 6, 8, _ff(256), _CPU_TOKENS_TARGET, lr=2e-3),
        ModelSpec("t1-320x8", "target", 320, 8, 8, _ff(320), _CPU_TOKENS_TARGET, lr=1.5e-3),
    ),
    train=_CPU_TRAIN,
    measure=MeasureSpec(),
)

# gpu: one H200, one 10-minute command for training and one for measuring. The training split is
# only ~1.5M tokens, so the budgets (4M and 8M tokens, ~2.7 and ~5.4 epochs) and the targets (~30M
# and ~60M parameters) stay small enough that held-out loss is not dominated by overfitting; a
# larger corpus would be needed to go further. Not yet run: sizes are estimates from FLOP counts, not timings.
# The cpu ladder's lessons carry over: batches of 16 x 256 tokens leave 1,024 optimizer steps to
# the drafts, the (deep) targets get twice the drafts' data so that they beat them.
_GPU_TOKENS = 4 * 1_048_576
_GPU = Profile(
    name="gpu",
    models=(
        ModelSpec("d0-64x2", "draft", 64, 2, 4, _ff(64), _GPU_TOKENS, lr=4e-3),
        ModelSpec("d1-128x2", "draft", 128, 2, 4, _ff(128), _GPU_TOKENS, lr=4e-3),
        ModelSpec("d2-192x3", "draft", 192, 3, 6, _ff(192), _GPU_TOKENS, lr=4e-3),
        ModelSpec("d3-256x4", "draft", 256, 4, 8, _ff(256), _GPU_TOKENS, lr=4e-3),
        ModelSpec("d4-384x4", "draft", 384, 4, 8, _ff(384), _GPU_TOKENS, lr=3e-3),
        ModelSpec("t0-512x8", "target", 512, 8, 8, _ff(512), 2 * _GPU_TOKENS, lr=2e-3),
        ModelSpec("t1-768x8", "target", 768, 8, 12, _ff(768), 2 * _GPU_TOKENS, lr=1.5e-3),
    ),
    train=TrainSpec(
        batch_size=16,
        seq_len=256,
        eval_every=64,
        eval_windows_curve=32,
        eval_windows_final=None,
        branch_fracs=(0.25, 0.5),
    ),
    measure=MeasureSpec(
        alpha_windows=64,
        tar_prompts=8,
        tar_new_tokens=64,
        tput_prompts=16,
        tput_new_tokens=128,
        calib_repeats=30,
        hf_pairs=("best",),
        hf_gammas=(1, 3, 5, 7),
        hf_prompts=8,
    ),
    cpu_threads=8,
)

PROFILES = {p.name: p for p in (_SMOKE, _CPU, _GPU)}


def get_profile(name: str, extra: dict | None = None) -> Profile:
    """The profile called ``name``: built in (``smoke``, ``cpu``, ``gpu``) or in ``extra``
    (profiles read from a file by :func:`sdsl_lib.measurement.profile_file.load_profile_file`)."""
    known = {**PROFILES, **(extra or {})}
    if name not in known:
        raise ValueError(f"profile must be one of {sorted(known)}, got {name!r}")
    return known[name]
