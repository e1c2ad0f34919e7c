"""The widget's requests: the comm handler and the job worker that answers them.

==========================  ==================================================================
JS → kernel (custom msg)    what happens
==========================  ==================================================================
``{type: "intervene", id,   ``session.intervene(cells, kind, site)``; the result lands in the
cells: [[row, pos], …]}``   ``effect`` trait with the request ``id``
``{type: "lens", id, cell,  logit lens of that cell, clean and under the pinned effect; reply
key}``                      ``{type: "lens", id, key, clean, intervened}``
``{type: "sweep", id}``     (re)start the sweep in a background thread (:mod:`._widget_sweep`);
                            ``atlas`` and ``progress`` fill in as it runs
``{type: "cancel", id}``    stop the sweep (and the head sweep); the partial atlas stays
``{type: "transplant", id,  transplant / one head / back one step: :mod:`._widget_transplant`
…}``, ``{type: "head", id,  (each pins an effect like ``intervene``; the front end's drag, T +
cell}``, ``{type: "undo",   Enter, two clicks and Ctrl+Z send them)
id}``
``{type: "view", state,     a view opened, is still showing or closed (no reply): a sweep no
client}``                   view shows stops (:mod:`._widget_liveness`)
``{type: "ping", id}``      ``{type: "pong", id}``
==========================  ==================================================================

Every request is acknowledged at once (``{type: "ack", id}``) from the comm handler
(:func:`on_custom_msg`, the kernel's main thread, which never blocks), so the front end can tell
a busy or dead kernel from a slow computation. Failures reply ``{type: "error", id, request,
message}`` and set the ``error`` trait (words, not tracebacks).

The work runs on one worker thread (:class:`._jobs.LatestJobs`, :func:`run_job`) that always
takes the *latest* pending request of each type — a storm of 100 clicks computes a handful,
ending with the last — in the order of :data:`PRIORITY`. Besides the front end's requests it
runs the widget's own: building the session (``session``), a new source prompt (``rebuild``),
the estimate, the position/content decomposition and the transplant prompt's run (``tsource``).
"""

from __future__ import annotations

from . import _payloads
from . import _widget_lecture as lect
from . import _widget_settings as settings
from . import _widget_sweep as sweep
from . import _widget_transplant as _pins
from ._widget_liveness import on_view_state

#: which pending job runs first (the others after, in any order)
PRIORITY = ("session", "rebuild", "intervene", "estimate", "lens")


def on_custom_msg(w, content) -> None:
    """Comm handler (kernel main thread): acknowledge, then queue or act. Never blocks."""
    if not isinstance(content, dict):
        return
    typ, rid = content.get("type"), content.get("id")
    if rid is not None:
        w.send({"type": "ack", "id": rid})
    try:
        if typ == "intervene":
            w._submit("intervene", rid, content.get("cells"))
        elif typ == "lens":
            w._submit("lens", rid, (content.get("cell"), content.get("key")))
        elif typ == "sweep":
            w.start_sweep()
        elif typ == "cancel":
            w.cancel_sweep()
        elif typ in ("transplant", "head", "undo"):  # pins, like intervene
            w._submit("intervene", rid, _pins.parse(typ, content))
        elif typ == "ping":
            w.send({"type": "pong", "id": rid})
        elif typ == "view":
            on_view_state(w, str(content.get("client", "")), content.get("state"))
        else:
            raise ValueError(f"unknown request type {typ!r}")
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the user in words
        w._fail(typ or "request", rid, exc)


def run_job(w, typ: str, payload) -> None:
    """Worker thread: run one job; ``payload`` is ``(request id, argument)``."""
    rid, arg = payload
    w.status = "computing"
    try:
        if typ == "session":
            settings.do_session(w, arg)
        elif w.session is None:
            raise RuntimeError(f"there is no session: {w.error or 'it was not built'}")
        elif typ == "intervene":
            do_intervene(w, rid, arg)
        elif typ == "lens":
            do_lens(w, rid, *arg)
        elif typ == "rebuild":
            settings.do_rebuild(w, arg)
        elif typ == "position_content":
            lect.do_position_content(w)
        elif typ == "estimate":
            sweep.do_estimate(w, arg)
        elif typ == "tsource":
            _pins.load_source(w, arg)
    except Exception as exc:  # noqa: BLE001 - a failed job is reported to the user in words
        w._fail(typ, rid, exc)
    finally:
        w.status = "sweeping" if w.progress.get("running") else "idle"


def do_intervene(w, rid, cells) -> None:
    """Pin the effect of ``cells`` (or of a transplant, a head, undo) under request ``rid``."""
    if isinstance(cells, _pins.Pin):  # a transplant, a head, undo
        return _pins.run(w, rid, cells)
    if not cells:
        raise ValueError("no cells to intervene on")
    cells = [(int(r), int(p)) for r, p in cells]
    kind, site, pair = w.kind, w.site, w._pair()
    eff = w.session.intervene(cells, kind=kind, site=site, **({"logit_diff": pair} if pair else {}))
    _pins.show(w, eff, rid, eff.cells)


def do_lens(w, rid, cell, key) -> None:
    """Reply with the logit lens of ``cell``, clean and under the pinned effect."""
    r, p = int(cell[0]), int(cell[1])
    clean = w.session.logit_lens((r, p), k=5)
    eff = w.current_effect
    inter = w.session.logit_lens((r, p), k=5, effect=eff) if eff is not None else None
    w.send(_payloads.lens_reply(rid, key, (r, p), clean, inter))
