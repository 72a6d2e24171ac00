"""What a profile on a real target feeds the stages instead of the corpus: its tokenizer, its
checkpoints and the workload (:mod:`sdsl_lib.measurement.workload`).

The :class:`~sdsl_lib.measurement.context.Context` of a profile with ``real`` set holds one
:class:`RealInputs`. The workload is the committed one (``data/workloads/<name>``) when its sidecar
names this target's sha256, else it is generated once into ``<work>/workload`` (and reused while
the target is the same).

Which text the measurements read: the eval split's prompts (chat formatted) for every decoding
run, and the target's greedy continuations of them for teacher forcing; the eval split is halved
into the validation and test halves of the perplexities.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from sdsl_lib.measurement import real_target, workload

__all__ = ["RealInputs", "target_identity"]


def target_identity(source: str, path: Path) -> str:
    """The sha256 naming a target: the pinned GGUF's for SmolLM2, else the hash of its weight files."""
    if source == "smollm2":
        return real_target.GGUF_SHA256
    h = hashlib.sha256()
    files = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    if not files:
        raise ValueError(f"path must hold *.safetensors or *.bin weights, got none in {str(path)!r}")
    for f in files:
        h.update(real_target.sha256_file(f).encode())
    return h.hexdigest()


class RealInputs:
    """Tokenizer, target checkpoints and workload of a real-target profile (see the module docstring)."""

    def __init__(self, ctx):
        p = ctx.profile
        if len(p.targets) != 1 or p.targets[0].family != "pretrained":
            raise ValueError(f"profile {p.name!r} on a real target must have exactly one target of family 'pretrained'")
        self.ctx, self.spec, self.cfg = ctx, p.targets[0], p.real
        self.tokenizer = real_target.load_tokenizer(self.target_dir("fp32"))
        self._workload = None
        self._identity = None

    def target_dir(self, dtype: str = "fp32") -> Path:
        """The target's checkpoint folder (SmolLM2 has one per dtype; any other folder is cast on load)."""
        src = self.spec.source
        if src == "smollm2":
            return real_target.checkpoint_dir(dtype)
        if src == "standin":
            from sdsl_lib.measurement.standin import ensure_standin

            return ensure_standin(self.ctx.cache)
        return Path(src).expanduser()

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = target_identity(self.spec.source, self.target_dir("fp32"))
        return self._identity

    def load_target(self, dtype: str = "fp32"):
        return real_target.load_checkpoint(self.target_dir(dtype), dtype=dtype, device=self.ctx.device)

    @property
    def workload(self) -> workload.Workload:
        if self._workload is None:
            self._workload = self._get_workload()
        return self._workload

    def _get_workload(self) -> workload.Workload:
        committed = workload.committed_dir(self.cfg.workload)
        for place in (committed, self.ctx.work_dir / "workload"):
            if (place / "target_tokens.json").is_file():
                w = workload.load_workload(place)
                if w.sidecar.get("target_gguf_sha256", w.sidecar.get("target_sha256")) == self.identity:
                    return w
        return self._generate(self.ctx.work_dir / "workload")

    def _generate(self, out: Path) -> workload.Workload:
        c = self.cfg
        dtype = c.timing_dtype if self.spec.source == "smollm2" else "fp32"
        model = self.load_target(dtype)
        prompts, seqs = workload.build_workload(
            model, self.tokenizer, seed=self.ctx.profile.seed, n_eval=c.gen_eval, n_eval_pool=c.gen_eval + 12,
            n_train=c.gen_train, n_sampled=c.gen_sampled, max_new=c.gen_max_new, temperature=c.sampled_temperature, min_distinct=c.gen_min_distinct,
        )  # fmt: skip
        sidecar = {
            "workload": c.workload,
            "target_source": self.spec.source,
            "target_sha256": self.identity,
            "settings": {"dtype": dtype, "max_new_tokens": c.gen_max_new, "sampled_temperature": c.sampled_temperature,
                         "n_eval": c.gen_eval, "n_train": c.gen_train, "n_sampled": c.gen_sampled,
                         "seed": self.ctx.profile.seed, "loop_filter_distinct": c.gen_min_distinct},
            **self.ctx._git,
        }  # fmt: skip
        workload.save_workload(out, prompts, seqs, sidecar)
        return workload.load_workload(out)

    # -- the text the stages read -----------------------------------------------------------------
    def eval_greedy(self) -> list:
        return self.workload.select("eval", 0.0)

    def heldout(self) -> tuple[list, list]:
        """(validation, test): the two halves of the eval split's greedy continuations."""
        ev = self.eval_greedy()
        return ev[: len(ev) // 2], ev[len(ev) // 2 :]

    def prompts(self, n: int) -> list:
        """The first ``n`` eval prompts, chat formatted, as (1, T) tensors."""
        ps = self.workload.eval_prompts()
        if n > len(ps):
            raise ValueError(f"n must be at most the workload's {len(ps)} eval prompts, got {n}")
        return [torch.as_tensor(p, dtype=torch.long)[None, :] for p in ps[:n]]

    def tf_windows(self, n: int, length: int) -> tuple[torch.Tensor, np.ndarray]:
        """Teacher-forcing input: ``n`` eval (prompt + greedy continuation) sequences cut to ``length`` + 1
        tokens, right-padded, and the mask of positions that predict a continuation token."""
        seqs = self.eval_greedy()[:n]
        pad = self.tokenizer.pad_token_id
        win = torch.full((len(seqs), length + 1), pad, dtype=torch.long)
        mask = np.zeros((len(seqs), length), dtype=bool)
        for i, s in enumerate(seqs):
            full = np.concatenate([s.prompt, s.cont])[: length + 1]
            win[i, : len(full)] = torch.from_numpy(full)
            mask[i, len(s.prompt) - 1 : len(full) - 1] = True
        return win, mask

    def text_stats(self, n: int) -> dict:
        """Repetition statistics of the continuations that teacher forcing scores."""
        return workload.repetition_stats([s.cont for s in self.eval_greedy()[:n]])
