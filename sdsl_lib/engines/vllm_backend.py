r"""vLLM as a measurement engine: greedy speculative decoding on our pairs, counted by vLLM itself.

Runs in the vLLM environment (``make vllm-env`` -> ``.venv-vllm``; vLLM pins transformers < 5.20,
so it cannot share the main venv). Each configuration (target, draft or ngram, k) runs in a fresh
child process: vLLM's Prometheus counters are process-global and a second engine in one process
re-registers them, and a child guarantees that one engine's memory is gone before the next starts.
An engine start costs 14-18 s on the project's 2-core CPU machines.

Rows (one per pair and k) carry ``engine = "vllm"``, vLLM's counters, :math:`\alpha` by inverting
App. B's mean accepted drafts (:func:`sdsl_lib.engines.crosswalk.alpha_from_mean_accepted`; by
:func:`~sdsl_lib.engines.crosswalk.alpha_across_lookaheads`, the TAR inverse, across k), tokens/s at
each batch size, and whether the greedy output equals a plain vLLM run without speculation.

Sampled runs (T > 0) are refused: on the CPU backend of vLLM 0.32 the per-request sampling
parameters are read from an uninitialised buffer when speculation is on (vllm-project/vllm issue
#55005, fix PR #55006), which :func:`sampling_canary` detects with a self-draft.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "default_python",
    "vllm_env",
    "run_config",
    "measure",
    "speculative_config",
    "sampling_canary",
    "check_sampled_run",
    "SamplingBroken",
    "SAMPLING_REFUSAL",
]

SAMPLING_REFUSAL = (
    "refusing a sampled (T > 0) speculative run: this vLLM build fails the self-draft canary (acceptance {rate:.3f}, "
    "expected ~1): vllm-project/vllm issue #55005 (CPU backend reads temperature/top-k/top-p from uninitialised "
    "memory); use greedy, or a vLLM with PR #55006"
)
CANARY_MIN = 0.95  # a self-draft accepts every token when sampling is right; 0.3% when it is broken


class SamplingBroken(RuntimeError):
    """The self-draft canary failed: sampled speculative decoding is wrong in this vLLM."""


_REPO = Path(__file__).resolve().parents[2]


def default_python() -> str:
    """The vLLM environment's interpreter: ``$SDSL_VLLM_PYTHON``, else the checkout's ``.venv-vllm/bin/python``.

    Why a second interpreter: vLLM pins transformers < 5.20 and lives in its own venv, while the
    measurement command runs in the main one; the main side only writes JSON jobs and reads results.
    """
    return os.environ.get("SDSL_VLLM_PYTHON") or str(_REPO / ".venv-vllm" / "bin" / "python")


def vllm_env(kv_cache_gib: int = 2, base: dict | None = None, python: str | None = None) -> dict:
    """Environment for vLLM's CPU backend (see tools/vllm/env.sh for why each variable is there).

    ``python``: the interpreter that will run vLLM (its venv's ``libiomp5.so`` is preloaded; default
    this one). The checkout goes first on ``PYTHONPATH`` so that the child imports this very code.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "auto")
    env.setdefault("VLLM_HOST_IP", "127.0.0.1")
    prefix = Path(python).parent.parent if python else Path(sys.prefix)
    iomp = prefix / "lib" / "libiomp5.so"
    if iomp.exists() and str(iomp) not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = ":".join(p for p in (str(iomp), env.get("LD_PRELOAD", "")) if p)
    env["PYTHONPATH"] = ":".join(p for p in (str(_REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _child(spec: dict) -> dict:
    """Run one configuration in this process (called in a fresh child by :func:`run_config`)."""
    import prometheus_client
    from vllm import LLM, SamplingParams

    from sdsl_lib.engines.parsing import dump_metrics

    kwargs = dict(
        model=spec["target"], dtype=spec.get("dtype", "float32"), enforce_eager=True, disable_log_stats=False,
        max_model_len=spec.get("max_model_len", 512), seed=spec.get("seed", 0),
    )  # fmt: skip
    kwargs.update(spec.get("engine_kwargs", {}))  # e.g. tensor_parallel_size on a GPU machine
    if spec.get("speculative_config"):
        kwargs["speculative_config"] = spec["speculative_config"]
    t0 = time.perf_counter()
    llm = LLM(**kwargs)
    start_s = time.perf_counter() - t0
    sp = SamplingParams(
        temperature=spec.get("temperature", 0.0), max_tokens=spec["max_tokens"], ignore_eos=True,
        seed=spec.get("seed", 0),
    )  # fmt: skip
    prompts = [{"prompt_token_ids": list(p)} for p in spec["prompt_ids"]]
    llm.generate(prompts[:1], SamplingParams(max_tokens=4, temperature=0.0), use_tqdm=False)  # warm-up
    before = dump_metrics(llm.get_metrics())
    timing, outputs = [], None
    for bs in spec.get("batch_sizes", [len(prompts)]):
        load0 = os.getloadavg()
        snap = dump_metrics(llm.get_metrics())
        t0 = time.perf_counter()
        outs = []
        for j in range(0, len(prompts), bs):
            outs += llm.generate(prompts[j : j + bs], sp, use_tqdm=False)
        dt = time.perf_counter() - t0
        n = sum(len(o.outputs[0].token_ids) for o in outs)
        # Per pass: the counters and outputs of this batch size alone (batching may move near-ties).
        timing.append({"batch_size": bs, "seconds": dt, "new_tokens": n, "tokens_per_s": n / dt,
                       "loadavg_before": load0, "loadavg_after": os.getloadavg(), "metrics_before": snap,
                       "metrics_after": dump_metrics(llm.get_metrics()),
                       "outputs": [list(o.outputs[0].token_ids) for o in outs]})  # fmt: skip
        outputs = outputs or [list(o.outputs[0].token_ids) for o in outs]
    after = dump_metrics(llm.get_metrics())
    import vllm

    return {"spec": {k: v for k, v in spec.items() if k != "prompt_ids"}, "vllm_version": vllm.__version__,
            "engine_start_s": start_s, "timing": timing, "outputs": outputs, "metrics_before": before,
            "metrics_after": after, "prometheus_text": prometheus_client.generate_latest().decode()}  # fmt: skip


def run_config(spec: dict, python: str | None = None, timeout_s: float = 900) -> dict:
    """Run one configuration in a fresh child process of the vLLM environment's Python.

    Parameters
    ----------
    spec : dict
        ``target`` (checkpoint dir), ``prompt_ids`` (lists of token ids), ``max_tokens``, optional
        ``speculative_config`` (vLLM's dict, passed through), ``batch_sizes``, ``temperature``,
        ``dtype``, ``max_model_len``, ``engine_kwargs`` (passed to ``vllm.LLM``: e.g.
        ``tensor_parallel_size`` on a GPU machine).
    python : str, optional
        Interpreter with vLLM (default: this one).
    """
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(spec))
        code = (
            "import json,sys; from sdsl_lib.engines.vllm_backend import _child; "
            f"json.dump(_child(json.load(open({str(src)!r}))), open({str(dst)!r}, 'w'))"
        )
        python = python or sys.executable
        if not Path(python).exists():
            raise ValueError(f"python must be an interpreter with vLLM (run `make vllm-env`), got {python!r}")
        proc = subprocess.run(
            [python, "-c", code], env=vllm_env(python=python), capture_output=True, text=True, timeout=timeout_s
        )
        if proc.returncode != 0 or not dst.exists():
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            # The engine core's root cause is logged long before the client's EngineDeadError.
            causes = [ln for ln in lines if "Error" in ln and "EngineDeadError" not in ln][:5]
            raise RuntimeError(f"vLLM child failed (rc {proc.returncode}):\n" + "\n".join(causes + lines[-8:]))
        return json.loads(dst.read_text())


def _counters(result: dict, method: str | None):
    """The spec-decode counters of one run (all its passes), or of one pass (a ``timing`` entry)."""
    from dataclasses import replace

    from sdsl_lib.engines.parsing import parse_metrics_dump

    c = parse_metrics_dump(result["metrics_after"]) - parse_metrics_dump(result["metrics_before"])
    return replace(c, method=method)


def speculative_config(draft: str, k: int) -> dict:
    """vLLM's ``speculative_config`` for a draft folder (or ``"ngram"``, vLLM's prompt lookup) at lookahead ``k``."""
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    sc = {"method": "ngram" if draft == "ngram" else "draft_model", "num_speculative_tokens": int(k)}
    if draft == "ngram":
        sc.update(prompt_lookup_min=2, prompt_lookup_max=4)
    else:
        sc["model"] = str(draft)
    return sc


def sampling_canary(
    target: str, prompt_ids, k: int = 3, max_tokens: int = 32, python: str | None = None, max_model_len: int = 512
) -> float:
    """Acceptance of a self-draft at T = 1 with ``draft_sample_method="probabilistic"`` (should be ~1).

    With the target as its own draft, :math:`p = q` at every prefix, so Leviathan's test accepts
    every draft token (:math:`\\beta = \\sum \\min(p, q) = 1`); a rate far below 1 means the
    sampler is broken (vLLM issue #55005 gives about 0.003 on the CPU backend).
    """
    spec = {"target": target, "prompt_ids": prompt_ids, "max_tokens": max_tokens, "temperature": 1.0,
            "max_model_len": max_model_len,
            "speculative_config": {"method": "draft_model", "model": target, "num_speculative_tokens": k,
                                   "draft_sample_method": "probabilistic"}}  # fmt: skip
    c = _counters(run_config(spec, python=python), "draft_model")
    return c.accepted / c.num_draft_tokens if c.num_draft_tokens else float("nan")


def check_sampled_run(canary_rate: float) -> None:
    """Raise :class:`SamplingBroken` with one clear line when the canary rate is below ``CANARY_MIN``."""
    if not canary_rate >= CANARY_MIN:
        raise SamplingBroken(SAMPLING_REFUSAL.format(rate=canary_rate))


def measure(target, drafts, prompt_ids, ks, batch_sizes=(1, 8), max_tokens=64, temperature=0.0, python=None,
            engine_kwargs=None) -> list[dict]:  # fmt: skip
    """Greedy speculative decoding in vLLM for each (draft, k): one row per configuration.

    Parameters
    ----------
    target : str
        Target checkpoint directory.
    drafts : sequence of str
        Draft checkpoint directories, or ``"ngram"`` for vLLM's prompt-lookup proposer.
    prompt_ids : sequence of sequence of int
        Prompts as token ids of the target's tokenizer (text is tokenised by the caller, so every
        engine sees the same ids).
    ks : sequence of int
        ``num_speculative_tokens`` values.
    batch_sizes : sequence of int
        Batch sizes timed (tokens/s; the load average is recorded with every timing).
    temperature : float
        Must be 0: sampled runs are refused (see :data:`SAMPLING_REFUSAL`).

    Returns
    -------
    list of dict
        ``engine``, ``target``, ``draft``, ``k``, counters, ``alpha`` (+ interval),
        ``mean_acceptance_length``, ``per_position_rate``, ``tokens_per_s_bs{b}``,
        ``greedy_equal`` (output equals the plain vLLM run), ``engine_start_s``, ``vllm_version``.
    """
    from sdsl_lib.engines.crosswalk import acceptance_report

    if temperature != 0.0:
        raise SamplingBroken("measure() runs greedy only; run sampling_canary() and check_sampled_run() first")
    base = {"target": target, "prompt_ids": [list(p) for p in prompt_ids], "max_tokens": max_tokens,
            "batch_sizes": list(batch_sizes), "engine_kwargs": dict(engine_kwargs or {})}  # fmt: skip
    plain = run_config(base, python=python)
    rows = [_row(plain, target, None, 0, None, plain["outputs"])]
    for draft in drafts:
        for k in ks:
            sc = speculative_config(draft, k)
            method = sc["method"]
            res = run_config(base | {"speculative_config": sc}, python=python)
            rep = acceptance_report(_counters(res, method), k=int(k))
            rows.append(_row(res, target, draft, int(k), rep, plain["outputs"]))
    return rows


def _row(res: dict, target, draft, k, rep, reference) -> dict:
    row = {"engine": "vllm", "target": target, "draft": draft, "k": k, "vllm_version": res["vllm_version"],
           "engine_start_s": res["engine_start_s"], "greedy_equal": res["outputs"] == reference}  # fmt: skip
    for t in res["timing"]:
        row[f"tokens_per_s_bs{t['batch_size']}"] = t["tokens_per_s"]
        row[f"loadavg1_bs{t['batch_size']}"] = t["loadavg_before"][0]
    if rep is not None:
        keep = ("num_drafts", "num_draft_tokens", "num_accepted_tokens", "accepted_per_pos", "mean_acceptance_length",
                "draft_acceptance_rate", "per_position_rate", "conditional_rate", "alpha", "alpha_ci_lower",
                "alpha_ci_upper", "notes")  # fmt: skip
        row.update({key: rep[key] for key in keep})
        row["iid_p_value"] = rep["iid_test"]["p_value"] if rep["iid_test"] else None
    return row
