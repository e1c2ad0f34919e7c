"""Attention-edge knockout: stop later positions from *reading* position i, leave i intact.

Zero-ablating the residual at ``(n, i)`` mixes two things: what position ``i`` computes for its
own next-token prediction, and what later positions read from it through attention. A knockout
separates them. Knocking out ``(n, i)`` removes the attention edges from every later position
``j > i`` to key ``i`` in blocks ``n..L-1`` (their attention renormalises over the other keys);
position ``i`` keeps attending to itself, so its own residuals and prediction are unchanged.

It runs through the stepper (:mod:`.stepper`): the blocks from row ``n`` up are re-run on
positions ``≥ i`` with the clean keys/values of earlier positions and an attention mask with
those edges removed. Cells the knockout cannot reach (rows ``≤ n``, positions ``≤ i``) are copied
from the clean run, so they are exactly unchanged.
"""

from __future__ import annotations

import torch

from . import grid
from .runs import RunRecord


@torch.no_grad()
def knockout_run(sess, cells: list[grid.Cell]) -> RunRecord:
    """The run of ``sess``'s prompt with the attention edges of ``cells`` removed."""
    stepper = sess.stepper()
    L = sess.n_layers
    clean = sess.clean.resid
    reach = torch.as_tensor(grid.reachable_mask(cells, L, sess.n_positions, kind="knockout"))
    n0 = min(n for n, _ in cells)
    start = min(i for _, i in cells)
    resid = clean.clone()
    h = clean[n0, start:].unsqueeze(0)
    for k in range(n0, L):
        hide = [i for n, i in cells if n <= k]
        h = stepper.layer(k, h, start, hide_keys=hide)
        keep = ~reach[k + 1, start:]
        h[0, keep] = clean[k + 1, start:][keep]  # unreachable: exactly clean
        resid[k + 1, start:] = h[0]
    logits = sess.clean.logits.clone()
    out_reach = reach[L]
    logits[out_reach] = sess.model.unembed(resid[L, out_reach])
    return RunRecord(resid=resid, logits=logits)
