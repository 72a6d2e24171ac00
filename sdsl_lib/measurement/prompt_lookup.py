r"""Prompt lookup: the zero-parameter draft that copies from the text so far (an n-gram copy draft).

At each position the draft looks for the latest earlier occurrence of the last :math:`n` tokens
(:math:`n` = ``max_ngram`` down to 1) and proposes the token that followed it; with no match it
proposes the last token again. Its distribution :math:`q` is a point mass on that proposal, so in
:func:`~sdsl_lib.measurement.decoding.speculative_generate` a proposal :math:`x` is accepted with
probability :math:`\min(1, p(x)/1) = p(x)` and a rejection samples
:math:`\operatorname{norm}(\max(0, p - \delta_x))`: the output keeps the target's law, and the
teacher-forced :math:`\beta = \sum_x \min(p, q) = p(x)`.

It is measured beside the trained ladder as the reference that needs no training: on looping text
it wins by copying (docs/field_notes.md "A real target"), which is why every acceptance number
carries the workload's repetition statistics (:mod:`sdsl_lib.measurement.workload`).

:class:`PromptLookupDraft` is an ``nn.Module`` with a causal LM's calling convention (``input_ids``,
a ``DynamicCache``, ``use_cache``, ``logits_to_keep``; ``.logits`` back), so the decoding loop, the
cost calibration and teacher forcing use it unchanged. The history lives in the cache itself (the
token ids are stored as the cache's keys), so the loop's ``crop`` rolls it back like any model's.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

__all__ = ["PromptLookupDraft", "propose"]


def propose(history: np.ndarray, max_ngram: int) -> int:
    """The copy proposal after ``history``: the token after the latest earlier match of its last n tokens."""
    h = np.asarray(history, dtype=np.int64)
    t = h.size
    for n in range(min(max_ngram, t - 1), 0, -1):
        windows = np.lib.stride_tricks.sliding_window_view(h[: t - 1], n)  # occurrences ending before t - 1
        hits = np.flatnonzero((windows == h[t - n :]).all(axis=1))
        if hits.size:
            return int(h[hits[-1] + n])
    return int(h[-1])


class PromptLookupDraft(torch.nn.Module):
    """The n-gram copy draft over a vocabulary of ``vocab_size`` tokens (see the module docstring)."""

    def __init__(self, vocab_size: int, max_ngram: int = 3):
        super().__init__()
        from transformers import LlamaConfig

        if max_ngram < 1 or vocab_size < 2:
            raise ValueError(f"max_ngram must be >= 1 and vocab_size >= 2, got {max_ngram}, {vocab_size}")
        self.max_ngram = int(max_ngram)
        # A one-layer config: DynamicCache(config=...) builds one layer, which holds the history.
        self.config = LlamaConfig(
            vocab_size=vocab_size, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
            num_attention_heads=1, num_key_value_heads=1,
        )  # fmt: skip
        # No weights; a zero-size parameter only carries the device (and counts 0 parameters).
        self.anchor = torch.nn.Parameter(torch.zeros(0))

    def forward(self, input_ids, past_key_values=None, use_cache: bool = True, logits_to_keep: int = 0, **_):
        ids = input_ids.detach().to("cpu")
        m = ids.shape[1]
        first = m - logits_to_keep if logits_to_keep else 0
        if use_cache and past_key_values is not None:
            if ids.shape[0] != 1:
                raise ValueError(f"input_ids must have batch size 1 with a cache, got {ids.shape[0]}")
            held = past_key_values.get_seq_length()
            past = past_key_values.layers[0].keys[0, 0, :, 0].long().cpu() if held else ids.new_empty(0)
            key = ids[0].to(self.anchor.device, torch.float32).view(1, 1, -1, 1)
            past_key_values.update(key, key, 0)
            rows = [(held, torch.cat([past, ids[0]]).numpy())]
        else:
            rows = [(0, row.numpy()) for row in ids]
        props = [[propose(h[: e + 1], self.max_ngram) for e in range(held + first, held + m)] for held, h in rows]
        props = torch.tensor(props, device=self.anchor.device)  # (batch, positions)
        logits = torch.full((*props.shape, self.config.vocab_size), -torch.inf, device=self.anchor.device)
        logits.scatter_(-1, props.unsqueeze(-1), 0.0)
        return SimpleNamespace(logits=logits)
