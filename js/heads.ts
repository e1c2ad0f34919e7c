/**
 * The heads view, as pure functions of the synced state (no DOM) — unit-tested.
 *
 * The kernel sweeps every attention head at every position (`Session.sweep(site="head")`, run
 * when the view is shown) and sends the `heads` trait (`_payloads_heads.heads_payload`):
 *
 *   {kind, site: "head", complete, storage, n_layers: L, n_heads: H,
 *    done: bool[L, H, P], total_kl: f32[L, H, P], logprob_total: f32[L, H, P] (Σ Δlog p of the
 *    next tokens), logit_diff: f32[L, H, P] | null,
 *    clean_logit_diff, kl: f32[L, H, P, P] | null, resid_delta: f32|f16[L, H, P, R, P] | null,
 *    progress: {done, total, running, cancelled}}
 *
 * With `heads_positions` = "all" the kernel sweeps each head at every position at once
 * (`positions="all"`, TransformerLens's `get_act_patch_attn_head_out_all_pos`) and the payload
 * says `all_positions: true`; its arrays lose the P axis (`done`/`total_kl`/… `[L, H]`, `kl`
 * `[L, H, P]`, `resid_delta` `[L, H, R, P]`). The grid then has one column, a head cell is
 * `[layer, head, ALL]` (ALL = -1), its preview marks the whole row `layer + 1`, and a click sends
 * `{type: "head", cell: [layer, head], positions: "all"}` (`headRequest`).
 *
 * Keys (`headKeyAction`, applied by keyboard.ts while the heads view shows): arrows move a cursor
 * over the grid's (layer.head, position) cells and the main map previews the cell under it,
 * Enter (or Space) pins it, Escape drops the cursor, Ctrl+Z undoes as on the map.
 *
 * The panel shows a head × position map of one layer (`heads_layer` ≥ 0: H rows, head 0 at the
 * bottom) or of every layer (`heads_layer` = -1: L·H rows, grouped by layer, layer 0 at the
 * bottom, as in the main map). Hovering a head previews its downstream map (from the sweep) in
 * the main map; clicking runs that head's intervention (`{type: "head", cell: [layer, head,
 * pos]}`) and pins its effect there. A head's output enters the residual at row `layer + 1`, so
 * its map is drawn like an attn_out cell of block `layer`.
 */

import { block2d, decode, decodeMaybe, isEncoded, type NDArray, num, type Payload, row1d, str } from "./codec";
import { type Cell, reachable, type Site } from "./heatmap";
import type { KeyInput } from "./keyboard";
import type { Shown } from "./mapstate";

/** The heads view's entry in the view select (controls.ts). */
export const HEADS_VIEW: [string, string] = ["heads", "heads (head × position)"];

/** A head cell: (layer, head, position); position ALL in the all-positions sweep. */
export type HeadCell = [number, number, number];

/** The position of an all-positions head cell: the head at every position at once. */
export const ALL = -1;

/** The view's two sweeps (the `heads_positions` trait) and their names in the controls. */
export const HEADS_POSITIONS: [string, string][] = [
  ["by_pos", "by position"],
  ["all", "all positions"],
];

export interface HeadsData {
  kind: string;
  L: number;
  H: number;
  /** Positions of the prompt (0 when an all-positions payload carries no per-position array). */
  P: number;
  /** The all-positions sweep: per head (`[L, H]`), one grid column. */
  allPos: boolean;
  complete: boolean;
  storage: string;
  done: NDArray;
  totalKl: NDArray;
  logprobTotal: NDArray | null;
  logitDiff: NDArray | null;
  cleanLogitDiff: number | null;
  kl: NDArray | null;
  maps: NDArray | null;
  progress: { done: number; total: number; running: boolean; cancelled: boolean };
}

/** What the view holds for the heads view (part of `Local`, painter.ts). */
export interface HeadsLocal {
  data: HeadsData | null;
  /** The hovered head cell whose map the main map previews, or null. */
  preview: HeadCell | null;
  /** The pinned effect's head cells (a head intervention), else empty. */
  pinned: HeadCell[];
  /** The keyboard cursor on the heads grid, or null (optional: set by the first arrow key). */
  cursor?: HeadCell | null;
}

export function decodeHeads(raw: Payload | null | undefined): HeadsData | null {
  if (!raw || !isEncoded(raw.done) || !isEncoded(raw.total_kl)) return null;
  const done = decode(raw.done);
  const allPos = !!raw.all_positions;
  if (done.shape.length !== (allPos ? 2 : 3)) return null;
  const [L, H] = done.shape;
  const kl = decodeMaybe(raw.kl);
  const maps = decodeMaybe(raw.resid_delta);
  const P = allPos ? (kl?.shape[2] ?? maps?.shape[3] ?? 0) : done.shape[2];
  const p = (raw.progress ?? {}) as Record<string, unknown>;
  return {
    kind: str(raw.kind, ""),
    L,
    H,
    P,
    allPos,
    complete: !!raw.complete,
    storage: str(raw.storage, isEncoded(raw.resid_delta) ? "float32" : "summary"),
    done,
    totalKl: decode(raw.total_kl),
    logprobTotal: decodeMaybe(raw.logprob_total),
    logitDiff: decodeMaybe(raw.logit_diff),
    cleanLogitDiff: num(raw.clean_logit_diff),
    kl,
    maps,
    progress: {
      done: Number(p.done) || 0,
      total: Number(p.total) || 0,
      running: !!p.running,
      cancelled: !!p.cancelled,
    },
  };
}

/** The (layer, head) of each grid row, bottom row first: one layer's heads, or every layer's. */
export function headRows(L: number, H: number, layer: number): [number, number][] {
  const out: [number, number][] = [];
  if (layer >= 0 && layer < L) for (let h = 0; h < H; h++) out.push([layer, h]);
  else for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) out.push([l, h]);
  return out;
}

/** The layer actually shown: `layer` when valid, else -1 (all layers). */
export function shownLayer(d: HeadsData | null, layer: number): number {
  return d && layer >= 0 && layer < d.L ? layer : -1;
}

/** Columns of the grid: the positions, or one for the all-positions sweep. */
export function headCols(d: HeadsData): number {
  return d.allPos ? 1 : d.P;
}

/** The grid column of head cell `c` (0 for every cell of the all-positions sweep). */
export function headCol(d: HeadsData, c: HeadCell): number {
  return d.allPos ? 0 : c[2];
}

/** The head cell under grid (row, col), or null outside. */
export function headAt(d: HeadsData, layer: number, row: number, col: number): HeadCell | null {
  const rows = headRows(d.L, d.H, shownLayer(d, layer));
  if (row < 0 || row >= rows.length || col < 0 || col >= headCols(d)) return null;
  return [rows[row][0], rows[row][1], d.allPos ? ALL : col];
}

/** The kernel message that pins head cell `c` (without its id): one head at one position, or
 * (all-positions sweep) the head at every position. */
export function headRequest(c: HeadCell): { type: "head"; cell: number[]; positions?: "all" } {
  return c[2] === ALL
    ? { type: "head", cell: [c[0], c[1]], positions: "all" }
    : { type: "head", cell: [c[0], c[1], c[2]] };
}

/** The grid row of head (layer, head) in the shown grid, or -1 when not shown. */
export function rowOfHead(d: HeadsData, layer: number, l: number, h: number): number {
  const shown = shownLayer(d, layer);
  if (shown >= 0) return l === shown ? h : -1;
  return l * d.H + h;
}

const flat = (d: HeadsData, c: HeadCell) => (d.allPos ? c[0] * d.H + c[1] : (c[0] * d.H + c[1]) * d.P + c[2]);
const lead = (d: HeadsData, c: HeadCell) => (d.allPos ? [c[0], c[1]] : [c[0], c[1], c[2]]);

export function headDone(d: HeadsData | null, c: HeadCell | null): boolean {
  if (!d || !c) return false;
  const pos = d.allPos ? c[2] === ALL : c[2] >= 0 && c[2] < d.P;
  const ok = c[0] >= 0 && c[0] < d.L && c[1] >= 0 && c[1] < d.H && pos;
  return ok && !!d.done.data[flat(d, c)];
}

/** The summary `which` names ("logprob_delta" | "logit_diff" | "total_kl"), as sent: a missing
 * one (no token pair, an older kernel) falls back to total KL. */
export function headSummary(
  d: HeadsData,
  which: string,
): { src: NDArray; diverging: boolean; center: number; unit: string; title: string } {
  if (which === "logit_diff" && d.logitDiff)
    return {
      src: d.logitDiff,
      diverging: true,
      center: d.cleanLogitDiff ?? 0,
      unit: "logits",
      title: "logit diff after intervening",
    };
  if (which === "logprob_delta" && d.logprobTotal)
    return { src: d.logprobTotal, diverging: true, center: 0, unit: "nats", title: "Σ Δlog p of the next tokens" };
  return { src: d.totalKl, diverging: false, center: 0, unit: "nats", title: "total KL over positions" };
}

/** Grid values (rows × P, row 0 = bottom row; NaN where the sweep has not reached) of the summary
 * `which` (see `headSummary`). */
export function headGrid(
  d: HeadsData,
  layer: number,
  which: string,
): { values: Float32Array; rows: number; diverging: boolean; center: number; unit: string; title: string } {
  const rows = headRows(d.L, d.H, shownLayer(d, layer));
  const { src, ...how } = headSummary(d, which);
  const C = headCols(d);
  const values = new Float32Array(rows.length * C);
  rows.forEach(([l, h], r) => {
    for (let p = 0; p < C; p++) {
      const k = flat(d, [l, h, d.allPos ? ALL : p]);
      values[r * C + p] = d.done.data[k] ? src.data[k] : NaN;
    }
  });
  return { values, rows: rows.length, ...how };
}

/** The summary value of one head cell (NaN when not swept yet). */
export function headValue(d: HeadsData, c: HeadCell, which: string): number {
  if (!headDone(d, c)) return NaN;
  return headSummary(d, which).src.data[flat(d, c)];
}

/** The `[R, P]` downstream map of head cell `c` from the sweep, or null (not swept, or no maps). */
export function headMap(d: HeadsData | null, c: HeadCell): Float32Array | null {
  if (!d?.maps || !headDone(d, c)) return null;
  return Float32Array.from(block2d(d.maps, lead(d, c)));
}

/** What the main map shows while head cell `c` is hovered: its map from the sweep (mode "atlas",
 * cells `[[layer, pos]]` — every position for an all-positions head — drawn at the entry row
 * `layer + 1`), or null when the sweep has none. */
export function headShown(
  d: HeadsData | null,
  c: HeadCell | null,
  metric: string,
  rows: number,
  cols: number,
): Shown | null {
  if (!d || !c) return null;
  const values = headMap(d, c);
  if (!values) return null;
  const cells: Cell[] = c[2] === ALL ? Array.from({ length: cols }, (_, p) => [c[0], p] as Cell) : [[c[0], c[2]]];
  let strip: Float32Array | null = null;
  let note = "";
  if (metric === "kl" && d.kl) strip = Float32Array.from(row1d(d.kl, lead(d, c)));
  else note = metric === "kl" ? "KL per position not in the head sweep" : "Δlog p: click to compute";
  return {
    mode: "atlas",
    cells,
    site: "head" as Site,
    values,
    reach: reachable(rows, cols, cells, "head" as Site),
    strip,
    stripNote: note,
    id: null,
  };
}

/** The effect payload's `head_cells` (a head effect's cells as (layer, head, pos)), or null. */
export function headCells(raw: Payload | null | undefined): HeadCell[] | null {
  const hc = raw?.head_cells;
  if (!Array.isArray(hc)) return null;
  return hc.filter((c) => Array.isArray(c) && c.length === 3).map((c) => [c[0], c[1], c[2]] as HeadCell);
}

/** Row labels of the grid: "h" for one layer, "l.h" (every few rows) for all layers. */
export function headLabel(d: HeadsData, layer: number, row: number): string {
  const rows = headRows(d.L, d.H, shownLayer(d, layer));
  const lh = rows[row];
  if (!lh) return "";
  return shownLayer(d, layer) >= 0 ? `h${lh[1]}` : `${lh[0]}.${lh[1]}`;
}

/** The panel's progress words. */
export function headsStatus(d: HeadsData | null, running: boolean, kernel = true): string {
  if (!d && !kernel) return "the saved page holds no head sweep: it needs a kernel";
  if (!d) return running ? "sweeping the heads…" : "no head sweep yet";
  const p = d.progress;
  const kept =
    d.storage === "summary"
      ? " · summary only: hover shows no map, click computes one"
      : d.storage === "float16"
        ? " · maps as float16"
        : "";
  const state = p.running ? "" : p.cancelled ? " (cancelled)" : "";
  if (d.allPos) return `${d.kind} on every head at all positions at once · ${p.done}/${p.total} heads${state}${kept}`;
  return `${d.kind} on every head · ${p.done}/${p.total} head cells${state}${kept}`;
}

/** How the pinned head cells are ringed in the grid of `d` showing `layer`: `whole` (solid) are
 * grid cells `[row, col]` the pin covers entirely; `partial` (dashed) are the all-positions
 * grid's cells of heads pinned at some positions only (that column stands for the head at every
 * position, which is not what was pinned), each with its words in `notes`. A head pinned at every
 * position (ALL, or each of 0..P-1) is whole in the all-positions grid and rings its whole row
 * in the by-position grid. */
export function headRings(
  d: HeadsData,
  layer: number,
  pinned: HeadCell[],
): { whole: [number, number][]; partial: [number, number][]; notes: string[] } {
  const groups = new Map<string, number[]>();
  for (const [l, h, p] of pinned) groups.set(`${l},${h}`, [...(groups.get(`${l},${h}`) ?? []), p]);
  const out = { whole: [] as [number, number][], partial: [] as [number, number][], notes: [] as string[] };
  for (const [k, ps] of groups) {
    const [l, h] = k.split(",").map(Number);
    const row = rowOfHead(d, layer, l, h);
    if (row < 0 || l >= d.L || h >= d.H) continue;
    const every =
      ps.includes(ALL) || (d.P > 0 && Array.from({ length: d.P }, (_, p) => p).every((p) => ps.includes(p)));
    if (d.allPos && every) out.whole.push([row, 0]);
    else if (d.allPos) {
      const at = [...new Set(ps)].sort((a, b) => a - b);
      out.partial.push([row, 0]);
      out.notes.push(`${l}.${h} pinned at position${at.length > 1 ? "s" : ""} ${at.join(", ")} only`);
    } else if (every) for (let p = 0; p < d.P; p++) out.whole.push([row, p]);
    else for (const p of ps) if (p >= 0 && p < d.P) out.whole.push([row, p]);
  }
  return out;
}

/** The map subtitle's words for head cells: "layer l head h at position p", or "at every
 * position" for a head pinned (or previewed) at all positions at once. */
export function headHeading(cells: HeadCell[]): string {
  const groups = new Map<string, number[]>();
  for (const [l, h, p] of cells) {
    const k = `${l},${h}`;
    groups.set(k, [...(groups.get(k) ?? []), p]);
  }
  const out: string[] = [];
  for (const [k, ps] of groups) {
    const [l, h] = k.split(",");
    const every = ps.includes(ALL) || (ps.length > 1 && ps.every((p, i) => p === i));
    if (every) out.push(`layer ${l} head ${h} at every position`);
    else for (const p of ps) out.push(`layer ${l} head ${h} at position ${p}`);
  }
  return out.join(", ");
}

/** What a key does on the heads grid: move the cursor to `cell` (grid `to`), pin `cell`, drop
 * the cursor, undo. */
export type HeadKeyAction =
  | { do: "move"; to: [number, number]; cell: HeadCell }
  | { do: "pin"; cell: HeadCell }
  | { do: "drop" }
  | { do: "undo" };

const HEAD_MOVES: Record<string, [number, number]> = {
  ArrowUp: [1, 0],
  ArrowDown: [-1, 0],
  ArrowLeft: [0, -1],
  ArrowRight: [0, 1],
};

/** What key `ev` does on the heads grid of `d` showing `layer`, with the cursor `cursor`, the
 * pinned head cells `pinned` (the cursor starts on the first one shown, else bottom left) and
 * the hovered preview `preview`; null: nothing — the key is the notebook's. Row 0 is the bottom
 * row, so ArrowUp goes to the next head (and past a layer's last head to the next layer's first). */
export function headKeyAction(
  ev: KeyInput,
  d: HeadsData | null,
  layer: number,
  s: { cursor?: HeadCell | null; pinned: HeadCell[]; preview: HeadCell | null; canUndo?: boolean },
): HeadKeyAction | null {
  const z = ev.key === "z" || ev.key === "Z";
  if (z && (ev.ctrlKey || ev.metaKey) && !ev.shiftKey && !ev.altKey) return s.canUndo ? { do: "undo" } : null;
  if (!d || ev.shiftKey || ev.ctrlKey || ev.altKey || ev.metaKey) return null;
  const rows = headRows(d.L, d.H, shownLayer(d, layer)).length;
  const cols = headCols(d);
  if (!rows || !cols) return null;
  const at = (c: HeadCell | null | undefined): [number, number] | null => {
    if (!c) return null;
    const r = rowOfHead(d, layer, c[0], c[1]);
    return r >= 0 ? [r, headCol(d, c)] : null;
  };
  const cur = at(s.cursor);
  const step = HEAD_MOVES[ev.key];
  if (step) {
    const base = cur ?? s.pinned.map(at).find((x) => x !== null) ?? null;
    const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
    const to: [number, number] = base ? [clamp(base[0] + step[0], rows), clamp(base[1] + step[1], cols)] : [0, 0];
    const cell = headAt(d, layer, to[0], to[1]);
    return cell ? { do: "move", to, cell } : null;
  }
  if ((ev.key === "Enter" || ev.key === " ") && cur && s.cursor) return { do: "pin", cell: s.cursor };
  if (ev.key === "Escape" && (cur || s.preview)) return { do: "drop" };
  return null;
}
