"""The cone sweep: every cell of one source position, stepped through the blocks together.

An intervention at residual cell ``(n, i)`` leaves rows below ``n`` and positions before ``i``
exactly as they were. So for one source position ``i``, :func:`cone_group` starts a batch with
the clean residual of positions ``i..P-1``, and at each row ``k`` the cells whose intervention
enters there join it (their value written at relative position 0, the other positions clean):

    row k+1   [cell (0,i)] [cell (1,i)] ... [cell (k,i)]     ← block k on all of them
    row k     [cell (0,i)] [cell (1,i)] ... [cell (k,i) joins]

Each block runs on positions ``i..P-1`` only and reads the clean keys/values of positions ``< i``
through the stepper's prefix cache (:mod:`.stepper`). At the top only those positions are
unembedded, in chunks that stay within the working-memory budget, and each cell's numbers go
into the :class:`~.effects.Atlas` with :meth:`Atlas.store`. The work is the cone
``Σ (L - n)(P - i)`` layer-token evaluations, about a quarter of one forward per cell.

For ``attn_out``/``mlp_out`` cells the write happens *inside* block ``k`` (a forward hook replaces
the sub-module's output at relative position 0); the other positions of row ``k + 1`` are
provably unchanged and copied from the clean run.

A sweep holds the model lock for one :func:`row_chunks` slice at a time (``LOCK_SLICE`` units of
work), so a click that arrives during a long sweep waits about a second, not a whole position.

Shapes: ``states [A, q, d_model]`` for ``A`` cells and ``q = P - i`` positions; maps
``[A, L + 1, P]``.
"""

from __future__ import annotations

import numpy as np
import torch

from . import grid, metrics
from .effects import Atlas
from .models import _get
from .stepper import Stepper

#: cone work (block-applications × positions) done per hold of the model lock: a click during a
#: sweep of a long prompt waits for one such slice (about 2 s for SmolLM2 on 2 CPU cores), not
#: for a whole position's rows
LOCK_SLICE = 16384


def row_chunks(rows, L: int, q: int, limit: int | None = None) -> list[list[int]]:
    """Split ascending ``rows`` of one source position (``q`` positions from it to the end) into
    consecutive runs whose cone work ``Σ (L - n + 1) · q`` stays within ``limit``."""
    limit = LOCK_SLICE if limit is None else limit
    chunks, cur, work = [], [], 0
    for n in rows:
        w = (L - n + 1) * q
        if cur and work + w > limit:
            chunks.append(cur)
            cur, work = [], 0
        cur.append(n)
        work += w
    return chunks + [cur] if cur else chunks


def cone_group(sess, stepper: Stepper, atlas: Atlas, cells, kind, site, pair, work_budget):
    """All cells ``(n, i)`` of one position ``i``: step them through the blocks together."""
    i = cells[0][1]
    values = sess.values_for(cells, kind, site)  # [n_cells, d]
    site_clean = sess.site_acts(site)
    live = []
    for c, v in zip(cells, values, strict=True):
        if torch.equal(v, site_clean[c[0], c[1]]):
            atlas.store_unchanged(c)  # writes the clean value: no effect
        else:
            live.append((c[0], v))
    if not live:
        return
    states, maps = step_cells(sess, stepper, live, i, site)
    _finish(sess, atlas, [(n, i) for n, _ in live], site, states, maps, pair, work_budget)


def step_cells(sess, stepper: Stepper, live, i: int, site: str, on_row=None):
    """Step single-cell writes ``live = [(row, value [d]), ...]`` (rows ascending; each entry is
    its own intervention) at position ``i`` through the blocks together: each joins the batch at
    its row. Returns ``(states [A, q, d], maps [A, L + 1, P])``: the top row of positions
    ``i..P-1`` and the residual-change maps. ``on_row(k, states)`` (if given) sees row ``k`` of
    the ``len(states)`` writes that have joined by then (used by batched transplants)."""
    lm, L, P = sess.model, sess.n_layers, sess.n_positions
    clean = sess.clean.resid  # [R, P, d]
    join = [n for n, _ in live]  # block where each cell enters
    maps = np.zeros((len(live), L + 1, P), np.float32)
    states = torch.empty(0, P - i, clean.shape[-1])
    for k in range(min(join), L + 1):
        fresh = [b for b in range(len(live)) if join[b] == k]  # contiguous, at the end
        if site == "resid" and fresh:
            add = clean[k, i:].expand(len(fresh), -1, -1).clone()
            add[:, 0] = torch.stack([live[b][1] for b in fresh])
            states = torch.cat([states, add])
            maps[fresh, k, i] = metrics.resid_delta(add[:, 0], clean[k, i]).numpy()
        if on_row is not None:
            on_row(k, states)
        if k == L:
            break
        if site != "resid" and fresh:
            states = torch.cat([states, clean[k, i:].expand(len(fresh), -1, -1).clone()])
            writes = [(b, 0, live[b][1]) for b in fresh]
            out = layer_with_write(stepper, lm, site, k, states, i, writes)
            out[fresh, 1:] = clean[k + 1, i + 1 :]  # provably unchanged: exact
        else:
            out = stepper.layer(k, states, i) if len(states) else states
        states = out
        if len(states):
            maps[: len(states), k + 1, i:] = metrics.resid_delta(states, clean[k + 1, i:]).numpy()
    return states, maps


def layer_with_write(stepper, lm, site, k, states, start, writes):
    """Run block ``k`` on ``states`` ``[A, q, d]`` (positions ``start..P-1``) with the attention or
    MLP output replaced where ``writes`` says: ``(batch index, relative position, value [d])``."""
    b_idx = torch.tensor([b for b, _, _ in writes])
    q_idx = torch.tensor([q for _, q, _ in writes])
    vals = torch.stack([v for _, _, v in writes])

    def hook(mod, args, out):
        t = out[0] if isinstance(out, tuple) else out
        t = t.clone()
        t[b_idx, q_idx] = vals.to(t.dtype)
        return (t, *out[1:]) if isinstance(out, tuple) else t

    module = _get(lm.hf, lm.write_path(site, k))
    h = module.register_forward_hook(hook)
    try:
        return stepper.layer(k, states, start)
    finally:
        h.remove()


def _finish(sess, atlas, cells, site, final, maps, pair, work_budget):
    """Unembed ``final`` ``[A, q, d]`` and fill the atlas for residual/block-write ``cells``."""
    L, P = sess.n_layers, sess.n_positions
    reach = [grid.reachable_mask([c], L, P, site)[L, c[1] :] for c in cells]
    finish(sess, atlas, cells, reach, cells[0][1], final, maps, pair, work_budget)


def finish(sess, atlas, keys, reach, i, final, maps, pair, work_budget):
    """Unembed ``final`` ``[A, q, d]`` (positions ``i..P-1`` of the top row) in chunks and store
    each source's numbers in ``atlas`` under ``keys[a]``; ``reach[a]`` ``[q]`` (bool) says which
    of those positions lie in source ``a``'s cone. Shared by the residual and the head sweep.

    Positions outside a source's cone (a top-row cell, or the last block's write, reaches only
    its own position) are exactly clean, but unembedding them again would give float noise
    (~1e-6) against the clean run's logits: their KL and Δlog p are set to exact zeros and, when
    the last position is among them, the logit difference to the clean value."""
    lm = sess.model
    clean_lp = sess.clean_logprobs[i:]  # [q, V]
    neg_ent = (clean_lp.exp() * clean_lp).sum(-1)
    q, V = clean_lp.shape
    nxt = torch.tensor(sess.ids[i + 1 :], dtype=torch.long)  # targets of positions i..P-2
    old = clean_lp[torch.arange(len(nxt)), nxt]
    chunk = max(1, int(work_budget // (4 * q * V * 3)))
    for a0 in range(0, len(keys), chunk):
        logits = lm.unembed(final[a0 : a0 + chunk])  # [a, q, V]
        lse = metrics.logsumexp_rows(logits)  # [a, q]
        kl = metrics.kl_from_logits_fast(clean_lp, neg_ent, logits, lse)
        for b in range(logits.shape[0]):
            a = a0 + b
            out = torch.as_tensor(np.asarray(reach[a], dtype=bool))  # [q]
            new = logits[b, torch.arange(len(nxt)), nxt] - lse[b, : len(nxt)]
            ld = None
            if pair is not None:
                ld = (
                    float(logits[b, -1, pair[0]] - logits[b, -1, pair[1]])
                    if out[-1]
                    else atlas.logit_diff_clean
                )
            atlas.store(
                keys[a],
                kl=torch.where(out, kl[b], 0.0).numpy(),
                logprob_delta=torch.where(out[:-1], new - old, 0.0).numpy(),
                resid_delta=maps[a],
                logit_diff=ld,
                start=i,
            )
