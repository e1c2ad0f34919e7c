"""The notebook widget: synced view state in traits, requests routed to a :class:`Session`.

The widget computes nothing itself. It holds what a view needs to repaint (tokens, settings, the
pinned :class:`~.effects.Effect` and the sweep's :class:`~.effects.Atlas` as binary arrays) and
turns front-end requests into engine calls:

==========================  ==================================================================
JS → kernel (custom msg)    what happens
==========================  ==================================================================
``{type: "intervene", id,   ``session.intervene(cells, kind, site)``; the result lands in the
cells: [[row, pos], …]}``   ``effect`` trait with the request ``id``
``{type: "lens", id, cell,  logit lens of that cell, clean and under the pinned effect; reply
key}``                      ``{type: "lens", id, key, clean, intervened}``
``{type: "sweep", id}``     (re)start the sweep in a background thread; ``atlas`` and
                            ``progress`` fill in as it runs
``{type: "cancel", id}``    stop the sweep (and the head sweep); the partial atlas stays
``{type: "transplant", id,  transplant / one head / back one step: :mod:`._widget_transplant`
…}``, ``{type: "head", id,  (each pins an effect like ``intervene``; the front end's drag, T +
cell}``, ``{type: "undo",   Enter, two clicks and Ctrl+Z send them)
id}``
``{type: "view", state,     a view opened, is still showing (``alive``, every 5 s) or closed
client}``                   (no reply). A running sweep stops when every view that opened is
                            gone — closed ``orphan_grace_s`` ago, or silent for
                            ``orphan_timeout_s`` while no cell was running (Voilà drops the
                            connection before a closing page can say so, and keeps the
                            kernel) — and restarts when a view comes back
==========================  ==================================================================

Lecture views (``view`` trait: ``map`` | ``first_reached`` | ``profile`` | ``similarity`` |
``position_content``), all
computed by the engine (:mod:`.views`) and sent as binary arrays (:mod:`._payloads` builds what
each trait and reply carries; :mod:`._export` draws ``figure()`` and writes ``save_html()``):

* ``effect["first_reached"]`` — int32 ``[P]``, :func:`views.first_reached` of the pinned map;
* ``profile`` — :func:`views.future_profile` of the atlas's KL for every source row, mean and max
  (``[S, P]`` each, by distance ``j - i``), filled when the view is shown and the atlas changes;
* ``similarity`` — :func:`views.similarity` of the clean run (``[R, P, P]`` and ``[R, P]``),
  computed once per session when the view is first shown;
* ``position_content`` — :func:`lecture.position_content_for` the session (corpus prompts of
  about the prompt's length: massive dimensions, energy split, cosine by distance with its
  interval), computed on the job worker once per session when the view is first shown
  (``current_position_content`` holds the :class:`views.PositionContent`).

Every request is acknowledged at once (``{type: "ack", id}``) from the comm handler, so the front
end can tell a busy or dead kernel from a slow computation. Failures reply
``{type: "error", id, request, message}`` and set the ``error`` trait (words, not tracebacks).

Threads: requests run on one worker thread that always takes the *latest* pending request of
each type (a storm of 100 clicks computes a handful, ending with the last); the sweep runs on its
own thread. The engine's session lock keeps them from using the model at the same moment, and
the sweep releases it between positions, so a click during a sweep waits for at most one
position's batch. ipykernel's iopub socket is thread-safe, so traits set from these threads reach
the browser while the kernel's main thread stays free for new messages.

The instant overview (``estimate`` trait, :mod:`._estimate`): before a sweep starts (and when a
view opens) the job worker computes the attribution-patching estimate of every source cell —
one forward and one backward pass, ≈ 0.5 s on SmolLM2 at 33 tokens, one request remotely — and
the sweep waits for it, so the overview is painted from the estimate first (marked as one) and
each cell turns exact as the sweep reaches it. The atlas then carries ``agreement`` (Pearson,
Spearman and the worst cells of estimate vs exact so far; the overview draws the scatter and
outlines those cells). The overview metric (``overview_metric``) is the summed Δ log p of the
prompt's next tokens by default, the logit difference with a token pair: both have an
estimate. ``total_kl`` stays available, exact only: KL(clean ‖ new) has zero gradient at the
clean run, so its first-order estimate is identically 0 and none is shown. ``set`` and
``knockout`` write no value to linearise: the overview says so and fills from the sweep.

Changing ``kind``, ``site`` or ``logit_pair`` from either side recomputes the pinned effect and
restarts the sweep; changing ``source_prompt`` rebuilds the session first. For a remote session
the ``remote_status`` trait says what the server is doing ("waiting on the remote queue", …).
"""

from __future__ import annotations

import atexit
import pathlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t

from . import _export, _payloads, grid
from . import _widget_transplant as _pins
from ._jobs import LatestJobs
from ._widget_heads import HeadSweep

_STATIC = pathlib.Path(__file__).parent / "static"
_ESM = _STATIC / "widget.js"

#: the kinds the widget offers: all of grid.KINDS but "set", which needs a vector per cell that
#: the front end has no way to enter
WIDGET_KINDS = tuple(k for k in grid.KINDS if k != "set")
VIEWS = ("map", "first_reached", "profile", "similarity", "position_content", "heads")
#: the overview's summary per source cell (see "The instant overview" in the module docstring)
OVERVIEW_METRICS = ("logprob_delta", "logit_diff", "total_kl")
#: color palettes: "default" (viridis / RdBu), "contrast" (inferno / strong RdBu, black on white)
PALETTES = ("default", "contrast")


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
    """Stop every running sweep before the interpreter exits: a daemon thread killed inside a
    torch call aborts the process ("terminate called without an active exception")."""
    for w in list(_LIVE):
        w.cancel_sweep(wait=True)


def _esm():
    """The bundle's path (anywidget reads it), or a stub that says the build is missing."""
    if _ESM.exists():
        return _ESM
    return (
        "export default { render({ el }) { el.textContent = 'residual-widgets: the front end "
        "is not built (static/widget.js missing). Run `npm install && npm run build` in the "
        "repository, or reinstall the package.'; } };"
    )


def _words(exc: BaseException) -> str:
    """An exception as a sentence for the user (type name only when the message is empty; any
    API key redacted)."""
    from .remote import redact

    msg = redact(str(exc).strip())
    return msg if msg else type(exc).__name__


class ResidualExplorer(anywidget.AnyWidget):
    """Interactive residual-stream heatmaps for one :class:`Session`. See the module docstring.

    ``session_factory(prompt, source)`` builds a new session when the source prompt changes
    (``explore`` supplies one); without it the source box reports that it cannot be changed.
    """

    _esm = _esm()

    # what the prompt is
    prompt = t.Unicode("").tag(sync=True)
    source_prompt = t.Unicode("").tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    tokens = t.List(t.Unicode()).tag(sync=True)
    n_rows = t.Int(0).tag(sync=True)
    # settings
    kind = t.Unicode("zero").tag(sync=True)
    site = t.Unicode("resid").tag(sync=True)
    metric = t.Unicode("kl").tag(sync=True)  # strip: "kl" | "logprob"
    scale = t.Unicode("linear").tag(sync=True)  # "linear" | "log"
    #: "logprob_delta" (Σ Δlog p of the next tokens; the default without a token pair) |
    #: "logit_diff" (the default with one) | "total_kl" (exact only: no estimate exists)
    overview_metric = t.Unicode("logprob_delta").tag(sync=True)
    logit_pair = t.List(t.Unicode()).tag(sync=True)  # [] or [good, bad]
    # results
    selection = t.List(t.List(t.Int())).tag(sync=True)
    effect = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    atlas = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    #: the instant overview: attribution-patching estimate of every source cell (_estimate.py)
    estimate = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    progress = t.Dict({"done": 0, "total": 0, "running": False, "cancelled": False}).tag(sync=True)
    status = t.Unicode("idle").tag(sync=True)
    #: for a remote session: what the server is doing ("waiting on the remote queue", …), else ""
    remote_status = t.Unicode("").tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    # lecture views (see the module docstring)
    view = t.Unicode("map").tag(sync=True)
    view_row = t.Int(-1).tag(sync=True)  # -1: follow the hovered / pinned row
    profile = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    similarity = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    position_content = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    # heads view (the head sweep, _widget_heads.py) and transplanting (_widget_transplant.py)
    heads = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    heads_layer = t.Int(-1).tag(sync=True)  # -1: every layer
    #: a prompt of any length to transplant cells from ("": this prompt); not source_prompt,
    #: which must match the prompt's length and rebuilds the session
    transplant_prompt = t.Unicode("").tag(sync=True)
    transplant_source = t.Dict(allow_none=True, default_value=None).tag(sync=True)
    # presenting: larger fonts and cells for projectors; a high-contrast palette
    presentation = t.Bool(False).tag(sync=True)
    palette = t.Unicode("default").tag(sync=True)  # "default" | "contrast"

    #: seconds between atlas pushes while a sweep runs (progress is pushed every batch)
    atlas_push_interval = 0.3
    #: bytes the sweep's atlas may take (None: half of available memory); beyond it the maps are
    #: kept as float16, or not at all (the overview says which, and clicks compute maps)
    memory_budget: int | None = None
    #: seconds a sweep waits for the estimate of its settings before starting anyway
    estimate_wait_s = 120.0
    #: seconds a sweep goes on after the last view closed, in case one reopens (a page reload,
    #: a re-rendered output)
    orphan_grace_s = 10.0
    #: seconds without word from any view (views say "alive" every 5 s; hidden browser tabs
    #: only once a minute) after which the views count as gone, unless a cell is running (its
    #: messages wait in the queue) or ran in that time
    orphan_timeout_s = 150.0

    def __init__(
        self,
        session,
        *,
        prompt=None,
        kind: str = "zero",
        site: str = "resid",
        logit_diff=None,
        source=None,
        model_name: str = "",
        session_factory: Callable[[Any, Any], Any] | None = None,
        **kw,
    ):
        self.session = session
        self.current_effect = None  # engine Effect shown in `effect`
        self.current_atlas = None  # engine Atlas shown in `atlas`
        self._pins = _pins.Pins()  # undo history of the pinned effect
        self._heads = HeadSweep(self)  # the heads view's sweep (its atlas: self._heads.atlas)
        self.current_position_content = None  # views.PositionContent shown in `position_content`
        self.current_estimate = None  # engine Attribution shown in `estimate`
        self._estimate_key = None  # the settings whose estimate was last asked for
        self._estimate_ready = threading.Event()  # set: no estimate pending (the sweep waits)
        self._estimate_ready.set()
        self._factory = session_factory
        self._sweep_after_build = False  # start_sweep() before build_session() finished
        self._lock = threading.RLock()
        self._py_ids = 0
        self._sweep_thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._suspend = False
        self._views: dict[str, float] = {}  # client of each view now showing → when last heard
        self._orphaned = False  # the sweep was stopped because every view closed
        self._orphan_timer: threading.Timer | None = None
        _cells.hook()
        super().__init__(**kw)
        if (prompt is None or not isinstance(prompt, str)) and session is not None:
            prompt = "".join(str(x) for x in session.token_strings)
        with self.hold_sync():
            self.prompt = prompt
            self.source_prompt = source if isinstance(source, str) else ""
            self.model_name = model_name
            self.kind, self.site = kind, site
            self.logit_pair = [str(x) for x in logit_diff] if logit_diff else []
            if logit_diff and "overview_metric" not in kw:
                self.overview_metric = "logit_diff"
            if self.overview_metric not in OVERVIEW_METRICS:
                raise ValueError(
                    f"unknown overview_metric {self.overview_metric!r}; "
                    f"choose one of {', '.join(OVERVIEW_METRICS)}"
                )
            if session is not None:  # else build_session() follows (tokens/n_rows given)
                self._load_session_facts()
        self._watch_remote(session)
        self._jobs = LatestJobs(
            self._run_job, priority=("session", "rebuild", "intervene", "estimate", "lens")
        )
        self.on_msg(self._on_custom_msg)
        self.observe(self._on_settings, names=["kind", "site", "logit_pair"])
        self.observe(self._on_source, names=["source_prompt"])
        self.observe(self._on_view, names=["view"])
        self.observe(self._on_palette, names=["palette"])
        self.observe(
            lambda ch: self._submit("tsource", self._next_py_id(), ch["new"]),
            names=["transplant_prompt"],
        )
        if self.view != "map":
            self._on_view({"name": "view", "new": self.view})

    # ---- public API -----------------------------------------------------------------------------
    def select(self, cells, *, wait: bool = True):
        """Pin ``cells`` (one ``(row, pos)`` or a list): compute their effect and show it.
        Returns the :class:`Effect` when ``wait`` (the default)."""
        cells = [list(cells)] if _is_cell(cells) else [list(c) for c in cells]
        self._submit("intervene", self._next_py_id(), cells)
        if wait:
            self.wait(sweep=False)
            return self.current_effect

    def transplant(self, source_cell, target_cell, source=None, *, wait: bool = True):
        """Transplant ``source_cell`` of ``source`` (None: this prompt; a string: it becomes the
        ``transplant_prompt``) into ``target_cell`` and pin the result, as a drag does. Returns
        the :class:`Effect` when ``wait``."""
        if source is not None:
            self.transplant_prompt = source
        msg = {"source": "this" if source is None else "prompt"}
        msg.update(source_cell=list(source_cell), target_cell=list(target_cell))
        return self._pin(_pins.parse("transplant", msg), wait)

    def select_head(self, cell, *, wait: bool = True):
        """Intervene on head ``(layer, head, pos)`` with the widget's kind and pin the result."""
        return self._pin(_pins.parse("head", {"cell": list(cell)}), wait)

    def undo(self, *, wait: bool = True):
        """Show the previous pinned effect again (Ctrl+Z in the view)."""
        return self._pin(_pins.Pin("undo"), wait)

    def _pin(self, pin, wait: bool):
        self._submit("intervene", self._next_py_id(), pin)
        if wait:
            self.wait(sweep=False)
            return self.current_effect

    def start_sweep(self) -> None:
        """(Re)start the sweep for the current kind/site/token pair in a background thread."""
        if self.session is None:  # still being built: build_session() starts it
            self._sweep_after_build = True
            return
        self.cancel_sweep(wait=True, heads=False)
        self._cancel = threading.Event()
        self.request_estimate()
        kind, site, pair = self.kind, self.site, self._pair()
        self.progress = {"done": 0, "total": 0, "running": True, "cancelled": False}
        th = threading.Thread(
            target=self._sweep_main,
            args=(kind, site, pair, self._cancel),
            name="residual-widgets-sweep",
            daemon=True,
        )
        self._sweep_thread = th
        _LIVE.add(self)
        th.start()

    def request_estimate(self) -> None:
        """Compute the instant overview (attribution patching, :mod:`._estimate`) for the current
        settings on the job worker, unless it was already asked for; a sweep started now waits
        for it, so the estimate is painted before the first exact cell arrives."""
        if self.session is None:  # asked again once build_session() has a session
            return
        key = (id(self.session), self.kind, self.site, self._pair())
        if key == self._estimate_key:
            return
        self._estimate_key = key
        self._estimate_ready.clear()
        self._submit("estimate", self._next_py_id(), key)

    def build_session(self, make: Callable[[], Any], *, cell=None, sweep: bool = False) -> None:
        """Build the session on the job worker with ``make()`` (a widget made with ``session=None``
        shows its grid and tokens meanwhile, the status line saying so), then pin ``cell`` and,
        with ``sweep``, start the sweep. A failure reaches ``error`` in words; clicks queued
        meanwhile run once the session exists."""
        self._sweep_after_build = self._sweep_after_build or sweep
        self._submit("session", self._next_py_id(), make)
        if cell is not None:  # queued behind the session; a later select() replaces it
            self.selection = [list(cell)]
            self._submit("intervene", self._next_py_id(), [list(cell)])

    def cancel_sweep(self, wait: bool = False, heads: bool = True) -> None:
        """Stop a running sweep, and with ``heads`` the head sweep (partial atlases stay)."""
        if heads:
            self._heads.cancel(wait)
        self._cancel.set()
        th = self._sweep_thread
        if wait and th is not None and th is not threading.current_thread():
            th.join(timeout=60)

    def wait(self, timeout: float = 600.0, sweep: bool = True) -> ResidualExplorer:
        """Block until pending requests (and, with ``sweep``, the sweep) are finished."""
        t0 = time.monotonic()
        self._jobs.wait_idle(timeout)
        th = self._sweep_thread
        if sweep and th is not None:
            th.join(timeout=max(0.0, timeout - (time.monotonic() - t0)))
        return self

    def figure(self, overview: bool = False):
        """A plotly figure of what the widget shows (:mod:`._widget_figures`): the current view
        — the pinned effect's map, a lecture view, the heads — or, with nothing pinned or with
        ``overview=True``, the overview in ``overview_metric`` (estimated cells marked)."""
        from ._widget_figures import figure

        return figure(self, overview=overview)

    @property
    def current_overview(self):
        """The overview as an :class:`~.overview.Overview`: ``values`` ``[S, P]`` in
        ``overview_metric``, exact where swept, else the estimate (``estimated`` marks it)."""
        from ._widget_figures import current_overview

        return current_overview(self)

    def save_html(
        self, path, interactive: bool = False, max_bytes: int | None = None
    ) -> pathlib.Path:
        """Write a self-contained HTML file that opens offline (no kernel, no network). Returns
        the path.

        ``interactive=True``: the widget itself, explorable without a kernel — hover any swept
        source cell for its map (the sweep's maps are embedded as float16, or only the most
        important cells' maps when all would pass ``max_bytes``, default 24 MB; the page says
        which), click one to pin it, switch the views, read the recorded logit lens in the
        tooltips; what needs a kernel is greyed out. Otherwise: the plotly figures of the
        pinned effect and the overview (plotly.js embedded)."""
        return _export.save_html(self, path, interactive=interactive, max_bytes=max_bytes)

    def close(self):
        self.cancel_sweep()
        if self._orphan_timer is not None:
            self._orphan_timer.cancel()
        self._jobs.stop()
        super().close()

    # ---- views coming and going ----------------------------------------------------------------
    def _on_view_state(self, client: str, state) -> None:
        """A view opened, is alive or closed (comm handler). The sweep stops ``orphan_grace_s``
        after the last view closed, unless one opened again; a view opening (or heard from)
        after that restarts it. Silent views are noticed by the sweep thread (``_views_gone``)."""
        if state in ("open", "alive"):
            self._views[client] = time.monotonic()
            self.request_estimate()  # a view shows the estimate even without a sweep
            if self._orphan_timer is not None:
                self._orphan_timer.cancel()
                self._orphan_timer = None
            if self._orphaned:
                self._orphaned = False
                self.start_sweep()
            return
        if client not in self._views:  # never opened here (or already closed): not ours
            return
        del self._views[client]
        if self._views or not self.progress.get("running"):
            return
        if self._orphan_timer is not None:
            self._orphan_timer.cancel()
        self._orphan_timer = threading.Timer(self.orphan_grace_s, self._stop_orphaned)
        self._orphan_timer.daemon = True
        self._orphan_timer.start()

    def _stop_orphaned(self) -> None:
        self._orphan_timer = None
        if self._views or not self.progress.get("running"):
            return
        self._orphaned = True
        self.cancel_sweep()

    def _views_gone(self) -> bool:
        """Every view that opened has gone silent for ``orphan_timeout_s`` while the kernel was
        free to hear it (no cell running, none ended in that time)."""
        views = dict(self._views)
        if not views:
            return False
        now = time.monotonic()
        quiet = now - max(views.values()) > self.orphan_timeout_s
        return quiet and not _cells.running and now - _cells.ended > self.orphan_timeout_s

    # ---- messages from the front end ------------------------------------------------------------
    def _on_custom_msg(self, _widget, content, buffers=None):
        """Comm handler (kernel main thread): acknowledge, then queue or act. Never blocks."""
        if not isinstance(content, dict):
            return
        typ, rid = content.get("type"), content.get("id")
        if rid is not None:
            self.send({"type": "ack", "id": rid})
        try:
            if typ == "intervene":
                self._submit("intervene", rid, content.get("cells"))
            elif typ == "lens":
                self._submit("lens", rid, (content.get("cell"), content.get("key")))
            elif typ == "sweep":
                self.start_sweep()
            elif typ == "cancel":
                self.cancel_sweep()
            elif typ in ("transplant", "head", "undo"):  # pins, like intervene
                self._submit("intervene", rid, _pins.parse(typ, content))
            elif typ == "ping":
                self.send({"type": "pong", "id": rid})
            elif typ == "view":
                self._on_view_state(str(content.get("client", "")), content.get("state"))
            else:
                raise ValueError(f"unknown request type {typ!r}")
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the user in words
            self._fail(typ or "request", rid, exc)

    def _submit(self, typ: str, rid, arg) -> None:
        self._jobs.submit(typ, (rid, arg))

    def _next_py_id(self) -> str:
        self._py_ids += 1
        return f"py:{self._py_ids}"

    def _fail(self, typ: str, rid, exc: BaseException) -> None:
        msg = _words(exc)
        self.error = msg
        self.send({"type": "error", "id": rid, "request": typ, "message": msg})

    # ---- worker-thread jobs ---------------------------------------------------------------------
    def _run_job(self, typ: str, payload) -> None:
        rid, arg = payload
        self.status = "computing"
        try:
            if typ == "session":
                self._do_session(arg)
            elif self.session is None:
                raise RuntimeError(f"there is no session: {self.error or 'it was not built'}")
            elif typ == "intervene":
                self._do_intervene(rid, arg)
            elif typ == "lens":
                self._do_lens(rid, *arg)
            elif typ == "rebuild":
                self._do_rebuild(arg)
            elif typ == "position_content":
                self._do_position_content()
            elif typ == "estimate":
                self._do_estimate(arg)
            elif typ == "tsource":
                _pins.load_source(self, arg)
        except Exception as exc:  # noqa: BLE001 - a failed job is reported to the user in words
            self._fail(typ, rid, exc)
        finally:
            self.status = "sweeping" if self.progress.get("running") else "idle"

    def _do_intervene(self, rid, cells) -> None:
        if isinstance(cells, _pins.Pin):  # a transplant, a head, undo
            return _pins.run(self, rid, cells)
        if not cells:
            raise ValueError("no cells to intervene on")
        cells = [(int(r), int(p)) for r, p in cells]
        kind, site, pair = self.kind, self.site, self._pair()
        eff = self.session.intervene(
            cells, kind=kind, site=site, **({"logit_diff": pair} if pair else {})
        )
        _pins.show(self, eff, rid, eff.cells)

    def _do_lens(self, rid, cell, key) -> None:
        r, p = int(cell[0]), int(cell[1])
        clean = self.session.logit_lens((r, p), k=5)
        eff = self.current_effect
        inter = self.session.logit_lens((r, p), k=5, effect=eff) if eff is not None else None
        self.send(_payloads.lens_reply(rid, key, (r, p), clean, inter))

    def _do_estimate(self, key) -> None:
        from . import _estimate

        try:
            if key != self._estimate_key:  # settings changed since: a newer one is queued
                return
            _, kind, site, pair = key
            attr, note, caveat = _estimate.estimate_for(self.session, kind, site, pair)
            payload = _payloads.estimate_payload(
                attr, kind=kind, site=site, note=note, caveat=caveat
            )
            with self._lock:
                if key != self._estimate_key:
                    return
                self.current_estimate = attr
                self.estimate = payload
                atlas = self.current_atlas
                if atlas is not None and (atlas.kind, atlas.site) == (kind, site):
                    self._push_atlas(atlas, None)  # its agreement with the new estimate
        finally:
            if key == self._estimate_key:
                self._estimate_ready.set()

    def _do_rebuild(self, source) -> None:
        if self._factory is None:
            raise ValueError(
                "this widget was built from a Session, so its source prompt is "
                "fixed; use rw.explore(prompt, source=...) to edit it"
            )
        self.cancel_sweep(wait=True)
        self.session = self._factory(self.prompt, source or None)
        self._watch_remote(self.session)
        self.current_effect = None
        with self.hold_sync():
            self._load_session_facts()
            self.effect = None
            self.atlas = None
            self.profile = None
            self.similarity = None
            self.position_content = None
            self.current_position_content = None
            self.error = ""
        if self.view == "similarity":
            self._send_similarity()
        if self.view == "position_content":
            self._do_position_content()
        self._refresh()

    def _do_session(self, make) -> None:
        self.status = "loading the model and running the clean pass…"
        self.session = make()
        self._watch_remote(self.session)
        with self.hold_sync():
            self._load_session_facts()
            self.error = ""
        if self._sweep_after_build:
            self.start_sweep()
        elif self._views:
            self.request_estimate()
        if self.view == "heads":  # shown before there was a session to sweep
            self._heads.show()

    # ---- the sweep thread -----------------------------------------------------------------------
    def _sweep_main(self, kind, site, pair, cancel: threading.Event) -> None:
        last = [0.0]

        def progress(p):
            if self._views_gone():  # the page closed without a word (Voilà)
                self._views.clear()
                self._orphaned = True
                cancel.set()
            now = time.monotonic()
            self.progress = {
                "done": int(p.done),
                "total": int(p.total),
                "running": True,
                "cancelled": False,
            }
            if now - last[0] >= self.atlas_push_interval:
                last[0] = now
                self._push_atlas(p.atlas, cancel)

        self.status = "sweeping"
        t_end = time.monotonic() + self.estimate_wait_s  # the estimate is painted first
        while not self._estimate_ready.wait(0.1) and not cancel.is_set():
            if time.monotonic() > t_end:
                break
        try:
            kw = {"logit_diff": pair} if pair else {}
            if self.memory_budget is not None:
                kw["memory_budget"] = self.memory_budget
            atlas = self.session.sweep(kind=kind, site=site, progress=progress, cancel=cancel, **kw)
            self._push_atlas(atlas, None)
            done = int(atlas.done.sum())
            self.progress = {
                "done": done,
                "total": int(atlas.done.size),
                "running": False,
                "cancelled": not atlas.complete,
            }
        except Exception as exc:  # noqa: BLE001 - a failed sweep is reported to the user in words
            self.progress = {**self.progress, "running": False}
            self._fail("sweep", None, exc)
        finally:
            if self._sweep_thread is threading.current_thread():
                self.status = "idle"

    def _push_atlas(self, atlas, cancel) -> None:
        if cancel is not None and cancel.is_set():
            return
        with self._lock:
            self.current_atlas = atlas
            est = self.current_estimate
            self.atlas = _payloads.atlas_payload(atlas, _payloads.agreement_payload(est, atlas))
            if self.view == "profile":
                self._send_profile()

    # ---- lecture views --------------------------------------------------------------------------
    def _on_view(self, change) -> None:
        if change["new"] not in VIEWS:
            self._fail(
                "view",
                None,
                ValueError(f"unknown view {change['new']!r}; choose one of {', '.join(VIEWS)}"),
            )
            return
        try:
            if change["new"] == "similarity" and self.similarity is None:
                self._send_similarity()
            elif change["new"] == "position_content" and self.position_content is None:
                self._submit("position_content", self._next_py_id(), None)  # on the worker
            elif change["new"] == "profile":
                self._send_profile()
            elif change["new"] == "heads":
                self._heads.show()
        except Exception as exc:  # noqa: BLE001 - a failed view is reported to the user in words
            self._fail("view", None, exc)

    def _on_palette(self, change) -> None:
        if change["new"] not in PALETTES:
            self._fail(
                "palette",
                None,
                ValueError(
                    f"unknown palette {change['new']!r}; choose one of {', '.join(PALETTES)}"
                ),
            )
            self.palette = change["old"] if change["old"] in PALETTES else "default"

    def _send_similarity(self) -> None:
        self.similarity = _payloads.similarity_payload(self.session)

    def _do_position_content(self) -> None:
        from .lecture import position_content_for

        sess = self.session
        if self.current_position_content is not None:  # asked twice while computing: done
            return
        pc = position_content_for(sess)
        if sess is self.session:  # not rebuilt meanwhile
            self.current_position_content = pc
            self.position_content = _payloads.position_content_payload(pc)

    def _send_profile(self) -> None:
        atlas = self.current_atlas
        self.profile = None if atlas is None else _payloads.profile_payload(atlas)

    # ---- settings changes -----------------------------------------------------------------------
    def _on_settings(self, change) -> None:
        if self._suspend:
            return
        try:
            if change["name"] == "kind" and self.kind not in WIDGET_KINDS:
                raise ValueError(
                    f"unknown kind {self.kind!r}; choose one of {', '.join(WIDGET_KINDS)}"
                )
            if change["name"] == "site" and self.site not in grid.SITES:
                raise ValueError(
                    f"unknown site {self.site!r}; choose one of {', '.join(grid.SITES)}"
                )
            if change["name"] == "logit_pair" and self.logit_pair:
                self.session.token_pair(tuple(self.logit_pair))  # validates: one token each
        except Exception as exc:  # noqa: BLE001 - a bad setting is reported to the user in words
            self._fail(change["name"], None, exc)
            return
        self.error = ""
        self._refresh()

    def _on_source(self, change) -> None:
        if not self._suspend:
            self._submit("rebuild", self._next_py_id(), change["new"])

    def _refresh(self) -> None:
        """Recompute the pinned effect and restart the sweep for the current settings."""
        if self.session is None:  # build_session() pins and sweeps with the settings of then
            return
        rows = (
            self.session.n_rows
            if self.site == "resid" and self.kind != "knockout"
            else self.session.n_layers
        )
        cells = [c for c in self.selection if c[0] < rows]
        if _pins.resubmit(self):  # a transplant or a head: recomputed as it was made
            pass
        elif cells:
            self._submit("intervene", self._next_py_id(), cells)
        else:
            self.current_effect = None
            self.effect = None
        self._heads.reset()  # only when its kind, pair or session changed
        had_sweep = self._sweep_thread is not None
        self.current_atlas = None
        self.atlas = None
        self.profile = None
        self.current_estimate = None
        self.estimate = None
        self.request_estimate()
        if had_sweep:
            self.start_sweep()

    # ---- helpers --------------------------------------------------------------------------------
    def _watch_remote(self, session) -> None:
        if getattr(session, "remote", None) is not None:
            from .remote import describe_status

            session.on_remote_status = lambda st: setattr(
                self, "remote_status", describe_status(st)
            )

    def _pair(self):
        return tuple(self.logit_pair) if len(self.logit_pair) == 2 else None

    def _load_session_facts(self) -> None:
        s = self.session
        self.tokens = [str(x) for x in s.token_strings]
        self.n_rows = int(s.n_rows)


def _is_cell(x) -> bool:
    return (
        isinstance(x, (tuple, list))
        and len(x) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in x)
    )
