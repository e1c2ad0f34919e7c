"""Many transplants at once: independent single-cell writes stepped through the cone together.

A Patchscope sweep writes one vector into one cell, hundreds of times over (every source row,
every entity, the random controls). Each write is its own intervention, so one at a time each
costs a cone run (:mod:`.click`). But a write at cell ``(n, i)`` changes nothing below row ``n``
or before position ``i``, so the writes that share a target position ``i`` can share one batch:
it is the sweep's cone group (:func:`.cone.step_cells`), where each write joins the batch at its
own row and the batch runs each block on positions ``i..P-1`` only::

    row k+1   [write a] [write b] [write c]       ← block k on all of them
    row k     [write a] [write b] [write c joins]  (c's row is k; a and b joined lower)

Writes at different target positions form different groups; a group is cut into slices of
bounded work (:func:`.cone.row_chunks`), and the model lock is held for one slice at a time.

:func:`set_many` is the engine: ``values[j]`` written into ``cells[j]`` of ``site``, one
independent run per ``j``. Each run is rebuilt as a :class:`~.runs.RunRecord` (``resid
[L + 1, P, d]``: clean outside the write's cone, the batch's rows inside; ``logits [P, V]``: the
top row unembedded where the cone reaches it, clean elsewhere), exactly what the one-at-a-time
cone run returns, equal within float32 rounding of the batched matmuls. A run is handed to
``reduce`` as soon as its slice is done and only ``reduce(run)`` is kept, so a thousand writes
need not hold a thousand runs: the lecture keeps a top-``k`` list per write, :func:`transplant_many`
an :class:`~.effects.Effect`.

:func:`transplant_many` is :func:`.transplant.transplant` for many ``(source_cell,
target_cell)`` pairs of one source prompt: the same validation (all pairs before anything runs),
the same source-run cache, one Effect per pair (``kind="transplant"``) equal to what
``Session.transplant`` gives within 1e-5.

Fallback: a remote session, a model off the CPU, or blocks the stepper refuses (remembered per
session, as for clicks) run each write through ``Session.intervene(kind="set")`` one at a time;
the results are the same. ``method="cone"`` insists on the batch (raises where it cannot run);
``"loop"`` forces the one-at-a-time path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch

from . import grid
from .click import click_run
from .cone import row_chunks, step_cells
from .runs import RunRecord
from .stepper import Stepper, UnsupportedStepping
from .transplant import TRANSPLANT_SITES, check_cell, source_prompt, source_run

METHODS = ("auto", "cone", "loop")

#: bytes of logits ``[writes, q, V]`` unembedded at once
UNEMBED_BYTES = 64 << 20


def set_many(
    sess,
    cells,
    values: torch.Tensor,
    *,
    site: str = "resid",
    reduce: Callable | None = None,
    method: str = "auto",
) -> list:
    """``[reduce(j, run_j)]`` for each write ``j``: ``values[j]`` (``[n, d]``) written into
    ``cells[j] = (row, pos)`` of ``site`` (``"resid"``, ``"attn_out"``, ``"mlp_out"``), every
    other cell clean. ``reduce`` defaults to returning the :class:`~.runs.RunRecord` itself; it is
    called as soon as a run is ready (not in order), the results come back in the order of
    ``cells``. Cells must already be valid (see :func:`transplant_many`)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use 'auto', 'cone' or 'loop'")
    if site not in TRANSPLANT_SITES:
        raise ValueError(f"unknown site {site!r}; valid sites are {', '.join(TRANSPLANT_SITES)}")
    cells = [(int(r), int(p)) for r, p in cells]
    if len(values) != len(cells):
        raise ValueError(f"{len(cells)} cells but {len(values)} values")
    reduce = reduce if reduce is not None else (lambda j, run: run)
    site_clean = sess.site_acts(site)
    out: list = [None] * len(cells)
    todo = []
    for j, (r, p) in enumerate(cells):
        if torch.equal(values[j].to(site_clean.dtype), site_clean[r, p]):
            out[j] = reduce(j, sess.clean)  # writes the clean value: nothing changes, exactly
        else:
            todo.append(j)
    stepper = None if method == "loop" or not todo else _stepper(sess, method == "cone")
    if stepper is None:  # one at a time, each by the click's own path (cone or trace)
        for j in todo:
            out[j] = reduce(j, click_run(sess, [cells[j]], values[j][None], site))
        return out
    groups = defaultdict(list)  # target position -> write indices
    for j in todo:
        groups[cells[j][1]].append(j)
    L, P = sess.n_layers, sess.n_positions
    for i, js in sorted(groups.items()):
        js.sort(key=lambda j: cells[j][0])  # rows ascending: each write joins at its row
        start = 0
        for chunk in row_chunks([cells[j][0] for j in js], L, P - i):
            part = js[start : start + len(chunk)]
            start += len(chunk)
            for j, run in _group_runs(sess, stepper, cells, values, part, i, site):
                out[j] = reduce(j, run)
    return out


def transplant_many(
    sess, source, pairs, *, site: str = "resid", logit_diff=None, reduce=None, method="auto"
) -> list:
    """:func:`.transplant.transplant` for each ``(source_cell, target_cell)`` in ``pairs``, all
    from one ``source`` (a string, token ids, or ``None`` for this prompt): one
    :class:`~.effects.Effect` per pair (``kind="transplant"``), in order. With ``reduce`` the
    list holds ``reduce(j, run)`` of each pair's :class:`~.runs.RunRecord` instead (lighter: no
    Effect is built or kept). Every pair is validated before anything runs."""
    src_ids, src_name, n_rows = source_prompt(sess, source, site)
    checked = []
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(f"each pair must be (source_cell, target_cell), got {pair!r}")
        s = check_cell(pair[0], "source_cell", src_name, len(src_ids), n_rows, site)
        t = check_cell(pair[1], "target_cell", "this prompt", sess.n_positions, n_rows, site)
        checked.append((s, t))
    if not checked:
        return []
    lp = sess.token_pair(logit_diff) if logit_diff is not None else sess.default_pair
    acts = sess._acts(source_run(sess, src_ids, site), src_ids, site)  # [rows, P_src, d]
    values = torch.stack([acts[r, p] for (r, p), _ in checked]).clone()  # [n, d]
    targets = [t for _, t in checked]
    if reduce is None:

        def reduce(j, run):
            return sess._effect([targets[j]], "transplant", site, run, lp)

    return set_many(sess, targets, values, site=site, reduce=reduce, method=method)


def _group_runs(sess, stepper: Stepper, cells, values, part, i: int, site: str):
    """``(j, run)`` for the writes ``part`` (indices ``j`` into ``cells``/``values``, rows
    ascending), all at target position ``i``, stepped as one cone group."""
    L, P = sess.n_layers, sess.n_positions
    clean = sess.clean.resid  # [L + 1, P, d]
    live = [(cells[j][0], values[j].to(clean.dtype)) for j in part]
    rows: dict[int, torch.Tensor] = {}
    with sess.lock, torch.no_grad():
        top, _ = step_cells(sess, stepper, live, i, site, on_row=rows.__setitem__)  # [A, q, d]
    V = sess.clean.logits.shape[-1]
    chunk = max(1, UNEMBED_BYTES // (4 * (P - i) * V))
    for a0 in range(0, len(part), chunk):
        with sess.lock, torch.no_grad():
            logits = sess.model.unembed(top[a0 : a0 + chunk]).to(sess.clean.logits.dtype)
        for b in range(a0, min(a0 + chunk, len(part))):
            n = live[b][0]
            resid = clean.clone()
            for k in range(n, L + 1):
                if b < len(rows[k]):  # an attn_out/mlp_out write leaves its own row clean
                    resid[k, i:] = rows[k][b]
            reach = torch.as_tensor(grid.reachable_mask([(n, i)], L, P, site)[L, i:])  # [q]
            lg = sess.clean.logits.clone()
            lg[i:][reach] = logits[b - a0][reach]
            yield part[b], RunRecord(resid=resid, logits=lg)


def _stepper(sess, insist: bool) -> Stepper | None:
    """The session's stepper, or ``None`` where the writes must run one at a time."""
    why = None
    if sess.remote is not None:
        why = "a remote session runs each write as its own request"
    elif sess.model.device.type != "cpu":
        why = f"the cone batch runs on CPU; this model is on {sess.model.device}"
    elif sess._stepper_refused is not None:
        why = sess._stepper_refused
    if why is None:
        try:
            return sess.stepper()
        except UnsupportedStepping as e:
            sess._stepper_refused = why = str(e)
    if insist:
        raise ValueError(f"method='cone' cannot run: {why}")
    return None
