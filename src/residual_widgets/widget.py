"""The notebook widget: synced view state in traits, requests routed to a :class:`Session`.

The widget computes nothing itself. It holds what a view needs to repaint (tokens, settings, the
pinned :class:`~.effects.Effect` and the sweep's :class:`~.effects.Atlas` as binary arrays) and
turns front-end requests into engine calls. This module is the class: its traits, its public
methods and thin routes; the routes' work lives beside it, one job per module:

=============================  ===============================================================
module                         what
=============================  ===============================================================
:mod:`._widget_jobs`           the comm handler (the request table) and the job worker
:mod:`._widget_sweep`          the sweep thread; the instant estimate painted before it
:mod:`._widget_liveness`       views coming and going: a sweep no view shows stops
:mod:`._widget_lecture`        what each ``view`` computes (profile, similarity, position/content)
:mod:`._widget_settings`       kind / site / token pair / source prompt changes; sessions
:mod:`._widget_transplant`     the pinned effect: cells, transplants, heads, undo
:mod:`._widget_heads`          the heads view's head sweep
:mod:`._widget_figures`        ``figure()``: what the widget shows, as plotly
:mod:`._export`                ``save_html()``: plotly page or the explorable page
:mod:`._payloads`              what each trait and reply carries (binary float32 arrays)
=============================  ===============================================================

Lecture views (``view`` trait: ``map`` | ``first_reached`` | ``profile`` | ``similarity`` |
``position_content`` | ``heads``), all computed by the engine (:mod:`.views`) and sent as binary
arrays:

* ``effect["first_reached"]`` — int32 ``[P]``, :func:`views.first_reached` of the pinned map;
* ``profile`` — :func:`views.future_profile` of the atlas's KL for every source row, mean and max
  (``[S, P]`` each, by distance ``j - i``), filled when the view is shown and the atlas changes;
* ``similarity`` — :func:`views.similarity` of the clean run (``[R, P, P]`` and ``[R, P]``),
  computed once per session when the view is first shown;
* ``position_content`` — :func:`lecture.position_content_for` the session (corpus prompts of
  about the prompt's length: massive dimensions, energy split, cosine by distance with its
  interval), computed on the job worker once per session when the view is first shown
  (``current_position_content`` holds the :class:`views.PositionContent`).

Threads: requests run on one worker thread that always takes the *latest* pending request of
each type; the sweep runs on its own thread. The engine's session lock keeps them from using
the model at the same moment. ipykernel's iopub socket is thread-safe, so traits set from these
threads reach the browser while the kernel's main thread stays free for new messages.

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

import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t

from . import _export
from . import _widget_jobs as jobs
from . import _widget_lecture as lect
from . import _widget_settings as settings
from . import _widget_sweep as sweep
from . import _widget_transplant as _pins
from ._jobs import LatestJobs
from ._widget_heads import HeadSweep
from ._widget_lecture import PALETTES, VIEWS  # noqa: F401 - part of this module's API
from ._widget_liveness import _LIVE, _cells, _stop_all  # noqa: F401 - tests patch _cells
from ._widget_settings import WIDGET_KINDS  # noqa: F401 - part of this module's API

_STATIC = pathlib.Path(__file__).parent / "static"
_ESM = _STATIC / "widget.js"

#: the overview's summary per source cell (see "The instant overview" in the module docstring)
OVERVIEW_METRICS = ("logprob_delta", "logit_diff", "total_kl")


def _esm():
    """The bundle's path (anywidget reads it), or a stub that says the build is missing."""
    if _ESM.exists():
        return _ESM
    return (
        "export default { render({ el }) { el.textContent = 'residual-widgets: the front end "
        "is not built (static/widget.js missing). Run `npm install && npm run build` in the "
        "repository, or reinstall the package.'; } };"
    )


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
    heads_positions = t.Unicode("by_pos").tag(sync=True)  # "by_pos" | "all" (_widget_heads)
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
                settings.load_session_facts(self)
        settings.watch_remote(self, session)
        self._jobs = LatestJobs(
            lambda typ, payload: jobs.run_job(self, typ, payload), priority=jobs.PRIORITY
        )
        self.on_msg(self._on_custom_msg)
        self.observe(
            lambda ch: settings.on_settings(self, ch), names=["kind", "site", "logit_pair"]
        )
        self.observe(lambda ch: settings.on_source(self, ch), names=["source_prompt"])
        self.observe(lambda ch: lect.on_view(self, ch), names=["view"])
        self.observe(lambda ch: lect.on_palette(self, ch), names=["palette"])
        self.observe(lambda ch: self._heads.reset(), names=["heads_positions"])
        self.observe(
            lambda ch: self._submit("tsource", self._next_py_id(), ch["new"]),
            names=["transplant_prompt"],
        )
        if self.view != "map":
            lect.on_view(self, {"name": "view", "new": self.view})

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

    def select_head(self, cell, *, positions=None, wait: bool = True):
        """Intervene on head ``(layer, head, pos)`` with the widget's kind and pin the result;
        ``positions="all"``: head ``(layer, head)`` at every position."""
        msg = {"cell": list(cell), **({"positions": positions} if positions else {})}
        return self._pin(_pins.parse("head", msg), wait)

    def undo(self, *, wait: bool = True):
        """Show the previous pinned effect again (Ctrl+Z in the view)."""
        return self._pin(_pins.Pin("undo"), wait)

    def _pin(self, pin, wait: bool):
        self._submit("intervene", self._next_py_id(), pin)
        if wait:
            self.wait(sweep=False)
            return self.current_effect

    def start_sweep(self) -> None:
        """(Re)start the sweep for the current kind/site/token pair in a background thread
        (:mod:`._widget_sweep`)."""
        if self.session is None:  # still being built: build_session() starts it
            self._sweep_after_build = True
            return
        sweep.start(self)

    def request_estimate(self) -> None:
        """Compute the instant overview (attribution patching, :mod:`._estimate`) for the current
        settings on the job worker, unless it was already asked for; a sweep started now waits
        for it, so the estimate is painted before the first exact cell arrives."""
        sweep.request_estimate(self)

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

    # ---- routes (the work: the _widget_* modules) -----------------------------------------------
    def _on_view_state(self, client: str, state) -> None:
        """A view opened, is alive or closed (:func:`._widget_liveness.on_view_state`)."""
        from ._widget_liveness import on_view_state

        on_view_state(self, client, state)

    def _on_custom_msg(self, _widget, content, buffers=None):
        """Comm handler (kernel main thread): :func:`._widget_jobs.on_custom_msg`."""
        jobs.on_custom_msg(self, content)

    def _submit(self, typ: str, rid, arg) -> None:
        self._jobs.submit(typ, (rid, arg))

    def _next_py_id(self) -> str:
        self._py_ids += 1
        return f"py:{self._py_ids}"

    def _fail(self, typ: str, rid, exc: BaseException) -> None:
        from .remote import in_words

        msg = in_words(exc)
        self.error = msg
        self.send({"type": "error", "id": rid, "request": typ, "message": msg})

    def _pair(self):
        return tuple(self.logit_pair) if len(self.logit_pair) == 2 else None


def _is_cell(x) -> bool:
    return (
        isinstance(x, (tuple, list))
        and len(x) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in x)
    )
