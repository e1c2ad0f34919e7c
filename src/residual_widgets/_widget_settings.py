"""The widget's settings and sessions: what a change of ``kind``, ``site``, ``logit_pair`` or
``source_prompt`` recomputes, and how a session is built or rebuilt.

* ``kind`` / ``site`` / ``logit_pair`` changed (from either side): checked (a bad value is
  refused in words), then :func:`refresh` recomputes the pinned effect — the same cells, or the
  transplant / head that made it — drops the atlas, the profile and the estimate, asks for the
  new estimate and restarts the sweep if one ran.
* ``source_prompt`` changed: the job worker rebuilds the session with the widget's
  ``session_factory`` (:func:`do_rebuild`: the views' arrays are dropped, then recomputed as
  they show) — a widget built from a :class:`Session` has none and says so.
* ``build_session`` (a named model still loading): :func:`do_session` on the job worker, then
  the sweep, the estimate and the heads view that were asked for meanwhile.

For a remote session the ``remote_status`` trait follows the server (:func:`watch_remote`).
"""

from __future__ import annotations

from . import _widget_lecture as lect
from . import _widget_transplant as _pins
from . import grid

#: the kinds the widget offers: all of grid.KINDS but "set", which needs a vector per cell that
#: the front end has no way to enter
WIDGET_KINDS = tuple(k for k in grid.KINDS if k != "set")


def on_settings(w, change) -> None:
    """``kind``, ``site`` or ``logit_pair`` changed: check it, then :func:`refresh`."""
    if w._suspend:
        return
    try:
        if change["name"] == "kind" and w.kind not in WIDGET_KINDS:
            raise ValueError(f"unknown kind {w.kind!r}; choose one of {', '.join(WIDGET_KINDS)}")
        if change["name"] == "site" and w.site not in grid.SITES:
            raise ValueError(f"unknown site {w.site!r}; choose one of {', '.join(grid.SITES)}")
        if change["name"] == "logit_pair" and w.logit_pair:
            w.session.token_pair(tuple(w.logit_pair))  # validates: one token each
    except Exception as exc:  # noqa: BLE001 - a bad setting is reported to the user in words
        w._fail(change["name"], None, exc)
        return
    w.error = ""
    refresh(w)


def on_source(w, change) -> None:
    if not w._suspend:
        w._submit("rebuild", w._next_py_id(), change["new"])


def refresh(w) -> None:
    """Recompute the pinned effect and restart the sweep for the current settings."""
    if w.session is None:  # build_session() pins and sweeps with the settings of then
        return
    rows = w.session.n_rows if w.site == "resid" and w.kind != "knockout" else w.session.n_layers
    cells = [c for c in w.selection if c[0] < rows]
    if _pins.resubmit(w):  # a transplant or a head: recomputed as it was made
        pass
    elif cells:
        w._submit("intervene", w._next_py_id(), cells)
    else:
        w.current_effect = None
        w.effect = None
    w._heads.reset()  # only when its kind, pair or session changed
    had_sweep = w._sweep_thread is not None
    w.current_atlas = None
    w.atlas = None
    w.profile = None
    w.current_estimate = None
    w.estimate = None
    w.request_estimate()
    if had_sweep:
        w.start_sweep()


def do_rebuild(w, source) -> None:
    """Job worker: a new session for the new source prompt; the views' arrays start over."""
    if w._factory is None:
        raise ValueError(
            "this widget was built from a Session, so its source prompt is "
            "fixed; use rw.explore(prompt, source=...) to edit it"
        )
    w.cancel_sweep(wait=True)
    w.session = w._factory(w.prompt, source or None)
    watch_remote(w, w.session)
    w.current_effect = None
    with w.hold_sync():
        load_session_facts(w)
        w.effect = None
        w.atlas = None
        w.profile = None
        w.similarity = None
        w.position_content = None
        w.current_position_content = None
        w.error = ""
    if w.view == "similarity":
        lect.send_similarity(w)
    if w.view == "position_content":
        lect.do_position_content(w)
    refresh(w)


def do_session(w, make) -> None:
    """Job worker: build the session with ``make()``, then what was asked for meanwhile."""
    w.status = "loading the model and running the clean pass…"
    w.session = make()
    watch_remote(w, w.session)
    with w.hold_sync():
        load_session_facts(w)
        w.error = ""
    if w._sweep_after_build:
        w.start_sweep()
    elif w._views:
        w.request_estimate()
    if w.view == "heads":  # shown before there was a session to sweep
        w._heads.show()


def watch_remote(w, session) -> None:
    if getattr(session, "remote", None) is not None:
        from .remote import describe_status

        session.on_remote_status = lambda st: setattr(w, "remote_status", describe_status(st))


def load_session_facts(w) -> None:
    s = w.session
    w.tokens = [str(x) for x in s.token_strings]
    w.n_rows = int(s.n_rows)
