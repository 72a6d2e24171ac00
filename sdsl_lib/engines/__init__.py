"""Serving engines as measurement engines: vLLM counters, cross-engine acceptance conventions."""

from sdsl_lib.engines.crosswalk import (
    SpecCounters,
    acceptance_report,
    alpha_across_lookaheads,
    alpha_from_mean_accepted,
    counters_from_accept_counts,
    from_hf_assisted,
    from_llamacpp,
    from_sglang,
    from_trtllm,
    iid_departure_test,
)
from sdsl_lib.engines.parsing import dump_metrics, parse_metrics_dump, parse_prometheus, read_counters

__all__ = [
    "SpecCounters",
    "acceptance_report",
    "alpha_across_lookaheads",
    "alpha_from_mean_accepted",
    "counters_from_accept_counts",
    "from_hf_assisted",
    "from_llamacpp",
    "from_sglang",
    "from_trtllm",
    "iid_departure_test",
    "dump_metrics",
    "parse_metrics_dump",
    "parse_prometheus",
    "read_counters",
]
