"""Attention-edge knockout: stop later positions from *reading* position i, leave i intact.

Zero-ablating the residual at ``(n, i)`` mixes two things: what position ``i`` computes for its
own next-token prediction, and what later positions read from it through attention. A knockout
separates them. Knocking out ``(n, i)`` removes the attention edges from every later position
``j > i`` to key ``i`` in blocks ``n..L-1`` (their attention renormalises over the other keys);
position ``i`` keeps attending to itself, so its own residuals and prediction are unchanged.

``blocks`` narrows it to chosen blocks: the edges to key ``i`` are removed only in the blocks
``k`` of ``blocks`` with ``k ≥ n`` (``Session.intervene(cells, kind="knockout", blocks=[1])``
removes block 1's reads of ``i`` and leaves block 2's). That is how a circuit is tested hop by
hop: knock out the first hop's edge (block 0) and keep the second's, or the other way round.

It runs through the stepper (:mod:`.stepper`): the blocks from the first knocked-out block up are
re-run on positions ``≥ i`` with the clean keys/values of earlier positions and an attention mask
with those edges removed. Cells the knockout cannot reach (rows up to the first knocked-out
block's input, positions ``≤ i``) are copied from the clean run, so they are exactly unchanged.
"""

from __future__ import annotations

import torch

from . import grid
from .runs import RunRecord


def knockout_blocks_of(cells: list[grid.Cell], n_layers: int, blocks=None) -> list[set[int]]:
    """For each cell ``(n, i)``: the blocks whose edges to key ``i`` are removed — ``n..L-1``,
    or those of ``blocks`` that are ``≥ n``. Raises ``ValueError`` for a block outside
    ``0..L-1`` or a cell that ``blocks`` leaves with no block to knock out."""
    if blocks is None:
        return [set(range(n, n_layers)) for n, _ in cells]
    chosen = set()
    for b in blocks:
        if not grid._is_int(b) or not 0 <= int(b) < n_layers:
            raise ValueError(f"blocks must be integers in 0..{n_layers - 1}, got {b!r}")
        chosen.add(int(b))
    out = []
    for n, i in cells:
        mine = {b for b in chosen if b >= n}
        if not mine:
            raise ValueError(
                f"blocks {sorted(chosen)} has no block ≥ {n} for the knockout cell ({n}, {i}) "
                f"(a cell (n, i) knocks out edges from block n up)"
            )
        out.append(mine)
    return out


def acting_cells(cells: list[grid.Cell], n_layers: int, blocks=None) -> list[grid.Cell]:
    """The cells as they act: ``(first knocked-out block, position)`` — what
    :func:`grid.reachable_mask` needs to bound the cells a knockout can change."""
    per_cell = knockout_blocks_of(cells, n_layers, blocks)
    return [(min(bs), i) for bs, (_, i) in zip(per_cell, cells, strict=True)]


@torch.no_grad()
def knockout_run(sess, cells: list[grid.Cell], blocks=None) -> RunRecord:
    """The run of ``sess``'s prompt with the attention edges of ``cells`` removed (in every
    block from the cell's row up, or only in ``blocks``; see :func:`knockout_blocks_of`)."""
    stepper = sess.stepper()
    L = sess.n_layers
    clean = sess.clean.resid
    per_cell = knockout_blocks_of(cells, L, blocks)
    acting = acting_cells(cells, L, blocks)
    reach = torch.as_tensor(grid.reachable_mask(acting, L, sess.n_positions, kind="knockout"))
    n0 = min(n for n, _ in acting)
    start = min(i for _, i in acting)
    resid = clean.clone()
    h = clean[n0, start:].unsqueeze(0)
    for k in range(n0, L):
        hide = [i for bs, (_, i) in zip(per_cell, cells, strict=True) if k in bs]
        h = stepper.layer(k, h, start, hide_keys=hide)
        keep = ~reach[k + 1, start:]
        h[0, keep] = clean[k + 1, start:][keep]  # unreachable: exactly clean
        resid[k + 1, start:] = h[0]
    logits = sess.clean.logits.clone()
    out_reach = reach[L]
    logits[out_reach] = sess.model.unembed(resid[L, out_reach])
    return RunRecord(resid=resid, logits=logits)
