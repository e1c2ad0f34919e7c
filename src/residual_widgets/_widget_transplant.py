"""The widget's pinned effect: what sets it, and one step back (the routes behind ``widget.py``).

Every pinned :class:`~.effects.Effect` goes through :func:`show`, whatever made it:

==============================================  ================================================
JS → kernel (custom msg; replies as ``effect``)  engine call
==============================================  ================================================
``{type: "intervene", id, cells}``               ``session.intervene(cells, kind, site)``
``{type: "transplant", id, source: "this" |      ``session.transplant(None | transplant_prompt,
"prompt", source_cell, target_cell}``            source_cell, target_cell, site=site)``
``{type: "head", id, cell: [layer, head, pos]}`` ``session.intervene([cell], kind, site="head")``
``{type: "head", id, cell: [layer, head],``       the same on that head at every position
``positions: "all"}``
``{type: "undo", id}``                           the previous pinned effect, shown again
==============================================  ================================================

They all run as the worker's ``"intervene"`` job, so the latest of them wins (a drop after a
click computes the drop only) and the front end drops stale replies by one request type.

**Undo.** :class:`Pins` keeps the last :data:`HISTORY` pinned states (effect, its payload, the
selection, and the request that made it). ``undo`` pops one and shows it again with the new
request id; the effect payload's ``undo`` says how many remain (the front end takes Ctrl+Z only
then). A settings change that recomputes the pin is itself a new pin, so undo goes back to the
effect under the old settings.

**The transplant prompt** (``transplant_prompt`` trait) is separate from ``source_prompt``: the
patch source must tokenize to the prompt's length and changing it rebuilds the session and
restarts the sweep, while a transplant source may have any length and changing it only runs
that prompt once (the engine caches its run). :func:`load_source` sends its grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import _payloads_heads as ph
from ._widget_heads import parse_pin, pin_cells
from .grid import HEAD_SITE

#: pinned states kept for undo
HISTORY = 20


@dataclass
class Pin:
    """A pin request that is not plain cells: ``what`` is "transplant", "head" or "undo"."""

    what: str
    args: dict = field(default_factory=dict)


@dataclass
class Pinned:
    effect: Any
    payload: dict | None
    selection: list
    request: Pin | None


class Pins:
    """The pinned-state history of one widget, and the request behind the current pin."""

    def __init__(self):
        self.history: list[Pinned] = []
        self.request: Pin | None = None


def parse(typ: str, content: dict) -> Pin:
    """A kernel message as a :class:`Pin` (checked here, in the comm handler, so a malformed one
    fails at once with words)."""
    if typ == "undo":
        return Pin("undo")
    if typ == "head":  # one head cell, or a head at every position (_widget_heads.parse_pin)
        return Pin("head", parse_pin(content))
    src = content.get("source")
    if src not in ("this", "prompt"):
        raise ValueError(f"transplant source must be 'this' or 'prompt', got {src!r}")
    cells = {k: content.get(k) for k in ("source_cell", "target_cell")}
    for k, c in cells.items():
        if not (isinstance(c, (list, tuple)) and len(c) == 2):
            raise ValueError(f"{k} must be (row, position), got {c!r}")
    return Pin("transplant", {"source": src, **{k: [int(x) for x in c] for k, c in cells.items()}})


def run(w, rid, pin: Pin) -> None:
    """Worker thread: compute ``pin`` and show it (or go back one step for ``undo``)."""
    if pin.what == "undo":
        undo(w, rid)
        return
    pair = w._pair()
    kw = {"logit_diff": pair} if pair else {}
    if pin.what == "head":
        cells = pin_cells(w.session.n_positions, pin.args)
        eff = w.session.intervene(cells, kind=w.kind, site=HEAD_SITE, **kw)
        show(w, eff, rid, [], request=pin)
        return
    a = pin.args
    source = None
    if a["source"] == "prompt":
        # the prompt at the time of the drop: a recompute after a settings change reuses it
        source = a.setdefault("prompt", w.transplant_prompt)
        if not source:
            del a["prompt"]
            raise ValueError("type a transplant prompt first (the 'transplant from' field)")
    eff = w.session.transplant(source, a["source_cell"], a["target_cell"], site=w.site, **kw)
    info = {
        "source": a["source"],
        "prompt": source,
        "source_cell": list(a["source_cell"]),
        "target_cell": list(a["target_cell"]),
    }
    show(w, eff, rid, [], request=pin, transplant=info)


def show(w, eff, rid, selection, *, request: Pin | None = None, transplant=None) -> None:
    """Pin ``eff`` (the previous pin goes on the history) and send it with request id ``rid``."""
    pins: Pins = w._pins
    with w._lock:
        if w.current_effect is not None:
            pins.history.append(Pinned(w.current_effect, w.effect, list(w.selection), pins.request))
            del pins.history[:-HISTORY]
        payload = ph.pin_payload(eff, rid, transplant=transplant, undo=len(pins.history))
        pins.request = request
        w.current_effect = eff
        with w.hold_sync():
            w.selection = [list(c) for c in selection]
            w.effect = payload
            w.error = ""


def undo(w, rid) -> None:
    """Show the previous pinned effect again (``ValueError`` when there is none)."""
    pins: Pins = w._pins
    with w._lock:
        if not pins.history:
            raise ValueError("nothing to undo: no earlier pinned effect")
        prev = pins.history.pop()
        pins.request = prev.request
        w.current_effect = prev.effect
        with w.hold_sync():
            w.selection = prev.selection
            w.effect = (
                None
                if prev.payload is None
                else {
                    **prev.payload,
                    "id": rid,
                    "undo": len(pins.history),
                }
            )
            w.error = ""


def resubmit(w) -> bool:
    """After a settings change: recompute the current pin if a transplant or a head made it
    (``True``), else leave it to the widget (its selected cells)."""
    req = w._pins.request
    if req is None or req.what == "undo":
        return False
    w._submit("intervene", w._next_py_id(), req)
    return True


def load_source(w, prompt: str) -> None:
    """Worker thread: run the transplant prompt once (engine-cached) and send its grid."""
    if not prompt:
        w.transplant_source = None
        return
    from .transplant import source_run

    s = w.session
    ids = s._tokenize(prompt, "transplant prompt")
    run = source_run(s, ids, "resid")
    tokens = [s.model.tokenizer.decode([t]) for t in ids]
    w.transplant_source = ph.source_payload(prompt, tokens, run.resid)
