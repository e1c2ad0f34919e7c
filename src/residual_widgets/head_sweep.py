"""Head sweep: intervene on every attention head ``(layer, head, pos)`` one at a time.

TransformerLens's ``get_act_patch_attn_head_out_by_pos`` runs one full forward pass per cell
(``L · H · P`` of them). This sweep computes the same numbers with the causal-prefix reuse of
the residual sweep (:mod:`.cone`, :mod:`.stepper`): a write into head ``h``'s ``z`` at position
``i`` in block ``k`` cannot change anything below row ``k + 1`` or before position ``i``. So for
one position ``i`` every head cell of every layer is stepped through the blocks in one batch on
positions ``i..P-1`` only, reading the clean keys/values of positions ``< i``:

    row k+1   [(0,·,i) × H] ... [(k,·,i) × H]      ← block k on all of them
    block k   the H cells (k, h, i) join: clean row k, z[h] at relative position 0 replaced

A forward pre-hook on block ``k``'s output projection (:mod:`.heads`) writes each joining cell's
value into its own head's slice of ``z``. At row ``k + 1`` only position ``i`` of a joining cell
can differ (the block's other positions read clean keys and values), so block ``k`` runs the
joining cells at position ``i`` alone (``Stepper.layer(..., stop=i + 1)``) and the other
positions are copied from the clean run, exactly. Only positions ``i..P-1`` are unembedded at
the top.

``positions="all"`` is TransformerLens's ``get_act_patch_attn_head_out_all_pos``: head ``h`` of
block ``k`` replaced at every position at once (one source per ``(layer, head)``, stepped from
position 0 and block ``k``). ``from_position=s`` restricts that to a span: head ``h`` replaced at
positions ``s..P-1`` at once (e.g. the second copy of a repeated sequence). Positions ``< s`` are
then exactly clean, so every source is stepped on positions ``s..P-1`` only, from block ``k`` up,
reading the clean keys/values of positions ``< s`` (the cone reuse, with ``i = s``).

Results go into a :class:`HeadAtlas`, an :class:`~.effects.Atlas` whose per-source arrays lead
with ``[L, H, P]`` (``[L, H]`` for ``positions="all"``) where the residual atlas has ``[S, P]``.
The maps obey the residual sweep's memory guard (:func:`.sweep.choose_storage`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import grid, heads, metrics
from .cone import LOCK_SLICE, finish
from .effects import Atlas
from .models import _get
from .stepper import UnsupportedStepping


@dataclass
class HeadAtlas(Atlas):
    """Every head cell's downstream effect (:meth:`Session.sweep_heads`, or ``sweep(site=
    "head")``). Per source ``(layer, head, pos)`` — ``(layer, head)`` when ``all_positions``:

    * ``resid_delta`` ``[L, H, P, R, P]`` (``[L, H, R, P]``), or ``None`` (``storage="summary"``);
    * ``kl`` ``[L, H, P, P]`` (``[L, H, P]``), ``total_kl`` ``[L, H, P]`` (``[L, H]``);
    * ``logprob_delta`` ``[L, H, P, P - 1]``; ``logit_diff`` and ``done`` ``[L, H, P]``.

    ``from_position`` (``all_positions`` only): the first position each head was replaced at
    (``0``: every position); the per-position arrays are exactly zero before it.
    """

    n_heads: int = 0
    all_positions: bool = False
    from_position: int = 0

    def store(
        self, cell, *, kl, logprob_delta, resid_delta=None, logit_diff=None, start: int = 0
    ) -> None:
        """File source ``cell`` = ``(layer, head, pos)`` (``(layer, head)`` for all positions);
        ``kl``/``logprob_delta`` may cover positions ``start..`` only (the rest are zero)."""
        c = tuple(cell)
        self.kl[c + (slice(start, None),)] = kl
        self.logprob_delta[c + (slice(start, None),)] = logprob_delta
        if self.resid_delta is not None and resid_delta is not None:
            self.resid_delta[c] = resid_delta
        if self.logit_diff is not None:
            self.logit_diff[c] = logit_diff
        self.done[c] = True

    def store_unchanged(self, cell) -> None:
        self.done[tuple(cell)] = True
        if self.logit_diff is not None:
            self.logit_diff[tuple(cell)] = self.logit_diff_clean

    @property
    def n_layers(self) -> int:
        return self.done.shape[0]

    def figure(self, scale: str = "linear", which: str | None = None, layer: int = -1):
        """Plotly heatmap of the overview: one row per ``(layer, head)``, positions across (one
        column per head for ``all_positions``); ``which`` defaults to the logit difference when
        the sweep has one, else the total KL (:func:`.overview.head_figure`)."""
        from .overview import head_figure

        if which is None:
            which = "logit_diff" if self.logit_diff is not None else "total_kl"
        return head_figure(self, which, scale=scale, layer=layer)


def run_head_sweep(
    sess,
    *,
    kind="zero",
    logit_diff=None,
    layers=None,
    heads=None,
    positions=None,
    progress=None,
    cancel=None,
    method="auto",
    keep_maps="auto",
    memory_budget=None,
    from_position=0,
) -> HeadAtlas:
    """Sweep head cells: ``layers`` × ``heads`` × ``positions`` (default all; ``positions="all"``
    for each head at every position at once, or at positions ``from_position..P-1`` at once when
    ``from_position > 0``). ``method``: ``"cone"`` (the stepper, local CPU),
    ``"loop"`` (one trace per cell, any session), ``"auto"`` (cone where it applies, else loop).
    The other options are :meth:`Session.sweep`'s."""
    from . import head_click as hc
    from . import heads as hd
    from .sweep import (
        SlowPathWarning,
        SweepProgress,
        _subset,
        available_memory,
        choose_storage,
        slow_path_message,
    )

    grid.check_kind(kind)
    if kind in ("set", "knockout"):
        raise ValueError(f"kind={kind!r}: head sweeps take zero, mean, noise, patch or resample")
    if kind in ("patch", "resample") and sess.source is None:
        raise ValueError(f"kind={kind!r} needs a source prompt: Session(model, prompt, source=...)")
    if method not in ("auto", "cone", "loop"):
        raise ValueError(
            f"unknown method {method!r} for a head sweep; use 'auto', 'cone' or 'loop'"
        )
    if keep_maps not in (True, False, "auto"):
        raise ValueError(f"keep_maps must be True, False or 'auto', got {keep_maps!r}")
    lay = hd.layout(sess.model)
    L, H, R, P = sess.n_layers, lay.n_heads, sess.n_rows, sess.n_positions
    all_pos = isinstance(positions, str)
    if all_pos and positions != "all":
        raise ValueError(f"positions must be 'all', None or a subset of 0..{P - 1}")
    if from_position and not all_pos:
        raise ValueError("from_position needs positions='all' (each head over a span at once)")
    if isinstance(from_position, bool) or not 0 <= int(from_position) < P:
        raise ValueError(f"from_position must be in 0..{P - 1}, got {from_position!r}")
    from_position = int(from_position)
    layers = _subset(layers, L, "layers")
    head_ids = _subset(heads, H, "heads")
    pos_list = [from_position] if all_pos else _subset(positions, P, "positions")
    pair = sess.token_pair(logit_diff) if logit_diff is not None else sess.default_pair
    budget = memory_budget if memory_budget is not None else available_memory() // 2
    # sources: L·H·P (by position) or L·H (all positions), counted as S·P for the guard
    storage = choose_storage(
        L * H if not all_pos else math.ceil(L * H / P), R, P, budget, keep_maps
    )
    map_dtype = {"float32": np.float32, "float16": np.float16}.get(storage)
    lead = (L, H) if all_pos else (L, H, P)
    atlas = HeadAtlas(
        kind=kind,
        site=grid.HEAD_SITE,
        tokens=sess.token_strings,
        resid_delta=np.zeros((*lead, R, P), map_dtype) if map_dtype else None,
        kl=np.zeros((*lead, P), np.float32),
        logprob_delta=np.zeros((*lead, max(P - 1, 0)), np.float32),
        done=np.zeros(lead, bool),
        logit_diff=np.zeros(lead, np.float32) if pair is not None else None,
        logit_diff_clean=(
            float(metrics.logit_diff(sess.clean_logprobs[-1], pair)) if pair is not None else None
        ),
        storage=storage,
        n_heads=H,
        all_positions=all_pos,
        from_position=from_position,
    )
    stepper = None
    if method == "cone" and sess.remote is not None:
        raise ValueError("method='cone' runs locally; a remote session sweeps heads with 'loop'")
    if method == "cone" or (
        method == "auto" and sess.remote is None and sess.model.device.type == "cpu"
    ):
        try:
            stepper = sess.stepper()
        except UnsupportedStepping as e:
            if method == "cone":
                raise
            import warnings

            atlas.slow_path = slow_path_message(str(e))
            warnings.warn(atlas.slow_path, SlowPathWarning, stacklevel=3)
    atlas.method = "cone" if stepper else "loop"
    work_budget = max(64 << 20, min(budget // 4, 1 << 30))
    total = len(layers) * len(head_ids) * len(pos_list)
    done = 0
    for i in pos_list:
        units = [(k, h) for k in layers for h in head_ids]
        q = P - i
        for chunk in _chunks(units, L, q):
            if cancel is not None and cancel.is_set():
                break
            if stepper is None:
                for k, h in chunk:
                    cells = [(k, h, p) for p in range(i, P)] if all_pos else [(k, h, i)]
                    eff = hc.intervene(sess, cells, kind, logit_diff=pair)
                    atlas.store_effect((k, h) if all_pos else (k, h, i), eff)
            else:
                with sess.lock, torch.no_grad():
                    _cone_heads(sess, stepper, atlas, chunk, i, all_pos, kind, pair, work_budget)
            done += len(chunk)
            if progress is not None:
                progress(SweepProgress(done=done, total=total, position=i, atlas=atlas))
    sel = np.ix_(layers, head_ids) if all_pos else np.ix_(layers, head_ids, pos_list)
    atlas.complete = bool(atlas.done[sel].all())
    return atlas


def _chunks(units, L: int, q: int, limit: int = LOCK_SLICE) -> list[list]:
    """Split ``(layer, head)`` units (ascending layers) into runs of cone work ≤ ``limit``."""
    out, cur, work = [], [], 0
    for k, h in units:
        w = (L - k) * q
        if cur and work + w > limit:
            out.append(cur)
            cur, work = [], 0
        cur.append((k, h))
        work += w
    return out + [cur] if cur else out


def _cone_heads(sess, stepper, atlas, units, i, all_pos, kind, pair, work_budget):
    """Step the head cells ``units`` (``(layer, head)`` at position ``i``, or at every position
    ``i..P-1`` with ``all_pos``) through the blocks together and file their results."""
    lm, L, P = sess.model, sess.n_layers, sess.n_positions
    lay = heads.layout(lm)
    clean = sess.clean.resid  # [R, P, d]
    z_clean = heads.head_acts(sess)  # [L, P, H, dh]
    span = range(i, P) if all_pos else [i]
    cells = [(k, h, p) for k, h in units for p in span]
    vals = heads.values_for(sess, cells, kind).view(len(units), len(span), lay.d_head)
    live, live_vals = [], []
    for u, (k, h) in enumerate(units):
        key = (k, h) if all_pos else (k, h, i)
        if torch.equal(vals[u], z_clean[k, list(span), h]):
            atlas.store_unchanged(key)  # writes the clean value: no effect
        else:
            live.append((k, h))
            live_vals.append(vals[u])
    if not live:
        return
    maps = np.zeros((len(live), L + 1, P), np.float32)
    states = torch.empty(0, P - i, clean.shape[-1])
    for k in range(live[0][0], L):
        fresh = [b for b, (kk, _) in enumerate(live) if kk == k]  # contiguous, at the end
        if fresh and all_pos:
            states = torch.cat([states, clean[k, i:].expand(len(fresh), -1, -1).clone()])
            writes = [(b, live[b][1], live_vals[b]) for b in fresh]
            out = _layer_with_z(stepper, lm, lay, k, states, i, writes)
        elif fresh:  # the joining cells: block k at position i alone, the rest provably clean
            writes = [(j, live[b][1], live_vals[b]) for j, b in enumerate(fresh)]
            first = clean[k, i : i + 1].expand(len(fresh), -1, -1).clone()
            new = clean[k + 1, i:].expand(len(fresh), -1, -1).clone()
            new[:, :1] = _layer_with_z(stepper, lm, lay, k, first, i, writes, stop=i + 1)
            out = torch.cat([stepper.layer(k, states, i), new]) if len(states) else new
        else:
            out = stepper.layer(k, states, i)
        states = out
        maps[: len(states), k + 1, i:] = metrics.resid_delta(states, clean[k + 1, i:]).numpy()
    keys = [(k, h) if all_pos else (k, h, i) for k, h in live]
    L, P = sess.n_layers, sess.n_positions
    reach = [
        grid.reachable_mask([(k, h, p) for p in span], L, P, grid.HEAD_SITE)[L, i:] for k, h in live
    ]
    finish(sess, atlas, keys, reach, i, states, maps, pair, work_budget)


def _layer_with_z(stepper, lm, lay, k, states, start, writes, stop=None):
    """Run block ``k`` on ``states`` ``[A, q, d]`` (positions ``start..stop-1``) with head
    slices of ``z`` replaced: ``writes`` = ``(batch index, head, value [q_w, d_head])``, ``q_w``
    = 1 (relative position 0) or ``q`` (every position)."""
    b_idx = torch.tensor([b for b, _, _ in writes])
    h_idx = torch.tensor([h for _, h, _ in writes])
    vals = torch.stack([v for _, _, v in writes])  # [W, q_w, dh]
    qw = vals.shape[1]

    def pre(mod, args):
        z = args[0].clone()
        zv = z.view(z.shape[0], z.shape[1], lay.n_heads, lay.d_head)
        zv[b_idx, :qw, h_idx] = vals.to(z.dtype)
        return (z, *args[1:])

    hook = _get(lm.hf, lay.paths[k]).register_forward_pre_hook(pre)
    try:
        return stepper.layer(k, states, start, stop=stop)
    finally:
        hook.remove()
