"""The ``sdsl`` command line. ``sdsl plan`` sizes a draft model for a target with SDSL's laws.

Examples::

    sdsl plan --target-params 70e9 --target-tokens 15e12 --draft-tokens 2.4e12
    sdsl plan --target-params 70B --target-tokens 15T --draft-tokens 2.4T --hardware h200 --batch-sweep
    sdsl plan --target-params 13B --draft-params 125M --alpha 0.62 --alpha-se 0.02 --json

Every bad input ends the command with one line on stderr naming the option and its valid range, and
exit status 2. The rules live in :class:`sdsl_lib.planner.request.PlanRequest`, which this module
builds from the parsed options (its errors name the field, which maps to the option); this module
only parses strings into numbers, calls :func:`sdsl_lib.planner.plan` and prints. The user guide
is ``docs/planner.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

__all__ = ["main", "build_parser", "parse_count"]

_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_count(text: str) -> float:
    """A count such as ``70e9``, ``70B``, ``2.4T``, ``125M`` or ``350K`` (suffixes are powers of 1000).

    Examples
    --------
    >>> parse_count("2.4T"), parse_count("70e9"), parse_count("125M")
    (2400000000000.0, 70000000000.0, 125000000.0)
    """
    m = re.fullmatch(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([KMBGT]?)\s*", str(text), flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"not a number: {text!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2).upper()]


def _count(text: str) -> float:
    """argparse type: a count with an optional K/M/B/T suffix (its range is the request's rule)."""
    try:
        return parse_count(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0 (e.g. 7e9 or 7B), got {text!r}") from None


def _real(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show a default only where there is one (not "(default: None)" or "(default: False)")."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``sdsl plan: error: argument --draws: must be ... (see --help)``."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sdsl", description="Speculative Decoding Scaling Laws (arXiv:2603.11053) from the command line."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    p = sub.add_parser(
        "plan",
        help="size a draft model for a target: N*, gamma*, alpha and the gain, with 95%% intervals",
        description=(
            "Plan speculative decoding for a target model with SDSL's laws: the throughput-optimal draft size N* "
            "(Eq. 9 maximised over N), the optimal lookahead gamma* (Eq. 13) and the best integer lookahead, the "
            "predicted acceptance rate alpha (Eq. 5 at the perplexities of Eq. 7-8), and the tokens-per-FLOP gain over "
            "decoding with the target alone, each with a percentile interval from resampling both fitted laws. "
            "Counts accept K/M/B/T suffixes (70B = 70e9). See docs/planner.md."
        ),
        epilog=(
            "alpha paths: --alpha (measured) > --draft-ppl/--target-ppl (measured perplexities into Eq. 5) > "
            "the laws (Eq. 5 with Eq. 7-8). A measured alpha or draft perplexity describes one draft, so it needs "
            "--draft-params. Exit status 2 on bad input."
        ),
        formatter_class=_HelpFormatter,
    )
    # Let "-7e9" or "-70B" reach the type check (which names the valid range) instead of being taken
    # for an unknown option; argparse's own matcher only knows plain negative decimals.
    p._negative_number_matcher = re.compile(r"^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[KMBGTkmbgt]?$")
    p.set_defaults(handler=_cmd_plan, subparser=p)
    p.add_argument(
        "--emit",
        choices=["vllm"],
        help="print a vLLM speculative_config and batch-size -> k schedule (needs --hardware)",
    )
    p.add_argument(
        "--draft-model", metavar="DIR", help="draft checkpoint written into --emit vllm's speculative_config"
    )
    _models(p)
    _measured(p)
    _uncertainty(p)
    _search(p)
    _hardware(p)
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print JSON instead of the table (keys: docs/planner.md)")
    from sdsl_lib.engines.cli import add_parser as add_acceptance_parser

    add_acceptance_parser(sub)
    return parser


def _models(p) -> None:
    """Options that describe the target and the draft."""
    g = p.add_argument_group("models")
    g.add_argument(
        "--target-params",
        type=_count,
        required=True,
        metavar="M",
        help="target model size M, in parameters (e.g. 70e9 or 70B)",
    )
    g.add_argument(
        "--target-tokens",
        type=_count,
        metavar="D'",
        help="tokens the target was trained on, D' (e.g. 15e12 or 15T); needed for Eq. 8",
    )
    g.add_argument(
        "--draft-tokens",
        type=_count,
        metavar="D",
        help="tokens the draft (family) is trained on, D (e.g. 2.4e12); needed for Eq. 7",
    )
    g.add_argument(
        "--draft-params",
        type=_count,
        metavar="N",
        help="evaluate this draft size N (parameters, N < M) instead of searching for N*",
    )


def _measured(p) -> None:
    """Measured inputs that replace the laws."""
    g = p.add_argument_group("measured inputs (replace the laws)")
    g.add_argument(
        "--alpha",
        type=_real,
        metavar="A",
        help="measured acceptance rate alpha, in (0, 1); needs --draft-params",
    )
    g.add_argument(
        "--alpha-se",
        type=_real,
        metavar="SE",
        help="standard error of --alpha, in [0, 1); its draws are normal truncated to (0, 1)",
    )
    g.add_argument(
        "--draft-ppl",
        type=_real,
        metavar="X",
        help="measured draft perplexity x (>= 1, on the plane's evaluation set) used in Eq. 5 instead of Eq. 7; needs --draft-params",
    )
    g.add_argument(
        "--target-ppl",
        type=_real,
        metavar="Y",
        help="measured target perplexity y (>= 1) used in Eq. 5 instead of Eq. 8",
    )
    g.add_argument(
        "--pairs",
        metavar="CSV",
        help="your own (draft, target) pairs, a CSV with columns draft_ppl,target_ppl,alpha (>= 4 rows): the "
        "plane of Eq. 5 is refitted on them and bootstrapped (default: the paper's 130 pairs, Table 3)",
    )


def _uncertainty(p) -> None:
    """How the fitted laws are resampled."""
    from sdsl_lib.planner.request import MAX_DRAWS, MIN_DRAWS, UNCERTAINTY_MODES

    g = p.add_argument_group("uncertainty")
    g.add_argument(
        "--draws",
        type=_int,
        default=1000,
        metavar="K",
        help=f"number of draws of the fitted laws (integer in [1, {MAX_DRAWS}]; below {MIN_DRAWS} only point "
        "estimates are reported)",
    )
    g.add_argument("--seed", type=_int, default=0, help="seed of the draws (integer >= 0)")
    g.add_argument(
        "--confidence",
        type=_real,
        default=0.95,
        help="level of the percentile intervals, in (0, 1)",
    )
    g.add_argument(
        "--uncertainty",
        choices=UNCERTAINTY_MODES,
        default="all",
        help="which laws the draws resample: both, the alpha plane (cluster bootstrap by target plus the "
        "per-pair scatter), the pre-training law "
        "(independent truncated normals within Besiroglu et al.'s standard errors), or none",
    )


def _search(p) -> None:
    """The draft-size and lookahead search."""
    from sdsl_lib.planner.request import MAX_GAMMA

    g = p.add_argument_group("search")
    g.add_argument(
        "--n-min",
        type=_count,
        default=1e6,
        metavar="N",
        help="smallest draft size searched, in parameters",
    )
    g.add_argument(
        "--n-max",
        type=_count,
        default=None,
        metavar="N",
        help="largest draft size searched, in parameters (default M/2; must be < M)",
    )
    g.add_argument(
        "--gamma-max",
        type=_int,
        default=64,
        metavar="G",
        help=f"largest integer lookahead considered, in draft tokens per iteration (integer in [1, {MAX_GAMMA}])",
    )


def _hardware(p) -> None:
    """Tokens per second on a roofline, the KV cache and the memory check."""
    from sdsl_lib.planner.hardware import PRESET_NAMES
    from sdsl_lib.planner.request import DEFAULT_CONTEXT_TOKENS

    g = p.add_argument_group("hardware (tokens per second with a roofline step-time model)")
    g.add_argument(
        "--hardware",
        default=None,
        metavar="NAME",
        help=f"accelerator preset: {', '.join(PRESET_NAMES)} (datasheet numbers, see docs/planner.md); "
        "'custom' needs the four options below",
    )
    g.add_argument(
        "--bandwidth-gbs",
        type=_real,
        metavar="GB/s",
        help="memory bandwidth in GB/s (overrides the preset)",
    )
    g.add_argument(
        "--peak-tflops",
        type=_real,
        metavar="TFLOP/s",
        help="peak dense FLOP/s in the weights' precision, in TFLOP/s (overrides the preset)",
    )
    g.add_argument(
        "--bytes-per-param",
        type=_real,
        metavar="BYTES",
        help="bytes per weight: 2 for bf16, 4 for fp32, ~0.5 for 4-bit (overrides the preset)",
    )
    g.add_argument(
        "--overhead-ms",
        type=_real,
        metavar="MS",
        help="fixed cost of every forward step, in milliseconds, >= 0 (overrides the preset)",
    )
    g.add_argument(
        "--memory-gb",
        type=_real,
        metavar="GB",
        help="device memory in GB (overrides the preset; custom hardware without it is not memory-checked)",
    )
    g.add_argument("--batch-size", type=_int, default=1, metavar="B", help="sequences decoded together (integer >= 1)")
    g.add_argument(
        "--context-tokens",
        type=_int,
        metavar="S",
        help=f"tokens of context per sequence held in the KV cache (integer >= 1; default {DEFAULT_CONTEXT_TOKENS})",
    )
    g.add_argument("--layers", type=_int, metavar="L", help="target layers (default: derived from --target-params)")
    g.add_argument(
        "--kv-heads",
        type=_int,
        metavar="H",
        help="target KV heads (default: derived, GQA with 8 query heads per KV head)",
    )
    g.add_argument("--head-dim", type=_int, metavar="D", help="target head width (default 128)")
    g.add_argument(
        "--kv-bytes",
        type=_real,
        metavar="BYTES",
        help="bytes per KV-cache value (default: the weights' bytes per param)",
    )
    g.add_argument(
        "--batch-sweep",
        action="store_true",
        help="also tabulate tokens/s, best lookahead and speed-up for batch sizes 1, 2, 4, ..., 256",
    )


#: PlanRequest field -> the attribute argparse stores it under.
_ARGS = {
    "m_target": "target_params",
    "d_target": "target_tokens",
    "d_draft": "draft_tokens",
    "n_draft": "draft_params",
    "n_layers": "layers",
}


def _request(args):
    """The PlanRequest of the parsed options (every rule is checked there)."""
    from dataclasses import fields

    from sdsl_lib.planner.request import OPTIONS, PlanRequest

    values = {f.name: getattr(args, _ARGS.get(f.name, f.name)) for f in fields(PlanRequest) if f.name in OPTIONS}
    return PlanRequest(**values)


def _cmd_plan(args, parser) -> int:
    from sdsl_lib import __version__
    from sdsl_lib.planner import plan
    from sdsl_lib.planner.report import render_table
    from sdsl_lib.planner.request import OPTIONS, RequestError

    try:
        result = plan(request=_request(args))
    except RequestError as exc:
        parser.error(f"argument {OPTIONS[exc.field]}: {exc.reason.format(**OPTIONS)}")
    out = {"command": "plan", "version": __version__} | result.to_dict()
    if args.emit == "vllm":
        from sdsl_lib.engines.emit import emit_vllm

        try:
            print(json.dumps(emit_vllm(out, draft_model=args.draft_model), indent=2, allow_nan=False))
        except ValueError as exc:
            parser.error(f"argument --emit: {exc}")
        return 0
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(render_table(out))
    return 0


def main(argv=None) -> int:
    """Entry point of the ``sdsl`` console script; returns the exit status (0, or 2 on bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.handler(args, args.subparser)
    except SystemExit as exc:  # argparse and _Parser.error exit; in-process callers get the status
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BrokenPipeError:
        # The reader went away (``sdsl plan ... | head``): stop quietly, as Unix tools do. Point
        # stdout at /dev/null so that the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1  # what Python itself returns on EPIPE (its docs' note on SIGPIPE)


if __name__ == "__main__":
    sys.exit(main())
