"""The plan on one accelerator: tokens per second, the KV cache and the memory check.

Evaluates the roofline of :mod:`sdsl_lib.laws.roofline` on a :class:`~sdsl_lib.planner.hardware.HardwareSpec`
for the planner: the FLOP-optimal draft (the plan's N*) and the latency-optimal one (tokens per second
maximised over N and the integer lookahead), their intervals over the draws, the batch sweep, the
memory check (target and draft weights plus one KV cache of each per sequence must fit in the
device's memory, else the plan is refused with one line) and what the per-step overhead changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from sdsl_lib.laws.roofline import derived_kv_bytes_per_token, kv_bytes_per_token, step_seconds, transformer_shape
from sdsl_lib.laws.speculation import expected_tokens_per_iteration
from sdsl_lib.planner.hardware import HardwareSpec
from sdsl_lib.planner.request import RequestError

__all__ = ["KVCache", "kv_cache", "check_memory", "HardwarePlan", "hardware_plan"]


# --------------------------------------------------------------------------------------------
# The KV cache and the memory check
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KVCache:
    """The KV cache the roofline reads every step: the context and the bytes per token."""

    context_tokens: int
    bytes_per_value: float
    target_shape: object  # sdsl_lib.laws.roofline.TransformerShape

    @property
    def target_bytes(self) -> float:
        """Bytes of one sequence's target cache."""
        return self.context_tokens * kv_bytes_per_token(self.target_shape, self.bytes_per_value)

    def draft_bytes(self, n_draft) -> np.ndarray:
        """Bytes of one sequence's draft cache, for drafts of the default shape (derived from N)."""
        return self.context_tokens * np.asarray(derived_kv_bytes_per_token(n_draft, self.bytes_per_value), float)

    def as_dict(self) -> dict:
        s = self.target_shape
        return {
            "context_tokens": self.context_tokens,
            "bytes_per_value": self.bytes_per_value,
            "target_layers": s.n_layers,
            "target_kv_heads": s.kv_heads,
            "target_head_dim": s.head_dim,
            "target_shape_derived": s.derived,
            "target_bytes_per_sequence": self.target_bytes,
        }


def kv_cache(request) -> KVCache:
    """The KV cache of a :class:`~sdsl_lib.planner.request.PlanRequest` (values in the weights' dtype by default)."""
    b = request.kv_bytes if request.kv_bytes is not None else request.spec.bytes_per_param
    shape = transformer_shape(request.m_target, request.n_layers, request.kv_heads, request.head_dim)
    return KVCache(int(request.context_tokens), float(b), shape)


def _memory_needed(hw: HardwareSpec, m, n, batch, kv: KVCache) -> float:
    """Weights of target and draft plus one KV cache of each per sequence, in bytes."""
    n = 0.0 if n is None or not np.isfinite(n) else float(n)
    draft_kv = float(kv.draft_bytes(n)) if n > 0 else 0.0
    return hw.bytes_per_param * (m + n) + batch * (kv.target_bytes + draft_kv)


def check_memory(hw: HardwareSpec, m, n, batch, kv: KVCache) -> float:
    """Refuse a configuration whose weights and KV caches exceed the device memory; return the bytes needed."""
    need = _memory_needed(hw, m, n, batch, kv)
    if hw.memory_bytes is None or need <= hw.memory_bytes:
        return need
    field = "batch_size" if _memory_needed(hw, m, n, 1, kv) <= hw.memory_bytes else "hardware"
    what = f"{batch} does not fit" if field == "batch_size" else f"{hw.name} cannot hold this plan"
    raise RequestError(
        field,
        f"{what}: weights {hw.bytes_per_param * m / 1e9:.4g} GB (target) + {hw.bytes_per_param * (n or 0) / 1e9:.3g} GB "
        f"(draft) and {batch} KV caches of {kv.context_tokens} tokens ({kv.target_bytes / 1e9:.3g} GB each for the "
        f"target) need {need / 1e9:.4g} GB, more than one {hw.name}'s {hw.memory_bytes / 1e9:.4g} GB; lower "
        "{batch_size} or {context_tokens}, use fewer bytes ({bytes_per_param}), or describe a multi-device group "
        "with {hardware} custom",
    )


# --------------------------------------------------------------------------------------------
# Tokens per second on a roofline
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HardwarePlan:
    """Tokens per second of the FLOP-optimal and the latency-optimal draft on one accelerator."""

    hardware: HardwareSpec
    batch_size: int
    target_only_tokens_per_s: float
    flop_optimal: dict  # n_draft, gamma, alpha, tokens_per_s, speedup (the draft of Plan.estimates)
    latency_optimal: dict  # the same keys, maximised over N and integer gamma
    intervals: pd.DataFrame  # quantity, point, lower, upper over the draws
    batch_sweep: pd.DataFrame | None  # one row per batch size that fits in memory
    stops_paying_at_batch: int | None  # smallest swept batch where no draft/gamma beats the target
    notes: tuple = ()
    kv_cache: dict | None = None
    memory: dict | None = None  # bytes needed and available
    overhead_effect: dict | None = None  # the latency optimum without the per-step overhead

    def to_dict(self) -> dict:
        return {
            "hardware": self.hardware.as_dict(),
            "batch_size": self.batch_size,
            "target_only_tokens_per_s": self.target_only_tokens_per_s,
            "flop_optimal": self.flop_optimal,
            "latency_optimal": self.latency_optimal,
            "intervals": {
                r.quantity: {"point": r.point, "lower": r.lower, "upper": r.upper} for r in self.intervals.itertuples()
            },
            "batch_sweep": None if self.batch_sweep is None else self.batch_sweep.to_dict(orient="records"),
            "stops_paying_at_batch": self.stops_paying_at_batch,
            "kv_cache": self.kv_cache,
            "memory": self.memory,
            "overhead_effect": self.overhead_effect,
            "notes": list(self.notes),
        }


def _tokens_per_s(alpha, n_k, m, hw, batch, gammas, kv: KVCache, chunk=64):
    """Tokens/s for alpha (R, K) at draft sizes n_k (K,) and lookaheads ``gammas`` (G,): (R, K, G).

    Yields row chunks so that 1,000 draws x 400 sizes x 65 lookaheads never sit in memory at once.
    Drafts whose weights and caches would not fit beside the target get -inf for every gamma > 0.
    """
    n_k = np.asarray(n_k, float)
    td = step_seconds(n_k, 1.0, batch, hw, kv.draft_bytes(n_k))  # one draft step of one token
    tv = step_seconds(m, gammas + 1.0, batch, hw, kv.target_bytes)  # one target step verifying gamma + 1
    seconds = gammas[None, :] * td[:, None] + tv[None, :]  # (K, G)
    unfit = np.zeros(n_k.shape, bool)
    if hw.memory_bytes is not None:
        need = hw.bytes_per_param * (m + n_k) + batch * (kv.target_bytes + kv.draft_bytes(n_k))
        unfit = need > hw.memory_bytes
    for start in range(0, alpha.shape[0], chunk):
        a = alpha[start : start + chunk]
        e = np.asarray(expected_tokens_per_iteration(a[:, :, None], gammas[None, None, :]))
        tps = batch * e / seconds[None]
        tps[:, unfit, 1:] = -np.inf
        yield start, tps


def _latency_optimum(alpha, n_k, m, hw, batch, gamma_max, kv):
    """Per row: the (N, integer gamma) maximising tokens/s over the grid n_k; dict of (R,) arrays."""
    gammas = np.arange(gamma_max + 1, dtype=float)
    rows = alpha.shape[0]
    out = {k: np.empty(rows) for k in ("n_draft", "gamma", "alpha", "tokens_per_s")}
    for start, tps in _tokens_per_s(alpha, n_k, m, hw, batch, gammas, kv):
        flat = tps.reshape(tps.shape[0], -1).argmax(axis=1)
        k, g = np.unravel_index(flat, tps.shape[1:])
        sl = slice(start, start + tps.shape[0])
        # With gamma = 0 no draft runs: tokens/s do not depend on N, so report no draft size.
        out["n_draft"][sl] = np.where(g == 0, np.nan, np.asarray(n_k)[k])
        out["gamma"][sl] = gammas[g]
        out["alpha"][sl] = np.where(g == 0, np.nan, alpha[sl][np.arange(k.size), k])
        out["tokens_per_s"][sl] = tps[np.arange(k.size), k, g]
    return out


def _at_draft(alpha, n, m, hw, batch, gamma_max, kv):
    """Per row: the best integer gamma for tokens/s at one draft size per row; dict of (R,) arrays."""
    gammas = np.arange(gamma_max + 1, dtype=float)
    n = np.asarray(n, float)
    a = np.asarray(alpha, float)
    e = np.asarray(expected_tokens_per_iteration(a[:, None], gammas[None, :]))
    t_draft = step_seconds(n, 1.0, batch, hw, kv.draft_bytes(n))
    seconds = gammas[None, :] * t_draft[:, None] + step_seconds(m, gammas + 1.0, batch, hw, kv.target_bytes)[None, :]
    tps = batch * e / seconds
    g = tps.argmax(axis=1)
    return {"n_draft": n, "gamma": gammas[g], "alpha": a, "tokens_per_s": tps[np.arange(g.size), g]}


def _first_row(d: dict, base: float) -> dict:
    """The point-estimate row of a per-row result, with its speed-up over the target alone."""
    return {k: float(v[0]) for k, v in d.items()} | {"speedup": float(d["tokens_per_s"][0]) / base}


def _target_only(m, hw, batch, kv) -> float:
    return float(batch / step_seconds(m, 1.0, batch, hw, kv.target_bytes))


class _Optima:
    """The FLOP-optimal row (the plan's draft) and the latency optimum, for one alpha model."""

    def __init__(self, alpha_of, n_rows, draft_given, m, hw, gamma_max, kv, grid):
        self.alpha_of, self.n_rows, self.given = alpha_of, np.atleast_1d(n_rows), draft_given
        self.m, self.hw, self.gamma_max, self.kv, self.grid = m, hw, gamma_max, kv, grid

    def flop(self, batch, hw=None):
        a = self.alpha_of(self.n_rows[:, None])[:, 0]
        return _at_draft(a, self.n_rows, self.m, hw or self.hw, batch, self.gamma_max, self.kv)

    def latency(self, batch, hw=None, grid=None):
        if self.given:
            return self.flop(batch, hw)
        grid = self.grid if grid is None else grid
        return _latency_optimum(
            self.alpha_of(grid[None, :]), grid, self.m, hw or self.hw, batch, self.gamma_max, self.kv
        )


def _draw_intervals(point: _Optima, draws: _Optima | None, flop_optimal, latency_optimal, base, batch, level, coarse):
    rows = []
    if draws is not None:
        q = [(1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0]
        fo_d, lo_d = draws.flop(batch), draws.latency(batch, grid=coarse)
        for name, pt, values in (
            ("flop_optimal_gamma", flop_optimal["gamma"], fo_d["gamma"]),
            ("flop_optimal_speedup", flop_optimal["speedup"], fo_d["tokens_per_s"] / base),
            ("latency_optimal_n_draft", latency_optimal["n_draft"], lo_d["n_draft"]),
            ("latency_optimal_gamma", latency_optimal["gamma"], lo_d["gamma"]),
            ("latency_optimal_speedup", latency_optimal["speedup"], lo_d["tokens_per_s"] / base),
        ):
            # nanquantile: draws in which no draft pays (gamma = 0) have no draft size.
            lower, upper = np.nanquantile(values, q) if not np.isnan(values).all() else (np.nan, np.nan)
            rows.append({"quantity": name, "point": pt, "lower": float(lower), "upper": float(upper)})
    return pd.DataFrame(rows, columns=["quantity", "point", "lower", "upper"])


def _batch_sweep(point: _Optima, sizes, kv):
    """One row per batch size that fits in memory beside the plan's draft; the sizes left out."""
    recs, left_out = [], []
    m, hw, n0 = point.m, point.hw, float(point.n_rows[0])
    for b in sizes:
        if hw.memory_bytes is not None and _memory_needed(hw, m, n0, b, kv) > hw.memory_bytes:
            left_out.append(int(b))
            continue
        t_only = _target_only(m, hw, b, kv)
        f_b, l_b = _first_row(point.flop(b), t_only), _first_row(point.latency(b), t_only)
        compute = (
            2.0 * m * b / hw.peak_flops > (hw.bytes_per_param * m + b * kv.target_bytes) / hw.bandwidth_bytes_per_s
        )
        recs.append(
            {
                "batch_size": int(b),
                "target_only_tokens_per_s": t_only,
                "target_step_bound": "compute" if compute else "memory",
                "flop_optimal_gamma": int(f_b["gamma"]),
                "flop_optimal_speedup": f_b["speedup"],
                "latency_optimal_n_draft": l_b["n_draft"],
                "latency_optimal_gamma": int(l_b["gamma"]),
                "latency_optimal_speedup": l_b["speedup"],
                "latency_optimal_tokens_per_s": l_b["tokens_per_s"],
            }
        )
    return pd.DataFrame(recs), left_out


def hardware_plan(request, point_alpha, draw_alpha, n_point, n_draws, grid, coarse) -> HardwarePlan:
    """Tokens per second of the plan on ``request.spec``; refuses configurations that do not fit.

    ``point_alpha(n)`` / ``draw_alpha(n)`` give alpha of shape (rows, k) at draft sizes ``n`` (rows,
    k); ``grid`` is the latency search's draft grid and ``coarse`` the draws'.
    """
    hw, m, batch, kv = request.spec, request.m_target, int(request.batch_size), kv_cache(request)
    given = request.n_draft is not None
    need = check_memory(hw, m, float(np.atleast_1d(n_point)[0]), batch, kv)
    point = _Optima(point_alpha, n_point, given, m, hw, request.gamma_max, kv, grid)
    draws = None if draw_alpha is None else _Optima(draw_alpha, n_draws, given, m, hw, request.gamma_max, kv, grid)
    base = _target_only(m, hw, batch, kv)
    flop_optimal, latency_optimal = _first_row(point.flop(batch), base), _first_row(point.latency(batch), base)
    intervals = _draw_intervals(point, draws, flop_optimal, latency_optimal, base, batch, request.confidence, coarse)
    sweep_df, stops, left_out = None, None, []
    if request.batch_sweep:
        sweep_df, left_out = _batch_sweep(point, request.batch_sizes, kv)
        no_gain = sweep_df.loc[sweep_df["latency_optimal_gamma"] == 0, "batch_size"] if len(sweep_df) else []
        stops = int(no_gain.iloc[0]) if len(no_gain) else None
    effect = None
    if hw.overhead_s > 0:
        free = replace(hw, overhead_s=0.0)
        lo0 = _first_row(point.latency(batch, hw=free), _target_only(m, free, batch, kv))
        effect = {"overhead_s": hw.overhead_s, "without_overhead": lo0}
    notes = _hardware_notes(hw, batch, kv, latency_optimal, effect, left_out, given, grid)
    memory = {"needed_bytes": need, "available_bytes": hw.memory_bytes}
    return HardwarePlan(
        hw,
        batch,
        base,
        flop_optimal,
        latency_optimal,
        intervals,
        sweep_df,
        stops,
        tuple(notes),
        kv.as_dict(),
        memory,
        effect,
    )


def _hardware_notes(hw, batch, kv, latency_optimal, effect, left_out, given, grid) -> list[str]:
    notes = []
    if kv.target_shape.derived:
        s = kv.target_shape
        notes.append(
            f"KV cache: target shape derived from its size ({s.n_layers} layers, {s.kv_heads} KV heads of width "
            f"{s.head_dim}: P = 12 L d^2, d = 128 L, 8 query heads per KV head); {kv.context_tokens} tokens of context, "
            f"{kv.target_bytes / 1e9:.3g} GB per sequence; give --layers/--kv-heads/--head-dim for your model"
        )
    if hw.memory_bytes is None:
        notes.append(f"memory not checked: {hw.name} has no memory size (give --memory-gb)")
    if left_out:
        notes.append(
            f"batch sizes {', '.join(map(str, left_out))} do not fit in one {hw.name}'s {hw.memory_bytes / 1e9:.4g} GB "
            "(weights plus KV caches): left out of the sweep"
        )
    if latency_optimal["gamma"] == 0:
        notes.append(
            f"at batch {batch} no draft and lookahead beats the target alone on {hw.name}: speculation does not pay"
        )
    if not given and latency_optimal["gamma"] > 0 and not grid[0] < latency_optimal["n_draft"] < grid[-1]:
        notes.append("the latency-optimal draft lies at an end of the search range; widen it (n_min/n_max)")
    if effect is not None:
        w = effect["without_overhead"]
        draft = "no draft" if not np.isfinite(w["n_draft"]) else f"N = {w['n_draft'] / 1e6:.4g}M"
        notes.append(
            f"per-step overhead {1e3 * hw.overhead_s:.3g} ms: without it the latency optimum would be {draft} with "
            f"gamma {w['gamma']:.0f} ({w['speedup']:.3f}x the target alone), against {latency_optimal['speedup']:.3f}x "
            "with it"
        )
    return notes
