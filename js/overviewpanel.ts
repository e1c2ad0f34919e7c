/**
 * The overview panel: one summary value per source cell (Σ Δlog p, logit diff or total KL).
 *
 * Cells the sweep has done show their exact value; the others show the attribution-patching
 * estimate (estimate.ts), marked with a dot and named in the subtitle, until the sweep reaches
 * them. When both exist, the cells where the estimate is most wrong are outlined and a small
 * scatter (estimate → x, exact → y, the identity dashed) with Pearson and Spearman correlation
 * is drawn under the legend.
 */

import { MARK } from "./draw";
import {
  agreementFor,
  agreementLabel,
  type EstimateData,
  outlineCells,
  overviewCells,
  overviewNote,
  type ScatterPoints,
  scatterPoints,
} from "./estimate";
import type { Cell, Geom, Theme } from "./heatmap";
import { cellRect, paint } from "./heatmap";
import type { AtlasData } from "./mapstate";
import { drawLegend, fmt, makeScale } from "./scale";

export interface OverviewArgs {
  canvas: HTMLCanvasElement;
  legend: HTMLCanvasElement;
  sub: HTMLElement;
  g: Geom;
  th: Theme;
  sk: "linear" | "log";
  atlas: AtlasData | null;
  /** The instant estimate (null: none asked or none yet). */
  estimate?: EstimateData | null;
  preview: Cell | null;
  which: string;
  site: string;
  tokens: string[];
  palette: string;
}

/** What the overview painted (the test hook's `overview()`). */
export interface OverviewInfo {
  which: string;
  values: number[] | null;
  estimated: number[] | null;
  nExact: number;
  nEstimated: number;
  outlined: Cell[];
  label: string;
  sub: string;
}

const SCATTER_W = 200;
const SCATTER_H = 150;
const scatters = new WeakMap<HTMLCanvasElement, { canvas: HTMLCanvasElement; label: HTMLDivElement }>();

/** The scatter canvas and its caption under `legend` (made on first use). */
function scatterFor(legend: HTMLCanvasElement): { canvas: HTMLCanvasElement; label: HTMLDivElement } {
  let s = scatters.get(legend);
  if (!s) {
    const canvas = legend.ownerDocument.createElement("canvas");
    canvas.className = "rw-scatter";
    const label = legend.ownerDocument.createElement("div");
    label.className = "rw-sub rw-agreement";
    legend.after(label, canvas);
    s = { canvas, label };
    scatters.set(legend, s);
  }
  return s;
}

export function drawOverviewPanel(a: OverviewArgs): OverviewInfo {
  const { canvas: ovCanvas, legend: ovLegend, sub: ovSub, g, th, sk, atlas, preview } = a;
  const est = a.estimate ?? null;
  const info: OverviewInfo = {
    which: a.which,
    values: null,
    estimated: null,
    nExact: 0,
    nEstimated: 0,
    outlined: [],
    label: "",
    sub: "",
  };
  const ctx = ovCanvas.getContext("2d");
  if (!ctx) return info;
  const d = ovCanvas.width / Math.max(1, parseFloat(ovCanvas.style.width) || ovCanvas.width);
  const site = atlas?.site ?? est?.site ?? a.site;
  const rowLabel = (r: number) => (site === "resid" ? (r === 0 ? "emb" : String(r)) : `b${r}`);
  const lctx = ovLegend.getContext("2d");
  const ov = overviewCells(atlas, est, a.which, g.rows, g.cols);
  const base = {
    strip: null,
    stripColor: null,
    reach: null,
    sources: preview ? [preview] : [],
    cursor: null,
    tokens: a.tokens,
    rowLabel,
    theme: th,
    dpr: d,
    stripLabel: "",
  };
  const sc = scatterFor(ovLegend);
  info.sub = overviewNote(ov, atlas, est, a.which);
  ovSub.textContent = info.sub;
  if (!ov) {
    paint(ctx, g, { ...base, values: null, color: () => th.bg });
    lctx?.clearRect(0, 0, ovLegend.width, ovLegend.height);
    drawScatter(sc.canvas, null, th);
    sc.label.textContent = "";
    return info;
  }
  const ag = agreementFor(atlas, est, ov.which);
  const outlined = ov.usesEstimate ? outlineCells(ag, atlas) : [];
  const scale = makeScale(ov.values, {
    kind: sk,
    diverging: ov.diverging,
    center: ov.center,
    unit: ov.unit,
    palette: a.palette,
  });
  paint(ctx, g, {
    ...base,
    values: ov.values,
    color: (v) => (Number.isFinite(v) ? scale.css(v) : th.bg),
    marks: outlined,
    markColor: MARK,
  });
  if (ov.nEstimated) markEstimated(ctx, g, ov.estimated, th, d);
  Object.assign(info, {
    which: ov.which,
    values: Array.from(ov.values),
    estimated: Array.from(ov.estimated),
    nExact: ov.nExact,
    nEstimated: ov.nEstimated,
    outlined,
    label: agreementLabel(ag),
  });
  if (lctx) {
    lctx.setTransform(1, 0, 0, 1, 0, 0);
    lctx.clearRect(0, 0, ovLegend.width, ovLegend.height);
    const dl = ovLegend.width / Math.max(1, parseFloat(ovLegend.style.width));
    lctx.setTransform(dl, 0, 0, dl, 0, 0);
    const title = ov.nExact ? "overview" : "overview (estimate)";
    drawLegend(lctx, scale, title, 8, 2, Math.min(240, parseFloat(ovLegend.style.width) - 20), th.fg, th.font);
  }
  const pts = ag && ov.nExact ? scatterPoints(atlas, est, ov.which, outlined) : null;
  sc.label.textContent = pts
    ? `${info.label} (x: estimate, y: exact; the ${outlined.length} worst outlined in orange)`
    : "";
  drawScatter(sc.canvas, pts, th);
  return info;
}

/** A dot in the middle of every estimated cell (exact cells have none). */
function markEstimated(ctx: CanvasRenderingContext2D, g: Geom, est: Uint8Array, th: Theme, dpr: number): void {
  ctx.save();
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = th.fg;
  ctx.globalAlpha = 0.45;
  const r = Math.max(1, Math.min(g.cw, g.ch) / 7);
  for (let row = 0; row < g.rows; row++) {
    for (let c = 0; c < g.cols; c++) {
      if (!est[row * g.cols + c]) continue;
      const q = cellRect(g, row, c);
      ctx.beginPath();
      ctx.arc(q.x + q.w / 2, q.y + q.h / 2, r, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  ctx.restore();
}

/** The small scatter: estimate (x) against exact (y), the identity dashed, worst cells in orange. */
function drawScatter(canvas: HTMLCanvasElement, pts: ScatterPoints | null, th: Theme): void {
  if (!pts) {
    canvas.style.display = "none";
    return;
  }
  const dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
  canvas.style.display = "";
  canvas.style.width = `${SCATTER_W}px`;
  canvas.style.height = `${SCATTER_H}px`;
  canvas.width = Math.round(SCATTER_W * dpr);
  canvas.height = Math.round(SCATTER_H * dpr);
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, SCATTER_W, SCATTER_H);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of [...pts.x, ...pts.y]) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (!(hi > lo)) hi = lo + 1;
  const L = 34;
  const T = 6;
  const W = SCATTER_W - L - 6;
  const H = SCATTER_H - T - 28;
  const X = (v: number) => L + ((v - lo) / (hi - lo)) * W;
  const Y = (v: number) => T + H - ((v - lo) / (hi - lo)) * H;
  ctx.strokeStyle = th.border;
  ctx.lineWidth = 1;
  ctx.strokeRect(L - 0.5, T - 0.5, W + 1, H + 1);
  ctx.setLineDash([3, 3]);
  ctx.beginPath();
  ctx.moveTo(X(lo), Y(lo));
  ctx.lineTo(X(hi), Y(hi));
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.font = th.font;
  ctx.fillStyle = th.fg2;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText(fmt(hi), L - 3, Y(hi));
  ctx.fillText(fmt(lo), L - 3, Y(lo));
  ctx.textBaseline = "top";
  ctx.textAlign = "center";
  ctx.fillText("estimate →", L + W / 2, T + H + 14);
  ctx.textAlign = "left";
  ctx.fillText(fmt(lo), X(lo), T + H + 2);
  ctx.fillText("↑ exact", L + 3, T + 2);
  ctx.textAlign = "right";
  ctx.fillText(fmt(hi), X(hi), T + H + 2);
  for (let k = 0; k < pts.x.length; k++) {
    const bad = !!pts.worst[k];
    ctx.fillStyle = bad ? MARK : th.accent;
    ctx.globalAlpha = bad ? 1 : 0.55;
    const s = bad ? 5 : 3;
    ctx.fillRect(X(pts.x[k]) - s / 2, Y(pts.y[k]) - s / 2, s, s);
  }
  ctx.globalAlpha = 1;
}
