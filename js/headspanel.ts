/**
 * The heads panel (view "heads"): the head × position map of the head sweep for one layer or
 * every layer (heads.ts decides what), its legend and its words; and `drawRings`, the cell
 * outlines the transplant marks and the heads panel share.
 *
 * Shown only in the heads view; `drawHeadsPanel` returns its geometry (for hit tests, pointer.ts)
 * and what it drew (the test hook's `heads()`).
 */

import type { LegendPanel } from "./dom";
import { sizeCanvas } from "./draw";
import {
  type HeadCell,
  type HeadsData,
  headCol,
  headCols,
  headGrid,
  headLabel,
  headRings,
  headRows,
  headsStatus,
  rowOfHead,
  shownLayer,
} from "./heads";
import { type Cell, cellRect, type Geom, labelH, paint, type Theme } from "./heatmap";
import { drawLegend, makeScale, type ScaleKind } from "./scale";

export interface HeadsPanelArgs {
  dom: LegendPanel;
  show: boolean;
  th: Theme;
  data: HeadsData | null;
  /** `heads_layer`: -1 every layer, else one layer. */
  layer: number;
  /** "total_kl" | "logit_diff" (the overview's choice). */
  which: string;
  sk: ScaleKind;
  palette: string;
  tokens: string[];
  /** Cell width of the main map (the positions line up). */
  cw: number;
  /** The pinned head cells (ringed: solid, or a dashed inner ring in the all-positions grid for
   * a head pinned at some positions only, `headRings`), the hovered one (dashed outer ring) and
   * the keyboard cursor (dashed when nothing is hovered). */
  pinned: HeadCell[];
  hover: HeadCell | null;
  cursor?: HeadCell | null;
  /** A head sweep is running or asked for (the kernel has not sent one yet). */
  running: boolean;
  /** False on the saved page (no kernel to sweep the heads). */
  kernel?: boolean;
}

/** Draw the panel (or hide it); returns its geometry (null when hidden) and what it drew. */
export function drawHeadsPanel(a: HeadsPanelArgs): { geom: Geom | null; info: Record<string, unknown> } {
  a.dom.panel.style.display = a.show ? "" : "none";
  if (!a.show) return { geom: null, info: { shown: false } };
  const d = a.data;
  const layer = shownLayer(d, a.layer);
  a.dom.title.textContent =
    layer >= 0 ? `Heads of layer ${layer}: effect of each head at each position` : "Heads of every layer × position";
  // pins: solid rings where the pin covers the cell; dashed (and said) where the all-positions
  // column of a head stands for more than was pinned (a pin made by position)
  const rings = d ? headRings(d, layer, a.pinned) : { whole: [], partial: [], notes: [] };
  const pinNote = rings.notes.length ? ` · dashed ring: ${rings.notes.join("; ")}` : "";
  a.dom.sub.textContent = headsStatus(d, a.running, a.kernel ?? true) + pinNote;
  // the all-positions sweep: one column, each head at every position at once
  const allPos = !!d?.allPos;
  const tokens = allPos ? ["all positions"] : a.tokens;
  const cw = allPos ? Math.max(a.cw, 8 * a.th.fs) : a.cw;
  const P = d ? headCols(d) : a.tokens.length;
  const rows = d ? headRows(d.L, d.H, layer).length : 0;
  const ch = Math.max(2, Math.min(18, Math.floor(480 / Math.max(1, rows))));
  const left = layer >= 0 ? 44 : 52;
  const g: Geom = { x0: left, y0: 6, cw, ch, rows, cols: P, stripH: 0, stripGap: 0 };
  const dpr = sizeCanvas(a.dom.canvas, g.x0 + P * cw + 16, g.y0 + rows * ch + labelH(a.th.fs));
  const grid = d ? headGrid(d, layer, a.which) : null;
  const sc = makeScale(grid?.values ?? [], {
    kind: a.sk,
    diverging: grid?.diverging ?? false,
    center: grid?.center ?? 0,
    unit: grid?.unit ?? "nats",
    palette: a.palette,
  });
  const ctx = a.dom.canvas.getContext("2d");
  const toRow = (c: HeadCell): Cell | null => {
    const r = d ? rowOfHead(d, layer, c[0], c[1]) : -1;
    return r >= 0 && d ? [r, headCol(d, c)] : null;
  };
  if (ctx) {
    paint(ctx, g, {
      values: grid?.values ?? null,
      color: (v) => (Number.isFinite(v) ? sc.css(v) : a.th.bg),
      strip: null,
      stripColor: null,
      reach: null,
      sources: rings.whole,
      cursor: (a.hover ?? a.cursor) ? toRow((a.hover ?? a.cursor) as HeadCell) : null,
      tokens,
      rowLabel: (r) => (d ? headLabel(d, layer, r) : ""),
      theme: a.th,
      dpr,
      stripLabel: "",
    });
    drawRings(ctx, g, rings.partial, a.th.fg, { dpr, dash: [4, 3], inset: 2.5, width: 1.5 });
  }
  const lctx = a.dom.legend.getContext("2d");
  if (lctx) {
    const w = Math.max(260, g.x0 + P * cw + 16);
    const dl = sizeCanvas(a.dom.legend, w, 2 * a.th.fs + 22);
    lctx.setTransform(dl, 0, 0, dl, 0, 0);
    lctx.clearRect(0, 0, w, 2 * a.th.fs + 22);
    if (grid) drawLegend(lctx, sc, `heads: ${grid.title}`, 8, 2, Math.min(240, w - 20), a.th.fg, a.th.font);
  }
  return {
    geom: g,
    info: {
      shown: true,
      layer,
      rows,
      cols: P,
      allPositions: allPos,
      cursor: a.cursor ?? null,
      rings,
      values: grid ? Array.from(grid.values) : null,
      summary: grid?.title ?? null,
      labels: d ? Array.from({ length: rows }, (_, r) => headLabel(d, layer, r)) : [],
      progress: d?.progress ?? null,
    },
  };
}

/** Outline `cells` (grid cells of `g`) in `color`, dashed when `dash`; `inset` px inside. */
export function drawRings(
  ctx: CanvasRenderingContext2D,
  g: Geom,
  cells: Cell[],
  color: string,
  opts: { dpr: number; dash?: number[]; inset?: number; width?: number },
): void {
  if (!cells.length) return;
  ctx.save();
  ctx.setTransform(opts.dpr, 0, 0, opts.dpr, 0, 0);
  ctx.strokeStyle = color;
  ctx.lineWidth = opts.width ?? 2;
  ctx.setLineDash(opts.dash ?? []);
  const k = opts.inset ?? 1;
  for (const [r, c] of cells) {
    if (r < 0 || r >= g.rows || c < 0 || c >= g.cols) continue;
    const q = cellRect(g, r, c);
    ctx.strokeRect(q.x + k, q.y + k, q.w - 2 * k, q.h - 2 * k);
  }
  ctx.restore();
}
