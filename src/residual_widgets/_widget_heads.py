"""The widget's head sweep: run on demand when the heads view is shown (``view="heads"``).

The heads view draws a head × position map of ``Session.sweep(site="head")`` — every attention
head at every position, for the widget's ``kind`` and token pair — and previews each head's
downstream map from it. That sweep costs about ``H`` times the residual sweep's forward work, so
it runs only when the view is first shown (and again when ``kind`` or the token pair change while
it is shown), on its own thread beside the residual sweep (the engine's session lock keeps them
from using the model at once). The ``heads`` trait fills in as it runs (at most every
``atlas_push_interval`` seconds; :func:`._payloads_heads.heads_payload`); the widget's Cancel,
``cancel_sweep()`` and its closing stop it, keeping what was done.

**By position or all positions** (``heads_positions`` trait, :data:`POSITIONS`): ``"by_pos"``
sweeps every ``(layer, head, pos)`` (TransformerLens's ``get_act_patch_attn_head_out_by_pos``,
``[L, H, P]``); ``"all"`` replaces each head at every position at once
(``get_act_patch_attn_head_out_all_pos``, ``Session.sweep(site="head", positions="all")``,
``[L, H]``). A click in the all-positions map pins ``Session.intervene`` on that head's cells at
every position (:func:`pin_cells`), the same intervention the sweep filed for it.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref

from . import _payloads_heads as ph
from .grid import HEAD_SITE

#: the kinds a head sweep takes (grid.KINDS minus "set", which needs a vector, and "knockout")
HEAD_KINDS = ("zero", "mean", "noise", "patch", "resample")

#: the heads view's two sweeps (``heads_positions``): each head at each position, or at all
POSITIONS = ("by_pos", "all")


def pin_cells(n_positions: int, args: dict) -> list[tuple[int, int, int]]:
    """The head cells ``(layer, head, pos)`` of a head pin: ``args["cell"]``, or with
    ``args["positions"] == "all"`` head ``cell[:2]`` at every position ``0..n_positions-1``."""
    cell = [int(x) for x in args["cell"]]
    if args.get("positions") == "all":
        return [(cell[0], cell[1], p) for p in range(n_positions)]
    return [tuple(cell)]


def parse_pin(content: dict) -> dict:
    """The arguments of a ``{type: "head", cell, positions?}`` message, checked: ``cell`` is
    ``(layer, head, pos)``, or ``(layer, head)`` with ``positions: "all"``."""
    cell, pos = content.get("cell"), content.get("positions")
    if pos not in (None, "all"):
        raise ValueError(f"positions must be 'all' or absent, got {pos!r}")
    n = 2 if pos == "all" else 3
    if not (isinstance(cell, (list, tuple)) and len(cell) in (n, 3)):
        what = "(layer, head)" if pos == "all" else "(layer, head, position)"
        raise ValueError(f"a head is {what}, got {cell!r}")
    out = {"cell": [int(x) for x in cell[:n]]}
    if pos == "all":
        out["positions"] = "all"
    return out


#: head sweeps that may be running (stopped at interpreter exit: a daemon thread killed inside
#: torch aborts the process)
_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for hs in list(_LIVE):
        hs.cancel(wait=True)


class HeadSweep:
    """One widget's head sweep: ``show()`` starts it unless its atlas is current, ``reset()``
    drops it (settings changed), ``cancel()`` stops it. ``atlas`` is the engine's
    :class:`~.head_sweep.HeadAtlas` the ``heads`` trait was built from."""

    def __init__(self, widget):
        self.w = widget
        self.atlas = None
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.key = None  # (kind, pair) of the atlas shown or being computed

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _key(self):
        return (id(self.w.session), self.w.kind, self.w._pair(), self.positions())

    def positions(self) -> str:
        """``"all"`` or ``"by_pos"`` (anything else reads as by position)."""
        return "all" if getattr(self.w, "heads_positions", "by_pos") == "all" else "by_pos"

    def show(self) -> None:
        """The heads view is showing: sweep unless the current settings' sweep ran or runs."""
        if self.key == self._key() and (self.running or self.atlas is not None):
            return
        self.start()

    def start(self) -> None:
        w = self.w
        if w.session is None:  # still being built (explore on a named model): shown again later
            return
        self.cancel(wait=True)
        kind, pair = w.kind, w._pair()
        self.key, self.atlas = self._key(), None
        w.heads = None
        if kind not in HEAD_KINDS:
            w._fail(
                "heads",
                None,
                ValueError(
                    f"the heads view sweeps kind {', '.join(HEAD_KINDS)}; "
                    f"kind={kind!r} has no head version"
                ),
            )
            return
        self.stop = threading.Event()
        th = threading.Thread(
            target=self._main, args=(kind, pair, self.stop), name="residual-widgets-heads"
        )
        th.daemon = True
        self.thread = th
        _LIVE.add(self)
        th.start()

    def cancel(self, wait: bool = False) -> None:
        self.stop.set()
        th = self.thread
        if wait and th is not None and th is not threading.current_thread():
            th.join(timeout=60)

    def reset(self) -> None:
        """Settings changed: if its kind, token pair, session or positions did, drop the head
        sweep and sweep again when the view is showing."""
        if self.key is None or self.key == self._key():
            return
        self.cancel(wait=True)
        self.atlas, self.key = None, None
        self.w.heads = None
        if self.w.view == "heads":
            self.start()

    def _push(self, atlas, progress: dict, stop) -> None:
        if stop.is_set() and progress.get("running"):
            return
        self.atlas = atlas
        self.w.heads = ph.heads_payload(atlas, progress)

    def _main(self, kind, pair, stop: threading.Event) -> None:
        w = self.w
        last = [0.0]

        def progress(p):
            now = time.monotonic()
            if now - last[0] >= w.atlas_push_interval:
                last[0] = now
                self._push(p.atlas, {"done": p.done, "total": p.total, "running": True}, stop)

        try:
            kw = {"logit_diff": pair} if pair else {}
            if w.memory_budget is not None:
                kw["memory_budget"] = w.memory_budget
            if self.positions() == "all":
                kw["positions"] = "all"
            atlas = w.session.sweep(kind=kind, site=HEAD_SITE, progress=progress, cancel=stop, **kw)
            done = int(atlas.done.sum())  # head cells, or heads for all positions
            final = {"done": done, "total": int(atlas.done.size), "running": False}
            final["cancelled"] = not atlas.complete
            if self.thread is threading.current_thread():
                self._push(atlas, final, stop)
        except Exception as exc:  # noqa: BLE001 - a failed sweep is reported to the user in words
            w._fail("heads", None, exc)
