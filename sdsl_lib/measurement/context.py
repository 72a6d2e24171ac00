"""What the stages share: the profile, the folders, the device, the tokenizer and token streams, the units.

A stage reads its inputs through a :class:`Context` (models, held-out prompts, upstream unit
records) and writes its tables only through :meth:`Context.write_table`, which refuses a table
that belongs to another stage (each stage writes only its own tables; joins are the analysis's,
see :mod:`sdsl_lib.measurement.join`) and validates the frame against
:mod:`sdsl_lib.measurement.schema` before writing it with its provenance sidecar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sdsl_lib.io import atomic_write_csv, write_sidecar
from sdsl_lib.measurement import corpus, schema, timing
from sdsl_lib.measurement import models as ladder
from sdsl_lib.measurement import tokenizer as bpe
from sdsl_lib.measurement.profiles import Profile
from sdsl_lib.measurement.workdir import StaleUnitError, UnitStore, code_fingerprint, git_state, quarantine

__all__ = ["Context", "pairs", "pair_unit"]


def pairs(p: Profile) -> list[tuple[str, str]]:
    """Every (draft, target) pair of a profile, targets outermost."""
    return [(d.name, t.name) for t in p.targets for d in p.drafts]


def pair_unit(draft: str, target: str) -> str:
    return f"{draft}__{target}"


class Context:
    """Everything the stages share: profile, folders, device, tokenizer, token streams and units."""

    def __init__(
        self, profile: Profile, out_dir: Path, cache: Path, work_dir: Path, device: torch.device, progress: bool
    ):
        self.profile, self.out_dir, self.cache, self.work_dir = profile, Path(out_dir), Path(cache), Path(work_dir)
        self.device, self.progress = device, progress
        self.units = UnitStore(self.work_dir)
        #: The stage now running (set by the pipeline; write_table checks it), and its code hash.
        self.stage: str | None = None
        self.stage_code: str | None = None
        self.threads_source = "profile"
        self._models: dict = {}
        self._ready: dict = {}
        self._code: dict = {}
        self._git = git_state()
        #: On a real target (``profile.real``): its tokenizer, checkpoints and workload replace the
        #: corpus and the BPE (:mod:`sdsl_lib.measurement.real_inputs`); None on the ladder.
        self.real = None
        if profile.real is not None:
            from sdsl_lib.measurement.real_inputs import RealInputs

            self.real = RealInputs(self)
            self.tokenizer, self.ids = self.real.tokenizer, {}
            self.split = {"workload": profile.real.workload}
            return
        works = corpus.load_works(cache)
        self.split = corpus.split_works(works)
        self.tokenizer = bpe.get_tokenizer([works[n] for n in self.split["train"]], profile.vocab_size, cache)
        self.ids = {k: bpe.encode_works(self.tokenizer, [works[n] for n in v]) for k, v in self.split.items()}

    def code_fingerprint(self, modules: tuple) -> str:
        """Hash of the code of ``modules`` (memoised: the code does not change during a run)."""
        if modules not in self._code:
            self._code[modules] = code_fingerprint(*modules)
        return self._code[modules]

    # -- upstream units ------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        return self.work_dir / "models" / name

    def unit_path(self, stage: str, unit: str) -> Path:
        return self.units.path(stage, unit)

    def train_fingerprint(self, name: str) -> str:
        """The fingerprint model ``name`` gets from the current settings and train code."""
        from sdsl_lib.measurement.stages import train

        return train.fingerprint(self, self.profile.model(name))

    def train_record(self, name: str) -> dict:
        """The record of trained model ``name``; it must match the current settings and train code."""
        rec = self.units.read("train", name)
        if rec is None:
            raise StaleUnitError(
                f"model {name!r} is not trained yet ({self.units.path('train', name)}); run --stage train"
            )
        if rec["fingerprint"] != self.train_fingerprint(name):
            raise StaleUnitError(
                f"model {name!r} was trained with other settings or code; refusing to measure it, run --stage train"
            )
        return rec

    def model_fingerprints(self) -> dict[str, str]:
        """Fingerprint of every model of the profile (recorded in every sidecar, checked by the joins)."""
        return {m.name: self.train_fingerprint(m.name) for m in self.profile.models}

    def model(self, name: str, timing: bool = False):
        """Trained model ``name`` on the device, ready for the decoding loops with the profile's forward.

        ``timing``: on a real target, the target in the profile's timing dtype (bf16) instead of fp32.
        ``profile.measure.forward`` chooses the forward (:func:`sdsl_lib.measurement.lean_llama.with_forward`);
        :func:`sdsl_lib.measurement.lean_llama.hf_model` gives back the transformers model (HF's own
        assisted generation runs that one). A checkpoint that cannot be loaded is moved aside and retrained.
        """
        from sdsl_lib.measurement.lean_llama import with_forward

        key = (name, self._dtype(name, timing))
        if key not in self._ready:  # packing the lean weights once per model and dtype
            self._ready[key] = with_forward(self._trained_model(name, timing), self.profile.measure.forward)
        return self._ready[key]

    def _dtype(self, name: str, timing: bool) -> str | None:
        """The dtype model ``name`` is loaded in: on a real target, the timing dtype for a timed
        target and fp32 otherwise; None on the ladder (models load as saved)."""
        if self.real is None:
            return None
        timed_target = timing and self.profile.model(name).role == "target"
        return self.profile.real.timing_dtype if timed_target else "fp32"

    def _trained_model(self, name: str, timing: bool):
        if self.real is not None:
            spec = self.profile.model(name)
            dtype = self._dtype(name, timing)
            key = (name, dtype)
            if key not in self._models:
                from sdsl_lib.measurement.stages import train_real

                self._models[key] = train_real.load(self, spec, self.train_record(name), dtype)
            return self._models[key]
        if name not in self._models:
            self.train_record(name)
            try:
                self._models[name] = ladder.load_model(self.model_dir(name), self.device)
            except (OSError, ValueError, RuntimeError) as exc:
                from sdsl_lib.measurement.stages import train

                quarantine(self.model_dir(name) / "train_result.json", f"checkpoint unreadable ({type(exc).__name__})")
                train.train_one(self, self.profile.model(name))
                self._models[name] = ladder.load_model(self.model_dir(name), self.device)
        return self._models[name]

    # -- inputs --------------------------------------------------------------------------------
    def prompts(self, n: int, length: int, split: str = "test") -> list:
        """``n`` held-out prompts of ``length`` tokens, evenly spaced over the ``split`` stream.

        On a real target: the first ``n`` eval prompts of the workload, chat formatted (their own lengths).
        """
        if self.real is not None:
            return self.real.prompts(n)
        ids = self.ids[split].astype(np.int64)
        starts = np.linspace(0, len(ids) - length - 1, n).round().astype(int)
        return [torch.as_tensor(ids[s : s + length])[None, :] for s in starts]

    def tf_windows(self, n: int, length: int) -> tuple[torch.Tensor, np.ndarray]:
        """Teacher-forcing windows (n, length + 1) and the mask (n, length) of the positions scored.

        Ladder: held-out windows, every position. Real target: prompt + greedy continuation, the
        continuation's positions only (the chat prompt's fixed system turn would inflate alpha).
        """
        if self.real is not None:
            return self.real.tf_windows(n, length)
        w = ladder.eval_windows(self.ids["test"], length, n)
        return w, np.ones((w.shape[0], length), dtype=bool)

    # -- outputs -------------------------------------------------------------------------------
    def sidecar(self, path: Path, **extra):
        write_sidecar(
            path,
            profile=self.profile.name,
            config=self.profile.to_dict(),
            seed=self.profile.seed,
            device=str(self.device),
            hardware=timing.hardware_info(self.device),
            torch_threads=torch.get_num_threads(),
            torch_threads_source=self.threads_source,
            forward_by_model=self._forwards(),
            **self._data_provenance(),
            split=self.split,
            **self._git,
            **extra,
        )

    def _forwards(self) -> dict:
        """The forward each model loaded by this run went through (``"auto"`` may keep one on HF)."""
        from sdsl_lib.measurement.lean_llama import LeanLlama

        return {
            f"{n}{f' ({d})' if d else ''}": "lean" if isinstance(m, LeanLlama) else "hf"
            for (n, d), m in self._ready.items()
        }

    def _data_provenance(self) -> dict:
        if self.real is None:
            return {"corpus": corpus.CORPUS_REQUIREMENT, "corpus_sha256": corpus.CORPUS_SHA256}
        w = self.real.workload.sidecar
        return {
            "target_source": self.real.spec.source,
            "target_sha256": self.real.identity,
            "workload": {k: w.get(k) for k in ("workload", "settings", "repetition", "git_commit")},
        }

    def write_table(self, name: str, df: pd.DataFrame, units: dict, **extra) -> Path:
        """Validate ``df`` against the schema and write ``<out>/<name>.csv`` with its sidecar.

        ``units`` (unit -> fingerprint) are the units merged into it; they, the stage's code
        fingerprint and the models' fingerprints go into the sidecar.
        """
        t = schema.table(name)
        if t.stage != self.stage:
            raise RuntimeError(f"stage {self.stage!r} may not write {t.file} (it belongs to stage {t.stage!r})")
        df = schema.prepare(df, name)
        path = self.out_dir / t.file
        atomic_write_csv(path, df)
        self.sidecar(
            path,
            stage=self.stage,
            stage_code_fingerprint=self.stage_code,
            units=units,
            model_fingerprints=self.model_fingerprints(),
            **extra,
        )
        return path
