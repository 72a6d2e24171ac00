r"""Exact speculative decoding with a KV cache, and the autoregressive baseline.

One small loop that we own, so that every acceptance count the scaling laws need is exact
(Hugging Face's ``generate(assistant_model=...)`` returns none; it is only the speed baseline, see
:mod:`sdsl_lib.measurement.hf_baseline`).

Algorithm (Leviathan et al. 2023, arXiv 2211.17192, Alg. 1; Chen et al. 2023, arXiv 2302.01318).
Each *iteration* with lookahead :math:`\gamma`:

1. the draft proposes :math:`x_1, \dots, x_k` (:math:`k = \gamma` except near the end, see
   ``truncated``), :math:`x_i \sim q_i = q(\cdot \mid \text{prefix}, x_{<i})`;
2. the target scores the last committed token and the :math:`k` drafts in **one** forward pass,
   giving :math:`p_1, \dots, p_{k+1}`;
3. draft :math:`i` is accepted with probability :math:`\min\bigl(1, p_i(x_i) / q_i(x_i)\bigr)`;
   at the first rejection a corrected token is drawn from
   :math:`\operatorname{norm}\bigl(\max(0, p_i - q_i)\bigr)`; if all :math:`k` are accepted a bonus
   token is drawn from :math:`p_{k+1}`.

At temperature 0 both distributions are one-hot at their argmax, so step 3 reduces to "accept while
the draft's argmax equals the target's argmax, then emit the target's argmax"; the output is then
token-for-token the target's greedy output. At temperature :math:`T > 0` both models are sampled
from :math:`\operatorname{softmax}(\ell / T)` and the output is distributed exactly as the target's
own samples at that temperature.

Counting conventions (the engines in the wild disagree; docs/field_notes.md "What acceptance rate means"):

* :math:`n_t` (``accepted_per_iteration[t]``) is the number of *draft* tokens accepted in
  iteration :math:`t`, :math:`0 \le n_t \le k_t`. The corrected/bonus token is **not** counted.
* every iteration emits :math:`n_t + 1` tokens, so ``new_tokens == accepted + iterations`` always.
* TAR with the bonus token (the paper's Eq. for :math:`\mathrm{TAR}(\gamma)`,
  :math:`(1 - \alpha^{\gamma+1}) / (1 - \alpha)`) is :math:`\overline{n} + 1`; without the bonus
  (:math:`\alpha (1 - \alpha^\gamma) / (1 - \alpha)`) it is :math:`\overline{n}`. Average only the
  iterations whose ``truncated`` flag is False: a truncated iteration drafted fewer than
  :math:`\gamma` tokens because ``max_new_tokens`` was near, so its :math:`n_t` is capped lower.
  :attr:`SpeculativeStats.tar_with_bonus` and :attr:`SpeculativeStats.tar_without_bonus` do this.
* position :math:`i` (0-based) is *attempted* in an iteration when drafts :math:`0..i-1` were all
  accepted and :math:`i < k_t`; ``position_accepts[i] / position_attempts[i]`` estimates the
  acceptance probability at depth :math:`i` given the earlier drafts were accepted (Leviathan's
  :math:`\alpha` if acceptance does not depend on depth). Truncated iterations are included here:
  whether a position is reached does not depend on why :math:`k_t` was small.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

# The plumbing lives in kv_cache; hf_baseline imports _device_of, _eval_mode and _sync from here.
from sdsl_lib.measurement.kv_cache import (  # noqa: F401
    _check_common,
    _check_pair,
    _device_of,
    _draw,
    _eval_mode,
    _probs,
    _Runner,
    _sync,
    _vocab_size,
    runner_for,
)

__all__ = [
    "AutoregressiveStats",
    "SpeculativeStats",
    "autoregressive_generate",
    "speculative_generate",
]


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------


@dataclass
class SpeculativeStats:
    """Exact counts and timings of one :func:`speculative_generate` call.

    Attributes
    ----------
    gamma : int
        Lookahead :math:`\\gamma` (draft tokens proposed per full iteration).
    temperature : float
        Sampling temperature (0 = greedy).
    iterations : int
        Number of draft-then-verify iterations (= target forward passes after the prefill).
    drafted : int
        Total draft tokens proposed, :math:`\\sum_t k_t`.
    accepted : int
        Total draft tokens accepted, :math:`\\sum_t n_t` (corrected/bonus tokens not counted).
    new_tokens : int
        Tokens emitted, ``accepted + iterations``.
    accepted_per_iteration : list of int
        :math:`n_t` per iteration (the App. B count).
    drafted_per_iteration : list of int
        :math:`k_t` per iteration; equals ``gamma`` unless the iteration is truncated.
    truncated : list of bool
        Per iteration: True when :math:`k_t < \\gamma` because ``max_new_tokens`` was near. Drop these
        when estimating TAR(gamma).
    position_attempts, position_accepts : numpy.ndarray of int, shape (gamma,)
        How often draft position ``i`` was reached / accepted (see module docstring).
    prefill_time_s, draft_time_s, verify_time_s, total_time_s : float
        Wall-clock seconds (``time.perf_counter``; CUDA synchronised at region boundaries).
        ``draft_time_s`` covers draft forwards and sampling; ``verify_time_s`` the target forward,
        the accept/reject decision and the cache rollback; ``total_time_s`` the whole call,
        prefill included.
    """

    gamma: int
    temperature: float
    iterations: int = 0
    drafted: int = 0
    accepted: int = 0
    new_tokens: int = 0
    accepted_per_iteration: list[int] = field(default_factory=list)
    drafted_per_iteration: list[int] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    position_attempts: np.ndarray = field(default=None)  # type: ignore[assignment]
    position_accepts: np.ndarray = field(default=None)  # type: ignore[assignment]
    prefill_time_s: float = 0.0
    draft_time_s: float = 0.0
    verify_time_s: float = 0.0
    total_time_s: float = 0.0

    def __post_init__(self) -> None:
        if self.position_attempts is None:
            self.position_attempts = np.zeros(self.gamma, dtype=np.int64)
        if self.position_accepts is None:
            self.position_accepts = np.zeros(self.gamma, dtype=np.int64)

    @property
    def truncated_last(self) -> bool:
        """True when the last iteration drafted fewer than ``gamma`` tokens."""
        return bool(self.truncated and self.truncated[-1])

    @property
    def full_iterations(self) -> np.ndarray:
        """:math:`n_t` of the iterations that drafted all ``gamma`` tokens."""
        n = np.asarray(self.accepted_per_iteration, dtype=np.int64)
        keep = ~np.asarray(self.truncated, dtype=bool)
        return n[keep] if n.size else n

    @property
    def tar_with_bonus(self) -> float:
        """Mean tokens per full iteration, bonus included: :math:`\\overline{n} + 1` (NaN if none)."""
        n = self.full_iterations
        return float(n.mean() + 1.0) if n.size else math.nan

    @property
    def tar_without_bonus(self) -> float:
        """Mean accepted drafts per full iteration: :math:`\\overline{n}` (NaN if none)."""
        n = self.full_iterations
        return float(n.mean()) if n.size else math.nan

    @property
    def acceptance_by_position(self) -> np.ndarray:
        """``position_accepts / position_attempts`` (NaN where a position was never reached)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.position_attempts > 0,
                self.position_accepts / np.maximum(self.position_attempts, 1),
                np.nan,
            )

    @property
    def tokens_per_s(self) -> float:
        """``new_tokens / total_time_s``."""
        return self.new_tokens / self.total_time_s if self.total_time_s > 0 else math.nan


@dataclass
class AutoregressiveStats:
    """Counts and timings of one :func:`autoregressive_generate` call."""

    temperature: float
    new_tokens: int = 0
    prefill_time_s: float = 0.0
    total_time_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        """``new_tokens / total_time_s``."""
        return self.new_tokens / self.total_time_s if self.total_time_s > 0 else math.nan


# --------------------------------------------------------------------------------------------------
# Autoregressive baseline
# --------------------------------------------------------------------------------------------------


def autoregressive_generate(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, AutoregressiveStats]:
    """Plain token-by-token decoding with a KV cache (the speedup denominator).

    Parameters
    ----------
    model : transformers causal LM
        Any model whose forward accepts ``input_ids``, a cache (``cache`` or ``past_key_values``)
        and ``use_cache`` and returns ``.logits``.
    input_ids : torch.LongTensor, shape (T,) or (1, T)
        Prompt, :math:`T \\ge 1`; batch size 1 only.
    max_new_tokens : int
        Exact number of tokens to generate, :math:`\\ge 1` (no end-of-sequence stopping).
    temperature : float, default 0
        0 for greedy (argmax); :math:`T > 0` samples from :math:`\\operatorname{softmax}(\\ell/T)`.
    generator : torch.Generator, optional
        Source of every random draw (on the model's device), for reproducible sampling.

    Returns
    -------
    new_ids : torch.LongTensor, shape (max_new_tokens,)
        The generated tokens, on the model's device.
    stats : AutoregressiveStats
        ``new_tokens``, ``prefill_time_s``, ``total_time_s``, ``tokens_per_s``.

    Examples
    --------
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    ...                   num_attention_heads=2, num_key_value_heads=2)
    >>> model = LlamaForCausalLM(cfg)
    >>> ids, stats = autoregressive_generate(model, torch.tensor([1, 2, 3]), max_new_tokens=5)
    >>> ids.shape, stats.new_tokens
    (torch.Size([5]), 5)
    """
    device = _device_of(model)
    prompt = _check_common(input_ids, max_new_tokens, temperature, generator, device)
    temperature = float(temperature)
    stats = AutoregressiveStats(temperature=temperature)
    out = torch.empty(max_new_tokens, dtype=torch.long, device=device)

    def pick(logits: torch.Tensor) -> torch.Tensor:  # (1, V) -> (1, 1), stays on the device
        if temperature == 0.0:
            return logits.argmax(dim=-1, keepdim=True)
        return _draw(_probs(logits, temperature), generator)

    with torch.inference_mode(), _eval_mode(model):
        run = runner_for(model)
        _sync(device)
        t0 = time.perf_counter()
        logits = run(prompt, keep_last=True)
        _sync(device)
        stats.prefill_time_s = time.perf_counter() - t0
        for i in range(max_new_tokens):
            token = pick(logits)
            out[i] = token[0, 0]
            if i + 1 < max_new_tokens:
                logits = run(token, keep_last=True)
        _sync(device)
        stats.total_time_s = time.perf_counter() - t0
    stats.new_tokens = max_new_tokens
    return out, stats


# --------------------------------------------------------------------------------------------------
# Speculative decoding
# --------------------------------------------------------------------------------------------------


def speculative_generate(
    target: torch.nn.Module,
    draft: torch.nn.Module,
    input_ids: torch.Tensor,
    gamma: int,
    max_new_tokens: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, SpeculativeStats]:
    r"""Speculative decoding with lookahead :math:`\gamma`, exact in distribution (Leviathan Alg. 1).

    Per iteration: :math:`k = \min(\gamma, \text{remaining} - 1)` draft forwards, one target forward
    over :math:`k + 1` positions, then :math:`n + 1` tokens are emitted where :math:`n` drafts were
    accepted with probability :math:`\min(1, p_i(x_i)/q_i(x_i))` each, followed by a token from
    :math:`\operatorname{norm}(\max(0, p_{n+1} - q_{n+1}))` (rejection) or :math:`p_{k+1}` (bonus).

    Parameters
    ----------
    target, draft : transformers causal LMs
        Same vocabulary (``config.vocab_size`` and logits width must match), same device.
    input_ids : torch.LongTensor, shape (T,) or (1, T)
        Prompt, :math:`T \ge 1`; batch size 1 only.
    gamma : int
        Lookahead :math:`\gamma \ge 1`: draft tokens proposed per iteration.
    max_new_tokens : int
        Exact number of tokens to generate, :math:`\ge 1` (no end-of-sequence stopping). Iterations
        near the end draft fewer tokens so that nothing is computed past this limit; they are
        flagged in ``stats.truncated``.
    temperature : float, default 0
        0 for greedy (output equals the target's greedy decoding token for token); :math:`T > 0`
        samples both models from :math:`\operatorname{softmax}(\ell / T)` and the output follows
        the target's distribution at :math:`T` exactly.
    generator : torch.Generator, optional
        Source of every random draw (draft samples, acceptance uniforms, corrected/bonus samples),
        on the models' device; the same seed gives the same tokens.

    Returns
    -------
    new_ids : torch.LongTensor, shape (max_new_tokens,)
        The generated tokens, on the models' device.
    stats : SpeculativeStats
        Exact counts (see the module docstring for the conventions) and timings.

    Raises
    ------
    ValueError
        On a vocabulary mismatch, models on different devices, ``gamma < 1``,
        ``max_new_tokens < 1``, ``temperature < 0``, a batch larger than 1 or an empty prompt.

    Notes
    -----
    KV-cache discipline: the target cache always holds every committed token except the last one,
    which is fed together with the drafts. The draft cache holds a prefix of the committed tokens;
    the rest (one token after a rejection; the last draft and the bonus token after full
    acceptance, since the draft never ran on its own last proposal) is fed at the start of the next
    drafting phase. Rejected positions are rolled back with ``DynamicCache.crop``; the prefix is
    never re-encoded. The only host-device synchronisation per iteration is reading :math:`n`
    (plus those around timed regions on CUDA).

    References
    ----------
    Leviathan, Kalman & Matias (2023), arXiv 2211.17192, Algorithm 1 and Appendix A.1.
    Chen et al. (2023), arXiv 2302.01318, Algorithm 2.

    Examples
    --------
    Greedy speculative decoding reproduces the target's greedy decoding:

    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> def tiny(seed):
    ...     torch.manual_seed(seed)
    ...     cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
    ...                       num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    ...     return LlamaForCausalLM(cfg)
    >>> target, draft = tiny(0), tiny(1)
    >>> prompt = torch.tensor([1, 2, 3])
    >>> spec, stats = speculative_generate(target, draft, prompt, gamma=4, max_new_tokens=12)
    >>> ref, _ = autoregressive_generate(target, prompt, max_new_tokens=12)
    >>> bool(torch.equal(spec, ref)), stats.new_tokens == stats.accepted + stats.iterations
    (True, True)
    """
    gamma, device = _check_pair(target, draft, gamma)
    prompt = _check_common(input_ids, max_new_tokens, temperature, generator, device)
    max_new_tokens = int(max_new_tokens)
    temperature = float(temperature)
    stats = SpeculativeStats(gamma=gamma, temperature=temperature)
    out = torch.empty(max_new_tokens, dtype=torch.long, device=device)

    with torch.inference_mode(), _eval_mode(target, draft):
        t_run, d_run = runner_for(target), runner_for(draft)
        # A restricted-head draft is drawn from in its head's classes (_DraftSpace: the same law).
        space = _DraftSpace(getattr(d_run, "vocab_map", None), device)
        _sync(device)
        t_start = time.perf_counter()
        # Prefill everything but the last prompt token: the target scores it together with the
        # first drafts, the draft starts its first drafting phase from it.
        if prompt.shape[1] > 1:
            t_run(prompt[:, :-1], keep_last=True)
            d_run(prompt[:, :-1], keep_last=True)
        last = prompt[:, -1:]  # (1, 1): last committed token, not yet in the target cache
        d_pending = last  # committed tokens not yet in the draft cache
        seq_len = prompt.shape[1]  # committed tokens (prompt + emitted)
        _sync(device)
        stats.prefill_time_s = time.perf_counter() - t_start
        vocab_checked = False
        pos = 0

        while pos < max_new_tokens:
            k = min(gamma, max_new_tokens - pos - 1)

            # ---- 1. draft phase: x_i ~ q_i, i = 1..k (the draft never runs on x_k) ----
            t0 = time.perf_counter()
            x, qs, draft_vocab = _draft_phase(d_run, d_pending, k, temperature, generator, space)
            _sync(device)
            t1 = time.perf_counter()

            # ---- 2. verify: one target forward over [last, x_1..x_k] -> p_1..p_{k+1} ----
            logits_p = t_run(torch.cat([last, x], dim=1), keep_last=False)  # (k+1, V)
            if not vocab_checked:
                if k and logits_p.shape[-1] != draft_vocab:
                    raise ValueError(
                        f"draft logits width ({draft_vocab}) must equal target logits "
                        f"width ({logits_p.shape[-1]}): the vocabularies differ"
                    )
                vocab_checked = k > 0
            x = x[0]
            n, next_token = _accept(logits_p, x, qs, k, temperature, generator, space)

            # ---- 3. commit n drafts + 1 token; roll both caches back to committed tokens ----
            out[pos : pos + n] = x[:n]
            out[pos + n] = next_token[0]
            next_token = next_token.view(1, 1)
            # target cache: everything but the new last token = seq_len + n positions
            t_run.crop_to(seq_len + n)
            if k == 0:
                d_pending = torch.cat([d_pending, next_token], dim=1)
            elif n < k:
                # the draft cache holds x_1..x_{k-1}; keep the accepted x_1..x_n
                d_run.crop_to(seq_len + n)
                d_pending = next_token
            else:
                # all accepted: the draft has seen x_1..x_{k-1} but not x_k
                d_pending = torch.cat([x[k - 1 :].view(1, 1), next_token], dim=1)
            last = next_token
            seq_len += n + 1
            pos += n + 1
            _sync(device)
            t2 = time.perf_counter()

            _record(stats, k, n, t1 - t0, t2 - t1)

        _sync(device)
        stats.total_time_s = time.perf_counter() - t_start
    stats.new_tokens = pos
    return out, stats


class _DraftSpace:
    r"""How the loop reads a draft's logits: over the full vocabulary, or over a restricted head's classes.

    A restricted-head draft (:mod:`sdsl_lib.measurement.distill`) has :math:`K` classes, the
    :math:`K - 1` kept ids and UNK, whose probability the :math:`n = V - K + 1` other ids share
    evenly. Its full-vocabulary law at temperature :math:`T`,
    :math:`q_T(x) \propto \exp(\ell(x) / T)` with :math:`\ell(x) = \ell_\text{UNK} - \log n`
    outside the head, is fixed by the :math:`K` class logits: the class law is
    :math:`\operatorname{softmax}(z)` with :math:`z_c = \ell_c / T` for a kept class and
    :math:`z_\text{UNK} = (\ell_\text{UNK} - \log n) / T + \log n`, and an UNK draw picks one of
    the :math:`n` ids uniformly. Drawing, scoring and taking the argmax in class space
    (:math:`K = 8{,}192` against :math:`V = 49{,}152` for the smollm2 drafts) is therefore the same
    law without a V-wide vector per drafted token; only a rejection needs :math:`q` over all
    :math:`V` ids (the residual), once per iteration. A full-vocabulary draft (no head map) is read
    as it is.

    Rows kept per drafted position are per-id probabilities in the space's classes: for the head,
    the UNK entry is one outside id's share, :math:`q(\text{UNK}) / n`.
    """

    def __init__(self, vocab_map, device: torch.device):
        self.head = vocab_map is not None
        if not self.head:
            return
        full, keep = vocab_map.full_vocab, torch.as_tensor(vocab_map.keep, dtype=torch.long)
        outside = torch.ones(full, dtype=torch.bool)
        outside[keep] = False
        self.vocab = full
        self.unk = vocab_map.unk
        self.to_small = vocab_map.to_small.to(device)
        self.outside_ids = outside.nonzero().view(-1).to(device)  # ascending
        n_out = self.outside_ids.numel()
        # The full argmax among tied outside ids is the lowest one, as torch.argmax over V would give.
        self.class_id = torch.cat([keep, self.outside_ids[:1].cpu()]).to(device)
        self.shift = torch.zeros(vocab_map.k, device=device)
        self.shift[self.unk] = -math.log(n_out)  # one outside id's logit
        self.log_n = torch.zeros(vocab_map.k, device=device)
        self.log_n[self.unk] = math.log(n_out)  # UNK's class weight is n outside ids
        self.per_id = torch.ones(vocab_map.k, device=device)
        self.per_id[self.unk] = 1.0 / n_out

    def width(self, logits: torch.Tensor) -> int:
        """The full vocabulary the draft speaks."""
        return self.vocab if self.head else logits.shape[-1]

    def greedy(self, logits: torch.Tensor) -> torch.Tensor:
        """(1, W) -> (1, 1): the argmax over the full vocabulary."""
        if not self.head:
            return logits.argmax(dim=-1, keepdim=True)
        return self.class_id[(logits + self.shift).argmax(dim=-1, keepdim=True)]

    def sample(self, logits: torch.Tensor, temperature: float, generator):
        """(1, W) -> a token (1, 1) from :math:`q_T` and the row of per-id probabilities (1, W)."""
        if not self.head:
            q = _probs(logits, temperature)
            return _draw(q, generator), q
        law = torch.softmax((logits + self.shift) / temperature + self.log_n, dim=-1)
        c = _draw(law, generator)  # (1, 1) class
        # Drawn every time, so the random stream does not depend on whether UNK came up.
        j = torch.randint(self.outside_ids.numel(), (1, 1), generator=generator, device=logits.device)
        token = torch.where(c == self.unk, self.outside_ids[j], self.class_id[c])
        return token, law * self.per_id

    def prob_of(self, rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:math:`q_i(x_i)` for rows (k, W) and drafts x (k,)."""
        return rows.gather(1, (self.to_small[x] if self.head else x).view(-1, 1))[:, 0]

    def full(self, row: torch.Tensor) -> torch.Tensor:
        """One row (W,) as the draft's law over the full vocabulary (V,)."""
        return row[self.to_small] if self.head else row


def _draft_phase(d_run, d_pending, k: int, temperature: float, generator, space: _DraftSpace):
    """Step 1: :math:`x_i \\sim q_i`, i = 1..k (the draft never runs on :math:`x_k`).

    Returns the drafts (1, k), their laws (k rows (1, W) in ``space``'s classes; empty when greedy)
    and the full vocabulary the draft speaks (None when k = 0).
    """
    drafts, qs = [], []
    inp = d_pending
    for _ in range(k):
        logits_q = d_run(inp, keep_last=True, expand=False)  # (1, W)
        if temperature == 0.0:
            token = space.greedy(logits_q)
        else:
            token, q = space.sample(logits_q, temperature, generator)
            qs.append(q)
        drafts.append(token)
        inp = token
    width = space.width(logits_q) if k else None
    x = torch.cat(drafts, dim=1) if k else d_pending.new_empty((1, 0))  # (1, k)
    return x, qs, width


def _accept(logits_p, x, qs, k: int, temperature: float, generator, space: _DraftSpace):
    """Step 3's decision: the number n of accepted drafts and the corrected or bonus token (shape (1,))."""
    if temperature == 0.0:
        # One-hot p and q: accept while argmax agree; the next token is p's argmax at n+1.
        p_arg = logits_p.argmax(dim=-1)  # (k+1,)
        accept = x == p_arg[:k]
        n = int(accept.cumprod(0).sum().item()) if k else 0
        return n, p_arg[n : n + 1]
    p = _probs(logits_p, temperature)  # (k+1, V)
    u = torch.rand(k, generator=generator, device=logits_p.device)
    n = 0
    if k:
        q = torch.cat(qs, dim=0)  # (k, W)
        # u < min(1, p/q)  <=>  u q < p  (q(x) > 0 since x was sampled from q)
        accept = u * space.prob_of(q, x) < p[:k].gather(1, x.view(-1, 1))[:, 0]
        n = int(accept.cumprod(0).sum().item())
    if n < k:
        residual = (p[n] - space.full(q[n])).clamp_min(0.0)
        # p == q to rounding leaves no residual mass; rejection then had probability
        # ~0, and sampling p keeps the output law.
        residual = torch.where(residual.sum() > 0, residual, p[n])
        return n, _draw(residual, generator)
    return n, _draw(p[k], generator)


def _record(stats: SpeculativeStats, k: int, n: int, draft_s: float, verify_s: float) -> None:
    """Add one iteration's counts and times to ``stats`` (App. B counts; see the module docstring)."""
    stats.draft_time_s += draft_s
    stats.verify_time_s += verify_s
    stats.iterations += 1
    stats.drafted += k
    stats.accepted += n
    stats.accepted_per_iteration.append(n)
    stats.drafted_per_iteration.append(k)
    stats.truncated.append(k < stats.gamma)
    stats.position_attempts[: min(n + 1, k)] += 1
    stats.position_accepts[:n] += 1
