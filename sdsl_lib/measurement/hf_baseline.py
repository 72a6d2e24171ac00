"""Hugging Face assisted generation at a fixed lookahead: the peer baseline for our engine.

``target.generate(assistant_model=draft)`` drafts a *variable* number of tokens by default (up to
20, stopping when the draft's confidence falls under 0.4). To compare engines at the same
lookahead :math:`\\gamma` we set, on the draft's ``generation_config`` and only for the call,
``num_assistant_tokens=gamma``, ``num_assistant_tokens_schedule="constant"`` and
``assistant_confidence_threshold=0.0`` (docs/field_notes.md, "Hugging Face assisted generation").
End-of-sequence stopping is switched off on both models so that both engines emit exactly
``max_new_tokens`` tokens.

:func:`compare_with_hf` times both engines on the same prompts, greedy, interleaved, after a
warm-up, and checks that their outputs are token-identical; :func:`summarise_comparison` reduces
its rows to the median throughput ratio with a 95% interval over prompts.
"""

from __future__ import annotations

import contextlib
import copy
import time

import numpy as np
import pandas as pd
import torch

from sdsl_lib.measurement.decoding import _device_of, _eval_mode, _sync, speculative_generate

__all__ = ["build_benchmark_pair", "compare_with_hf", "hf_assisted_generate", "summarise_comparison"]


@contextlib.contextmanager
def _fixed_lookahead(target, draft, gamma: int):
    """Fixed lookahead and no EOS on the draft's generation config; restored afterwards."""
    saved = (target.generation_config, draft.generation_config)
    try:
        draft.generation_config = copy.deepcopy(draft.generation_config)
        draft.generation_config.num_assistant_tokens = int(gamma)
        draft.generation_config.num_assistant_tokens_schedule = "constant"
        draft.generation_config.assistant_confidence_threshold = 0.0
        draft.generation_config.eos_token_id = None
        yield
    finally:
        target.generation_config, draft.generation_config = saved


def hf_assisted_generate(target, draft, input_ids, gamma: int, max_new_tokens: int):
    """Greedy ``target.generate(assistant_model=draft)`` at a constant lookahead ``gamma``.

    Parameters
    ----------
    target, draft : transformers causal LMs sharing a vocabulary, on the same device.
    input_ids : torch.LongTensor, shape (T,) or (1, T)
    gamma : int
        Draft tokens per iteration, :math:`\\ge 1`.
    max_new_tokens : int
        Tokens to generate, :math:`\\ge 1` (EOS stopping is off).

    Returns
    -------
    new_ids : torch.LongTensor, shape (max_new_tokens,)
    time_s : float
        Wall-clock seconds of the ``generate`` call (CUDA synchronised).
    """
    if isinstance(gamma, bool) or not isinstance(gamma, (int, np.integer)) or gamma < 1:
        raise ValueError(f"gamma must be an int >= 1, got {gamma!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    from sdsl_lib.measurement.lean_llama import hf_model

    # HF's generate runs the transformers forward even when our loop runs the lean one.
    target, draft = hf_model(target), hf_model(draft)
    device = _device_of(target)
    ids = input_ids.view(1, -1).to(device)
    config = copy.deepcopy(target.generation_config)
    config.do_sample = False
    config.max_new_tokens = int(max_new_tokens)
    config.eos_token_id = None
    # An explicit pad id and attention mask stop generate() guessing them (and warning about it).
    config.pad_token_id = 0
    with _fixed_lookahead(target, draft, gamma), _eval_mode(target, draft), torch.inference_mode():
        _sync(device)
        t0 = time.perf_counter()
        out = target.generate(ids, generation_config=config, assistant_model=draft, attention_mask=torch.ones_like(ids))
        _sync(device)
        elapsed = time.perf_counter() - t0
    return out[0, ids.shape[1] :], elapsed


def compare_with_hf(
    target, draft, prompts, gamma: int, max_new_tokens: int, repeats: int = 3, warmup: int = 1
) -> pd.DataFrame:
    """Time our :func:`~sdsl_lib.measurement.decoding.speculative_generate` against HF assisted generation.

    Both engines decode greedily with the same draft, the same constant lookahead ``gamma`` and the
    same prompts. Timing hygiene (docs/field_notes.md): ``warmup`` untimed runs of each engine first; then,
    for each prompt, ``repeats`` rounds with the engine order alternating (A B, B A, ...), each
    run starting from fresh caches.

    Parameters
    ----------
    target, draft : transformers causal LMs sharing a vocabulary, on the same device. Either may be
        a :class:`~sdsl_lib.measurement.lean_llama.LeanLlama`: our loop then runs the lean forward,
        HF's assisted generation the transformers model inside it.
    prompts : sequence of torch.LongTensor, each (T,) or (1, T)
    gamma : int
        Lookahead, :math:`\\ge 1`.
    max_new_tokens : int
        Tokens per run, :math:`\\ge 1`.
    repeats : int, default 3
        Timed runs per engine and prompt, :math:`\\ge 1`.
    warmup : int, default 1
        Untimed runs per engine before timing (on the first prompt), :math:`\\ge 0`.

    Returns
    -------
    pandas.DataFrame
        One row per timed run: ``prompt_idx``, ``repeat``, ``engine`` ("ours" or "hf"),
        ``gamma``, ``new_tokens``, ``time_s``, ``tokens_per_s``, ``identical`` (the two engines'
        outputs on this prompt are token-identical), and for "ours" the exact counts
        ``iterations``, ``drafted``, ``accepted`` (NaN for "hf", which reports none).
    """
    if len(prompts) < 1:
        raise ValueError("prompts must hold at least one prompt")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    device = _device_of(target)
    prompts = [p.view(-1).to(device) for p in prompts]

    def ours(prompt):
        ids, st = speculative_generate(target, draft, prompt, gamma, max_new_tokens)
        return ids, st.total_time_s, {"iterations": st.iterations, "drafted": st.drafted, "accepted": st.accepted}

    def hf(prompt):
        ids, elapsed = hf_assisted_generate(target, draft, prompt, gamma, max_new_tokens)
        nan = float("nan")
        return ids, elapsed, {"iterations": nan, "drafted": nan, "accepted": nan}

    engines = {"ours": ours, "hf": hf}
    for _ in range(warmup):
        for run in engines.values():
            run(prompts[0])

    rows = []
    for k, prompt in enumerate(prompts):
        outputs = {}
        for r in range(repeats):
            order = ["ours", "hf"] if (k + r) % 2 == 0 else ["hf", "ours"]
            for name in order:
                ids, elapsed, counts = engines[name](prompt)
                outputs.setdefault(name, ids)
                rows.append(
                    {
                        "prompt_idx": k,
                        "repeat": r,
                        "engine": name,
                        "gamma": int(gamma),
                        "new_tokens": int(ids.numel()),
                        "time_s": elapsed,
                        "tokens_per_s": ids.numel() / elapsed,
                        **counts,
                    }
                )
        identical = bool(outputs["ours"].shape == outputs["hf"].shape and torch.equal(outputs["ours"], outputs["hf"]))
        for row in rows:
            if row["prompt_idx"] == k:
                row["identical"] = identical
    return pd.DataFrame(rows)


def summarise_comparison(df: pd.DataFrame) -> dict:
    """Median throughput ratio ours / HF with a 95% interval over prompts.

    Per prompt, each engine's time is the median over repeats; the prompt's ratio is
    ``time_hf / time_ours`` (= tokens/s ours over tokens/s HF, the same tokens being emitted).
    The interval is the 2.5 and 97.5 percentiles of the per-prompt ratios.

    Returns
    -------
    dict
        ``ratio_median``, ``ratio_ci95_lower``, ``ratio_ci95_upper``, ``ours_tokens_per_s_median``,
        ``hf_tokens_per_s_median``, ``acceptance`` (accepted / drafted of ours), ``n_prompts``,
        ``all_identical``.
    """
    per_prompt = df.groupby(["prompt_idx", "engine"])[["time_s", "new_tokens"]].median().unstack("engine")
    ratio = per_prompt["time_s"]["hf"] / per_prompt["time_s"]["ours"]
    tps = per_prompt["new_tokens"] / per_prompt["time_s"]
    ours = df[df.engine == "ours"]
    return {
        "ratio_median": float(ratio.median()),
        "ratio_ci95_lower": float(np.percentile(ratio, 2.5)),
        "ratio_ci95_upper": float(np.percentile(ratio, 97.5)),
        "ours_tokens_per_s_median": float(tps["ours"].median()),
        "hf_tokens_per_s_median": float(tps["hf"].median()),
        "acceptance": float(ours.accepted.sum() / ours.drafted.sum()),
        "n_prompts": int(ratio.size),
        "all_identical": bool(df.identical.all()),
    }


def build_benchmark_pair(
    vocab: int = 4096, agreement: float = 0.8, seed: int = 0, target_shape=(512, 6, 1536), draft_shape=(128, 2, 384)
):
    """A random-weight Llama target/draft pair whose greedy choices agree on a set fraction.

    Independent random models almost never agree on an argmax among 4,096 tokens, so every
    iteration would reject at once and the benchmark would never exercise the accept paths. Both
    models here get a planted bigram map: large random token embeddings :math:`E` dominate the
    residual stream, and the output head is :math:`W = s\\,E[\\pi^{-1}]`, so the greedy successor
    of token :math:`x` is :math:`\\pi(x)`. The draft's map equals the target's on a random
    ``agreement`` fraction of tokens and is scrambled elsewhere, so greedy acceptance is about
    ``agreement``. Sizes are (hidden, layers, intermediate); the defaults give about 23M and 1.4M
    parameters at vocab 4,096.

    Returns
    -------
    target, draft : LlamaForCausalLM in eval mode, on the CPU.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    if not 0.0 <= agreement <= 1.0:
        raise ValueError(f"agreement must lie in [0, 1], got {agreement}")
    gen = torch.Generator().manual_seed(seed)
    perm_t = torch.randperm(vocab, generator=gen)
    perm_d = perm_t.clone()
    scrambled = torch.nonzero(torch.rand(vocab, generator=gen) >= agreement).view(-1)
    perm_d[scrambled] = torch.randint(0, vocab, (scrambled.numel(),), generator=gen)

    def build(shape, perm, model_seed):
        hidden, layers, inter = shape
        torch.manual_seed(model_seed)
        cfg = LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=inter,
            num_hidden_layers=layers,
            num_attention_heads=max(1, hidden // 64),
            num_key_value_heads=max(1, hidden // 64),
            max_position_embeddings=2048,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )
        model = LlamaForCausalLM(cfg)
        with torch.no_grad():
            emb = model.model.embed_tokens.weight
            emb.normal_(0.0, 1.0, generator=gen)
            # W[pi(x)] = E[x]: the logit of pi(x) is the (large) self-similarity of E[x].
            head = torch.zeros_like(emb)
            head[perm] = emb  # with repeated targets, the last writer wins: still one successor
            model.lm_head.weight.copy_(head * (4.0 / hidden**0.5))
        return model.eval()

    return build(target_shape, perm_t, seed + 1), build(draft_shape, perm_d, seed + 2)
