"""The grid: rows, positions, cells, sites, and the reachable cone.

Picture the classic residual-stream diagram: token positions run left to right, layers run
bottom to top. For a model with ``L`` blocks there are ``L + 1`` rows:

* row 0 is the residual entering block 0 (token embeddings, plus positional embeddings where the
  architecture adds them, after any embedding scaling);
* row ``k`` (1 ≤ k ≤ L) is the residual leaving block ``k - 1``.

So rows ``0..L-1`` are exactly TransformerLens's ``blocks.{k}.hook_resid_pre`` and row ``L`` is
the final residual before the last norm and the unembedding.

A **cell** is ``(row, position)``. Interventions address cells at one of three **sites**:

* ``"resid"``: the residual stream itself, rows ``0..L``;
* ``"attn_out"`` / ``"mlp_out"``: what block ``k``'s attention / MLP writes into the residual
  (after any post-norm the block applies before adding), rows ``0..L-1`` meaning *block* ``k``.

A fourth site, ``"head"`` (:mod:`.heads`), addresses single attention heads: a cell is then a
triple ``(layer, head, pos)`` — the output ``z`` of query head ``head`` at ``pos`` in block
``layer``, before the output projection. It enters the residual where block ``layer``'s
attention writes, row ``layer + 1``. It is not in ``SITES`` (the block sites every view and sweep
of ``(row, pos)`` cells offers); :func:`normalize_head_cells` validates its cells.

The kind ``"knockout"`` is not a value written into a cell but the removal of attention edges:
knocking out ``(n, i)`` stops every later position from reading position ``i`` through attention
in blocks ``n..L-1``; position ``i`` itself and everything below row ``n`` are untouched.

**The cone.** Information moves up (to later rows) and right (to later positions, through
attention reading the keys and values of earlier positions), never down or left. A change at
residual cell ``(n, i)`` can therefore reach only the cell itself and the cells at rows above
``n`` and positions ``≥ i``. A change to what block ``k`` writes at position ``i`` first appears in
row ``k + 1`` at position ``i`` and from there spreads like a residual change at ``(k + 1, i)``.
Cells outside the cone are unchanged *exactly*, and every effect array reports 0.0 there.

Indices are plain non-negative integers: negative (Python-style) indices are rejected with an
error rather than silently wrapped, since ``-1`` as a layer is ambiguous between "last block"
and "last row".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

SITES = ("resid", "attn_out", "mlp_out")
HEAD_SITE = "head"  # cells (layer, head, pos): see heads.py
KINDS = ("zero", "mean", "noise", "patch", "resample", "set", "knockout")

Cell = tuple[int, int]
HeadCell = tuple[int, int, int]


def n_source_rows(site: str, n_layers: int) -> int:
    """How many rows a site has as intervention targets: ``L + 1`` for resid, ``L`` otherwise."""
    check_site(site)
    return n_layers + 1 if site == "resid" else n_layers


def check_site(site: str) -> str:
    if site not in SITES:
        raise ValueError(f"unknown site {site!r}; valid sites are {', '.join(SITES)}")
    return site


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid kinds are {', '.join(KINDS)}")
    return kind


def normalize_cells(cells, n_rows: int, n_positions: int, site: str = "resid") -> list[Cell]:
    """Turn one cell or an iterable of cells into a validated list of ``(row, pos)`` tuples.

    ``n_rows`` is the number of addressable rows *for this site*. Raises ``TypeError`` for
    things that are not cells and ``ValueError`` for out-of-range, negative or duplicate cells,
    naming the valid range.
    """
    if isinstance(cells, tuple) and len(cells) == 2 and all(_is_int(c) for c in cells):
        cells = [cells]
    if isinstance(cells, (str, bytes)) or not isinstance(cells, Iterable):
        raise TypeError(f"cells must be a (row, position) tuple or a list of them, got {cells!r}")
    out: list[Cell] = []
    for c in cells:
        if not (isinstance(c, (tuple, list)) and len(c) == 2 and all(_is_int(x) for x in c)):
            raise TypeError(f"each cell must be a (row, position) pair of ints, got {c!r}")
        r, p = int(c[0]), int(c[1])
        what = "block" if site != "resid" else "row"
        if r < 0 or p < 0:
            raise ValueError(
                f"negative index in cell {tuple(c)}: indices are not wrapped; use {what}s "
                f"0..{n_rows - 1} and positions 0..{n_positions - 1}"
            )
        if r >= n_rows:
            raise ValueError(
                f"{what} {r} out of range for site {site!r}: valid {what}s are 0..{n_rows - 1}"
            )
        if p >= n_positions:
            raise ValueError(f"position {p} out of range: valid positions are 0..{n_positions - 1}")
        out.append((r, p))
    if not out:
        raise ValueError("no cells given: pass a (row, position) tuple or a non-empty list")
    if len(set(out)) != len(out):
        dups = sorted({c for c in out if out.count(c) > 1})
        raise ValueError(f"duplicate cells {dups}: list each cell once")
    return out


def entry_row(row: int, site: str) -> int:
    """The residual row where an intervention at ``(row, ·)`` of ``site`` first shows."""
    return row if site == "resid" else row + 1


def reachable_mask(
    cells: Sequence[Cell], n_layers: int, n_positions: int, site: str = "resid", kind: str = "zero"
) -> np.ndarray:
    """Bool ``[L + 1, P]``: residual cells an intervention on ``cells`` can possibly change.

    For a resid cell ``(n, i)``: the cell itself and rows ``> n`` at positions ``≥ i``.
    For an attn_out/mlp_out cell ``(k, i)``: ``(k + 1, i)`` and rows ``> k + 1`` at positions
    ``≥ i``.
    For a head cell ``(k, h, i)`` (``site="head"``): as for the attn_out cell ``(k, i)``.
    For a knockout ``(n, i)`` (later positions may not read position ``i`` from block ``n`` up):
    rows ``> n`` at positions ``> i``.
    """
    mask = np.zeros((n_layers + 1, n_positions), dtype=bool)
    if site == HEAD_SITE:  # (layer, head, pos): enters where block `layer`'s attention writes
        cells, site = [(c[0], c[2]) for c in cells], "attn_out"
    for r, p in cells:
        if kind == "knockout":
            mask[r + 1 :, p + 1 :] = True
            continue
        e = entry_row(r, site)
        mask[e, p] = True
        mask[e + 1 :, p:] = True
    return mask


def normalize_head_cells(cells, n_layers: int, n_heads: int, n_positions: int) -> list[HeadCell]:
    """One ``(layer, head, pos)`` triple or an iterable of them as a validated list of tuples.
    ``head`` counts *query* heads (``0..n_heads-1``, grouped-query models included). Raises
    ``TypeError`` for things that are not triples and ``ValueError`` for out-of-range, negative or
    duplicate cells, naming the valid ranges."""
    if isinstance(cells, tuple) and len(cells) == 3 and all(_is_int(c) for c in cells):
        cells = [cells]
    if isinstance(cells, (str, bytes)) or not isinstance(cells, Iterable):
        raise TypeError(
            f"head cells must be a (layer, head, position) triple or a list of them, got {cells!r}"
        )
    out: list[HeadCell] = []
    for c in cells:
        if not (isinstance(c, (tuple, list)) and len(c) == 3 and all(_is_int(x) for x in c)):
            raise TypeError(f"each head cell must be a (layer, head, position) triple, got {c!r}")
        k, h, p = (int(x) for x in c)
        ranges = f"layers 0..{n_layers - 1}, heads 0..{n_heads - 1}, positions 0..{n_positions - 1}"
        if min(k, h, p) < 0:
            raise ValueError(f"negative index in head cell {tuple(c)}: not wrapped; use {ranges}")
        if k >= n_layers:
            raise ValueError(f"layer {k} out of range for site 'head': valid {ranges}")
        if h >= n_heads:
            raise ValueError(
                f"head {h} out of range: the model has {n_heads} query heads per layer ({ranges})"
            )
        if p >= n_positions:
            raise ValueError(f"position {p} out of range: valid {ranges}")
        out.append((k, h, p))
    if not out:
        raise ValueError("no head cells given: pass a (layer, head, position) triple or a list")
    if len(set(out)) != len(out):
        dups = sorted({c for c in out if out.count(c) > 1})
        raise ValueError(f"duplicate head cells {dups}: list each cell once")
    return out


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)
