/**
 * Color scales and the legend.
 *
 * A scale maps a value to [0, 1] (`norm`) and then to an RGB triple through a colormap.
 * - sequential (non-negative quantities: ‖Δh‖/‖h‖, KL): viridis, `linear` on [0, vmax] or
 *   `log` on [vmin, vmax] with vmin = max(smallest positive value, vmax · 1e-4); values at or
 *   below vmin (including exact zeros) get the bottom color.
 * - diverging (signed quantities: Δlog p, logit difference): blue ← center → red, symmetric
 *   around `center` (0 unless given); `log` becomes a symmetric-log scale.
 *
 * `ticks()` gives legend labels; `drawLegend` paints a horizontal bar with them and the units.
 */

export type ScaleKind = "linear" | "log";
export type RGB = [number, number, number];

// Perceptually uniform maps, sampled at 9 stops and linearly interpolated.
const VIRIDIS: RGB[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];
const RDBU: RGB[] = [
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
];

// High contrast (projectors): inferno runs from black to pale yellow, the full range of
// lightness; the diverging map is RdBu's darkest ends around white.
const INFERNO: RGB[] = [
  [0, 0, 4],
  [31, 12, 72],
  [85, 15, 109],
  [136, 34, 106],
  [186, 54, 85],
  [227, 89, 51],
  [249, 140, 10],
  [249, 201, 50],
  [252, 255, 164],
];
const RDBU_STRONG: RGB[] = [
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [255, 255, 255],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
];

/** "default" (viridis, RdBu) or "contrast" (inferno, strong RdBu: for projectors). */
export type Palette = "default" | "contrast";

/** The colormap of a palette, sequential or diverging. */
export function stopsOf(palette: Palette | string | undefined, diverging: boolean): RGB[] {
  if (palette === "contrast") return diverging ? RDBU_STRONG : INFERNO;
  return diverging ? RDBU : VIRIDIS;
}

/** Interpolate a colormap at t ∈ [0, 1] (clamped; NaN → mid-gray). */
export function colormap(stops: RGB[], t: number): RGB {
  if (!Number.isFinite(t)) return [128, 128, 128];
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

export interface ScaleOptions {
  kind: ScaleKind;
  diverging?: boolean;
  /** Center of a diverging scale (default 0). */
  center?: number;
  /** Units shown in the legend, e.g. "‖h′−h‖ / ‖h‖" or "nats". */
  unit: string;
  /** Only values where mask[i] is non-zero set the range (e.g. the reachable cone). */
  mask?: ArrayLike<number> | null;
  /** Colormaps (default: viridis / RdBu). */
  palette?: Palette | string;
}

export interface ColorScale {
  kind: ScaleKind;
  diverging: boolean;
  /** Sequential: lower/upper bound. Diverging: center ± vmax. */
  vmin: number;
  vmax: number;
  center: number;
  unit: string;
  /** The colormap. */
  stops: RGB[];
  norm(v: number): number;
  color(v: number): RGB;
  css(v: number): string;
  ticks(n?: number): { value: number; t: number; label: string }[];
}

/** Short number formatting for legends and tooltips: 3 significant digits, exponent when tiny. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1).replace("e+", "e");
  return Number(v.toPrecision(3)).toString();
}

/** Build a scale fitted to `values` (NaN and masked-out values ignored). */
export function makeScale(values: ArrayLike<number>, opts: ScaleOptions): ColorScale {
  const diverging = !!opts.diverging;
  const center = opts.center ?? 0;
  let maxAbs = 0;
  let minPos = Infinity;
  for (let i = 0; i < values.length; i++) {
    if (opts.mask && !opts.mask[i]) continue;
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    const d = diverging ? Math.abs(v - center) : v;
    if (d > maxAbs) maxAbs = d;
    if (d > 0 && d < minPos) minPos = d;
  }
  if (!(maxAbs > 0)) maxAbs = 1; // all zeros: any range will do
  const logLo = Math.max(Number.isFinite(minPos) ? minPos : maxAbs * 1e-4, maxAbs * 1e-4);
  const logRange = Math.log(maxAbs / logLo) || 1;
  const stops = stopsOf(opts.palette, diverging);

  let norm: (v: number) => number;
  if (!diverging) {
    norm =
      opts.kind === "log"
        ? (v) => (v <= logLo ? 0 : Math.min(1, Math.log(v / logLo) / logRange))
        : (v) => Math.min(1, Math.max(0, v / maxAbs));
  } else {
    norm =
      opts.kind === "log"
        ? (v) => {
            const d = v - center;
            const a = Math.abs(d);
            if (a <= logLo) return 0.5;
            return 0.5 + 0.5 * Math.sign(d) * Math.min(1, Math.log(a / logLo) / logRange);
          }
        : (v) => 0.5 + 0.5 * Math.max(-1, Math.min(1, (v - center) / maxAbs));
  }
  const vmin = diverging ? center - maxAbs : opts.kind === "log" ? logLo : 0;
  const vmax = diverging ? center + maxAbs : maxAbs;

  const scale: ColorScale = {
    kind: opts.kind,
    diverging,
    vmin,
    vmax,
    center,
    unit: opts.unit,
    stops,
    norm,
    color: (v) => colormap(stops, norm(v)),
    css: (v) => {
      const c = colormap(stops, norm(v));
      return `rgb(${c[0]},${c[1]},${c[2]})`;
    },
    ticks(n = 5) {
      const out: { value: number; t: number; label: string }[] = [];
      if (opts.kind === "log" && !diverging) {
        const e0 = Math.ceil(Math.log10(logLo));
        const e1 = Math.floor(Math.log10(maxAbs));
        const step = Math.max(1, Math.ceil((e1 - e0 + 1) / n));
        for (let e = e0; e <= e1; e += step) out.push({ value: 10 ** e, t: norm(10 ** e), label: fmt(10 ** e) });
        if (!out.length) out.push({ value: maxAbs, t: 1, label: fmt(maxAbs) });
        return out;
      }
      for (let k = 0; k < n; k++) {
        const t = k / (n - 1);
        let value: number;
        if (!diverging) value = t * maxAbs;
        else if (opts.kind === "log") {
          const u = (t - 0.5) * 2;
          value = u === 0 ? center : center + Math.sign(u) * logLo * Math.exp(Math.abs(u) * logRange);
        } else value = center + (t - 0.5) * 2 * maxAbs;
        out.push({ value, t, label: fmt(value) });
      }
      return out;
    },
  };
  return scale;
}

/**
 * Paint a legend: a horizontal color bar `width` × 10 px with tick labels and
 * "title (unit, linear|log)" above. `fg` is the text color (taken from the theme).
 */
export function drawLegend(
  ctx: CanvasRenderingContext2D,
  scale: ColorScale,
  title: string,
  x: number,
  y: number,
  width: number,
  fg: string,
  font: string,
): void {
  ctx.save();
  ctx.font = font;
  ctx.fillStyle = fg;
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(`${title} — ${scale.unit}, ${scale.kind}${scale.diverging ? " (diverging)" : ""}`, x, y);
  const fs = Number.parseFloat(font) || 11;
  const by = y + fs + 4;
  for (let px = 0; px < width; px++) {
    const t = px / Math.max(1, width - 1);
    const c = colormap(scale.stops, t);
    ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
    ctx.fillRect(x + px, by, 1, 10);
  }
  ctx.fillStyle = fg;
  ctx.textAlign = "center";
  for (const tk of scale.ticks(5)) {
    const tx = x + tk.t * width;
    ctx.fillRect(tx, by + 10, 1, 3);
    ctx.fillText(tk.label, Math.min(x + width - 12, Math.max(x + 12, tx)), by + 14);
  }
  ctx.restore();
}
