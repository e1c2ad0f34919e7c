"""Induction heads, found two independent ways: head patching and an attention score.

The task. A sequence of ``n`` random tokens repeated twice, after one start token::

    [bos, x0 x1 ... x(n-1), x0 x1 ... x(n-1)]        positions 0, 1..n, n+1..2n

In the second copy the model can predict ``x[k+1]`` at ``x[k]`` only by *copying*: find the
earlier ``x[k]``, look one step on, and output the token there. An **induction head** does the
look-up: from the second ``x[k]`` it attends to the first ``x[k+1]`` and writes that token.

Two measures that share no computation:

* **Head patching** (:func:`head_patching`, causal). The *corrupted* run resamples the first copy
  (``[bos, y, x]`` with ``y`` disjoint from ``x``), so nothing can be copied. Into it we write one
  head's output ``z`` ``[d_head]`` (TransformerLens's ``hook_z``, :mod:`.heads`) from the clean
  run at every second-copy position, and measure how much the mean log p of the copy targets
  ``x[1..n-1]`` comes back: ``Δ`` ``[L, H]`` in nats per copied token. This is *denoising*
  ("which heads restore the copy"): a head that lifts the copy on its own carries it, whereas
  noising the clean run one head at a time would also flag heads the copy merely passes through
  and would show little for each of several redundant induction heads.
* **Induction score** (:func:`induction_scores`, observational): each head's attention
  probability from the second ``x[k]`` to the first ``x[k+1]`` (:func:`offset_scores` with
  ``offset=1``; other offsets say where a head looks instead), read from an eager forward pass
  with ``output_attentions``. Grouped-query models (SmolLM2: 9 query heads sharing 3 key/value
  heads) report one pattern per *query* head, which is what a head cell addresses.

The two top-``k`` sets are compared with :func:`overlap` against :func:`chance_overlap`, the
expected overlap of two random ``k``-subsets of ``L · H`` heads (``k² / (L · H)``).

Controls: **unrepeated** sequences ``[bos, x, w]`` (``w`` fresh tokens), corrupted alike to
``[bos, y, w]``: there is nothing to copy, so the named heads' patching effect and their
attention to "the token after the earlier occurrence" must vanish.

How the patching is computed. It is the engine's head sweep restricted to a span,
``Session.sweep_heads(kind="patch", positions="all", from_position=s)`` (:mod:`.head_sweep`): a
head's write at the second-copy positions ``s..P-1`` (``s = n + 1``) cannot change positions
``< s`` nor rows at or below its block, so the cone stepper (:class:`~.stepper.Stepper`) runs
only positions ``s..P-1`` from the head's block up, reading the corrupted run's keys and values
of the first copy, for every head at once (heads of block ``k`` join the batch at block ``k``,
their ``z`` replaced by a pre-hook on the output projection). The numbers equal
``Session.intervene(cells, "patch", site="head")`` with the cells ``(layer, head, p)`` for ``p``
in the second copy (tested), at a fraction of the cost of one trace per head. Shapes: ``ids``
``[N, P]``, scores and effects ``[N, L, H]`` (one row per sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import heads as hd
from .lecture_stats import Interval, t_interval
from .models import load_model
from .session import Session


# ---- sequences -----------------------------------------------------------------------------
@dataclass
class Sequences:
    """Token ids ``[N, P]`` (``P = 2n + 1``): ``repeated`` ``[bos, x, x]``, its ``corrupted``
    ``[bos, y, x]``; ``unrepeated`` ``[bos, x, w]`` and its corrupted ``[bos, y, w]``."""

    repeated: np.ndarray
    corrupted: np.ndarray
    unrepeated: np.ndarray
    unrepeated_corrupted: np.ndarray
    n: int

    @property
    def start(self) -> int:
        """First position of the second copy (``n + 1``)."""
        return self.n + 1


def make_sequences(n_seqs: int, n: int, lo: int, hi: int, bos: int, seed: int = 0) -> Sequences:
    """``n_seqs`` sequences of ``n`` distinct random tokens from ``lo..hi-1``; ``y`` and ``w``
    share no token with ``x`` (so a corrupted first copy holds nothing to copy)."""
    if hi - lo < 3 * n:
        raise ValueError(f"need at least {3 * n} token ids in {lo}..{hi - 1}")
    g = torch.Generator().manual_seed(seed)
    rows = {k: [] for k in ("rep", "cor", "unr", "ucor")}
    for _ in range(n_seqs):
        perm = (torch.randperm(hi - lo, generator=g)[: 3 * n] + lo).tolist()
        x, y, w = perm[:n], perm[n : 2 * n], perm[2 * n :]
        rows["rep"].append([bos, *x, *x])
        rows["cor"].append([bos, *y, *x])
        rows["unr"].append([bos, *x, *w])
        rows["ucor"].append([bos, *y, *w])
    a = {k: np.array(v, dtype=np.int64) for k, v in rows.items()}
    return Sequences(a["rep"], a["cor"], a["unr"], a["ucor"], n)


# ---- attention: the observational measure ----------------------------------------------------
@torch.no_grad()
def attention_probs(model, ids) -> torch.Tensor:
    """Attention probabilities ``[N, L, H, P, P]`` of every query head for ``ids`` ``[N, P]``,
    from one batched forward pass with eager attention (switched back afterwards)."""
    lm = load_model(model)
    hf = lm.hf
    with lm.lock:
        impl = getattr(hf.config, "_attn_implementation", None)
        try:
            if impl not in (None, "eager"):
                hf.set_attn_implementation("eager")
            out = hf(torch.as_tensor(np.asarray(ids), device=lm.device), output_attentions=True)
        finally:
            if impl not in (None, "eager"):
                hf.set_attn_implementation(impl)
    return torch.stack([a.float().cpu() for a in out.attentions], dim=1)


def offset_scores(probs: torch.Tensor, n: int, offset: int = 1) -> np.ndarray:
    """Attention ``[N, L, H]`` from the second copy's ``x[k]`` (position ``n + 1 + k``) to the
    first copy's ``x[k + offset]`` (position ``1 + k + offset``), averaged over the ``k`` where
    both exist (``0 <= k + offset < n``)."""
    ks = [k for k in range(n) if 0 <= k + offset < n]
    if not ks:
        raise ValueError(f"no query has a key at offset {offset} within a copy of {n} tokens")
    q = torch.tensor([n + 1 + k for k in ks])
    key = torch.tensor([1 + k + offset for k in ks])
    return probs[:, :, :, q, key].mean(-1).numpy()


def induction_scores(model, ids, n: int) -> np.ndarray:
    """The induction score ``[N, L, H]``: :func:`offset_scores` at offset 1."""
    return offset_scores(attention_probs(model, ids), n, 1)


# ---- patching: the causal measure ------------------------------------------------------------
@dataclass
class Patching:
    """Per sequence: ``delta`` ``[N, L, H]`` (Δ mean log p of the copy targets, NaN where a head
    was not patched), the receiving run's and the giving run's mean log p ``[N]``."""

    delta: np.ndarray
    received: np.ndarray
    given: np.ndarray


def head_patching(model, receive, give, start: int, units=None) -> Patching:
    """Write each head's ``z`` from the run of ``give`` into the run of ``receive`` (both
    ``[N, P]``) at positions ``start..P-1``, one head at a time; return :class:`Patching` with
    the change in the mean log p of tokens ``start+1..P-1`` (read at positions
    ``start..P-2``). ``units``: the ``(layer, head)`` pairs to patch (default all).

    One :meth:`Session.sweep_heads` per sequence (``kind="patch"``, ``positions="all"``,
    ``from_position=start``, summaries only) over the layers × heads the units touch; the
    metric is the mean of the atlas's per-position ``logprob_delta`` over ``start..P-2``."""
    lm = load_model(model)
    lay = hd.layout(lm)
    L, H = lm.n_layers, lay.n_heads
    units = sorted(units) if units is not None else [(k, h) for k in range(L) for h in range(H)]
    layers = sorted({k for k, _ in units})
    head_ids = sorted({h for _, h in units})
    idx = tuple(np.array(units).T)  # ([layer...], [head...])
    receive, give = np.asarray(receive), np.asarray(give)
    delta = np.full((len(receive), L, H), np.nan, np.float32)
    received, given = np.zeros(len(receive)), np.zeros(len(receive))
    for s, (r_ids, g_ids) in enumerate(zip(receive, give, strict=True)):
        sess = Session(lm, r_ids.tolist(), source=g_ids.tolist())
        tgt = torch.as_tensor(r_ids[start + 1 :])
        rows = torch.arange(len(tgt))
        received[s] = float(sess.clean_logprobs[start:-1][rows, tgt].mean())
        given[s] = float(torch.log_softmax(sess.source.logits, -1)[start:-1][rows, tgt].mean())
        atlas = sess.sweep_heads(
            kind="patch",
            positions="all",
            from_position=start,
            layers=layers,
            heads=head_ids,
            method="cone",
            keep_maps=False,
        )
        delta[s][idx] = atlas.logprob_delta[:, :, start:].mean(-1)[idx]  # [L, H] -> units
    return Patching(delta, received, given)


# ---- comparing the two -----------------------------------------------------------------------
def top_k(values, k: int) -> list[tuple[int, int]]:
    """The ``k`` heads ``(layer, head)`` with the largest ``values`` ``[L, H]`` (ties: lower
    index first), largest first."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(-v.ravel(), kind="stable")[:k]
    return [tuple(int(i) for i in np.unravel_index(j, v.shape)) for j in order]


def overlap(a, b) -> int:
    """How many heads two sets share."""
    return len(set(map(tuple, a)) & set(map(tuple, b)))


def chance_overlap(k: int, n_heads_total: int) -> float:
    """Expected overlap of two independent uniformly random ``k``-subsets of ``n`` heads:
    each of the ``k`` heads of one set is in the other with probability ``k / n``."""
    return k * k / n_heads_total


def overlap_p_value(observed: int, k: int, n_heads_total: int) -> float:
    """Probability that two random ``k``-subsets of ``n`` heads share ``observed`` or more
    (the hypergeometric tail): how surprising the overlap is if the measures were unrelated."""
    from math import comb

    n = n_heads_total
    tail = sum(comb(k, j) * comb(n - k, k - j) for j in range(observed, k + 1))
    return tail / comb(n, k)


def names(heads) -> list[str]:
    """``(layer, head)`` pairs as ``"layer.head"`` strings."""
    return [f"{k}.{h}" for k, h in heads]


def at(iv: Interval, heads) -> Interval:
    """An interval ``[L, H]`` restricted to ``heads`` (``[len(heads)]``)."""
    idx = tuple(np.array(list(zip(*heads, strict=True))))
    return Interval(np.asarray(iv.mean)[idx], np.asarray(iv.lo)[idx], np.asarray(iv.hi)[idx], iv.n)


# ---- one model, the whole case ---------------------------------------------------------------
@dataclass
class InductionCase:
    """Everything the lecture reports for one model (intervals over sequences, ``[L, H]``)."""

    name: str
    seqs: Sequences
    patch: Patching  # repeated sequences, every head
    score: np.ndarray  # [N, L, H] induction score, repeated
    control_score: np.ndarray  # [N, L, H] the same score on unrepeated sequences
    control_patch: Patching  # unrepeated sequences, the named heads only
    k: int
    offsets: dict[int, np.ndarray]  # offset -> [N, L, H] attention to the first x[k + offset]
    control_offsets: dict[int, np.ndarray]  # the same on unrepeated sequences

    @property
    def patch_iv(self) -> Interval:
        return t_interval(self.patch.delta)

    @property
    def score_iv(self) -> Interval:
        return t_interval(self.score)

    @property
    def by_patching(self) -> list[tuple[int, int]]:
        return top_k(self.patch.delta.mean(0), self.k)

    @property
    def by_attention(self) -> list[tuple[int, int]]:
        return top_k(self.score.mean(0), self.k)

    @property
    def n_heads_total(self) -> int:
        return int(np.prod(self.score.shape[1:]))


def run_case(
    model, *, n_seqs=20, n=8, lo, hi, bos, k=5, seed=0, name="", control_heads=None
) -> InductionCase:
    """Both measures on repeated sequences, and the controls on unrepeated ones (the control
    patches the union of both top-``k`` sets, or ``control_heads``)."""
    lm = load_model(model)
    seqs = make_sequences(n_seqs, n, lo, hi, bos, seed)
    patch = head_patching(lm, seqs.corrupted, seqs.repeated, seqs.start)
    probs = attention_probs(lm, np.concatenate([seqs.repeated, seqs.unrepeated]))
    score, control_score = np.split(offset_scores(probs, n, 1), 2)
    offsets = {d: offset_scores(probs[:n_seqs], n, d) for d in range(-2, 6)}
    c_offsets = {d: offset_scores(probs[n_seqs:], n, d) for d in offsets}
    case = InductionCase(
        name or lm.name, seqs, patch, score, control_score, None, k, offsets, c_offsets
    )
    heads = control_heads or sorted(set(case.by_patching) | set(case.by_attention))
    case.control_patch = head_patching(
        lm, seqs.unrepeated_corrupted, seqs.unrepeated, seqs.start, heads
    )
    return case
