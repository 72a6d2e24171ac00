"""The ``sdsl`` command line. ``sdsl plan`` sizes a draft model for a target with SDSL's laws.

Examples::

    sdsl plan --target-params 70e9 --target-tokens 15e12 --draft-tokens 2.4e12
    sdsl plan --target-params 70B --target-tokens 15T --draft-tokens 2.4T --hardware h200 --batch-sweep
    sdsl plan --target-params 13B --draft-params 125M --alpha 0.62 --alpha-se 0.02 --json

Every bad input ends the command with one line on stderr naming the option and its valid range, and
exit status 2. The logic lives in :mod:`sdsl_lib.planner.core` and :mod:`sdsl_lib.planner.hardware`; this module
only parses, checks, calls and prints. The user guide is ``docs/planner.md``.
"""

from __future__ import annotations

import argparse
import json
import math
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


def _count(unit: str):
    """argparse type: a positive finite count in ``unit``."""

    def parse(text):
        try:
            v = parse_count(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number > 0 ({unit}, e.g. 7e9 or 7B), got {text!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise argparse.ArgumentTypeError(f"must be a number > 0 ({unit}), got {text!r}")
        return v

    return parse


def _real(low: float, high: float, low_open: bool, high_open: bool, what: str):
    """argparse type: a float in an interval, the interval named in the message."""
    interval = (
        f"{'(' if low_open else '['}{low:g}, {'inf' if math.isinf(high) else f'{high:g}'}{')' if high_open else ']'}"
    )

    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} in {interval}, got {text!r}") from None
        ok = math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {what} in {interval}, got {text!r}")
        return v

    return parse


def _integer(low: int, high: int | None = None):
    """argparse type: an integer in [low, high] (no upper end when ``high`` is None)."""
    valid = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {valid}, got {text!r}") from None
        if v < low or (high is not None and v > high):
            raise argparse.ArgumentTypeError(f"must be {valid}, got {text!r}")
        return v

    return parse


#: Upper ends that keep one run within memory and seconds: the draws search N* on a 400-point grid
#: each (20,000 draws: about 5 s, 14 s with --hardware, and 1.3 GB on 2 cores), and the hardware mode enumerates every
#: integer lookahead up to --gamma-max.
MAX_DRAWS = 20_000
MAX_GAMMA = 1024


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
    from sdsl_lib.planner.core import UNCERTAINTY_MODES
    from sdsl_lib.planner.hardware import PRESET_NAMES

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
    g = p.add_argument_group("models")
    g.add_argument(
        "--target-params",
        type=_count("parameters"),
        required=True,
        metavar="M",
        help="target model size M, in parameters (e.g. 70e9 or 70B)",
    )
    g.add_argument(
        "--target-tokens",
        type=_count("tokens"),
        metavar="D'",
        help="tokens the target was trained on, D' (e.g. 15e12 or 15T); needed for Eq. 8",
    )
    g.add_argument(
        "--draft-tokens",
        type=_count("tokens"),
        metavar="D",
        help="tokens the draft (family) is trained on, D (e.g. 2.4e12); needed for Eq. 7",
    )
    g.add_argument(
        "--draft-params",
        type=_count("parameters"),
        metavar="N",
        help="evaluate this draft size N (parameters, N < M) instead of searching for N*",
    )
    g = p.add_argument_group("measured inputs (replace the laws)")
    g.add_argument(
        "--alpha",
        type=_real(0, 1, True, True, "an acceptance rate"),
        metavar="A",
        help="measured acceptance rate alpha, in (0, 1); needs --draft-params",
    )
    g.add_argument(
        "--alpha-se",
        type=_real(0, 1, False, True, "a standard error"),
        metavar="SE",
        help="standard error of --alpha, in [0, 1); its draws are normal truncated to (0, 1)",
    )
    g.add_argument(
        "--draft-ppl",
        type=_real(1, math.inf, False, True, "a perplexity"),
        metavar="X",
        help="measured draft perplexity x (>= 1, on the plane's evaluation set) used in Eq. 5 instead of Eq. 7; needs --draft-params",
    )
    g.add_argument(
        "--target-ppl",
        type=_real(1, math.inf, False, True, "a perplexity"),
        metavar="Y",
        help="measured target perplexity y (>= 1) used in Eq. 5 instead of Eq. 8",
    )
    g.add_argument(
        "--pairs",
        metavar="CSV",
        help="your own (draft, target) pairs, a CSV with columns draft_ppl,target_ppl,alpha (>= 4 rows): the "
        "plane of Eq. 5 is refitted on them and bootstrapped (default: the paper's 130 pairs, Table 3)",
    )
    g = p.add_argument_group("uncertainty")
    g.add_argument(
        "--draws",
        type=_integer(1, MAX_DRAWS),
        default=1000,
        metavar="K",
        help=f"number of draws of the fitted laws (integer in [1, {MAX_DRAWS}])",
    )
    g.add_argument("--seed", type=_integer(0), default=0, help="seed of the draws (integer >= 0)")
    g.add_argument(
        "--confidence",
        type=_real(0, 1, True, True, "a level"),
        default=0.95,
        help="level of the percentile intervals, in (0, 1)",
    )
    g.add_argument(
        "--uncertainty",
        choices=UNCERTAINTY_MODES,
        default="all",
        help="which laws the draws resample: both, the alpha plane (pairs bootstrap), the pre-training law "
        "(independent truncated normals within Besiroglu et al.'s standard errors), or none",
    )
    g = p.add_argument_group("search")
    g.add_argument(
        "--n-min",
        type=_count("parameters"),
        default=1e6,
        metavar="N",
        help="smallest draft size searched, in parameters",
    )
    g.add_argument(
        "--n-max",
        type=_count("parameters"),
        default=None,
        metavar="N",
        help="largest draft size searched, in parameters (default M/2; must be < M)",
    )
    g.add_argument(
        "--gamma-max",
        type=_integer(1, MAX_GAMMA),
        default=64,
        metavar="G",
        help=f"largest integer lookahead considered, in draft tokens per iteration (integer in [1, {MAX_GAMMA}])",
    )
    g = p.add_argument_group("hardware (tokens per second with a roofline step-time model)")
    g.add_argument(
        "--hardware",
        choices=PRESET_NAMES,
        default=None,
        help="accelerator preset (datasheet numbers, see docs/planner.md); 'custom' needs the four options below",
    )
    g.add_argument(
        "--bandwidth-gbs",
        type=_real(0, math.inf, True, True, "a bandwidth"),
        metavar="GB/s",
        help="memory bandwidth in GB/s (overrides the preset)",
    )
    g.add_argument(
        "--peak-tflops",
        type=_real(0, math.inf, True, True, "a FLOP rate"),
        metavar="TFLOP/s",
        help="peak dense FLOP/s in the weights' precision, in TFLOP/s (overrides the preset)",
    )
    g.add_argument(
        "--bytes-per-param",
        type=_real(0, math.inf, True, True, "a size"),
        metavar="BYTES",
        help="bytes per weight: 2 for bf16, 4 for fp32, ~0.5 for 4-bit (overrides the preset)",
    )
    g.add_argument(
        "--overhead-ms",
        type=_real(0, math.inf, False, True, "a time"),
        metavar="MS",
        help="fixed cost of every forward step, in milliseconds, >= 0 (overrides the preset)",
    )
    g.add_argument(
        "--batch-size", type=_integer(1), default=1, metavar="B", help="sequences decoded together (integer >= 1)"
    )
    g.add_argument(
        "--batch-sweep",
        action="store_true",
        help="also tabulate tokens/s, best lookahead and speed-up for batch sizes 1, 2, 4, ..., 256",
    )
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print JSON instead of the table (keys: docs/planner.md)")
    return parser


# Names the planner uses in its messages -> the options a CLI user typed.
_OPTION_OF = {
    "target_params": "--target-params",
    "target_tokens": "--target-tokens",
    "draft_tokens": "--draft-tokens",
    "draft_params": "--draft-params",
    "alpha_se": "--alpha-se",
    "alpha": "--alpha",
    "draft_ppl": "--draft-ppl",
    "target_ppl": "--target-ppl",
    "pairs file": "--pairs",
    "draws": "--draws",
    "confidence": "--confidence",
    "n_min": "--n-min",
    "n_max": "--n-max",
    "gamma_max": "--gamma-max",
    "batch_size": "--batch-size",
    "bandwidth_gbs": "--bandwidth-gbs",
    "peak_tflops": "--peak-tflops",
    "bytes_per_param": "--bytes-per-param",
    "overhead_ms": "--overhead-ms",
    "hardware": "--hardware",
}


def _as_options(message: str) -> str:
    """Rewrite the planner's argument names as the CLI's option names."""
    if message.startswith("pairs file"):
        return "--pairs" + message[len("pairs file") :]
    pattern = "|".join(re.escape(k) for k in sorted(_OPTION_OF, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])({pattern})(?![\w])", lambda m: _OPTION_OF[m.group(1)], message)


def _hardware(args, parser):
    from dataclasses import replace

    from sdsl_lib.planner.hardware import custom_spec, get_preset

    given = {k: getattr(args, k) for k in ("bandwidth_gbs", "peak_tflops", "bytes_per_param", "overhead_ms")}
    if args.hardware is None:
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            parser.error(f"argument {_OPTION_OF[extra[0]]}: needs --hardware (a preset to override, or custom)")
        if args.batch_sweep or args.batch_size != 1:
            parser.error("argument --batch-size/--batch-sweep: needs --hardware (batch size matters only for tokens/s)")
        return None
    if args.hardware == "custom":
        missing = [_OPTION_OF[k] for k, v in given.items() if v is None]
        if missing:
            parser.error(f"argument --hardware: custom needs {', '.join(missing)}")
        return custom_spec(**given)
    spec = get_preset(args.hardware)
    changes = {}
    if given["bandwidth_gbs"] is not None:
        changes["bandwidth_bytes_per_s"] = given["bandwidth_gbs"] * 1e9
    if given["peak_tflops"] is not None:
        changes["peak_flops"] = given["peak_tflops"] * 1e12
    if given["bytes_per_param"] is not None:
        changes["bytes_per_param"] = given["bytes_per_param"]
    if given["overhead_ms"] is not None:
        changes["overhead_s"] = given["overhead_ms"] * 1e-3
    if changes:
        spec = replace(spec, source=spec.source + "; overridden: " + ", ".join(sorted(changes)), **changes)
    return spec


def _check_combinations(args, parser):
    """Cross-option rules, each reported as one line naming the option."""
    if args.draft_params is not None and args.draft_params >= args.target_params:
        parser.error(
            f"argument --draft-params: must be smaller than --target-params (N < M), got {args.draft_params:g} >= {args.target_params:g}"
        )
    if args.alpha_se is not None and args.alpha is None:
        parser.error("argument --alpha-se: needs --alpha")
    if (args.alpha is not None or args.draft_ppl is not None) and args.draft_params is None:
        which = "--alpha" if args.alpha is not None else "--draft-ppl"
        parser.error(f"argument {which}: needs --draft-params (a measured value describes one particular draft)")
    if args.alpha is None and args.draft_ppl is None and args.draft_tokens is None:
        parser.error(
            "argument --draft-tokens: required (Eq. 7 needs the draft's training tokens) unless --draft-ppl or --alpha is given"
        )
    if args.alpha is None and args.target_ppl is None and args.target_tokens is None:
        parser.error(
            "argument --target-tokens: required (Eq. 8 needs the target's training tokens) unless --target-ppl or --alpha is given"
        )
    n_max = args.n_max if args.n_max is not None else 0.5 * args.target_params
    if args.n_max is not None and args.n_max >= args.target_params:
        parser.error(
            f"argument --n-max: must be smaller than --target-params, got {args.n_max:g} >= {args.target_params:g}"
        )
    if args.n_min >= n_max:
        parser.error(f"argument --n-min: must be smaller than --n-max ({n_max:g}), got {args.n_min:g}")


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
def _fmt_count(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-" if x is None or math.isnan(x) else "inf"
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{x / div:.4g}{suf}"
    return f"{x:.4g}"


def _rate(x: float, unit: str) -> str:
    return f"{x / 1e12:.4g} T{unit}" if x >= 1e12 else f"{x / 1e9:.4g} G{unit}"


def _fmt(key: str, x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if key in ("n_draft",):
        return _fmt_count(x)
    if key == "gamma_int" or key.endswith("_gamma"):
        return f"{x:.0f}"
    if key == "throughput_tokens_per_flop":
        return f"{x:.4e}"
    if key in ("gain", "gain_int") or key.endswith("speedup"):
        return f"{x:.3f}x"
    if key == "alpha":
        return f"{x:.4f}"
    return f"{x:.4g}"


_LABELS = {
    "n_draft": "draft size N* (throughput-optimal)",
    "m_over_n": "target/draft ratio M/N",
    "gamma_star": "optimal lookahead gamma* (Eq. 13)",
    "gamma_int": "best integer lookahead (Eq. 3)",
    "alpha": "acceptance rate alpha",
    "gain": "tokens/FLOP gain vs target alone",
    "gain_int": "  ... at the integer lookahead",
    "throughput_tokens_per_flop": "tokens per FLOP T (Eq. 4/9)",
    "draft_ppl": "draft perplexity x",
    "target_ppl": "target perplexity y",
}


def render_table(result: dict) -> str:
    """The human-readable report of a plan (``result`` is :meth:`Plan.to_dict`)."""
    inp, est, unc = result["inputs"], result["estimates"], result["uncertainty"]
    level = f"{100 * unc['confidence']:g}%"
    head = f"target M = {_fmt_count(inp['target_params'])} params"
    if inp["target_tokens"]:
        head += f" trained on D' = {_fmt_count(inp['target_tokens'])} tokens"
    if inp["draft_tokens"]:
        head += f"; draft data D = {_fmt_count(inp['draft_tokens'])} tokens"
    if inp["draft_params"]:
        head += f"; draft N = {_fmt_count(inp['draft_params'])} params (given)"
    lines = [f"sdsl plan: {head}", "", f"  alpha: {result['paths']['alpha']}", f"  draft: {result['paths']['draft']}"]
    if unc["draws"]:
        lines += [
            f"  uncertainty: {unc['draws']} draws (seed {unc['seed']}), {level} {unc['interval']}",
            f"    plane: {unc['plane']}",
            f"    law:   {unc['law']}",
        ]
        if inp["alpha"] is not None:
            lines.append(f"    alpha: {unc['alpha']}")
    else:
        lines.append("  uncertainty: none (point estimates only)")
    lines += ["", f"  {'quantity':<38}{'estimate':>13}    {level} interval"]
    labels = dict(_LABELS)
    if inp["draft_params"]:
        labels["n_draft"] = "draft size N (given)"
    for key, row in est.items():
        interval = f"[{_fmt(key, row['lower'])}, {_fmt(key, row['upper'])}]" if unc["draws"] else ""
        lines.append(f"  {labels[key]:<38}{_fmt(key, row['point']):>13}    {interval}")
    hw = result.get("hardware")
    if hw:
        spec = hw["hardware"]
        lines += [
            "",
            f"  hardware: {spec['name']}: {_rate(spec['bandwidth_bytes_per_s'], 'B/s')}, {_rate(spec['peak_flops'], 'FLOP/s')}, "
            f"{spec['bytes_per_param']:g} bytes/param, {1e3 * spec['overhead_s']:.3g} ms/step overhead; "
            f"ridge {spec['ridge_tokens']:.0f} tokens/step; batch {hw['batch_size']}",
            f"  target alone: {hw['target_only_tokens_per_s']:.4g} tokens/s",
            f"  {'':<24}{'draft N':>10}{'gamma':>7}{'alpha':>8}{'tokens/s':>11}{'speed-up':>10}    {level} interval (speed-up)",
        ]
        ivs = hw["intervals"]
        rows = (
            (("flop_optimal", "given draft"),)
            if inp["draft_params"]
            else (("flop_optimal", "FLOP-optimal draft"), ("latency_optimal", "latency-optimal draft"))
        )
        for name, label in rows:
            r = hw[name]
            iv = ivs.get(f"{name}_speedup")
            interval = f"[{_fmt('speedup', iv['lower'])}, {_fmt('speedup', iv['upper'])}]" if iv else ""
            lines.append(
                f"  {label:<24}{_fmt_count(r['n_draft']):>10}{r['gamma']:>7.0f}{_fmt('alpha', r['alpha']):>8}"
                f"{r['tokens_per_s']:>11.4g}{_fmt('speedup', r['speedup']):>10}    {interval}"
            )
        if hw.get("batch_sweep"):
            lines += [
                "",
                f"  batch sweep ({spec['name']}): tokens/s and best lookahead per batch size",
                f"  {'':>29}{'-- FLOP-optimal N --':>21}{'------- latency-optimal draft -------':>38}",
                f"  {'batch':>6}{'target tok/s':>14}{'bound':>9}{'gamma':>11}{'speed-up':>10}"
                f"{'best N':>10}{'gamma':>7}{'speed-up':>10}{'tok/s':>11}",
            ]
            for r in hw["batch_sweep"]:
                lines.append(
                    f"  {r['batch_size']:>6}{r['target_only_tokens_per_s']:>14.4g}{r['target_step_bound']:>9}"
                    f"{r['flop_optimal_gamma']:>11}{_fmt('speedup', r['flop_optimal_speedup']):>10}"
                    f"{_fmt_count(r['latency_optimal_n_draft']):>10}{r['latency_optimal_gamma']:>7}"
                    f"{_fmt('speedup', r['latency_optimal_speedup']):>10}{r['latency_optimal_tokens_per_s']:>11.4g}"
                )
            stop = hw.get("stops_paying_at_batch")
            lines.append(
                f"  speculation stops paying at batch {stop}"
                if stop
                else "  speculation pays at every batch size swept"
            )
        for note in hw.get("notes", []):
            lines.append(f"  note: {note}")
    if result["notes"]:
        lines += [""] + [f"  note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def _cmd_plan(args, parser) -> int:
    from sdsl_lib import __version__
    from sdsl_lib.planner.core import plan

    _check_combinations(args, parser)
    try:
        hw = _hardware(args, parser)
    except ValueError as exc:  # e.g. an unreadable data/measured/cpu/cost_calibration.csv for cpu-measured
        parser.error(f"argument --hardware: {str(exc).splitlines()[0]}")
    try:
        result = plan(
            args.target_params,
            args.target_tokens,
            args.draft_tokens,
            draft_params=args.draft_params,
            alpha=args.alpha,
            alpha_se=args.alpha_se,
            draft_ppl=args.draft_ppl,
            target_ppl=args.target_ppl,
            pairs=args.pairs,
            draws=args.draws,
            seed=args.seed,
            confidence=args.confidence,
            uncertainty=args.uncertainty,
            n_min=args.n_min,
            n_max=args.n_max,
            gamma_max=args.gamma_max,
            hardware=hw,
            batch_size=args.batch_size,
            batch_sweep=args.batch_sweep,
        )
    except ValueError as exc:
        parser.error(_as_options(str(exc).splitlines()[0]))
    out = {"command": "plan", "version": __version__} | result.to_dict()
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
