"""The shared tokenizer: a byte-level BPE trained on the training split of the corpus.

Speculative decoding needs the draft and the target to share one vocabulary (the acceptance test
compares their probabilities token by token), so every model of the ladder uses this one tokenizer.
It is trained with the ``tokenizers`` library on the training works only (held-out plays do not
shape the vocabulary) and cached as JSON, keyed by a hash of its training text and settings.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from sdsl_lib.io import atomic_write_text

__all__ = ["EOS_TOKEN", "train_tokenizer", "get_tokenizer", "encode_works"]

#: End-of-text token, id 0: separates works in a token stream.
EOS_TOKEN = "<|endoftext|>"


def train_tokenizer(texts, vocab_size: int = 4096):
    """Train a byte-level BPE of ``vocab_size`` entries on ``texts`` (a sequence of strings).

    Byte-level: every byte is in the initial alphabet, so any text encodes without unknown tokens.
    Training is deterministic for equal inputs (the test suite checks it).

    Raises
    ------
    ValueError
        If ``vocab_size`` is not in [300, 65535] (the 256 bytes plus merges must fit in uint16).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if not 300 <= int(vocab_size) <= 65535:
        raise ValueError(f"vocab_size must be in [300, 65535], got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=int(vocab_size),
        min_frequency=2,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return tok


def get_tokenizer(train_texts, vocab_size: int, cache: str | os.PathLike):
    """The tokenizer for ``train_texts``: loaded from ``<cache>/tokenizer/`` or trained and saved."""
    from tokenizers import Tokenizer

    h = hashlib.sha256()
    for t in train_texts:
        h.update(hashlib.sha256(t.encode("utf-8")).digest())
    h.update(f"bytelevel-bpe-v1-{vocab_size}".encode())
    path = Path(cache) / "tokenizer" / f"bpe{vocab_size}-{h.hexdigest()[:16]}.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    tok = train_tokenizer(train_texts, vocab_size)
    atomic_write_text(path, tok.to_str())
    return tok


def encode_works(tok, texts) -> np.ndarray:
    """Encode texts into one uint16 token stream, each text followed by :data:`EOS_TOKEN`."""
    eos = tok.token_to_id(EOS_TOKEN)
    parts = []
    for enc in tok.encode_batch(list(texts)):
        parts.append(np.asarray(enc.ids, dtype=np.uint16))
        parts.append(np.asarray([eos], dtype=np.uint16))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)
