"""``sdsl acceptance``: an engine's speculative-decoding counters in every convention, and alpha.

Wired into ``sdsl_lib/cli.py`` by :func:`add_parser`; runnable alone as
``python -m sdsl_lib.engines.cli acceptance --from-vllm-metrics FILE``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

__all__ = ["add_parser", "run", "render", "main"]


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return v


def _level(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text!r}")
    return v


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``acceptance`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser(
        "acceptance",
        help="vLLM spec-decode counters -> mean acceptance length, per-position rates, alpha with an interval",
        description=(
            "Read vLLM's speculative-decoding counters (Prometheus text from /metrics, or a JSON dump of "
            "LLM.get_metrics() written by sdsl_lib.engines.dump_metrics) and print the mean acceptance length "
            "(bonus token included), the draft acceptance rate, the per-position rate (accepted at i / drafts, "
            "what vLLM logs), the conditional rate per position, Leviathan's alpha under the i.i.d. model with "
            "an interval, and a test of the i.i.d. model. See docs/engines.md."
        ),
    )
    p.add_argument("--from-vllm-metrics", required=True, metavar="FILE", help="counters after the workload")
    p.add_argument("--baseline", metavar="FILE", help="counters before the workload (subtracted: they are cumulative)")
    p.add_argument(
        "--num-speculative-tokens", type=_positive_int, metavar="K", help="k (default: number of positions in FILE)"
    )
    p.add_argument("--method", choices=["draft_model", "ngram", "eagle", "mtp", "other"], help="speculation method")
    p.add_argument("--level", type=_level, default=0.95, help="coverage of the alpha interval")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=lambda args, _parser: run(args), subparser=p)
    return p


def _compute(args) -> dict:
    from dataclasses import replace

    from sdsl_lib.engines.crosswalk import acceptance_report
    from sdsl_lib.engines.parsing import read_counters

    counters = read_counters(args.from_vllm_metrics)
    if args.baseline:
        counters = counters - read_counters(args.baseline)
    if args.method:
        counters = replace(counters, method=args.method)
    if not counters.num_drafts:
        raise ValueError(f"{args.from_vllm_metrics}: num_drafts is 0 (no speculative step in this window)")
    rep = acceptance_report(counters, k=args.num_speculative_tokens, level=args.level)
    return {"command": "acceptance", "source": str(args.from_vllm_metrics), "baseline": args.baseline} | rep


def _f(x, nd: int = 4) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def render(rep: dict) -> str:
    """Human-readable table of :func:`sdsl_lib.engines.crosswalk.acceptance_report`'s dictionary."""
    k = rep["num_speculative_tokens"]
    lines = [
        f"sdsl acceptance: {rep['source']}" + (f" minus {rep['baseline']}" if rep.get("baseline") else ""),
        f"  engine {rep['engine']}, method {rep['method'] or 'unstated'}, k = {k}",
        f"  drafts {rep['num_drafts']}, draft tokens {rep['num_draft_tokens']}, accepted {rep['num_accepted_tokens']}"
        " (bonus excluded)",
        f"  mean acceptance length (1 + accepted/drafts, bonus included)  {_f(rep['mean_acceptance_length'])}",
        f"  draft acceptance rate (accepted/draft tokens)                 {_f(rep['draft_acceptance_rate'])}",
    ]
    if rep["per_position_rate"] is not None:
        lines.append("  position   per-position rate (c_i/drafts)   conditional rate (c_i/c_{i-1})")
        for i, (r, q) in enumerate(zip(rep["per_position_rate"], rep["conditional_rate"])):
            lines.append(f"  {i:>8}   {_f(r):>30}   {_f(q):>30}")
    if rep["alpha"] is not None:
        pct = round(100 * rep["level"])
        ci = f"[{_f(rep['alpha_ci_lower'])}, {_f(rep['alpha_ci_upper'])}]" if rep["alpha_ci_lower"] is not None else "-"
        lines.append(f"  alpha (Leviathan, i.i.d. model)  {_f(rep['alpha'])}   {pct}% interval {ci}")
        lines.append(f"    how: {rep['alpha_method']}")
    t = rep.get("iid_test")
    if t:
        lines.append(
            f"  i.i.d. test ({t['test']}): G = {t['statistic']:.3f}, dof {t['dof']}, p = {t['p_value']:.4g};"
            f" pooled alpha (MLE) {_f(t['alpha_mle'])}"
        )
    lines += [f"  note: {n}" for n in rep["notes"]]
    return "\n".join(lines)


def run(args) -> int:
    """Handle ``sdsl acceptance``; returns 0, or 2 after one ``sdsl acceptance: error: ...`` line."""
    try:
        rep = _compute(args)
    except ValueError as exc:
        sys.stderr.write(f"sdsl acceptance: error: {str(exc).splitlines()[0]}\n")
        return 2
    if args.json:
        print(json.dumps(rep, indent=2, allow_nan=False))
    else:
        print(render(rep))
    return 0


class _OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, as ``sdsl``'s own parser does."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def main(argv=None) -> int:
    """Stand-alone entry point (until the subcommand is wired into ``sdsl``)."""
    parser = _OneLineParser(prog="sdsl")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    add_parser(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return args.handler(args, parser)


if __name__ == "__main__":
    sys.exit(main())
