"""Capture real vLLM spec-decode counters as test fixtures (tests/engines/fixtures/).

    tools/vllm/env.sh .venv-vllm/bin/python tools/vllm/capture.py [TARGET_DIR] [OUT_DIR]

Runs, each in a fresh engine: a plain greedy run, a greedy self-draft (the target as its own draft,
k = 3: acceptance must be 1.000 at every position) and a greedy ngram run (k = 3), and saves for
each speculative run the Prometheus text exposition (prometheus_client.generate_latest(): the
registry a vLLM /metrics endpoint serves) and the get_metrics() dump before and after the workload.
"""

import json
import os
import sys
from pathlib import Path

from sdsl_lib.engines.vllm_backend import run_config

PROMPTS = [
    "Explain why the sky is blue in two sentences.",
    "List three uses of a paperclip.",
    "Tell a short story about a lighthouse keeper.",
    "Compare cats and dogs as pets.",
]


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "/work/main/cache/smollm2/fp32"
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "tests/engines/fixtures")
    out.mkdir(parents=True, exist_ok=True)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(target)
    ids = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True) for p in PROMPTS]
    ids = [list(x["input_ids"]) if hasattr(x, "keys") else list(x) for x in ids]
    base = {"target": target, "prompt_ids": ids, "max_tokens": 32, "batch_sizes": [4]}
    plain = run_config(base)
    configs = {
        "selfdraft_k3": {"method": "draft_model", "model": target, "num_speculative_tokens": 3},
        "ngram_k3": {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_min": 2, "prompt_lookup_max": 4},
    }
    summary = {
        "target": target,
        "prompts": PROMPTS,
        "max_tokens": 32,
        "vllm_version": plain["vllm_version"],
        "loadavg": os.getloadavg(),
        "runs": {},
    }
    for name, sc in configs.items():
        res = run_config(base | {"speculative_config": sc})
        (out / f"vllm_{name}.prom").write_text(res["prometheus_text"])
        for when in ("before", "after"):
            dump = res[f"metrics_{when}"]
            dump["meta"] = {
                "vllm_version": res["vllm_version"],
                "target": "SmolLM2-135M-Instruct fp32",
                "speculative_config": {**sc, "model": "TARGET"} if "model" in sc else sc,
                "snapshot": when,
                "prompts": len(ids),
                "max_tokens": 32,
                "temperature": 0.0,
            }
            dump["metrics"] = [m for m in dump["metrics"] if "spec_decode" in m["name"]]
            (out / f"vllm_{name}_{when}.json").write_text(json.dumps(dump, indent=1))
        summary["runs"][name] = {
            "greedy_equal": res["outputs"] == plain["outputs"],
            "engine_start_s": res["engine_start_s"],
            "timing": res["timing"],
        }
    summary["plain_engine_start_s"] = plain["engine_start_s"]
    (out / "vllm_capture_provenance.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["runs"], indent=1))


if __name__ == "__main__":
    main()
