"""The real-target pieces: workload statistics and prompts, the restricted head, prompt lookup,
the chi-square pooling, and the smollm2-smoke profile end to end on the stand-in target."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from sdsl_lib.measurement import distill, workload  # noqa: E402
from sdsl_lib.measurement.decoding import autoregressive_generate, speculative_generate  # noqa: E402
from sdsl_lib.measurement.prompt_lookup import PromptLookupDraft, propose  # noqa: E402
from sdsl_lib.measurement.stages.exact import pooled_chi_square  # noqa: E402


def _tiny(vocab: int, seed: int, d: int = 16):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2)  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


# -- workload statistics --------------------------------------------------------------------------
def test_repetition_statistics_by_hand():
    assert workload.distinct_fraction([1, 1, 2, 3]) == 0.75
    # 4-grams of 1 2 3 4 1 2 3 4: (1234)(2341)(3412)(4123)(1234): one of five occurred earlier.
    assert workload.ngram_repeat_rate([1, 2, 3, 4, 1, 2, 3, 4], k=4) == pytest.approx(1 / 5)
    assert np.isnan(workload.ngram_repeat_rate([1, 2], k=4))
    loop = [5, 6] * 64
    st = workload.repetition_stats([loop, list(range(100))])
    assert st["looping_share"] == 0.5
    assert workload.repetition_stats([loop])["looping"] and not workload.repetition_stats([list(range(100))])["looping"]
    with pytest.raises(ValueError, match="k must be"):
        workload.ngram_repeat_rate([1, 2, 3], k=0)


def test_committed_workload_matches_its_prompt_builder_and_is_not_looping():
    w = workload.load_workload(workload.committed_dir("smollm2"))
    texts = [p["text"] for p in w.prompts]
    assert texts == [p["text"] for p in workload.build_prompts(0)]  # deterministic, with provenance
    ev, tr = {s.prompt_id for s in w.select("eval")}, {s.prompt_id for s in w.select("train")}
    assert len(ev) == 32 and len(tr) == 400 and not ev & tr
    assert {p["template"] for p in w.prompts}.isdisjoint(workload.DROPPED)
    for key, st in w.sidecar["repetition"].items():
        assert not st["looping"], key
    assert w.sidecar["target_gguf_sha256"].startswith("b179c952")
    assert max(int(s.cont.max()) for s in w.seqs) < 49152


def test_extend_sampled_covers_every_train_prompt_and_resumes_from_its_parts(tmp_path, monkeypatch):
    from sdsl_lib.measurement.standin import ensure_standin

    path = ensure_standin(tmp_path / "cache")
    from sdsl_lib.measurement import real_target

    model, tok = real_target.load_checkpoint(path, "fp32"), real_target.load_tokenizer(path)
    prompts = [np.array(workload.chat_ids(tok, t)) for t in ("Explain the sun.", "Tell a story.", "Why rain?")]
    seqs = [workload.WorkloadSeq(i, p, np.array([5, 6]), 0.0, "train") for i, p in enumerate(prompts)]
    seqs.append(workload.WorkloadSeq(9, prompts[0], np.array([7]), 0.0, "eval"))
    wl = workload.Workload([], seqs, {})
    new = workload.extend_sampled(model, tok, wl, 2, 1.0, 5, max_new=6, batch=2, part_dir=tmp_path / "parts")
    assert [(s.prompt_id, s.temperature, s.split) for s in new] == [(i, 1.0, "train") for i in (0, 1, 2)] * 2
    assert all(1 <= len(s.cont) <= 6 for s in new)
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["round_0.npz", "round_1.npz"]
    # A rerun reads the finished rounds instead of generating (generation would fail here).
    monkeypatch.setattr(workload, "generate_continuations", lambda *a, **k: pytest.fail("regenerated a round"))
    again = workload.extend_sampled(model, tok, wl, 2, 1.0, 5, max_new=6, batch=2, part_dir=tmp_path / "parts")
    assert all(np.array_equal(a.cont, b.cont) for a, b in zip(new, again))
    with pytest.raises(ValueError, match="rounds must be"):
        workload.extend_sampled(model, tok, wl, 0)


# -- the restricted head ---------------------------------------------------------------------------
def test_restricted_head_is_a_distribution_over_the_full_vocabulary_and_keeps_sd_exact(tmp_path):
    full = 64
    vmap = distill.VocabMap.from_counts(np.arange(full)[::-1].astype(float), k=17)  # keeps ids 0..15
    assert vmap.keep.tolist() == list(range(16)) and vmap.unk == 16
    small = _tiny(vmap.k, seed=1)
    distill.save_draft(small, vmap, tmp_path / "d")
    draft = distill.load_draft(tmp_path / "d")
    assert draft.config.vocab_size == full
    ids = torch.tensor([[3, 40, 5, 63]])
    logits = draft(input_ids=ids, use_cache=False).logits
    assert logits.shape == (1, 4, full)
    p = torch.softmax(logits, -1)
    assert torch.allclose(p.sum(-1), torch.ones(1, 4), atol=1e-5)
    # Outside the head every token gets q(UNK) / (V - K + 1): the same value, summing to q(UNK).
    q_small = torch.softmax(small(input_ids=vmap.to_small[ids], use_cache=False).logits, -1)
    assert torch.allclose(p[..., 16:].sum(-1), q_small[..., vmap.unk], atol=1e-5)
    assert torch.allclose(p[..., :16], q_small[..., :16], atol=1e-5)
    target = _tiny(full, seed=0)
    prompt = torch.tensor([1, 2, 50, 3])
    ref, _ = autoregressive_generate(target, prompt, 20)
    for gamma in (1, 3):
        out, st = speculative_generate(target, draft, prompt, gamma, 20)
        assert torch.equal(out, ref) and st.new_tokens == st.accepted + st.iterations


def test_vocab_map_rejects_bad_input():
    with pytest.raises(ValueError, match="k must be"):
        distill.VocabMap.from_counts(np.ones(10), k=10)
    with pytest.raises(ValueError, match="keep must"):
        distill.VocabMap([12], full_vocab=10)


# -- prompt lookup ---------------------------------------------------------------------------------
def test_prompt_lookup_proposes_the_continuation_of_the_latest_match():
    assert propose(np.array([1, 2, 3, 9, 1, 2]), 3) == 3  # "1 2" was followed by 3
    assert propose(np.array([7, 1, 8, 1]), 3) == 8  # falls back to the 1-gram
    assert propose(np.array([5, 6]), 3) == 6  # no match: the last token again


def test_prompt_lookup_keeps_greedy_exact_and_costs_nothing():
    target, draft = _tiny(32, seed=0), PromptLookupDraft(32)
    assert sum(p.numel() for p in draft.parameters()) == 0
    prompt = torch.tensor([1, 2, 3, 4, 1, 2, 3])
    ref, _ = autoregressive_generate(target, prompt, 30)
    out, st = speculative_generate(target, draft, prompt, 4, 30)
    assert torch.equal(out, ref) and st.drafted > 0


def test_prompt_lookup_sampling_follows_the_target():
    # First sampled token of SD with a point-mass draft against the target's own p (exact law).
    target, draft = _tiny(8, seed=3, d=8), PromptLookupDraft(8)
    prompt = torch.tensor([1, 2, 1])
    with torch.inference_mode():
        p = torch.softmax(target(input_ids=prompt[None]).logits[0, -1], -1).numpy()
    gen, counts = torch.Generator().manual_seed(0), np.zeros(8)
    for _ in range(1500):
        out, _ = speculative_generate(target, draft, prompt, 2, 3, temperature=1.0, generator=gen)
        counts[int(out[0])] += 1
    assert pooled_chi_square(counts, p)["p_value"] > 0.001


# -- chi-square pooling ----------------------------------------------------------------------------
def test_pooled_chi_square_against_scipy_and_pooling():
    from scipy import stats

    counts, probs = np.array([30, 50, 20]), np.array([0.3, 0.5, 0.2])
    got = pooled_chi_square(counts, probs)
    assert got["n_bins"] == 3 and got["p_value"] == pytest.approx(stats.chisquare(counts, [30, 50, 20]).pvalue)
    # 100 rare tokens of 1/1000 each with 100 draws: pooled into bins expecting >= 5.
    probs = np.r_[0.9, np.full(100, 0.001)]
    res = pooled_chi_square(np.r_[90, np.ones(10), np.zeros(90)], probs)
    assert res["n_bins"] == 2 and res["dof"] == 1
    with pytest.raises(ValueError, match="too few draws"):
        pooled_chi_square(np.array([1, 0]), np.array([0.5, 0.5]))


def test_pooled_chi_square_rejects_a_wrong_distribution():
    rng = np.random.default_rng(0)
    draws = rng.choice(4, 2000, p=[0.4, 0.3, 0.2, 0.1])
    counts = np.bincount(draws, minlength=4)
    assert pooled_chi_square(counts, np.array([0.4, 0.3, 0.2, 0.1]))["p_value"] > 0.01
    assert pooled_chi_square(counts, np.array([0.25, 0.25, 0.25, 0.25]))["p_value"] < 1e-6


# -- the smoke profile end to end ------------------------------------------------------------------
def test_smollm2_smoke_profile_end_to_end_and_resumes(tmp_path):
    from sdsl_lib.measurement import schema
    from sdsl_lib.measurement.pipeline import run_profile

    out = run_profile("smollm2-smoke", out_dir=tmp_path / "out", cache=tmp_path / "cache", progress=False)
    models = schema.read_table(out, "models")
    assert set(models.model) == {"s0-16x1", "s1-32x1", "prompt-lookup", "standin"}
    assert models.set_index("model").loc["prompt-lookup", "n_params"] == 0
    alpha = schema.read_table(out, "alpha")
    assert {"text_distinct_frac", "text_repeat4_rate", "text_looping"} <= set(alpha.columns)
    assert alpha.text_looping.all()  # a random stand-in loops, and the table says so
    assert schema.read_table(out, "exactness").matches_autoregressive.all()
    # chi-square on one soft proposal (the first trained draft) and the one-hot one (prompt lookup)
    assert set(schema.read_table(out, "chi_square").draft) == {"s0-16x1", "prompt-lookup"}
    sampled = schema.read_table(out, "throughput_sampled")
    assert (sampled.temperature == 0.7).all() and "other_load_cores" in sampled.columns
    hf = schema.read_table(out, "hf_summary")
    assert "prompt-lookup" not in set(hf.draft)  # HF's assistant must be a transformers model
    side = json.loads((out / "alpha.csv.json").read_text())
    assert side["target_source"] == "standin" and side["workload"]["settings"]["n_eval"] == 4
    # Resumable: a second run redoes nothing (every unit fingerprint matches).
    units = sorted((tmp_path / "cache" / "runs" / "smollm2-smoke").rglob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in units if "units" in p.parts or p.name == "train_result.json"}
    run_profile("smollm2-smoke", out_dir=tmp_path / "out", cache=tmp_path / "cache", progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_teacher_topk_reloads_from_its_file_as_views_of_one_array(tmp_path):
    # Regression: reading z[name] per sequence decompressed the whole array every time and kept one
    # copy per sequence alive (24 GB for the 1,856 SmolLM2 sequences, killed by the OOM killer).
    from types import SimpleNamespace

    from sdsl_lib.measurement.stages import train_real

    seqs = [workload.WorkloadSeq(i, np.array([1, 2]), np.arange(3 + i), 0.0, "train") for i in range(3)]
    ctx = SimpleNamespace(
        real=SimpleNamespace(workload=workload.Workload([], seqs, {}), identity="abc"),
        profile=SimpleNamespace(real=SimpleNamespace(top_k=2)),
        work_dir=tmp_path,
    )
    rows = [
        (np.full((len(s.cont), 2), i, np.float16), np.full((len(s.cont), 2), i, np.int32)) for i, s in enumerate(seqs)
    ]
    key = f"abc:2:3:{sum(len(s.cont) for s in seqs)}"
    np.savez(tmp_path / "teacher_topk.npz", key=key, offsets=np.cumsum([0] + [len(v) for v, _ in rows]),
             vals=np.concatenate([v for v, _ in rows]), idx=np.concatenate([i for _, i in rows]))  # fmt: skip
    got = train_real.teacher(ctx)
    assert [v.shape for v, _ in got] == [(3, 2), (4, 2), (5, 2)]
    assert all(np.array_equal(v, r[0]) and np.array_equal(i, r[1]) for (v, i), r in zip(got, rows))
    assert got[0][0].base is got[2][0].base and got[0][1].base is got[2][1].base


def test_teacher_pass_resumes_from_its_shards_and_equals_one_pass(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from sdsl_lib.measurement import distill as distill_mod
    from sdsl_lib.measurement.stages import train_real

    monkeypatch.setattr(train_real, "TEACHER_SHARD", 16)  # 3 shards of the 40 sequences
    rng = np.random.default_rng(0)
    seqs = [
        workload.WorkloadSeq(i, np.array([1, 2]), rng.integers(3, 60, size=2 + i % 7), 0.0, "train") for i in range(40)
    ]
    target = _tiny(64, seed=0)
    loads = []

    def ctx(work):
        def load_target(dtype):
            loads.append(dtype)
            return target

        return SimpleNamespace(
            real=SimpleNamespace(workload=workload.Workload([], seqs, {}), identity="t", load_target=load_target,
                                 tokenizer=SimpleNamespace(pad_token_id=0)),
            profile=SimpleNamespace(real=SimpleNamespace(top_k=4, timing_dtype="fp32"),
                                    targets=[SimpleNamespace(source="smollm2")]),
            work_dir=work, progress=False,
        )  # fmt: skip

    whole = distill_mod.teacher_topk(target, seqs, 4, 0)  # one pass, as before the shards
    real_pass, calls = distill_mod.teacher_topk, []

    def interrupted(target_, shard, k, pad):
        calls.append(len(shard))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_pass(target_, shard, k, pad)

    monkeypatch.setattr(distill_mod, "teacher_topk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_real.teacher(ctx(tmp_path))
    assert len(list((tmp_path / "teacher_topk.shards").glob("shard_*.npz"))) == 1
    calls.clear()
    monkeypatch.setattr(distill_mod, "teacher_topk", lambda *a: (calls.append(len(a[1])), real_pass(*a))[1])
    got = train_real.teacher(ctx(tmp_path))
    assert calls == [16, 8]  # only the two missing shards
    assert all(np.array_equal(v, w) and np.array_equal(i, j) for (v, i), (w, j) in zip(got, whole))
    assert (tmp_path / "teacher_topk.npz").is_file() and not (tmp_path / "teacher_topk.shards").exists()
    loads.clear()
    train_real.teacher(ctx(tmp_path))  # the joined file: nothing computed, the target not loaded
    assert loads == []
