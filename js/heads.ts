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
 * The panel shows a head × position map of one layer (`heads_layer` ≥ 0: H rows, head 0 at the
 * bottom) or of every layer (`heads_layer` = -1: L·H rows, grouped by layer, layer 0 at the
 * bottom, as in the main map). Hovering a head previews its downstream map (from the sweep) in
 * the main map; clicking runs that head's intervention (`{type: "head", cell: [layer, head,
 * pos]}`) and pins its effect there. A head's output enters the residual at row `layer + 1`, so
 * its map is drawn like an attn_out cell of block `layer`.
 */

import { block2d, decode, decodeMaybe, isEncoded, type NDArray, num, type Payload, row1d, str } from "./codec";
import { type Cell, reachable, type Site } from "./heatmap";
import type { Shown } from "./mapstate";

/** The heads view's entry in the view select (controls.ts). */
export const HEADS_VIEW: [string, string] = ["heads", "heads (head × position)"];

/** A head cell: (layer, head, position). */
export type HeadCell = [number, number, number];

export interface HeadsData {
  kind: string;
  L: number;
  H: number;
  P: number;
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
}

export function decodeHeads(raw: Payload | null | undefined): HeadsData | null {
  if (!raw || !isEncoded(raw.done) || !isEncoded(raw.total_kl)) return null;
  const done = decode(raw.done);
  if (done.shape.length !== 3) return null;
  const [L, H, P] = done.shape;
  const p = (raw.progress ?? {}) as Record<string, unknown>;
  return {
    kind: str(raw.kind, ""),
    L,
    H,
    P,
    complete: !!raw.complete,
    storage: str(raw.storage, isEncoded(raw.resid_delta) ? "float32" : "summary"),
    done,
    totalKl: decode(raw.total_kl),
    logprobTotal: decodeMaybe(raw.logprob_total),
    logitDiff: decodeMaybe(raw.logit_diff),
    cleanLogitDiff: num(raw.clean_logit_diff),
    kl: decodeMaybe(raw.kl),
    maps: decodeMaybe(raw.resid_delta),
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

/** The head cell under grid (row, col), or null outside. */
export function headAt(d: HeadsData, layer: number, row: number, col: number): HeadCell | null {
  const rows = headRows(d.L, d.H, shownLayer(d, layer));
  if (row < 0 || row >= rows.length || col < 0 || col >= d.P) return null;
  return [rows[row][0], rows[row][1], col];
}

/** The grid row of head (layer, head) in the shown grid, or -1 when not shown. */
export function rowOfHead(d: HeadsData, layer: number, l: number, h: number): number {
  const shown = shownLayer(d, layer);
  if (shown >= 0) return l === shown ? h : -1;
  return l * d.H + h;
}

const flat = (d: HeadsData, c: HeadCell) => (c[0] * d.H + c[1]) * d.P + c[2];

export function headDone(d: HeadsData | null, c: HeadCell | null): boolean {
  if (!d || !c) return false;
  const ok = c[0] >= 0 && c[0] < d.L && c[1] >= 0 && c[1] < d.H && c[2] >= 0 && c[2] < d.P;
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
  const values = new Float32Array(rows.length * d.P);
  rows.forEach(([l, h], r) => {
    for (let p = 0; p < d.P; p++) {
      const k = flat(d, [l, h, p]);
      values[r * d.P + p] = d.done.data[k] ? src.data[k] : NaN;
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
  return Float32Array.from(block2d(d.maps, c));
}

/** What the main map shows while head cell `c` is hovered: its map from the sweep (mode "atlas",
 * cells `[[layer, pos]]` drawn at the entry row `layer + 1`), or null when the sweep has none. */
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
  const cell: Cell = [c[0], c[2]];
  let strip: Float32Array | null = null;
  let note = "";
  if (metric === "kl" && d.kl) strip = Float32Array.from(row1d(d.kl, c));
  else note = metric === "kl" ? "KL per position not in the head sweep" : "Δlog p: click to compute";
  return {
    mode: "atlas",
    cells: [cell],
    site: "head" as Site,
    values,
    reach: reachable(rows, cols, [cell], "head" as Site),
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
  return `${d.kind} on every head · ${p.done}/${p.total} head cells${state}${kept}`;
}
