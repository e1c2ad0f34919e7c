"""A Session: one prompt (and optionally a source prompt) on one model, clean run cached.

    sess = Session(model, "When Mary and John went to the store, John gave a drink to")
    eff = sess.ablate((5, 3), kind="zero")        # Effect: resid_delta [R, P], kl [P], ...
    atlas = sess.sweep(logit_diff=(" Mary", " John"))

Creating a session tokenizes the prompt, validates it, and runs the clean pass once (one nnsight
trace that records every residual row and what every block wrote). Interventions are compared
against that clean run. A session stays usable after any error raised by bad input: nothing is
mutated before the input is validated.

The class holds the state (model, ids, the clean and source runs, caches, the lock) and thin
methods; the work is beside it: checking inputs (:mod:`._session_inputs`), interventions and
their effects (:mod:`._session_intervene`, the cone in :mod:`.click`), the logit lens
(:mod:`._session_lens`), the sweep (:mod:`.sweep`), attribution (:mod:`.attribution`),
transplants (:mod:`.transplant`) and heads (:mod:`.heads`, :mod:`.head_sweep`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from . import _session_intervene as _iv
from . import grid
from . import remote as rm
from ._session_inputs import check_cells, token_pair, tokenize
from .effects import Atlas, Effect
from .models import LoadedModel, load_model
from .runs import RunRecord, traced_run
from .stepper import Stepper


class Session:
    """One prompt on one model. See the module docstring.

    Parameters: ``model`` (anything :func:`load_model` accepts), ``prompt`` and ``source`` (a string
    or a 1-D sequence of token ids), ``logit_diff`` (default token pair ``(good, bad)``, strings or
    ids, each a single token), ``mean_reference`` (extra prompts whose positions join the mean for
    ``kind="mean"``), ``noise_scale`` and ``seed`` (for ``kind="noise"``).

    ``remote`` (default: the model's own, see :func:`load_model`): ``None`` runs here, ``"local"``
    runs nnsight's remote path in-process, ``True`` or a host URL runs every trace on that
    server; ``timeout`` (seconds, queue included) bounds each remote request. While a remote
    request waits, ``on_remote_status`` (if set) is called with the server's status and
    ``remote_status`` holds the latest.
    """

    def __init__(
        self,
        model,
        prompt,
        source=None,
        *,
        logit_diff=None,
        mean_reference=None,
        noise_scale: float = 3.0,
        seed: int = 0,
        prepend_bos: bool = False,
        remote="model",
        timeout: float | None = None,
    ):
        self.model: LoadedModel = load_model(model)
        self.remote = self.model.remote if remote == "model" else (remote or None)
        self.timeout = timeout
        self.remote_status = ""
        self.on_remote_status: Callable[[str], None] | None = None
        self.prepend_bos = prepend_bos
        self.ids = self._tokenize(prompt, "prompt")
        self.source_ids = self._tokenize(source, "source") if source is not None else None
        if self.source_ids is not None and len(self.source_ids) != len(self.ids):
            raise ValueError(
                f"the source tokenizes to {len(self.source_ids)} tokens but the prompt "
                f"to {len(self.ids)}; patching needs equal lengths"
            )
        self.default_pair = self.token_pair(logit_diff) if logit_diff is not None else None
        self.noise_scale, self.seed = float(noise_scale), int(seed)
        self.lock = self.model.lock  # one forward at a time, shared by every session
        # a remote session fetches what the blocks wrote (2·L·P·d floats) only when a site or
        # kind first needs it; a local one records everything in the clean pass
        eager = not rm.is_remote(self.remote)
        self.clean: RunRecord = self._run(self.ids, save_writes=eager)
        self.clean_logprobs = torch.log_softmax(self.clean.logits, dim=-1)
        self.source: RunRecord | None = (
            self._run(self.source_ids, save_writes=eager) if self.source_ids is not None else None
        )
        self._references = [
            (self._run(ids, save_writes=eager), ids)
            for ids in [self._tokenize(p, "reference") for p in mean_reference or ()]
        ]
        self._mean_cache: dict[str, torch.Tensor] = {}
        self.sigma = float(self.clean.resid[0].std())
        self._stepper: Stepper | None = None
        self._stepper_refused: str | None = None  # why clicks trace instead (see .click)
        self._traced_clicks = 0  # the first click traces rather than wait for the stepper
        self._lens_cache: dict = {}  # remote skeleton: clean lens by cell

    # ---- basic facts --------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return self.model.n_layers

    @property
    def n_rows(self) -> int:
        return self.model.n_layers + 1

    @property
    def n_positions(self) -> int:
        return len(self.ids)

    @property
    def token_strings(self) -> list[str]:
        """The prompt's tokens as text (leading spaces and newlines kept)."""
        return [self.model.tokenizer.decode([t]) for t in self.ids]

    tokens = token_strings

    def __repr__(self) -> str:
        return f"Session({self.model!r}, P={self.n_positions}, source={self.source is not None})"

    # ---- input handling -----------------------------------------------------------------------
    def _tokenize(self, prompt, what: str) -> list[int]:
        """``prompt`` as checked token ids (:func:`._session_inputs.tokenize`)."""
        return tokenize(self, prompt, what)

    def token_pair(self, pair) -> tuple[int, int]:
        """``(good, bad)`` as token ids; strings must each be exactly one token."""
        return token_pair(self, pair)

    def _acts(self, run: RunRecord, ids, site: str) -> torch.Tensor:
        if site == "resid":
            return run.resid
        if run.writes is None:  # remote: fetched on first use, then kept
            with self.lock:
                if run.writes is None:
                    run.writes = self._run(ids, save_writes=True).writes
        return run.writes[site]

    def _mean(self, site: str) -> torch.Tensor:
        """Per-row mean ``[rows, d]`` of ``site`` over the positions of the prompt and of the
        ``mean_reference`` prompts."""
        if site not in self._mean_cache:
            acts = [self._acts(self.clean, self.ids, site)]
            acts += [self._acts(run, ids, site) for run, ids in self._references]
            self._mean_cache[site] = torch.cat(acts, dim=1).mean(dim=1)
        return self._mean_cache[site]

    def site_acts(self, site: str, which: str = "clean") -> torch.Tensor | None:
        """Activations ``[rows, P, d]`` of a site in the clean or source run."""
        if which == "clean":
            return self._acts(self.clean, self.ids, site)
        return None if self.source is None else self._acts(self.source, self.source_ids, site)

    # ---- interventions ------------------------------------------------------------------------
    def values_for(self, cells, kind: str, site: str, value=None) -> torch.Tensor:
        """The vectors ``[n_cells, d]`` an intervention of ``kind`` writes into ``cells``
        (``[n_cells, d_head]`` for ``site="head"``)."""
        return _iv.values_for(self, cells, kind, site, value)

    def check(self, cells, kind: str, site: str) -> list[grid.Cell]:
        """``cells`` checked against the grid of ``site`` (:func:`._session_inputs.check_cells`)."""
        return check_cells(self, cells, kind, site)

    def intervene(
        self,
        cells,
        kind: str = "zero",
        site: str = "resid",
        *,
        value=None,
        logit_diff=None,
        blocks=None,
        method: str = "auto",
    ) -> Effect:
        """Replace ``cells`` of ``site`` by ``kind`` and measure everything downstream.

        ``blocks`` (``kind="knockout"`` only): remove the edges to each cell's position only in
        these blocks (those ``≥`` the cell's row; default: every block from the row up).

        ``method`` (every other kind): ``"cone"`` recomputes only rows ≥ the lowest cell's, at
        positions ≥ the leftmost one's (:mod:`.click`); ``"trace"`` runs one full nnsight trace;
        ``"auto"`` takes the cone where the model steps locally, else the trace (equal to float32
        rounding: within 1e-5 on the tested families).

        ``site="head"``: cells are ``(layer, head, pos)`` triples (:mod:`.heads`; the cone:
        :mod:`.head_click`)."""
        return _iv.intervene(
            self,
            cells,
            kind,
            site,
            value=value,
            logit_diff=logit_diff,
            blocks=blocks,
            method=method,
        )

    def _run(self, ids, edits=(), save_writes=False) -> RunRecord:
        return traced_run(
            self.model,
            ids,
            edits,
            save_writes=save_writes,
            remote=self.remote,
            timeout=self.timeout,
            on_status=self.note_status,
        )

    def stepper(self) -> Stepper:
        """The cone stepper for this prompt (built and self-checked on first use, then kept).
        Raises :class:`~.stepper.UnsupportedStepping` when the model's blocks cannot be stepped."""
        with self.lock:
            if self._stepper is None:
                self._stepper = Stepper(self.model, self.ids, self.clean.resid, self.clean.logits)
        return self._stepper

    def note_status(self, status: str) -> None:
        """Record a remote request's status and pass it to ``on_remote_status``."""
        self.remote_status = status
        if self.on_remote_status is not None:
            self.on_remote_status(status)

    def ablate(self, cells, kind: str = "zero", site: str = "resid", **kw) -> Effect:
        """Ablate ``cells`` (``kind``: zero, mean or noise)."""
        return self.intervene(cells, kind=kind, site=site, **kw)

    def patch(self, cells, site: str = "resid", **kw) -> Effect:
        """Write the source run's activations into ``cells`` (activation patching)."""
        return self.intervene(cells, kind="patch", site=site, **kw)

    def _effect(self, cells, kind, site, run: RunRecord, pair) -> Effect:
        return _iv.effect_of(self, cells, kind, site, run, pair)

    # ---- logit lens ---------------------------------------------------------------------------
    def logit_lens(self, cell, k: int = 5, effect: Effect | None = None) -> list[tuple[str, float]]:
        """Top-``k`` next tokens read from residual cell ``(row, pos)`` through the final norm and
        unembedding, in the clean run or (with ``effect``) under that intervention. For a remote
        model without local weights the unembedding runs on the server (one small request;
        clean cells are cached)."""
        from ._session_lens import logit_lens

        return logit_lens(self, cell, k, effect)

    # ---- sweep --------------------------------------------------------------------------------
    def sweep(
        self,
        kind: str = "zero",
        site: str = "resid",
        *,
        logit_diff=None,
        rows=None,
        positions=None,
        progress: Callable | None = None,
        cancel: threading.Event | None = None,
        method: str = "auto",
        keep_maps="auto",
        memory_budget: int | None = None,
        cells_per_request: int | None = None,
        timeout: float | None = None,
    ) -> Atlas:
        """Intervene on every cell (or the given ``rows`` × ``positions``) one at a time.

        Returns an :class:`Atlas`. ``method``: ``"cone"`` (recompute only the causal cone, batched),
        ``"batch"`` (many cells per nnsight trace, metrics reduced in the trace — the remote
        path), ``"loop"`` (one nnsight trace per cell), or ``"auto"`` (cone when the model
        supports it, batch for a remote session). ``progress`` is called with a
        :class:`~.sweep.SweepProgress` after each batch (and, remotely, on each server status);
        setting ``cancel`` stops early and returns a partial atlas (``complete=False``).
        ``keep_maps``: ``"auto"`` keeps the ``[S, P, R, P]`` maps as float32, else float16, else
        none, whichever fits ``memory_budget`` bytes (default half of available memory; the
        choice is ``atlas.storage``); ``True`` insists on float32; ``False`` keeps summaries
        only. ``cells_per_request``/``timeout``: batch size and per-request time limit (s) of
        the batch method.
        """
        if site == grid.HEAD_SITE:  # (layer, head, pos) cells: rows are layers
            return self.sweep_heads(
                kind,
                logit_diff=logit_diff,
                layers=rows,
                positions=positions,
                progress=progress,
                cancel=cancel,
                method=method,
                keep_maps=keep_maps,
                memory_budget=memory_budget,
            )
        from .sweep import run_sweep

        return run_sweep(
            self,
            kind=kind,
            site=site,
            logit_diff=logit_diff,
            rows=rows,
            positions=positions,
            progress=progress,
            cancel=cancel,
            method=method,
            keep_maps=keep_maps,
            memory_budget=memory_budget,
            cells_per_request=cells_per_request,
            timeout=self.timeout if timeout is None else timeout,
        )

    # ---- attribution --------------------------------------------------------------------------
    def attribute(self, kind: str = "zero", site: str = "resid", logit_diff=None, **kw):
        """First-order estimate of every cell's effect from one forward + backward pass
        (attribution patching); returns an :class:`~.attribution.Attribution`. Options:
        :func:`.attribution.attribute`."""
        from .attribution import attribute

        return attribute(self, kind, site, logit_diff, **kw)

    # ---- transplant (issue 15) ----------------------------------------------------------------
    def transplant(
        self, source, source_cell, target_cell, *, site: str = "resid", logit_diff=None
    ) -> Effect:
        """Write cell ``source_cell = (row, pos)`` of the run of ``source`` (a prompt of any
        length, or ``None`` for this one) into ``target_cell`` of this prompt — rows and
        positions may differ — and measure the effect like :meth:`intervene` (kind
        ``"transplant"``). See :mod:`.transplant`."""
        from .transplant import transplant

        return transplant(self, source, source_cell, target_cell, site=site, logit_diff=logit_diff)

    def transplant_many(self, source, pairs, *, site: str = "resid", **kw) -> list:
        """:meth:`transplant` for many ``(source_cell, target_cell)`` pairs of one ``source``,
        stepped through the cone together (one Effect per pair, in order; ``reduce=`` keeps
        something lighter). See :mod:`.transplant_batch`."""
        from .transplant_batch import transplant_many

        return transplant_many(self, source, pairs, site=site, **kw)

    # ---- attention heads (issue 15) -----------------------------------------------------------
    @property
    def n_heads(self) -> int:
        """Query heads per block (the ``head`` of a ``site="head"`` cell; see :mod:`.heads`)."""
        from .heads import layout

        return layout(self.model).n_heads

    @property
    def d_head(self) -> int:
        """Width of one head's output ``z`` (what ``kind="set"`` writes at ``site="head"``)."""
        from .heads import layout

        return layout(self.model).d_head

    def sweep_heads(self, kind: str = "zero", *, positions=None, **kw):
        """Intervene on every attention head ``(layer, head, pos)`` one at a time; returns a
        :class:`~.head_sweep.HeadAtlas` (arrays ``[L, H, P, ...]``). ``positions="all"``: each
        head at every position at once (``[L, H, ...]``); with ``from_position=s``, at positions
        ``s..P-1`` at once (positions ``< s`` stay clean). Options (``layers``, ``heads``,
        ``logit_diff``, ``method``, ``keep_maps``, ...): :func:`.head_sweep.run_head_sweep`."""
        from .head_sweep import run_head_sweep

        return run_head_sweep(self, kind=kind, positions=positions, **kw)
