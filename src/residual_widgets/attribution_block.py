"""Attribution patching with the AtP* correction (``attribute(..., correction="block")``):
the first blocks after each cell computed exactly with the stepper, the rest linearised.

AtP* (Kramár et al. 2024). Its attention-saturation fix recomputes a softmax exactly where an
attention node's own query or key changes. ``attn_out``/``mlp_out`` cells are outputs (their
change meets softmaxes only as inputs to later blocks, which AtP* also linearises), so it does
not apply to them as such; a residual cell ``(n, i)`` *is* block ``n``'s query and key input at
``i``, so it applies there. ``correction="block"`` (local sessions) implements it in general
form with the stepper: the rest of the block the change is made in and the next ``depth`` blocks
(default 1; the first attention to read the change) run exactly — softmax, norms and MLP — on
the cell's positions with the clean prefix keys/values, and only the rest is linearised; cells
whose exact part reaches the top row are exact. With ``depth = L`` it is the exact sweep
(tested). Measured on SmolLM2 (33-token IOI pair): it helps where the change is moderate —
patch attn_out logit diff r 0.86 → 0.94, zero mlp_out Δ log p r 0.08 → 0.61, mean attn_out
Δ log p r 0.41 → 0.72 — but not whole residual vectors: zero resid stays at ρ 0.02 → 0.14
(logit diff), and on a 23-token pair it needed 16 of 30 blocks exact to reach ρ 0.87 (Pearson
0.36), at about the cone's own block work. Cost at load ≈ 3: 2.3–3.8 s for zero (7–13× faster
than the sweep), 0.8 s for patch (cells that write the clean value are skipped).
On the 3-layer tiny models, where one block is a third of the depth, it lifts zero resid from
r −0.54 to 0.57 (GPT-2). GradDrop, AtP*'s other fix, turns L extra backward passes into
unsigned upper bounds for ranking by magnitude; this module reports signed values to compare
with the exact sweep, so it is not implemented. No correction here makes zero/mean resid
usable: show the exact sweep for those.
"""

from __future__ import annotations

import numpy as np
import torch

from . import grid
from .cone import layer_with_write

#: cells stepped together in one block call of the correction (they share the start of the
#: call's position range, so a chunk wastes at most CHUNK − 1 positions per cell); cells whose
#: intervention writes the clean value are skipped (exactly 0)
CHUNK = 8


def block_corrected(sess, kind, site, pair, grads, depth: int = 1):
    """``correction="block"``: for every cell, compute exactly — with the stepper, on the cell's
    positions, reading the clean prefix keys/values — the rest of the block the change is made
    in (an ``attn_out`` write feeds that block's MLP) and then the next ``depth`` blocks, the
    first of which is the first attention to read the change (block ``n`` for residual row
    ``n``); then linearise from the residual row ``e`` after them:
    ``Σ_{t ≥ i} (h'_e[t] − h_e[t]) · ∂M/∂h_e[t]``. Where ``e`` is the top row, the final norm and
    unembedding are applied exactly instead and the value is exact. Returns ``ld``/``lp``
    ``[S, P]`` and the ``exact`` mask ``[S, P]``."""
    from .stepper import UnsupportedStepping

    try:
        stepper = sess.stepper()
    except UnsupportedStepping as e:
        raise ValueError(
            f"correction='block' steps single blocks, and this model's blocks "
            f"cannot be stepped ({e}); use correction=None"
        ) from e
    lm, L, P = sess.model, sess.n_layers, sess.n_positions
    S = grid.n_source_rows(site, L)
    clean = sess.clean.resid
    cells = [(n, i) for n in range(S) for i in range(P)]
    vals = sess.values_for(cells, kind, site).reshape(S, P, -1).float()
    ld, lp = torch.zeros(S, P), torch.zeros(S, P)
    exact = np.zeros((S, P), bool)
    same = (vals == sess.site_acts(site)).all(-1)  # writes the clean value: exactly 0
    for n in range(S):
        e = grid.entry_row(n, site)  # the row the change first shows in
        live = [i for i in range(P) if not same[n, i]]
        for c in range(0, len(live), CHUNK):
            pos = live[c : c + CHUNK]
            s = pos[0]
            A, rel = len(pos), torch.tensor([i - s for i in pos])
            h = clean[e, s:].expand(A, -1, -1).clone()  # [A, q, d], row e, positions s..
            if site == "resid":
                h[torch.arange(A), rel] = vals[n, pos]
                last = e  # the first block reading it: e
            elif site == "attn_out":
                h = clean[n, s:].expand(A, -1, -1).clone()  # the rest of block n: its MLP
                writes = [(b, int(rel[b]), vals[n, i]) for b, i in enumerate(pos)]
                h = layer_with_write(stepper, lm, site, n, h, s, writes)
                last = e  # row n + 1; block n + 1 reads it
            else:  # mlp_out: row n + 1 gets a' − a
                h[torch.arange(A), rel] += vals[n, pos] - sess.site_acts(site)[n, pos]
                last = e
            for _ in range(depth):
                if last < L:
                    h = stepper.layer(last, h, s)
                    last += 1
            keep = (torch.arange(P - s)[None, :] >= rel[:, None]).float()[..., None]
            delta = (h - clean[last, s:]) * keep  # exactly 0 before each cell
            if last == L:
                d_ld, d_lp = _exact_top(sess, h, s, rel, pair)
                exact[n, pos] = True
            else:
                d_ld = (delta * grads["g_ld"][last, s:]).sum((-1, -2))
                d_lp = (delta * grads["g_lp"][last, s:]).sum((-1, -2))
            ld[n, pos], lp[n, pos] = d_ld, d_lp
    return ld, lp, exact | same.numpy()


def _exact_top(sess, final, start, rel, pair):
    """Exact change of both metrics for top-row states ``final`` ``[A, q, d]`` (positions
    ``start..P-1``; element ``b`` differs from the clean run from ``rel[b]`` on)."""
    ids = sess.ids
    logits = sess.model.unembed(final).float()  # [A, q, V]
    lsm = torch.log_softmax(logits, dim=-1)
    clean_lp = sess.clean_logprobs[start:]
    A, q = final.shape[:2]
    tgt = torch.tensor(list(ids[start + 1 :]), dtype=torch.long)  # next tokens of start..P-2
    t = torch.arange(q - 1)
    d = lsm[:, t, tgt] - clean_lp[t, tgt]  # [A, q - 1]
    d = d * (t[None, :] >= rel[:, None])  # exactly 0 before each cell
    d_lp = d.sum(-1)
    d_ld = torch.zeros(A)
    if pair is not None:
        g, b = pair
        d_ld = (lsm[:, -1, g] - lsm[:, -1, b]) - (clean_lp[-1, g] - clean_lp[-1, b])
    return d_ld, d_lp
