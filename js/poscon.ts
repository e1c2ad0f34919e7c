/**
 * The position-vs-content view's canvas (payload: `position_content`, decoded and sliced by
 * `lecture.ts`): three charts stacked in one canvas.
 *
 * 1. massive dimensions: each one's mean |value| by row against the median dimension's (log y),
 *    the shown row marked;
 * 2. energy split by row: the shares of the shared, position and content parts (stacked bars);
 * 3. at the shown row: the cosine of positions d apart for each kind (raw, massive dims zeroed,
 *    centred, content, content vs a different prompt), with its interval over prompts as a band.
 *
 * Pure helpers (`pcYRange`, `logTicks`) are unit-tested; drawing needs a canvas.
 */

import { MARK } from "./draw";
import type { Theme } from "./heatmap";
import { type PcRow, type PositionContentData, pcRows } from "./lecture";
import { fmt } from "./scale";

/** Colors of the kinds (as the Python figure, `PositionContent.figure`). */
export const KIND_COLORS: Record<string, string> = {
  raw: "#1f77b4",
  no_massive: "#ff7f0e",
  centred: "#9467bd",
  content: "#2ca02c",
  content_other: "#d62728",
};
export const KIND_LABELS: Record<string, string> = {
  raw: "raw",
  no_massive: "massive dims zeroed",
  centred: "centred",
  content: "content",
  content_other: "content, other prompt",
};
const PART_COLORS = ["#9e9e9e", "#ff9800", "#2ca02c"];
const DIM_COLORS = ["#1f77b4", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/** y-range of the cosine chart: covers every band, includes 0, at least [-0.1, 1] wide… at most
 * [-1, 1]; rounded out to tenths. */
export function pcYRange(s: PcRow | null): [number, number] {
  let lo = 0;
  let hi = 0;
  for (const c of s?.curves ?? [])
    for (const v of [...c.lo, ...c.hi]) {
      if (!Number.isFinite(v)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  lo = Math.max(-1, Math.floor(Math.min(lo, -0.1) * 10) / 10);
  hi = Math.min(1, Math.ceil(Math.max(hi, 0.5) * 10) / 10);
  return [lo, hi];
}

/** Powers of ten spanning [lo, hi] (positive values), for a log axis. */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi > 0)) return [];
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

export const PC_CHART_H = 150;
const GAP = 34;
const L = 48;
const R = 12;

/** Height of the whole canvas at a font of `fs` px (room for a two-line legend). */
export function pcHeight(fs: number): number {
  return 3 * PC_CHART_H + 3 * GAP + 2 * fs + 24;
}

export function drawPositionContent(
  ctx: CanvasRenderingContext2D,
  w: number,
  dpr: number,
  pc: PositionContentData | null,
  s: PcRow | null,
  th: Theme,
): void {
  const h = pcHeight(th.fs);
  ctx.save();
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = th.font;
  ctx.fillStyle = th.fg2;
  if (!pc || !s) {
    ctx.fillText("computing the decomposition over the corpus prompts…", 10, 20);
    ctx.restore();
    return;
  }
  const pw = w - L - R;
  const nR = pcRows(pc);
  const rowX = (r: number) => L + (nR <= 1 ? pw / 2 : ((r + 0.5) / nR) * pw);
  /** The chart's frame and its title: plain text, then colored items (a legend). */
  const frame = (top: number, title: string, items: [string, string][] = []) => {
    ctx.strokeStyle = th.border;
    ctx.lineWidth = 1;
    ctx.strokeRect(L - 0.5, top - 0.5, pw + 1, PC_CHART_H + 1);
    ctx.fillStyle = th.fg;
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(title, L, top - 3);
    let x = L + ctx.measureText(title).width + 6;
    for (const [text, color] of items) {
      ctx.fillStyle = color;
      ctx.fillText(text, x, top - 3);
      x += ctx.measureText(text).width + 6;
    }
  };
  const rowAxis = (top: number) => {
    ctx.fillStyle = th.fg2;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const every = Math.max(1, Math.ceil(nR / 10));
    for (let r = 0; r < nR; r += every) ctx.fillText(String(r), rowX(r), top + PC_CHART_H + 2);
    ctx.strokeStyle = MARK;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(rowX(s.row), top);
    ctx.lineTo(rowX(s.row), top + PC_CHART_H);
    ctx.stroke();
  };

  // 1. massive dimensions by row (log y)
  let top = GAP - 8;
  const dims = s.massive.map((m) => m.dim);
  frame(top, dims.length ? "mean |value| by row, dims" : "no massive dimensions (none > 10× the median dim)", [
    ...dims.map((d, k): [string, string] => [String(d), DIM_COLORS[k % DIM_COLORS.length]]),
    ["median", th.fg2],
  ]);
  let vmin = Number.POSITIVE_INFINITY;
  let vmax = 0;
  for (let r = 0; r < nR; r++) {
    const vals = [pc.medianAbs.data[r], ...dims.map((_, k) => pc.massiveAbs.data[r * dims.length + k])];
    for (const v of vals)
      if (v > 0 && Number.isFinite(v)) {
        vmin = Math.min(vmin, v);
        vmax = Math.max(vmax, v);
      }
  }
  if (!(vmax > 0)) {
    vmin = 0.1;
    vmax = 1;
  }
  const ticks = logTicks(vmin, vmax);
  const la = Math.log10(ticks[0] ?? vmin);
  const lb = Math.log10(ticks[ticks.length - 1] ?? vmax);
  const Y1 = (v: number) => top + PC_CHART_H - ((Math.log10(v) - la) / Math.max(1e-9, lb - la)) * PC_CHART_H;
  ctx.fillStyle = th.fg2;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const tk of ticks) ctx.fillText(fmt(tk), L - 4, Y1(tk));
  const series = (get: (r: number) => number, color: string, dash: number[]) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = th.line;
    ctx.setLineDash(dash);
    ctx.beginPath();
    let pen = false;
    for (let r = 0; r < nR; r++) {
      const v = get(r);
      if (!(v > 0)) {
        pen = false;
        continue;
      }
      if (pen) ctx.lineTo(rowX(r), Y1(v));
      else ctx.moveTo(rowX(r), Y1(v));
      pen = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  };
  series((r) => pc.medianAbs.data[r], th.fg2, [3, 3]);
  dims.forEach((_, k) => {
    series((r) => pc.massiveAbs.data[r * dims.length + k], DIM_COLORS[k % DIM_COLORS.length], []);
  });
  rowAxis(top);

  // 2. energy split by row (stacked bars)
  top += PC_CHART_H + GAP;
  const [es, ep, ec] = s.energy;
  frame(top, `energy share by row (row ${s.row}):`, [
    [`shared ${fmt(es)}`, PART_COLORS[0]],
    [`position ${fmt(ep)}`, PART_COLORS[1]],
    [`content ${fmt(ec)}`, PART_COLORS[2]],
  ]);
  const bw = Math.max(1, pw / Math.max(1, nR) - 1);
  for (let r = 0; r < nR; r++) {
    let acc = 0;
    for (let k = 0; k < 3; k++) {
      const v = Math.max(0, pc.energy.data[r * 3 + k]);
      ctx.fillStyle = PART_COLORS[k];
      ctx.fillRect(rowX(r) - bw / 2, top + PC_CHART_H * (1 - acc - v), bw, PC_CHART_H * v);
      acc += v;
    }
  }
  rowAxis(top);

  // 3. cosine by distance at the row, with bands
  top += PC_CHART_H + GAP;
  const [y0, y1] = pcYRange(s);
  const D = pc.distance.length;
  const X = (j: number) => L + (D <= 1 ? pw / 2 : (j / (D - 1)) * pw);
  const Y = (v: number) => top + PC_CHART_H - ((v - y0) / (y1 - y0)) * PC_CHART_H;
  frame(top, `row ${s.row}: cosine of positions d apart (bands: ${Math.round(pc.conf * 100)}% interval)`);
  ctx.strokeStyle = th.border;
  ctx.beginPath();
  ctx.moveTo(L, Y(0));
  ctx.lineTo(L + pw, Y(0));
  ctx.stroke();
  ctx.fillStyle = th.fg2;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of [y0, 0, y1]) ctx.fillText(fmt(v), L - 4, Y(v));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const every = Math.max(1, Math.ceil(D / 12));
  for (let j = 0; j < D; j += every) ctx.fillText(String(pc.distance[j]), X(j), top + PC_CHART_H + 2);
  for (const c of s.curves) {
    const col = KIND_COLORS[c.kind] ?? th.accent;
    ctx.globalAlpha = 0.18;
    ctx.fillStyle = col;
    ctx.beginPath();
    for (let j = 0; j < D; j++) (j ? ctx.lineTo : ctx.moveTo).call(ctx, X(j), Y(c.hi[j]));
    for (let j = D - 1; j >= 0; j--) ctx.lineTo(X(j), Y(c.lo[j]));
    ctx.closePath();
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.strokeStyle = col;
    ctx.lineWidth = th.line;
    ctx.beginPath();
    for (let j = 0; j < D; j++) (j ? ctx.lineTo : ctx.moveTo).call(ctx, X(j), Y(c.mean[j]));
    ctx.stroke();
  }
  // legend under the chart
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  let x = L;
  let ly = top + PC_CHART_H + th.fs + 8;
  for (const c of s.curves) {
    const label = KIND_LABELS[c.kind] ?? c.kind;
    const lw = 18 + ctx.measureText(label).width;
    if (x > L && x + lw > L + pw) {
      x = L;
      ly += th.fs + 4;
    }
    ctx.fillStyle = KIND_COLORS[c.kind] ?? th.accent;
    ctx.fillRect(x, ly + th.fs / 2 - 1, 10, 3);
    ctx.fillStyle = th.fg;
    ctx.fillText(label, x + 13, ly);
    x += lw;
  }
  ctx.restore();
}
