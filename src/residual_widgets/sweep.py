"""Sweep: intervene on every cell, one at a time, and collect every downstream map (an Atlas).

Three ways to compute the same atlas:

* ``loop`` — one nnsight trace per cell (:meth:`Session.intervene`). Simple, remote-ready, slow.
* ``cone`` — exploit causality (:mod:`.cone`): for each position ``i`` the cells of every row are
  pushed through the blocks together, each entering at its own row, on positions ``i..P-1``
  only, reading the clean keys/values of positions ``< i`` (:mod:`.stepper`). About a quarter of
  the work of one forward per cell, and batched.
* ``batch`` — many cells per nnsight trace, each its own batch element, metrics reduced inside
  the trace (:mod:`.batched`). This is how a remote session sweeps: one request per batch,
  each streamed into the atlas as it lands.

Cells whose intervention writes exactly the clean value (patching a prompt from itself,
zeroing a zero vector) change nothing, so the cone fills them with exact zeros without computing.

Memory is estimated before starting. The atlas maps take ``S·P·R·P`` floats; the budget
(default: half the memory available now) decides how they are kept, recorded in
``atlas.storage``: ``"float32"`` when they fit, ``"float16"`` when only half-size maps fit, and
``"summary"`` (no maps: each cell's map is recomputed on demand, as the widget does on click)
when not even that fits. ``keep_maps=True`` insists on float32 maps and raises
:class:`SweepTooLarge` instead; ``keep_maps=False`` keeps summaries only.
Unembedding is chunked so the working set stays within the budget.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from . import grid, metrics
from .batched import batched_effects
from .batched import cells_per_request as fit_cells
from .cone import cone_group, row_chunks
from .effects import Atlas
from .remote import REQUEST_BYTES, RemoteCancelled, is_remote
from .stepper import UnsupportedStepping


class SlowPathWarning(UserWarning):
    """A sweep asked for ``method="auto"`` could not use the cone and runs one forward per cell."""


def slow_path_message(reason: str) -> str:
    """What the widget's status line, the CLI and the warning say when the cone is refused."""
    return (
        f"slow path: one forward per cell — the model's blocks could not be stepped "
        f"({reason}); about 10× slower"
    )


class SweepTooLarge(MemoryError):
    """The requested sweep would not fit in the memory budget."""


@dataclass
class SweepProgress:
    """Passed to the progress callback: ``done``/``total`` cells, the position just finished,
    and the partially filled :class:`Atlas` (filled cells have ``atlas.done`` set)."""

    done: int
    total: int
    position: int
    atlas: Atlas
    status: str = ""  # remote sweeps: the server's status of the request in flight


def available_memory() -> int:
    """Bytes of memory available now (Linux ``/proc/meminfo``; 4 GiB if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def estimate_bytes(S: int, R: int, P: int, keep_maps: bool = True, map_bytes: int = 4) -> int:
    """Bytes the atlas arrays of a sweep over ``S × P`` source cells take (maps stored with
    ``map_bytes`` bytes per value: 4 for float32, 2 for float16)."""
    return S * P * ((map_bytes * R * P if keep_maps else 0) + 4 * (2 * P + 1))


def choose_storage(S: int, R: int, P: int, budget: int, keep_maps="auto") -> str:
    """``"float32"``, ``"float16"`` or ``"summary"``: how a sweep's maps fit in ``budget`` bytes.
    Raises :class:`SweepTooLarge` when even the chosen form does not fit."""
    need32, need16 = estimate_bytes(S, R, P), estimate_bytes(S, R, P, map_bytes=2)
    need0 = estimate_bytes(S, R, P, keep_maps=False)
    if keep_maps is True:
        if need32 > budget:
            raise SweepTooLarge(
                f"this sweep's atlas needs {need32 / 2**30:.2f} GiB but the budget "
                f"is {budget / 2**30:.2f} GiB: pass keep_maps=False (summaries "
                "only) or 'auto', fewer rows/positions, or a larger memory_budget"
            )
        return "float32"
    if keep_maps == "auto" and need32 <= budget:
        return "float32"
    if keep_maps == "auto" and need16 <= budget:
        return "float16"
    if need0 > budget:
        raise SweepTooLarge(
            f"even this sweep's summaries need {need0 / 2**30:.2f} GiB but the "
            f"budget is {budget / 2**30:.2f} GiB: sweep fewer rows/positions"
        )
    return "summary"


def run_sweep(
    sess,
    *,
    kind="zero",
    site="resid",
    logit_diff=None,
    rows=None,
    positions=None,
    progress=None,
    cancel=None,
    method="auto",
    keep_maps="auto",
    memory_budget=None,
    cells_per_request=None,
    timeout=None,
) -> Atlas:
    grid.check_kind(kind)
    grid.check_site(site)
    if method not in ("auto", "cone", "loop", "batch"):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'cone', 'batch' or 'loop'")
    if keep_maps not in (True, False, "auto"):
        raise ValueError(f"keep_maps must be True, False or 'auto', got {keep_maps!r}")
    if kind == "set":
        raise ValueError(
            "kind='set' writes one given vector; sweeps take zero, mean, noise or patch"
        )
    if kind in ("patch", "resample") and sess.source is None:
        raise ValueError(f"kind={kind!r} needs a source prompt: Session(model, prompt, source=...)")
    S, R, P = grid.n_source_rows(site, sess.n_layers), sess.n_rows, sess.n_positions
    if kind == "knockout":  # one stepped run per cell; rows are blocks
        S, method = sess.n_layers, "loop"
    rows = _subset(rows, S, "rows")
    positions = _subset(positions, P, "positions")
    pair = sess.token_pair(logit_diff) if logit_diff is not None else sess.default_pair
    budget = memory_budget if memory_budget is not None else available_memory() // 2
    storage = choose_storage(S, R, P, budget, keep_maps)
    map_dtype = {"float32": np.float32, "float16": np.float16}.get(storage)
    atlas = Atlas(
        kind=kind,
        site=site,
        tokens=sess.token_strings,
        resid_delta=np.zeros((S, P, R, P), map_dtype) if map_dtype else None,
        kl=np.zeros((S, P, P), np.float32),
        logprob_delta=np.zeros((S, P, max(P - 1, 0)), np.float32),
        done=np.zeros((S, P), bool),
        logit_diff=np.zeros((S, P), np.float32) if pair is not None else None,
        logit_diff_clean=(
            float(metrics.logit_diff(sess.clean_logprobs[-1], pair)) if pair is not None else None
        ),
        storage=storage,
    )
    stepper = None
    if sess.remote is not None and method == "cone":  # the cone steps blocks locally
        raise ValueError(
            "method='cone' runs locally; a remote session sweeps with 'batch' "
            "(the default) or 'loop'"
        )
    # remote sessions sweep with batched traces; so does a model off the CPU (the cone stepper
    # is verified on CPU only, batched traces are device-clean)
    if (
        method == "auto"
        and kind != "knockout"
        and (sess.remote is not None or sess.model.device.type != "cpu")
    ):
        method = "batch"
    if method in ("auto", "cone") and kind != "knockout":
        try:
            stepper = sess.stepper()
        except UnsupportedStepping as e:
            if method == "cone":
                raise
            atlas.slow_path = slow_path_message(str(e))
            warnings.warn(atlas.slow_path, SlowPathWarning, stacklevel=3)
    atlas.method = "cone" if stepper else ("batch" if method == "batch" else "loop")
    work_budget = max(64 << 20, min(budget // 4, 1 << 30))
    if atlas.method == "batch":
        return _batch_sweep(
            sess,
            atlas,
            rows,
            positions,
            kind,
            site,
            pair,
            progress,
            cancel,
            cells_per_request,
            work_budget,
            timeout,
        )
    total, done = len(rows) * len(positions), 0
    for i in positions:
        for chunk in row_chunks(rows, sess.n_layers, sess.n_positions - i):
            if cancel is not None and cancel.is_set():
                break
            cells = [(n, i) for n in chunk]
            if stepper is None:
                for c in cells:
                    atlas.store_effect(c, sess.intervene(c, kind, site, logit_diff=pair))
            else:
                with sess.lock, torch.no_grad():
                    cone_group(sess, stepper, atlas, cells, kind, site, pair, work_budget)
            done += len(cells)
            if progress is not None:
                progress(SweepProgress(done=done, total=total, position=i, atlas=atlas))
    atlas.complete = _all_done(atlas, rows, positions)
    return atlas


def _all_done(atlas: Atlas, rows, positions) -> bool:
    """Complete means every requested cell is filled (not: the loop ran to its end)."""
    return bool(atlas.done[np.ix_(rows, positions)].all())


def _batch_sweep(
    sess,
    atlas,
    rows,
    positions,
    kind,
    site,
    pair,
    progress,
    cancel,
    cells_per_request,
    work_budget,
    timeout,
) -> Atlas:
    """One batched trace (one request, when remote) per group of cells, streamed into ``atlas``."""
    lm = sess.model
    cells = [(n, i) for i in positions for n in rows]
    per = cells_per_request or fit_cells(
        sess.n_rows,
        sess.n_positions,
        lm.d_model,
        lm.vocab_size,
        REQUEST_BYTES if is_remote(sess.remote) else work_budget,
    )
    done, total = 0, len(cells)
    for g in range(0, total, per):
        if cancel is not None and cancel.is_set():
            break
        group = cells[g : g + per]

        def on_status(status, i=group[-1][1], done=done):
            sess.note_status(status)
            if progress is not None:
                progress(
                    SweepProgress(done=done, total=total, position=i, atlas=atlas, status=status)
                )

        try:
            out = batched_effects(
                sess, group, kind, site, pair, timeout=timeout, cancel=cancel, on_status=on_status
            )
        except RemoteCancelled:
            break
        for b, cell in enumerate(group):
            atlas.store(
                cell,
                kl=out["kl"][b].numpy(),
                logprob_delta=out["lpd"][b].numpy(),
                resid_delta=out["deltas"][b].numpy(),
                logit_diff=float(out["ld"][b]) if atlas.logit_diff is not None else None,
            )
        done += len(group)
        if progress is not None:
            progress(SweepProgress(done=done, total=total, position=group[-1][1], atlas=atlas))
    atlas.complete = _all_done(atlas, rows, positions)
    return atlas


def _subset(sel, n: int, what: str) -> list[int]:
    if sel is None:
        return list(range(n))
    out = sorted({int(x) for x in sel})
    if not out or out[0] < 0 or out[-1] >= n:
        raise ValueError(f"{what} must be a non-empty subset of 0..{n - 1}, got {sel!r}")
    return out
