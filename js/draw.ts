/**
 * Canvas helpers shared by the panels: the page theme, canvas sizing, and the future-profile
 * line chart (mean and max by distance j − i, with the next-token term labelled).
 */

import type { Geom, Theme } from "./heatmap";
import { niceMax, type ProfileSeries } from "./lecture";
import { fmt } from "./scale";

export function theme(root: HTMLElement): Theme {
  const cs = getComputedStyle(root);
  const v = (n: string, d: string) => cs.getPropertyValue(n).trim() || d;
  const fs = Number.parseFloat(v("--rw-canvas-px", "11")) || 11;
  return {
    fg: v("--rw-fg", "#1f1f1f"),
    fg2: v("--rw-fg2", "#616161"),
    bg: v("--rw-bg", "#ffffff"),
    border: v("--rw-border", "#bdbdbd"),
    accent: v("--rw-accent", "#1976d2"),
    hatch: v("--rw-hatch", "#c8c8c8"),
    font: `${fs}px ${v("--rw-font", "sans-serif")}`,
    mono: `${fs}px ${v("--rw-mono", "monospace")}`,
    fs,
    line: Number.parseFloat(v("--rw-line", "2")) || 2,
  };
}

export function sizeCanvas(c: HTMLCanvasElement, w: number, hgt: number): number {
  const dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
  c.style.width = `${w}px`;
  c.style.height = `${hgt}px`;
  c.width = Math.round(w * dpr);
  c.height = Math.round(hgt * dpr);
  return dpr;
}

const LEFT = 44; // row labels
const STRIP_H = 14;
const STRIP_GAP = 6;

/** Cell sizes for the map (R rows with an output strip) and the overview (S source rows) side by
 * side in `width` CSS px, P positions each. `big`: presentation mode (cells up to twice as large,
 * the grid at most 400 px tall so that a 720-px projector shows it with the controls). */
export function gridLayout(R: number, P: number, S: number, width: number, big = false): { map: Geom; overview: Geom } {
  const left = big ? 64 : LEFT;
  const avail = Math.max(320, width) - 16;
  let cw = Math.floor((avail / 2 - left - 24) / Math.max(1, P));
  if (cw < (big ? 16 : 12)) cw = Math.floor((avail - left - 24) / Math.max(1, P));
  cw = Math.max(8, Math.min(big ? 64 : 34, cw));
  let ch = big ? Math.max(16, Math.min(44, Math.round(cw * 0.8))) : Math.max(12, Math.min(22, Math.round(cw * 0.8)));
  const tall = big ? 400 : 440;
  if (R * ch > tall) ch = Math.max(5, Math.floor(tall / Math.max(1, R)));
  const stripH = big ? 22 : STRIP_H;
  const y0 = stripH + STRIP_GAP + 2;
  return {
    map: { x0: left, y0, cw, ch, rows: R, cols: P, stripH, stripGap: STRIP_GAP },
    overview: { x0: left, y0, cw, ch, rows: S, cols: P, stripH: 0, stripGap: 0 },
  };
}

export const MARK = "#e8590c";

/** Line chart of a future profile in a canvas of CSS size w × h. */
export function drawProfile(
  ctx: CanvasRenderingContext2D,
  w: number,
  h: number,
  dpr: number,
  s: ProfileSeries | null,
  th: Theme,
  unit: string,
): void {
  ctx.save();
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = th.font;
  ctx.fillStyle = th.fg2;
  if (!s) {
    ctx.fillText("no sweep yet — press Sweep to measure the profile", 10, 20);
    ctx.restore();
    return;
  }
  const L = 48,
    T = 28,
    Rm = 12,
    B = 30;
  const pw = w - L - Rm,
    ph = h - T - B;
  const n = s.mean.length;
  const ymax = niceMax([s.mean, s.max]);
  const X = (d: number) => L + (n <= 1 ? 0 : (d / (n - 1)) * pw);
  const Y = (v: number) => T + ph - (v / ymax) * ph;
  ctx.strokeStyle = th.border;
  ctx.lineWidth = 1;
  ctx.strokeRect(L - 0.5, T - 0.5, pw + 1, ph + 1);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const f of [0, 0.5, 1]) ctx.fillText(fmt(f * ymax), L - 4, Y(f * ymax));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const every = Math.max(1, Math.ceil(n / 12));
  for (let d = 0; d < n; d += every) ctx.fillText(String(d), X(d), T + ph + 3);
  ctx.fillText(`distance j − i (tokens ahead) · ${unit}`, L + pw / 2, T + ph + 16);
  const line = (v: Float32Array, color: string, dash: number[]) => {
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.setLineDash(dash);
    ctx.beginPath();
    let pen = false;
    for (let d = 0; d < n; d++) {
      if (!Number.isFinite(v[d])) {
        pen = false;
        continue;
      }
      if (pen) ctx.lineTo(X(d), Y(v[d]));
      else ctx.moveTo(X(d), Y(v[d]));
      pen = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
    for (let d = 0; d < n; d++) if (Number.isFinite(v[d])) ctx.fillRect(X(d) - 2, Y(v[d]) - 2, 4, 4);
  };
  line(s.max, th.fg2, [4, 3]);
  line(s.mean, th.accent, []);
  // the next-token term (d = 0)
  if (Number.isFinite(s.nextToken)) {
    ctx.strokeStyle = MARK;
    ctx.lineWidth = 2;
    ctx.strokeRect(X(0) - 4, Y(s.nextToken) - 4, 8, 8);
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillStyle = th.fg;
  ctx.fillText(`row ${s.row} · next token (d=0): ${fmt(s.nextToken)} · far future (Σ d≥1): ${fmt(s.farFuture)}`, L, 2);
  ctx.fillStyle = th.accent;
  ctx.fillText("— mean", L, 15);
  ctx.fillStyle = th.fg2;
  ctx.fillText("- - max", L + 56, 15);
  ctx.restore();
}
