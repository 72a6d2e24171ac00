"""The schema of the measured tables (sdsl_lib.measurement.schema) and the joins (join): no torch, fast.

The committed profiles must validate as they are (their bytes are not rewritten); every kind of
damage must stop the reader with one line naming the file and what is wrong.
"""

import shutil

import numpy as np
import pandas as pd
import pytest

from sdsl_lib.io import repo_root
from sdsl_lib.measurement import join, schema

MEASURED = repo_root() / "data" / "measured"
COMMITTED = ["smoke", "cpu"]
PAIR_TABLES = ["alpha", "tar", "acceptance_by_position", "throughput", "throughput_summary"]


@pytest.mark.parametrize("profile", COMMITTED)
def test_committed_profiles_validate_with_the_complete_set_of_pairs(profile):
    d = MEASURED / profile
    pairs = join.all_pairs(d)
    models = schema.read_table(d, "models")
    for name in schema.TABLES:
        if name == "acceptance_by_position_greedy":
            continue  # committed before the stage split: these rows live in acceptance_by_position
        if name in schema.REAL_ONLY or name in schema.ENGINE_ONLY:
            continue  # written only by a profile on a real target
        t = schema.TABLES[name]
        if name in PAIR_TABLES:
            df = schema.read_table(d, name)
            schema.validate(df.drop_duplicates(["draft", "target"]), name, expected_pairs=pairs)
        elif "model" in t.key:
            schema.read_table(d, name, expected_models=list(models.model))
        else:
            schema.read_table(d, name)


@pytest.fixture
def smoke_copy(tmp_path):
    d = tmp_path / "smoke"
    shutil.copytree(MEASURED / "smoke", d)
    return d


def _damage(d, name, fn):
    path = d / f"{name}.csv"
    df = fn(pd.read_csv(path))
    if df is not None:
        df.to_csv(path, index=False)
    return path


def _one_line(exc):
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    "name, fn, expected",
    [
        ("alpha", lambda df: df.drop(columns="alpha_tf"), "missing column 'alpha_tf'"),
        ("alpha", lambda df: df.assign(alpha_tff=1.0), "unknown column 'alpha_tff'"),
        ("alpha", lambda df: df.assign(alpha_tf=[1.7, 0.5]), "column 'alpha_tf' must be float in [0, 1]"),
        ("alpha", lambda df: df.assign(alpha_tf=["high", "0.5"]), "column 'alpha_tf' must be float"),
        ("alpha", lambda df: df.assign(draft=np.nan), "column 'draft' must be str"),
        ("alpha", lambda df: pd.concat([df, df.iloc[[0]]]), "duplicate key ('draft', 'target')"),
        ("models", lambda df: df.assign(n_params=df.n_params + 0.5), "column 'n_params' must be int"),
        ("models", lambda df: df.assign(role="teacher"), "rule 'role in {draft, target}'"),
        ("models", lambda df: df.assign(val_ppl=0.5), "column 'val_ppl' must be float in [1, inf]"),
        ("tar", lambda df: df.assign(tar_no_bonus=df.gamma + 1), "rule 'tar_no_bonus <= gamma'"),
        ("acceptance_by_position", lambda df: df.assign(accepts=df.attempts + 1), "rule 'accepts <= attempts'"),
        ("throughput", lambda df: df.assign(method="beam"), "rule 'method in"),
        ("throughput_summary", lambda df: df.assign(all_match_autoregressive="maybe"), "must be bool"),
        ("cost_calibration", lambda df: df.assign(latency_median_s=-1.0), "'latency_median_s' must be float in [0,"),
        ("hf_summary", lambda df: df.iloc[0:0], "no rows"),
    ],
)
def test_damage_is_refused_in_one_line_naming_the_file(smoke_copy, name, fn, expected):
    path = _damage(smoke_copy, name, fn)
    with pytest.raises(schema.SchemaError) as exc:
        schema.read_table(smoke_copy, name)
    msg = _one_line(exc)
    assert msg.startswith(str(path)) and expected in msg, msg


def test_a_deleted_pair_is_refused(smoke_copy):
    _damage(smoke_copy, "alpha", lambda df: df.iloc[1:])
    with pytest.raises(schema.SchemaError) as exc:
        join.alpha_with_context(smoke_copy)
    assert "alpha.csv: pairs missing: d-xs/t-s" in _one_line(exc)
    with pytest.raises(schema.SchemaError, match="unexpected pairs: d-xs/t-s"):
        schema.read_table(MEASURED / "smoke", "alpha", expected_pairs=[("d-s", "t-s")])


def test_missing_and_unparsable_files_are_named(smoke_copy):
    (smoke_copy / "tar.csv").unlink()
    with pytest.raises(schema.SchemaError, match=r"tar.csv: missing \(written by .*--stage alpha"):
        schema.read_table(smoke_copy, "tar")
    (smoke_copy / "models.csv").write_bytes(b'model,role\n"d-xs,draft\n')
    with pytest.raises(schema.SchemaError) as exc:
        schema.read_table(smoke_copy, "models")
    assert "models.csv" in _one_line(exc)


def test_a_missing_model_is_refused(smoke_copy):
    _damage(smoke_copy, "cost_calibration", lambda df: df[df.model != "d-s"])
    with pytest.raises(schema.SchemaError, match="models missing: d-s"):
        schema.read_table(smoke_copy, "cost_calibration", expected_models=["d-xs", "d-s", "t-s"])


def test_unknown_table_and_misused_arguments_raise_value_error():
    with pytest.raises(ValueError, match="name must be one of"):
        schema.table("alphas")
    df = schema.read_table(MEASURED / "smoke", "models")
    with pytest.raises(ValueError, match="expected_pairs applies to pair tables"):
        schema.validate(df, "models", expected_pairs=[])


def test_prepare_orders_columns_and_refuses_what_the_writer_got_wrong():
    df = schema.read_table(MEASURED / "smoke", "hf_summary")
    shuffled = df[df.columns[::-1]]
    assert list(schema.prepare(shuffled, "hf_summary").columns) == list(df.columns)
    with pytest.raises(schema.SchemaError, match="as written by stage hf"):
        schema.prepare(df.assign(n_prompts=0), "hf_summary")


def test_each_table_has_one_writer_stage():
    stages = {t.stage for t in schema.TABLES.values()}
    assert stages == {"train", "alpha", "calibrate", "throughput", "exact", "hf", "vllm"}
    assert schema.stage_tables("vllm") == ("vllm_acceptance", "vllm_acceptance_by_position", "vllm_throughput")
    assert schema.stage_tables("alpha") == ("alpha", "tar", "acceptance_by_position")


@pytest.mark.parametrize("profile", COMMITTED)
def test_join_rebuilds_the_committed_wide_alpha_from_the_split_tables(tmp_path, profile):
    # Cross-check of the join: strip the committed alpha.csv to the alpha stage's own columns and
    # move the greedy rows to the throughput stage's table, as a new run writes them; the join must
    # give back the committed joined columns (to the 10 significant digits the CSVs carry).
    d = tmp_path / profile
    shutil.copytree(MEASURED / profile, d)
    wide = pd.read_csv(d / "alpha.csv")
    pd.DataFrame(wide.drop(columns=list(join.ALPHA_CONTEXT_COLUMNS))).to_csv(d / "alpha.csv", index=False)
    pos = pd.read_csv(d / "acceptance_by_position.csv")
    pos[pos.temperature == 1].to_csv(d / "acceptance_by_position.csv", index=False)
    pos[pos.temperature == 0].to_csv(d / "acceptance_by_position_greedy.csv", index=False)
    rebuilt = join.alpha_with_context(d)
    assert list(rebuilt.columns) == list(wide.columns)
    for col in wide.columns:
        if not pd.api.types.is_numeric_dtype(wide[col]):
            assert list(rebuilt[col]) == list(wide[col]), col
        elif col != "c_measured":
            np.testing.assert_allclose(rebuilt[col], wide[col], rtol=1e-9, err_msg=col)
    # c_measured was computed from the raw latencies; the table keeps their medians to 10 digits.
    np.testing.assert_allclose(rebuilt.c_measured, wide.c_measured, rtol=1e-8)
    merged = join.acceptance_by_position(d)
    assert len(merged) == len(pos) and set(merged.temperature) == set(pos.temperature)


def test_join_returns_committed_wide_tables_unchanged():
    wide = pd.read_csv(MEASURED / "smoke" / "alpha.csv")
    pd.testing.assert_frame_equal(join.alpha_with_context(MEASURED / "smoke"), wide)


def test_join_refuses_tables_from_two_trainings(smoke_copy):
    import json

    for name, fp in (("models", "aaaa"), ("cost_calibration", "bbbb")):
        side = smoke_copy / f"{name}.csv.json"
        rec = json.loads(side.read_text())
        rec["model_fingerprints"] = {"d-xs": fp}
        side.write_text(json.dumps(rec))
    _damage(smoke_copy, "alpha", lambda df: df.drop(columns=list(join.ALPHA_CONTEXT_COLUMNS)))
    with pytest.raises(schema.SchemaError, match="another training of model 'd-xs'"):
        join.alpha_with_context(smoke_copy)


@pytest.mark.parametrize(
    "name, drop, expected",
    [
        ("tar", lambda df: df.drop(index=2), "d-xs/t-s lacks the row temperature=1, gamma=3 that the other pairs have"),
        ("throughput", lambda df: df.drop(index=0), "lacks the row prompt_idx=0, method=autoregressive"),
        ("cost_calibration", lambda df: df.drop(index=3), "d-xs lacks the row n_new_tokens=4"),
    ],
)
def test_a_deleted_row_inside_a_pair_or_model_is_refused(smoke_copy, name, drop, expected):
    path = _damage(smoke_copy, name, drop)
    with pytest.raises(schema.SchemaError) as exc:
        schema.read_table(smoke_copy, name)
    msg = _one_line(exc)
    assert msg.startswith(str(path)) and expected in msg, msg


def test_read_file_reads_any_file_name_as_a_given_table(tmp_path):
    path = tmp_path / "my_calibration.csv"
    shutil.copy(MEASURED / "cpu" / "cost_calibration.csv", path)
    assert len(schema.read_file(path, "cost_calibration")) == len(pd.read_csv(path))
    path.write_text("a,b\n1,2\n")
    with pytest.raises(schema.SchemaError, match="my_calibration.csv: missing column 'model' .*columns"):
        schema.read_file(path, "cost_calibration")
