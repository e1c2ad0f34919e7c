/**
 * Transplanting by hand, as pure functions of the view's state (no DOM) — unit-tested.
 *
 * A transplant copies one cell of a *source* run into a *target* cell of this prompt
 * (`Session.transplant(source, source_cell, target_cell)`): the source is this prompt itself
 * (a cell of the main map) or the transplant prompt (a cell of the source grid shown beside the
 * map, any length). Three ways to do one:
 *
 *   drag    press on a source cell (main map or source grid), release on a target cell of the
 *           main map; a press and release on the same cell is a plain click (it pins);
 *   keys    press T on the cursor cell (arms it as the source), move, press Enter (drops it);
 *   clicks  click a cell of the source grid (arms it), then click a target on the main map.
 *
 * Escape disarms; Ctrl+Z (or the undo button) restores the previous pinned effect (the kernel
 * keeps the history: `_widget_transplant.py`).
 *
 * Cells here are *map* cells `(map row, position)` until `request` turns them into site cells
 * (`mapCellToSource`: the same for the residual site, the block below for attn_out / mlp_out).
 *
 * The `effect` payload of a transplant carries `transplant: {source: "this" | "prompt", prompt,
 * source_cell, target_cell}` (site cells); `pinInfo` decodes it so the maps can mark both ends.
 */

import type { Payload } from "./codec";
import type { Cell, Site } from "./heatmap";
import { mapCellToSource } from "./mapstate";

/** Where a cell was picked: the main map (this prompt) or the source grid (transplant prompt). */
export type Where = "map" | "source";

/** A picked map cell and where. */
export interface Grab {
  where: Where;
  cell: Cell;
}

/** A drag in progress: what was pressed, what is under the pointer now, whether it left the
 * pressed cell (then the release is a drop, not a click). */
export interface Drag {
  grab: Grab;
  over: Grab | null;
  moved: boolean;
}

/** What the view holds for transplanting (part of `Local`, painter.ts). */
export interface Hand {
  /** The source cell armed by T or by a click on the source grid, or null. */
  armed: Grab | null;
  drag: Drag | null;
  /** A release just ended a drag: the click event that follows it is not a pin. */
  swallowClick: boolean;
  /** The pinned effect's transplant, if it is one (decoded from the `effect` payload). */
  pin: PinInfo | null;
  /** The transplant prompt's grid (the `transplant_source` trait), or null. */
  source: SourceData | null;
  /** How many earlier pinned effects the kernel can go back to (the `effect` payload's `undo`). */
  undo: number;
}

export function emptyHand(): Hand {
  return { armed: null, drag: null, swallowClick: false, pin: null, source: null, undo: 0 };
}

/** A transplant as the kernel describes it (site cells). */
export interface PinInfo {
  source: "this" | "prompt";
  prompt: string | null;
  sourceCell: Cell;
  targetCell: Cell;
}

/** The transplant prompt's grid: its tokens and `‖h‖` of every clean residual `[R, Ps]`. */
export interface SourceData {
  prompt: string;
  tokens: string[];
  rows: number;
  norm: Float32Array;
}

/** A transplant request to the kernel (site cells; `source`: this prompt or the transplant
 * prompt). */
export interface TransplantRequest {
  type: "transplant";
  source: "this" | "prompt";
  source_cell: Cell;
  target_cell: Cell;
}

/** The kernel request of a transplant from `from` map cell `source` to map cell `target`, or an
 * error in words when a cell has no site cell (row 0 of a block site). */
export function request(from: Where, source: Cell, target: Cell, site: Site): TransplantRequest | { error: string } {
  const s = mapCellToSource(source[0], source[1], site);
  const t = mapCellToSource(target[0], target[1], site);
  if (!s || !t) return { error: "Row 0 (embeddings) has no block output: for attn_out/mlp_out use rows 1…L." };
  return { type: "transplant", source: from === "map" ? "this" : "prompt", source_cell: s, target_cell: t };
}

const same = (a: Grab | null, b: Grab | null) =>
  !!a && !!b && a.where === b.where && a.cell[0] === b.cell[0] && a.cell[1] === b.cell[1];

/** Pointer pressed on `at` (null: outside every grid). */
export function press(at: Grab | null): Drag | null {
  return at ? { grab: at, over: at, moved: false } : null;
}

/** Pointer moved over `at`. */
export function move(d: Drag | null, at: Grab | null): Drag | null {
  if (!d) return null;
  return { grab: d.grab, over: at, moved: d.moved || !same(d.grab, at) };
}

/** What a release over `at` does: a drop on a main-map cell after the pointer left the pressed
 * cell transplants; a release where it was pressed is a click (`click`: the source grid arms
 * the cell, the map pins as usual); anything else does nothing. */
export type Release =
  | { do: "transplant"; from: Where; source: Cell; target: Cell }
  | { do: "click"; at: Grab }
  | { do: "none" };

export function release(d: Drag | null, at: Grab | null): Release {
  if (!d || !at) return { do: "none" };
  if (!d.moved || same(d.grab, at)) return same(d.grab, at) ? { do: "click", at } : { do: "none" };
  if (at.where !== "map") return { do: "none" };
  return { do: "transplant", from: d.grab.where, source: d.grab.cell, target: at.cell };
}

/** What a click on the main map does: drop the armed source there (two-click transplant), or
 * pin as usual. */
export function clickOnMap(
  armed: Grab | null,
  at: Cell,
): { do: "transplant"; from: Where; source: Cell; target: Cell } | { do: "pin" } {
  return armed ? { do: "transplant", from: armed.where, source: armed.cell, target: at } : { do: "pin" };
}

/** `effect.transplant` as a `PinInfo`, or null when the pinned effect is not a transplant. */
export function pinInfo(raw: Payload | null | undefined): PinInfo | null {
  const t = raw?.transplant as Record<string, unknown> | null | undefined;
  if (!t || typeof t !== "object") return null;
  const cell = (x: unknown): Cell | null =>
    Array.isArray(x) && x.length === 2 && x.every((v) => typeof v === "number") ? [x[0], x[1]] : null;
  const s = cell(t.source_cell);
  const g = cell(t.target_cell);
  if (!s || !g) return null;
  return {
    source: t.source === "prompt" ? "prompt" : "this",
    prompt: typeof t.prompt === "string" ? t.prompt : null,
    sourceCell: s,
    targetCell: g,
  };
}

/** Site cell → the map cell it is drawn on (the inverse of `mapCellToSource`). */
export function mapCellOf(c: Cell, site: Site): Cell {
  return site === "resid" ? c : [c[0] + 1, c[1]];
}

/** The cells to mark on one grid (`where`): the pinned transplant's source (and, on the main
 * map, its target), the armed source, the drag's source and the cell under it. Map cells. */
export function marks(h: Hand, where: Where, site: Site): { source: Cell[]; target: Cell[]; pending: Cell[] } {
  const out = { source: [] as Cell[], target: [] as Cell[], pending: [] as Cell[] };
  const p = h.pin;
  if (p) {
    if ((p.source === "this") === (where === "map")) out.source.push(mapCellOf(p.sourceCell, site));
    if (where === "map") out.target.push(mapCellOf(p.targetCell, site));
  }
  if (h.armed?.where === where) out.pending.push(h.armed.cell);
  if (h.drag?.moved) {
    if (h.drag.grab.where === where) out.pending.push(h.drag.grab.cell);
    if (h.drag.over?.where === where && where === "map") out.pending.push(h.drag.over.cell);
  }
  return out;
}

/** The source grid's payload (`transplant_source` trait: `{prompt, tokens, norm: f32[R, Ps]}`). */
export function decodeSource(
  raw: Payload | null | undefined,
  decode: (e: unknown) => { data: ArrayLike<number>; shape: number[] } | null,
): SourceData | null {
  if (!raw || typeof raw.prompt !== "string" || !Array.isArray(raw.tokens)) return null;
  const n = decode(raw.norm);
  if (!n) return null;
  if (n.shape.length !== 2) return null;
  return {
    prompt: raw.prompt,
    tokens: (raw.tokens as unknown[]).map(String),
    rows: n.shape[0],
    norm: Float32Array.from(n.data),
  };
}
