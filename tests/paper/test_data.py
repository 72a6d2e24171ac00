"""The paper as data: schemas, checksums, errata, and internal consistency of the transcriptions."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdsl_lib import paper

ROOT = Path(__file__).resolve().parents[2]
#: The data manifest of the checkout: one row per paper table (file, rows, what, loader).
MANIFEST = ROOT / "data" / "README.md"

SCHEMAS = {
    "alpha_pairs": [
        "table",
        "target",
        "draft",
        "draft_family",
        "draft_ppl",
        "target_ppl_as_printed",
        "alpha",
        "alpha_ci95_halfwidth",
        "note",
        "source",
    ],
    "table3": ["parameter", "estimate", "std_error", "margin_of_error_95", "ci95_lower", "ci95_upper", "source"],
    "table4": [
        "target",
        "form",
        "p1",
        "p1_moe95",
        "p1_ci95_lower",
        "p1_ci95_upper",
        "p2",
        "p2_moe95",
        "p2_ci95_lower",
        "p2_ci95_upper",
        "mse",
        "r2",
        "source",
    ],
    "table5": [
        "target",
        "target_params_M",
        "target_tokens_Dprime",
        "draft_family",
        "draft_tokens_D_as_printed",
        "n_star",
        "throughput_at_n_star_tokens_per_flop",
        "note",
        "source",
    ],
    "table6": [
        "draft",
        "family",
        "n_star_for_family",
        "abs_n_minus_nstar_over_M",
        "ttft_s",
        "ttft_moe95",
        "ttot_s_250_tokens",
        "ttot_moe95",
        "tpot_s",
        "tpot_moe95",
        "source",
    ],
    "table7": ["parameter", "low_as_printed", "high_as_printed", "points", "spacing", "meaning", "source"],
    "table8": ["parameter", "estimate", "margin_of_error_95", "ci95_lower", "ci95_upper", "source"],
    "table9": ["parameter", "estimate", "margin_of_error_95", "ci95_lower", "ci95_upper", "source"],
    "models": ["model", "family", "role", "n_params", "training_tokens", "n_params_source", "training_tokens_source"],
    "errata": ["id", "location", "as_printed", "correction", "evidence", "checked_by"],
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema(name):
    loader = getattr(paper, name)
    df = loader(corrected=False) if name == "table5" else loader()
    assert list(df.columns) == SCHEMAS[name]
    assert len(df) > 0
    if "source" in df.columns:
        assert df["source"].str.contains("2603.11053").all()


def test_checksums_match():
    result = paper.verify_checksums()
    assert len(result) == 10
    assert all(result.values()), [k for k, v in result.items() if not v]


def test_checksum_detects_a_changed_byte(tmp_path):
    import shutil

    for f in paper.DATA_DIR.iterdir():
        shutil.copy(f, tmp_path / f.name)
    target = tmp_path / "table9_nstar_linear_fit.csv"
    target.write_text(target.read_text().replace("0.00271", "0.00272"))
    result = paper.verify_checksums(tmp_path)
    assert result["table9_nstar_linear_fit.csv"] is False
    assert result["table8_nstar_full_fit.csv"] is True


def test_alpha_pairs_cover_13_targets_by_10_drafts():
    df = paper.alpha_pairs()
    assert len(df) == 130
    assert df["target"].nunique() == 13 and df["draft"].nunique() == 10
    assert not df.duplicated(["target", "draft"]).any()
    assert df["alpha"].between(0.52, 0.79).all()
    # Transcription check: the quoted CIs are the evaluation-noise half-widths, all small.
    assert (df["alpha_ci95_halfwidth"] < 0.003).all()


def test_qwen25_perplexity_swap_is_recorded():
    # Erratum E1: Tables 1 and 2 disagree on the perplexities of Qwen2.5-32B and -72B.
    df = paper.alpha_pairs()
    ppl = df.groupby(["target", "table"])["target_ppl_as_printed"].first().unstack()
    swapped = ppl[ppl["table1"] != ppl["table2"]]
    assert sorted(swapped.index) == ["Qwen2.5-32B", "Qwen2.5-72B"]
    assert ppl.loc["Qwen2.5-32B", "table1"] == ppl.loc["Qwen2.5-72B", "table2"]
    assert (df.loc[df["note"].str.startswith("E1"), "target"].isin(swapped.index)).all()
    assert "E1" in set(paper.errata()["id"])


def test_table5_corrected_draft_tokens():
    t5 = paper.table5()
    differs = t5["draft_tokens_D"] != t5["draft_tokens_D_as_printed"]
    assert differs.sum() == 1
    assert t5.loc[differs, "target"].item() == "LLaMa3-70B"


def test_model_sizes_agree_with_table5_and_table6():
    models = paper.models().set_index("model")
    t5 = paper.table5()
    for target, m in t5.groupby("target")["target_params_M"].first().items():
        assert models.loc[target, "n_params"] == m
    # Table 6 prints |N - N*| / M for each draft: the draft sizes we list must reproduce it.
    t6 = paper.table6()
    m_opt13b = models.loc["OPT-13B", "n_params"]
    implied = (models.loc[t6["draft"], "n_params"].to_numpy() - t6["n_star_for_family"].to_numpy()) / m_opt13b
    # Table 6 rounds N* to the nearest million, hence the absolute tolerance of 0.5M / M.
    assert np.allclose(np.abs(implied), t6["abs_n_minus_nstar_over_M"], rtol=1e-3, atol=0.5e6 / m_opt13b)


def test_table6_tpot_is_ttot_over_250():
    t6 = paper.table6()
    assert np.allclose(t6["tpot_s"], t6["ttot_s_250_tokens"] / 250, rtol=0.01)


def test_errata_ids_unique_and_checks_exist():
    e = paper.errata()
    assert e["id"].is_unique
    assert {"E1", "E2", "E3", "E4", "E5"} <= set(e["id"])


def test_every_paper_file_is_checksummed_and_in_the_manifest():
    # A new or renamed table must be pinned in SHA256SUMS and described in data/README.md.
    files = sorted(p.name for p in paper.DATA_DIR.iterdir() if p.name != "SHA256SUMS")
    assert sorted(paper.verify_checksums()) == files
    manifest = MANIFEST.read_text()
    rows = dict(re.findall(r"^\| `([^`]+\.csv)` \| (\d+) \|", manifest, flags=re.M))
    assert sorted(rows) == files
    for name, n_rows in rows.items():
        assert len(pd.read_csv(paper.DATA_DIR / name)) == int(n_rows), name


def test_errata_checks_point_at_things_that_exist():
    # checked_by names the test (or notebook, or documented function) that shows each erratum.
    root = ROOT
    for _, row in paper.errata().iterrows():
        refs = [r.strip() for r in row["checked_by"].split(";")]
        assert refs and all(refs), row["id"]
        for ref in refs:
            if "::" in ref:
                path, name = ref.split("::")
                assert re.search(rf"^def {name}\(", (root / path).read_text(), flags=re.M), (row["id"], ref)
            elif ref.startswith("notebooks/"):
                assert list(root.glob(ref + ".*")), (row["id"], ref)
            else:
                dotted = re.search(r"sdsl_lib(\.\w+)+", ref)
                assert dotted, (row["id"], ref)
                module, attr = dotted.group(0).rsplit(".", 1)
                assert hasattr(importlib.import_module(module), attr), (row["id"], ref)


def test_errata_are_also_described_in_the_manifest():
    manifest = MANIFEST.read_text()
    for eid in paper.errata()["id"]:
        assert f"**{eid}**" in manifest, eid


def test_tables_are_package_data_and_data_paper_is_the_same_folder():
    # One copy: the tables live in the package (so an installed sdsl_lib has them); the checkout's
    # data/paper/ is a link to that folder, so paths in the docs keep working.
    assert Path(paper.DATA_DIR).resolve() == (ROOT / "sdsl_lib" / "paper" / "data").resolve()
    assert (ROOT / "data" / "paper").resolve() == Path(paper.DATA_DIR).resolve()
    assert (ROOT / "data" / "paper" / "SHA256SUMS").read_bytes() == (paper.DATA_DIR / "SHA256SUMS").read_bytes()


def test_missing_table_names_the_package_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(paper.tables, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="ship inside the package"):
        paper.table3()
