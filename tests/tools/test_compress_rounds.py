from __future__ import annotations

import numpy as np
import pytest

from sdsl_lib.measurement import workload
from tools import compress_rounds as cr


def test_a_round_file_is_recompressed_with_the_same_arrays_and_read_back_equal(tmp_path):
    conts = [np.arange(40) % 7, np.arange(25) % 5 + 100]
    part = tmp_path / "round_3.npz"
    workload.save_round(part, conts)
    before = dict(np.load(part))
    size = part.stat().st_size
    assert not cr.is_compressed(part)
    assert cr.compress_round(part) is True
    assert cr.is_compressed(part) and part.stat().st_size < size
    after = np.load(part)
    assert sorted(after.files) == sorted(before)
    for k, v in before.items():
        assert after[k].dtype == v.dtype and np.array_equal(after[k], v)
    assert cr.compress_round(part) is False  # already compressed: left alone


def test_the_command_skips_unfinished_files_and_rejects_a_missing_folder(tmp_path, capsys):
    workload.save_round(tmp_path / "round_0.npz", [np.arange(10)])
    workload.save_round(tmp_path / "round_1.npz", [np.arange(12)])
    (tmp_path / "round_1.npz").rename(tmp_path / "round_1.part.npz")  # a round still being written
    cr.main([str(tmp_path)])
    assert "1 of 1 round files recompressed" in capsys.readouterr().out
    assert not cr.is_compressed(tmp_path / "round_1.part.npz")
    with pytest.raises(SystemExit):
        cr.main([str(tmp_path / "nope")])
