"""Is anyone still looking? A sweep that no view shows stops, and starts again when one returns.

Each view of the widget says when it opens, that it is still showing (``alive``, every 5 s;
hidden browser tabs only once a minute) and when it closes: ``{type: "view", state, client}``,
no reply (:func:`on_view_state`). A running sweep stops when every view that opened is gone —
closed ``orphan_grace_s`` ago (:func:`stop_orphaned`, on a timer), or silent for
``orphan_timeout_s`` while no notebook cell was running (:func:`views_gone`, asked by the sweep
thread at each progress step: Voilà drops the connection before a closing page can say so, and
keeps the kernel) — and restarts when a view comes back.

While a cell runs, the views' messages wait in the kernel's queue, so their silence means
nothing: :class:`_Cells` follows IPython's ``pre_run_cell`` / ``post_run_cell`` events.

At interpreter exit every running sweep is stopped first (:func:`_stop_all`): a daemon thread
killed inside a torch call aborts the process ("terminate called without an active exception").
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref


class _Cells:
    """Whether the kernel is running a cell (IPython's pre/post_run_cell events): then the
    views' messages wait in its queue, and their silence means nothing."""

    running = False
    ended = float("-inf")
    hooked = False

    @classmethod
    def hook(cls) -> None:
        if cls.hooked:
            return
        cls.hooked = True
        try:
            from IPython import get_ipython

            ip = get_ipython()
        except ImportError:
            ip = None
        if ip is None or not hasattr(ip, "events"):
            return

        def pre(*_):
            cls.running = True

        def post(*_):
            cls.running, cls.ended = False, time.monotonic()

        ip.events.register("pre_run_cell", pre)
        ip.events.register("post_run_cell", post)


_cells = _Cells

#: widgets whose sweep thread may be running (stopped at interpreter exit, see _stop_all)
_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Stop every running sweep before the interpreter exits."""
    for w in list(_LIVE):
        w.cancel_sweep(wait=True)


def on_view_state(w, client: str, state) -> None:
    """A view of widget ``w`` opened, is alive or closed (comm handler). The sweep stops
    ``orphan_grace_s`` after the last view closed, unless one opened again; a view opening (or
    heard from) after that restarts it."""
    if state in ("open", "alive"):
        w._views[client] = time.monotonic()
        w.request_estimate()  # a view shows the estimate even without a sweep
        if w._orphan_timer is not None:
            w._orphan_timer.cancel()
            w._orphan_timer = None
        if w._orphaned:
            w._orphaned = False
            w.start_sweep()
        return
    if client not in w._views:  # never opened here (or already closed): not ours
        return
    del w._views[client]
    if w._views or not w.progress.get("running"):
        return
    if w._orphan_timer is not None:
        w._orphan_timer.cancel()
    w._orphan_timer = threading.Timer(w.orphan_grace_s, stop_orphaned, args=(w,))
    w._orphan_timer.daemon = True
    w._orphan_timer.start()


def stop_orphaned(w) -> None:
    """The grace time after the last view closed is over: stop the sweep unless one reopened."""
    w._orphan_timer = None
    if w._views or not w.progress.get("running"):
        return
    w._orphaned = True
    w.cancel_sweep()


def views_gone(w) -> bool:
    """Every view that opened has gone silent for ``orphan_timeout_s`` while the kernel was free
    to hear it (no cell running, none ended in that time)."""
    views = dict(w._views)
    if not views:
        return False
    now = time.monotonic()
    quiet = now - max(views.values()) > w.orphan_timeout_s
    return quiet and not _cells.running and now - _cells.ended > w.orphan_timeout_s
