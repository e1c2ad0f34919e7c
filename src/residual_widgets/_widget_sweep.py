"""The widget's sweep thread and the instant estimate painted before it.

:func:`start` runs ``Session.sweep`` on a daemon thread of its own (``_sweep_thread``) for the
widget's kind, site and token pair. Every progress step updates the ``progress`` trait; the
``atlas`` trait is rebuilt at most every ``atlas_push_interval`` seconds (:func:`push_atlas`)
and once at the end. The engine's session lock keeps the sweep and the job worker (clicks) from
using the model at once, and the sweep releases it between positions, so a click waits for at
most one position's batch. A cancelled sweep keeps its partial atlas. At each step the thread
also asks whether every view is gone (:func:`._widget_liveness.views_gone`) and stops if so.

The estimate (:mod:`._estimate`): :func:`request_estimate` queues the attribution-patching
estimate of the current settings on the job worker (once per settings), :func:`do_estimate`
computes it there and sets the ``estimate`` trait; the sweep waits for it (at most
``estimate_wait_s``) so the overview is painted from the estimate first. When both exist the
atlas carries their agreement (:func:`._payloads.agreement_payload`).
"""

from __future__ import annotations

import threading
import time

from . import _payloads
from ._widget_liveness import _LIVE, views_gone


def start(w) -> None:
    """(Re)start the sweep of widget ``w`` for its current kind/site/token pair."""
    w.cancel_sweep(wait=True, heads=False)
    w._cancel = threading.Event()
    request_estimate(w)
    kind, site, pair = w.kind, w.site, w._pair()
    w.progress = {"done": 0, "total": 0, "running": True, "cancelled": False}
    th = threading.Thread(
        target=main,
        args=(w, kind, site, pair, w._cancel),
        name="residual-widgets-sweep",
        daemon=True,
    )
    w._sweep_thread = th
    _LIVE.add(w)
    th.start()


def main(w, kind, site, pair, cancel: threading.Event) -> None:
    """The sweep thread: wait for the estimate, sweep, push progress and the atlas."""
    last = [0.0]

    def progress(p):
        if views_gone(w):  # the page closed without a word (Voilà)
            w._views.clear()
            w._orphaned = True
            cancel.set()
        now = time.monotonic()
        w.progress = {
            "done": int(p.done),
            "total": int(p.total),
            "running": True,
            "cancelled": False,
        }
        if now - last[0] >= w.atlas_push_interval:
            last[0] = now
            push_atlas(w, p.atlas, cancel)

    w.status = "sweeping"
    t_end = time.monotonic() + w.estimate_wait_s  # the estimate is painted first
    while not w._estimate_ready.wait(0.1) and not cancel.is_set():
        if time.monotonic() > t_end:
            break
    try:
        kw = {"logit_diff": pair} if pair else {}
        if w.memory_budget is not None:
            kw["memory_budget"] = w.memory_budget
        atlas = w.session.sweep(kind=kind, site=site, progress=progress, cancel=cancel, **kw)
        push_atlas(w, atlas, None)
        done = int(atlas.done.sum())
        w.progress = {
            "done": done,
            "total": int(atlas.done.size),
            "running": False,
            "cancelled": not atlas.complete,
        }
    except Exception as exc:  # noqa: BLE001 - a failed sweep is reported to the user in words
        w.progress = {**w.progress, "running": False}
        w._fail("sweep", None, exc)
    finally:
        if w._sweep_thread is threading.current_thread():
            w.status = "idle"


def push_atlas(w, atlas, cancel) -> None:
    """Show ``atlas`` (with its agreement with the estimate) unless ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        return
    with w._lock:
        w.current_atlas = atlas
        est = w.current_estimate
        w.atlas = _payloads.atlas_payload(atlas, _payloads.agreement_payload(est, atlas))
        if w.view == "profile":
            from ._widget_lecture import send_profile

            send_profile(w)


def request_estimate(w) -> None:
    """Queue the estimate of ``w``'s current settings on the job worker, unless it was already
    asked for; a sweep started now waits for it."""
    if w.session is None:  # asked again once build_session() has a session
        return
    key = (id(w.session), w.kind, w.site, w._pair())
    if key == w._estimate_key:
        return
    w._estimate_key = key
    w._estimate_ready.clear()
    w._submit("estimate", w._next_py_id(), key)


def do_estimate(w, key) -> None:
    """Job worker: compute the estimate for ``key`` = ``(session id, kind, site, pair)`` unless
    newer settings replaced it, and show it (the atlas's agreement with it too)."""
    from . import _estimate

    try:
        if key != w._estimate_key:  # settings changed since: a newer one is queued
            return
        _, kind, site, pair = key
        attr, note, caveat = _estimate.estimate_for(w.session, kind, site, pair)
        payload = _payloads.estimate_payload(attr, kind=kind, site=site, note=note, caveat=caveat)
        with w._lock:
            if key != w._estimate_key:
                return
            w.current_estimate = attr
            w.estimate = payload
            atlas = w.current_atlas
            if atlas is not None and (atlas.kind, atlas.site) == (kind, site):
                push_atlas(w, atlas, None)  # its agreement with the new estimate
    finally:
        if key == w._estimate_key:
            w._estimate_ready.set()
