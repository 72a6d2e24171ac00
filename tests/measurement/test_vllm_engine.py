"""``--engine vllm`` without vLLM: the full-vocabulary export of a restricted draft, and the stage's
job/record plumbing end to end on the stand-in target with a fake engine (``make test-vllm`` runs vLLM)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from sdsl_lib.measurement import distill  # noqa: E402


def _restricted(tmp_path, full=64, k=17, seed=1):
    from transformers import LlamaConfig, LlamaForCausalLM

    vmap = distill.VocabMap.from_counts(np.arange(full)[::-1].astype(float), k=k)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vmap.k, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)  # fmt: skip
    return distill.save_draft(LlamaForCausalLM(cfg).eval(), vmap, tmp_path / "draft"), vmap


@pytest.mark.parametrize("fill", distill.EXPORT_FILLS)
def test_export_keeps_kept_logits_and_the_input_map(tmp_path, fill):
    from transformers import LlamaForCausalLM

    src, vmap = _restricted(tmp_path)
    out = distill.export_full_vocab(src, tmp_path / f"full_{fill}", fill=fill)
    big = LlamaForCausalLM.from_pretrained(str(out)).eval()
    assert big.config.vocab_size == 64 and not big.config.tie_word_embeddings
    small = distill.load_draft(src)
    seqs = [torch.randint(0, 64, (24,), generator=torch.Generator().manual_seed(i)) for i in range(20)]
    rep = distill.argmax_agreement(small, big, seqs)
    assert rep["positions"] == 480 and rep["max_kept_logit_diff"] < 1e-5  # kept ids: identical logits
    if fill == "unk":  # non-kept ids get the UNK logit itself: every one equal
        logits = big(input_ids=seqs[0][None]).logits[0]
        assert torch.allclose(logits[:, 16:], logits[:, 16:17].expand(-1, 48))
    # The argmax can move only between a kept id and a non-kept one, never among kept ids.
    for ids in seqs:
        a, b = small(input_ids=ids[None]).logits[0].argmax(-1), big(input_ids=ids[None]).logits[0].argmax(-1)
        moved = a != b
        assert ((a[moved] >= 16) | (b[moved] >= 16)).all()
    assert json.loads((out / "full_vocab_export.json").read_text())["fill"] == fill


def test_export_and_head_map_reject_bad_input(tmp_path):
    src, _ = _restricted(tmp_path)
    with pytest.raises(ValueError, match="fill"):
        distill.export_full_vocab(src, tmp_path / "x", fill="mean")
    with pytest.raises(ValueError, match="full_vocab"):
        distill.export_full_vocab(src, tmp_path / "x", full_vocab=99)
    keep_only = tmp_path / "research"
    keep_only.mkdir()
    for f in src.iterdir():
        if f.name != "restricted_head.json":
            (keep_only / f.name).write_bytes(f.read_bytes())
    np.save(keep_only / "vocab_keep.npy", np.arange(16))
    with pytest.raises(ValueError, match="full_vocab"):
        distill.head_map(keep_only)
    assert distill.head_map(keep_only, 64).k == 17
    assert distill.load_draft(keep_only, full_vocab=64).config.vocab_size == 64


def _dump(d: int, per_pos: list[int]) -> dict:
    from sdsl_lib.engines.parsing import dump_metrics

    ms = [SimpleNamespace(name="vllm:spec_decode_num_drafts", value=d),
          SimpleNamespace(name="vllm:spec_decode_num_draft_tokens", value=d * len(per_pos)),
          SimpleNamespace(name="vllm:spec_decode_num_accepted_tokens", value=sum(per_pos)),
          SimpleNamespace(name="vllm:spec_decode_num_accepted_tokens_per_pos", values=per_pos)]  # fmt: skip
    return dump_metrics(ms)


def fake_engine(jobs: list):
    """A stand-in for run_config: greedy output of the target by our own decoder, made-up counters."""
    from sdsl_lib.measurement import real_target
    from sdsl_lib.measurement.stages.vllm import reference_outputs

    def run(spec):
        json.dumps(spec)  # the job must be JSON: it crosses into the other venv
        jobs.append(spec)
        model = real_target.load_checkpoint(spec["target"], "fp32")
        outs = reference_outputs(model, spec["prompt_ids"], spec["max_tokens"])
        sc = spec.get("speculative_config")
        k = sc["num_speculative_tokens"] if sc else 0
        timing = []
        for bs in spec["batch_sizes"]:
            t = {"batch_size": bs, "seconds": 0.5, "new_tokens": 8, "tokens_per_s": 16.0 * bs,
                 "loadavg_before": [0.1, 0, 0], "outputs": outs}  # fmt: skip
            if sc:
                t |= {
                    "metrics_before": _dump(0, [0] * k),
                    "metrics_after": _dump(10, [max(8 - 3 * i, 0) for i in range(k)]),
                }
            timing.append(t)
        return {"spec": {k: v for k, v in spec.items() if k != "prompt_ids"}, "vllm_version": "fake",
                "engine_start_s": 0.0, "timing": timing, "outputs": outs}  # fmt: skip

    return run


def test_vllm_stage_plumbing_with_a_fake_engine(tmp_path, monkeypatch):
    from sdsl_lib.engines import vllm_backend
    from sdsl_lib.measurement import schema
    from sdsl_lib.measurement.pipeline import run_profile

    jobs = []
    monkeypatch.setattr(vllm_backend, "run_config", lambda spec, python=None: fake_engine(jobs)(spec))
    settings = {"prompts": 2, "gammas": [1, 2], "new_tokens": 8, "batch_sizes": [1, 2], "python": "unused"}
    out = run_profile("smollm2-smoke", out_dir=tmp_path / "out", cache=tmp_path / "cache", progress=False,
                      stages=("all",), engine="vllm", engine_settings=settings)  # fmt: skip
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(
        ["models.csv", "loss_curves.csv", "loss_budget_points.csv"] + [f"{t}.csv" for t in schema.ENGINE_ONLY]
    )
    acc = schema.read_table(out, "vllm_acceptance")
    assert set(acc.engine) == {"vllm", "ours"} and set(acc.draft) == {"s0-16x1", "s1-32x1"}  # no prompt lookup
    v = acc[acc.engine == "vllm"].set_index(["draft", "gamma"])
    assert v.loc[("s0-16x1", 2), "num_drafts"] == 10 and v.loc[("s0-16x1", 2), "num_accepted_tokens"] == 13
    assert v.greedy_equal_ar.all() and acc[acc.engine == "ours"].greedy_equal_ar.all()
    assert acc.alpha_tar.notna().all()  # two gammas: the TAR inverse across them
    pos = schema.read_table(out, "vllm_acceptance_by_position")
    assert set(pos.engine) == {"vllm", "ours"}
    tput = schema.read_table(out, "vllm_throughput")
    assert set(tput.batch_size) == {1, 2} and set(tput.method) == {"autoregressive", "speculative"}
    # Jobs: one plain run + 2 drafts x 2 gammas; drafts with a restricted head go as full-vocabulary exports.
    assert len(jobs) == 5 and all(j["prompt_ids"] == jobs[0]["prompt_ids"] for j in jobs)
    drafts = [j["speculative_config"]["model"] for j in jobs[1:]]
    assert all("vllm/drafts" in d for d in drafts)
    side = json.loads((out / "vllm_acceptance.csv.json").read_text())
    assert side["vllm_version"] == "fake" and "zeros" in side["draft_export"]
    # Resumable: a rerun asks the engine nothing.
    run_profile("smollm2-smoke", out_dir=tmp_path / "out", cache=tmp_path / "cache", progress=False,
                stages=("vllm",), engine="vllm", engine_settings=settings)  # fmt: skip
    assert len(jobs) == 5


def test_engine_stage_rules():
    from sdsl_lib.measurement.pipeline import _resolve_stages

    assert _resolve_stages(("all",)) == ("train", "alpha", "calibrate", "throughput", "exact", "hf")
    assert _resolve_stages(("all",), "vllm") == ("train", "vllm")
    with pytest.raises(ValueError, match="engine"):
        _resolve_stages(("alpha",), "vllm")
    with pytest.raises(ValueError, match="engine"):
        _resolve_stages(("vllm",))
