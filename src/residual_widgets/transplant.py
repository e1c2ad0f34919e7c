"""Transplant: copy one cell of any run into any cell of this prompt, and watch what follows.

Activation patching (``Session.patch``) asks "does cell ``(n, i)`` matter?": it copies the same
cell from a source prompt of the same length. A *transplant* lifts both limits. It takes the
vector at ``source_cell = (row, pos)`` in the run of **any** source prompt (any length, or this
prompt itself) and writes it into ``target_cell = (row', pos')`` of this prompt, where ``row'``
and ``pos'`` may differ from ``row`` and ``pos``::

    source prompt  "Paris"                         this prompt  "cat -> cat; ...; ? ->"
    row 12  [ . . h ]   ──── copy h ─────────────►  row 12  [ . . . . . . . h . ]
                                                                          ↑ placeholder "?"

Then everything downstream of the target is recomputed, exactly like any other intervention,
and measured against this prompt's clean run: an :class:`~.effects.Effect` with
``kind="transplant"``, ``cells == [target_cell]`` and the cone of the target.

Two uses:

* **"What does this hidden state encode?"** (Patchscopes, Ghandeharioun et al. 2024): put the
  last-token state of an entity into the placeholder of an *inspection* prompt that makes the
  model repeat whatever sits there, and read what it says (``examples/patchscope.ipynb``).
  Writing layer ``ℓ``'s state into another row is Patchscopes' cross-layer case.
* **Patch Lens-style drags**: move a cell to another position or layer of the same prompt
  (``source=None``) to see whether the information is position- or layer-specific.

How: the write is the ``set`` kind of :meth:`Session.intervene` with the source vector as
``value``, so it runs on exactly the machinery every other intervention uses (locally or
remotely). Rows are residual rows ``0..L`` for ``site="resid"`` and blocks ``0..L-1`` for
``attn_out``/``mlp_out`` (what that block's attention/MLP wrote); source and target use the same
site. A vector written where it already is changes nothing: the effect is then built from the
clean run itself, so ``transplant(None, c, c)`` is exactly zero everywhere.

The source run (every residual row ``[L + 1, P_src, d]``, and what the blocks wrote when the site
needs it) is computed once per source prompt, keyed by its token ids, and kept in a small cache
on the session (the last :data:`CACHE_SIZE` prompts); this prompt's own clean run and the
session's ``source`` run are reused as they are. Remotely, one traced request fetches a source
prompt's activations.

Many transplants at once (a Patchscope's every row and entity): :meth:`Session.transplant_many`
(:mod:`.transplant_batch`) steps them through the cone together, one batch per target position,
with the same results.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from . import grid
from . import remote as rm
from .effects import Effect
from .runs import RunRecord

#: how many source prompts' runs a session keeps (least recently used dropped first)
CACHE_SIZE = 32

#: the sites a transplant can address (a cell is ``(row, pos)`` on each)
TRANSPLANT_SITES = ("resid", "attn_out", "mlp_out")


def transplant(
    sess, source, source_cell, target_cell, *, site: str = "resid", logit_diff=None
) -> Effect:
    """Write ``source_cell`` of ``source``'s run into ``target_cell`` of ``sess``'s prompt.

    ``source``: a string, a 1-D sequence of token ids, or ``None`` (this prompt). Cells are
    ``(row, pos)``; rows are residual rows ``0..L`` for ``site="resid"``, blocks ``0..L-1`` for
    ``"attn_out"``/``"mlp_out"``. Returns the :class:`Effect` measured against the clean run.
    Every input is validated before anything runs, so an error leaves the session as it was.
    """
    src_ids, src_name, n_rows = source_prompt(sess, source, site)
    s_row, s_pos = check_cell(source_cell, "source_cell", src_name, len(src_ids), n_rows, site)
    t_row, t_pos = check_cell(
        target_cell, "target_cell", "this prompt", sess.n_positions, n_rows, site
    )
    pair = sess.token_pair(logit_diff) if logit_diff is not None else sess.default_pair
    run = source_run(sess, src_ids, site)
    vec = sess._acts(run, src_ids, site)[s_row, s_pos].clone()
    cells = [(t_row, t_pos)]
    if torch.equal(vec, sess.site_acts(site)[t_row, t_pos]):  # the value already there
        return sess._effect(cells, "transplant", site, sess.clean, pair)
    eff = sess.intervene(cells, kind="set", site=site, value=vec[None], logit_diff=logit_diff)
    eff.kind = "transplant"
    return eff


def source_prompt(sess, source, site: str) -> tuple[list[int], str, int]:
    """Check ``site`` and tokenize ``source``: its ids, how errors name it, and how many rows
    ``site`` has (residual rows ``0..L`` or blocks ``0..L-1``)."""
    if site not in TRANSPLANT_SITES:
        raise ValueError(
            f"unknown site {site!r} for a transplant; valid sites are {', '.join(TRANSPLANT_SITES)}"
        )
    if source is None:
        src_ids, src_name = sess.ids, "this prompt (the source is None)"
    else:
        src_ids, src_name = sess._tokenize(source, "source prompt"), "the source prompt"
    n_rows = grid.n_source_rows(site, sess.n_layers)
    return src_ids, src_name, n_rows


def check_cell(cell, what: str, prompt: str, n_pos: int, n_rows: int, site: str):
    """``cell`` as ``(row, pos)`` ints, or an error naming ``what``, the ``prompt`` it lies in and
    that prompt's length."""
    if not (
        isinstance(cell, (tuple, list)) and len(cell) == 2 and all(grid._is_int(x) for x in cell)
    ):
        raise TypeError(f"{what} must be a (row, position) pair of ints, got {cell!r}")
    r, p = int(cell[0]), int(cell[1])
    unit = "row" if site == "resid" else "block"
    if r < 0 or p < 0:
        raise ValueError(
            f"{what} {(r, p)} has a negative index (indices are not wrapped): use {unit}s "
            f"0..{n_rows - 1} and positions 0..{n_pos - 1} of {prompt} ({n_pos} tokens)"
        )
    if r >= n_rows:
        raise ValueError(
            f"{what} {(r, p)}: {unit} {r} is out of range for site {site!r}; valid {unit}s "
            f"are 0..{n_rows - 1}"
        )
    if p >= n_pos:
        raise ValueError(
            f"{what} {(r, p)}: position {p} is outside {prompt}, which has {n_pos} tokens "
            f"(positions 0..{n_pos - 1})"
        )
    return r, p


def source_run(sess, ids: list[int], site: str = "resid") -> RunRecord:
    """The run of ``ids`` on ``sess``'s model: this prompt's clean run, the session's source run,
    or a cached run of another prompt (computed on first use; with what the blocks wrote when
    ``site`` needs it, so a remote source costs one request)."""
    if list(ids) == sess.ids:
        return sess.clean
    if sess.source is not None and list(ids) == sess.source_ids:
        return sess.source
    cache: OrderedDict = sess.__dict__.setdefault("_transplant_runs", OrderedDict())
    key = tuple(ids)
    with sess.lock:
        run = cache.get(key)
        if run is None:
            run = sess._run(list(ids), save_writes=site != "resid" or not rm.is_remote(sess.remote))
            cache[key] = run
            while len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
        cache.move_to_end(key)
    return run
