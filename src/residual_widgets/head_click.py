"""Head interventions: :func:`intervene` (the cone or one nnsight trace), and the cone itself —
a click on a head recomputes only what it can change.

The head version of :mod:`.click`. A write into ``z`` of head ``h`` at ``(layer, pos)`` changes
nothing below row ``layer + 1`` or before ``pos`` (:mod:`.grid`). For the cells of one
intervention, with ``k0`` their lowest layer and ``i0`` their leftmost position,
:func:`cone_run`

* starts from the clean residual ``[1, P - i0, d]`` entering block ``k0``, positions ``i0..P-1``;
* runs each block ``k`` on those positions only (clean keys/values of positions ``< i0`` through
  the stepper's prefix cache, :mod:`.stepper`), with the cells of layer ``k`` written into their
  heads' slices of ``z`` by a pre-hook on the block's output projection (:mod:`.heads`);
* copies every residual outside the selection's cone from the clean run (exactly 0.0 effect
  there) and unembeds only the final-row positions inside it.

:func:`head_click_run` picks the path: ``"cone"`` insists on the stepper (raises where it
cannot run, as :func:`.click.click_run` does), ``"trace"`` and — for now — ``"auto"`` run
:func:`.heads.head_run`. ``"auto"`` stays on the trace because callers (the widget's head pins)
compare a click's effect bit for bit with a later ``intervene`` of the same cell, and the two
paths agree to float32 rounding only (within 1e-5, tested on every family), not bit for bit.
"""

from __future__ import annotations

import torch

from . import grid, heads
from .click import METHODS, _stepper
from .models import _get
from .runs import RunRecord


def head_click_run(sess, cells, values: torch.Tensor, method: str = "auto") -> RunRecord | None:
    """The run with ``values`` ``[n_cells, d_head]`` written into head ``cells`` by the cone, or
    ``None`` when it must be traced (the caller runs :func:`.heads.head_run`)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use 'auto', 'cone' or 'trace'")
    stepper = _stepper(sess, True) if method == "cone" else None
    if stepper is None:
        return None
    with sess.lock:
        return cone_run(sess, stepper, cells, values)


@torch.no_grad()
def cone_run(sess, stepper, cells, values: torch.Tensor) -> RunRecord:
    """Step the selection's cone through the blocks (see the module docstring)."""
    L, P, lay = sess.n_layers, sess.n_positions, heads.layout(sess.model)
    clean, z = sess.clean.resid, heads.head_acts(sess)  # [R, P, d], [L, P, H, dh]
    live = [
        (k, h, p, v)
        for (k, h, p), v in zip(cells, values, strict=True)
        if not torch.equal(v.to(z.dtype), z[k, p, h])
    ]
    resid, logits = clean.clone(), sess.clean.logits.clone()
    if not live:  # every cell writes its clean value: nothing changes, exactly
        return RunRecord(resid=resid, logits=logits)
    reach = torch.as_tensor(
        grid.reachable_mask([(k, h, p) for k, h, p, _ in live], L, P, grid.HEAD_SITE)
    )
    k0, i0 = min(c[0] for c in live), min(c[2] for c in live)
    state = clean[k0, i0:].unsqueeze(0).clone()  # [1, q, d]
    for k in range(k0, L + 1):
        out = ~reach[k, i0:]
        state[0, out] = clean[k, i0:][out]  # outside the cone: exactly clean
        resid[k, i0:] = state[0]
        if k == L:
            break
        here = [(h, p - i0, v) for kk, h, p, v in live if kk == k]
        state = _layer_with_heads(stepper, sess.model, lay, k, state, i0, here)
    top = reach[L]
    logits[top] = sess.model.unembed(resid[L, top]).to(logits.dtype)
    return RunRecord(resid=resid, logits=logits)


def _layer_with_heads(stepper, lm, lay, k, state, start, writes):
    """Block ``k`` on ``state`` ``[1, q, d]`` with ``writes`` = ``(head, relative position,
    value [d_head])`` in its output projection's input."""
    if not writes:
        return stepper.layer(k, state, start)

    def pre(mod, args):
        x = args[0].clone()
        zv = x.view(x.shape[0], x.shape[1], lay.n_heads, lay.d_head)
        for h, q, v in writes:
            zv[0, q, h] = v.to(x.dtype)
        return (x, *args[1:])

    hook = _get(lm.hf, lay.paths[k]).register_forward_pre_hook(pre)
    try:
        return stepper.layer(k, state, start)
    finally:
        hook.remove()


def intervene(sess, cells, kind: str = "zero", *, value=None, logit_diff=None, method="auto"):
    """Replace head ``cells`` ``(layer, head, pos)`` by ``kind`` and measure everything
    downstream: the usual :class:`~.effects.Effect` (``site="head"``, cone from row
    ``layer + 1``). ``method``: ``"cone"`` steps only the cone (:func:`head_click_run`),
    ``"trace"`` and ``"auto"`` run one nnsight trace (:func:`head_run`)."""
    cells = heads.check_cells(sess, cells, kind)
    pair = sess.token_pair(logit_diff) if logit_diff is not None else sess.default_pair
    vals = heads.values_for(sess, cells, kind, value)
    run = head_click_run(sess, cells, vals, method)
    if run is None:
        edits = [heads.HeadEdit(a, h, p, v) for (a, h, p), v in zip(cells, vals, strict=True)]
        with sess.lock:
            run, _ = heads.head_run(
                sess.model,
                sess.ids,
                edits,
                remote=sess.remote,
                timeout=sess.timeout,
                on_status=sess.note_status,
            )
    return sess._effect(cells, kind, grid.HEAD_SITE, run, pair)
