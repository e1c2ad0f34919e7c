"""One click through the cone: a single intervention recomputes only what it can change.

An intervention at residual cell ``(n, i)`` cannot change rows below ``n`` or positions before
``i`` (:mod:`.grid`). The sweep exploits this for every cell at once (:mod:`.cone`); a click does
the same for one selection. For the cells ``C`` of one intervention, with ``n0`` their lowest row
(block, for ``attn_out``/``mlp_out``) and ``i0`` their leftmost position, :func:`cone_run`

* starts from the clean residual ``[1, P - i0, d]`` of row ``n0``, positions ``i0..P-1``;
* at each row ``k`` writes the cells of row ``k`` (a resid cell is written into the state
  entering block ``k``; an ``attn_out``/``mlp_out`` cell is written inside block ``k`` by a hook
  on the writing module, :func:`.cone.layer_with_write`);
* runs block ``k`` on those positions only, reading the clean keys/values of positions ``< i0``
  through the stepper's prefix cache (:mod:`.stepper`);
* copies every residual outside the selection's cone (:func:`.grid.reachable_mask`) from the
  clean run, so the effect there is exactly 0.0, as the sweep guarantees;
* unembeds only the final-row positions inside the cone; the other positions keep the clean
  logits.

The work is ``(L - n0)(P - i0)`` block-positions instead of ``L · P``: a click near the top
right costs a few positions of a few blocks. Cells whose intervention writes exactly the clean
value are dropped first (patching a prompt from itself changes nothing, exactly).

:func:`click_run` picks the path: ``method="cone"`` insists on the stepper (raises
:class:`~.stepper.UnsupportedStepping` or ``ValueError`` where it cannot run), ``"trace"`` runs
the reference nnsight trace (:func:`.runs.traced_run`), and ``"auto"`` takes the cone for a
local CPU model whose blocks step and the trace otherwise (remote sessions, other devices,
refused architectures; a refusal is remembered per session, so it costs once). The first
``"auto"`` click of a session whose stepper is not built yet traces too: building the stepper
costs about three forwards, more than that click would save (a fresh widget's first paint must
not wait for it); the sweep, or the next click, builds it. Both paths
return the same :class:`~.runs.RunRecord` (``resid [L + 1, P, d]``, ``logits [P, V]``), equal
within float32 rounding (tested on every family, kind and site).
"""

from __future__ import annotations

import torch

from . import grid
from .cone import layer_with_write
from .runs import Edit, RunRecord
from .stepper import Stepper, UnsupportedStepping

METHODS = ("auto", "cone", "trace")


def click_run(sess, cells: list[grid.Cell], values: torch.Tensor, site: str, method="auto"):
    """The run of ``sess``'s prompt with ``values`` ``[n_cells, d]`` written into ``cells`` of
    ``site``, by the cone (:func:`cone_run`) or the trace (see the module docstring)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use 'auto', 'cone' or 'trace'")
    stepper = None if method == "trace" else _stepper(sess, method == "cone")
    if stepper is None:
        edits = [Edit(site, r, p, v) for (r, p), v in zip(cells, values, strict=True)]
        with sess.lock:
            return sess._run(sess.ids, edits)
    with sess.lock:
        return cone_run(sess, stepper, cells, values, site)


def _stepper(sess, insist: bool) -> Stepper | None:
    """The session's stepper, or ``None`` where a click must be traced (``insist``: raise)."""
    if sess.remote is not None:
        if insist:
            raise ValueError("method='cone' steps blocks locally; a remote session traces")
        return None
    if sess.model.device.type != "cpu":  # the stepper is verified on CPU only
        if insist:
            raise ValueError(f"method='cone' runs on CPU; this model is on {sess.model.device}")
        return None
    if not insist and (sess._stepper_refused is not None or _first_click(sess)):
        return None
    try:
        return sess.stepper()
    except UnsupportedStepping as e:
        sess._stepper_refused = str(e)
        if insist:
            raise
        return None


def _first_click(sess) -> bool:
    """True for the first ``"auto"`` click of a session whose stepper is not built yet: building
    it (a capture pass and a self-check, about three forwards) would make that click slower than
    one trace, and the sweep builds it anyway. The second such click builds it."""
    if sess._stepper is not None or sess._traced_clicks > 0:
        return False
    sess._traced_clicks += 1
    return True


@torch.no_grad()
def cone_run(sess, stepper: Stepper, cells, values: torch.Tensor, site: str) -> RunRecord:
    """Step the selection's cone through the blocks (see the module docstring)."""
    L, P = sess.n_layers, sess.n_positions
    clean, site_clean = sess.clean.resid, sess.site_acts(site)  # [R, P, d], [rows, P, d]
    live = [
        (r, p, v)
        for (r, p), v in zip(cells, values, strict=True)
        if not torch.equal(v.to(site_clean.dtype), site_clean[r, p])
    ]
    resid, logits = clean.clone(), sess.clean.logits.clone()
    if not live:  # every cell writes its clean value: nothing changes, exactly
        return RunRecord(resid=resid, logits=logits)
    reach = torch.as_tensor(grid.reachable_mask([(r, p) for r, p, _ in live], L, P, site))
    n0, i0 = min(r for r, _, _ in live), min(p for _, p, _ in live)
    h = clean[n0, i0:].unsqueeze(0).clone()  # [1, q, d]
    for k in range(n0, L + 1):
        here = [(p - i0, v) for r, p, v in live if r == k]
        if site == "resid":
            for q, v in here:
                h[0, q] = v.to(h.dtype)
        out = ~reach[k, i0:]
        h[0, out] = clean[k, i0:][out]  # outside the cone: exactly clean
        resid[k, i0:] = h[0]
        if k == L:
            break
        if site != "resid" and here:
            h = layer_with_write(stepper, sess.model, site, k, h, i0, [(0, q, v) for q, v in here])
        else:
            h = stepper.layer(k, h, i0)
    top = reach[L]
    logits[top] = sess.model.unembed(resid[L, top]).to(logits.dtype)
    return RunRecord(resid=resid, logits=logits)
