/**
 * Canvas drawing of one residual-stream grid, and the geometry behind it.
 *
 * The picture is the classic residual-stream diagram:
 *
 *        ┌───────────────────────────┐  output strip: one value per position (KL, Δlog p)
 *        └───────────────────────────┘
 *   row L ┌──┬──┬──┬──┬──┬──┬──┬──┬──┐  rows: residual leaving block L-1 (top) …
 *     …   ├──┼──┼──┼──┼──┼──┼──┼──┼──┤
 *   row 0 └──┴──┴──┴──┴──┴──┴──┴──┴──┘  … row 0: embeddings (bottom)
 *          tok0 tok1 …          tokP-1   positions left → right
 *
 * Geometry (`Geom`, CSS pixels): cell (row r, position c) occupies
 * `x ∈ [x0 + c·cw, x0 + (c+1)·cw)`, `y ∈ [y0 + (rows-1-r)·ch, y0 + (rows-r)·ch)` — row 0 at the
 * bottom. `cellRect` and `hitTest` are exact inverses on cell interiors (unit-tested).
 *
 * The reachable cone of an intervention at (n, i) on the residual stream is the cell itself plus
 * every cell above it (row > n) at a position ≥ i: nothing can flow down a layer or back in time.
 * An intervention on block n's `attn_out`/`mlp_out` enters the residual at row n+1, so its cone is
 * that of residual cell (n+1, i). Unreachable cells are hatched; the cone gets an outline.
 */

export type Cell = [number, number];
export type Site = "resid" | "attn_out" | "mlp_out";

export interface Geom {
  /** Left edge of column 0 / top edge of the top row, CSS px. */
  x0: number;
  y0: number;
  /** Cell width/height, CSS px. */
  cw: number;
  ch: number;
  rows: number;
  cols: number;
  /** Height of the output strip above the grid (0 = none) and the gap between them. */
  stripH: number;
  stripGap: number;
}

export type Hit = { region: "grid"; row: number; col: number } | { region: "strip"; col: number } | null;

/** Pixel rectangle of cell (row, col). */
export function cellRect(g: Geom, row: number, col: number): { x: number; y: number; w: number; h: number } {
  return { x: g.x0 + col * g.cw, y: g.y0 + (g.rows - 1 - row) * g.ch, w: g.cw, h: g.ch };
}

/** Pixel rectangle of the output-strip cell at `col`. */
export function stripRect(g: Geom, col: number): { x: number; y: number; w: number; h: number } {
  return { x: g.x0 + col * g.cw, y: g.y0 - g.stripGap - g.stripH, w: g.cw, h: g.stripH };
}

/** Which cell (or strip cell) is under pixel (x, y); null outside both. */
export function hitTest(g: Geom, x: number, y: number): Hit {
  const col = Math.floor((x - g.x0) / g.cw);
  if (col < 0 || col >= g.cols) return null;
  const k = Math.floor((y - g.y0) / g.ch);
  if (y >= g.y0 && k >= 0 && k < g.rows) return { region: "grid", row: g.rows - 1 - k, col };
  if (g.stripH > 0 && y >= g.y0 - g.stripGap - g.stripH && y < g.y0 - g.stripGap) return { region: "strip", col };
  return null;
}

/** The residual cell through which an intervention at `cell` on `site` enters the stream. */
export function entryCell(cell: Cell, site: Site): Cell {
  return site === "resid" ? cell : [cell[0] + 1, cell[1]];
}

/**
 * Reachable-region mask, shape [rows, cols] flattened (row-major, row 0 first): 1 where some
 * intervened cell can influence the residual, 0 where it provably cannot.
 */
export function reachable(rows: number, cols: number, cells: Cell[], site: Site = "resid", kind = ""): Uint8Array {
  const m = new Uint8Array(rows * cols);
  for (const c of cells) {
    if (kind === "knockout") {
      // later positions cannot read (n, i) from block n up: rows > n, positions > i
      for (let r = c[0] + 1; r < rows; r++) for (let p = Math.max(0, c[1] + 1); p < cols; p++) m[r * cols + p] = 1;
      continue;
    }
    const [n, i] = entryCell(c, site);
    if (n >= 0 && n < rows && i >= 0 && i < cols) m[n * cols + i] = 1;
    for (let r = n + 1; r < rows; r++) for (let p = Math.max(0, i); p < cols; p++) m[r * cols + p] = 1;
  }
  return m;
}

/**
 * Boundary of a mask as unit segments in grid coordinates (x = column edge 0..cols,
 * y = row edge 0..rows, y up): every edge between a masked cell and an unmasked cell or the border.
 */
export function outline(mask: ArrayLike<number>, rows: number, cols: number): [number, number, number, number][] {
  const on = (r: number, c: number) => r >= 0 && r < rows && c >= 0 && c < cols && !!mask[r * cols + c];
  const segs: [number, number, number, number][] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (!on(r, c)) continue;
      if (!on(r, c - 1)) segs.push([c, r, c, r + 1]);
      if (!on(r, c + 1)) segs.push([c + 1, r, c + 1, r + 1]);
      if (!on(r - 1, c)) segs.push([c, r, c + 1, r]);
      if (!on(r + 1, c)) segs.push([c, r + 1, c + 1, r + 1]);
    }
  }
  return segs;
}

/** Token text with whitespace made visible: spaces → "␣", newlines → "↵", tabs → "⇥". */
export function showToken(s: string): string {
  return (
    s
      .replace(/ /g, "␣")
      .replace(/\r?\n/g, "↵")
      .replace(/\t/g, "⇥")
      // biome-ignore lint/suspicious/noControlCharactersInRegex: matching the remaining control characters is the point — they are drawn as "·"
      .replace(/[\u0000-\u001f]/g, "·")
  );
}

/** Colors taken from the page theme (see widget.css: --rw-* map to --jp-* with fallbacks). */
export interface Theme {
  fg: string;
  fg2: string;
  bg: string;
  border: string;
  accent: string;
  hatch: string;
  font: string;
  mono: string;
  /** Canvas font size, CSS px (11; larger in presentation mode). */
  fs: number;
  /** Width of the cone outline and the pinned-cell rings, CSS px. */
  line: number;
}

export interface PaintOptions {
  /** values for the grid, [rows, cols] row-major; null → empty grid. */
  values: ArrayLike<number> | null;
  color: (v: number) => string;
  /** values for the strip, [cols] (NaN = no value); null → no strip values. */
  strip: ArrayLike<number> | null;
  stripColor: ((v: number) => string) | null;
  /** 1 = reachable; null = do not mark. */
  reach: ArrayLike<number> | null;
  /** Intervened cells (drawn with a thick ring). */
  sources: Cell[];
  /** Keyboard/hover cursor cell. */
  cursor: Cell | null;
  tokens: string[];
  rowLabel: (r: number) => string;
  theme: Theme;
  /** Device pixels per CSS pixel (the canvas backing store is that much larger). */
  dpr: number;
  /** Label for the strip (drawn left of it). */
  stripLabel: string;
  /** Extra outlined cells (the first-reached view) and their color. */
  marks?: Cell[];
  markColor?: string;
  /** Rows above this one are not shown yet (the animation): plain background, no cone outline,
   * no strip values. Undefined or null: every row. */
  hideAbove?: number | null;
}

let hatchCache: { key: string; pattern: CanvasPattern | null } | null = null;

function hatchPattern(ctx: CanvasRenderingContext2D, color: string, bg: string): CanvasPattern | string {
  const key = color + bg;
  if (hatchCache?.key === key && hatchCache.pattern) return hatchCache.pattern;
  if (typeof document === "undefined") return bg;
  const c = document.createElement("canvas");
  c.width = c.height = 6;
  const x = c.getContext("2d");
  if (!x) return bg;
  x.fillStyle = bg;
  x.fillRect(0, 0, 6, 6);
  x.strokeStyle = color;
  x.lineWidth = 1;
  x.beginPath();
  x.moveTo(0, 6);
  x.lineTo(6, 0);
  x.stroke();
  const p = ctx.createPattern(c, "repeat");
  hatchCache = { key, pattern: p };
  return p ?? bg;
}

/** Paint grid + strip + labels into `ctx` (already scaled to CSS px). */
export function paint(ctx: CanvasRenderingContext2D, g: Geom, o: PaintOptions): void {
  const W = ctx.canvas.width;
  const H = ctx.canvas.height;
  ctx.save();
  ctx.setTransform(o.dpr, 0, 0, o.dpr, 0, 0);
  ctx.clearRect(0, 0, W / o.dpr, H / o.dpr);
  const hatch = hatchPattern(ctx, o.theme.hatch, o.theme.bg);
  const top = o.hideAbove ?? g.rows - 1;
  // cells
  for (let r = 0; r < g.rows; r++) {
    for (let c = 0; c < g.cols; c++) {
      const q = cellRect(g, r, c);
      const k = r * g.cols + c;
      if (r > top) ctx.fillStyle = o.theme.bg;
      else if (o.reach && !o.reach[k]) ctx.fillStyle = hatch;
      else if (o.values) ctx.fillStyle = o.color(o.values[k]);
      else ctx.fillStyle = o.theme.bg;
      ctx.fillRect(q.x, q.y, q.w, q.h);
    }
  }
  // grid frame
  ctx.strokeStyle = o.theme.border;
  ctx.lineWidth = 1;
  ctx.strokeRect(g.x0 - 0.5, g.y0 - 0.5, g.cols * g.cw + 1, g.rows * g.ch + 1);
  // strip
  if (g.stripH > 0) {
    for (let c = 0; c < g.cols; c++) {
      const q = stripRect(g, c);
      const v = o.strip && top >= g.rows - 1 ? o.strip[c] : NaN;
      ctx.fillStyle = o.strip && Number.isFinite(v) && o.stripColor ? o.stripColor(v) : o.theme.bg;
      ctx.fillRect(q.x, q.y, q.w, q.h);
    }
    ctx.strokeRect(g.x0 - 0.5, g.y0 - g.stripGap - g.stripH - 0.5, g.cols * g.cw + 1, g.stripH + 1);
    ctx.fillStyle = o.theme.fg2;
    ctx.font = o.theme.font;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(o.stripLabel, g.x0 - 4, g.y0 - g.stripGap - g.stripH / 2);
  }
  // cone outline (of the rows shown)
  if (o.reach) {
    ctx.strokeStyle = o.theme.accent;
    ctx.lineWidth = o.theme.line;
    ctx.beginPath();
    const shown = top >= g.rows - 1 ? o.reach : Array.from(o.reach, (x, k) => (k < (top + 1) * g.cols ? x : 0));
    for (const [xa, ya, xb, yb] of outline(shown, g.rows, g.cols)) {
      ctx.moveTo(g.x0 + xa * g.cw, g.y0 + (g.rows - ya) * g.ch);
      ctx.lineTo(g.x0 + xb * g.cw, g.y0 + (g.rows - yb) * g.ch);
    }
    ctx.stroke();
  }
  // sources and cursor
  ctx.lineWidth = o.theme.line;
  for (const [r, c] of o.sources) {
    if (r < 0 || r >= g.rows || c < 0 || c >= g.cols) continue;
    const q = cellRect(g, r, c);
    ctx.strokeStyle = o.theme.fg;
    ctx.strokeRect(q.x + 1, q.y + 1, q.w - 2, q.h - 2);
  }
  ctx.strokeStyle = o.markColor ?? o.theme.accent;
  for (const [r, c] of o.marks ?? []) {
    if (r < 0 || r >= g.rows || c < 0 || c >= g.cols) continue;
    const q = cellRect(g, r, c);
    ctx.strokeRect(q.x + 1.5, q.y + 1.5, q.w - 3, q.h - 3);
  }
  if (o.cursor) {
    const [r, c] = o.cursor;
    if (r >= 0 && r < g.rows && c >= 0 && c < g.cols) {
      const q = cellRect(g, r, c);
      ctx.setLineDash([3, 2]);
      ctx.strokeStyle = o.theme.accent;
      ctx.strokeRect(q.x + 0.5, q.y + 0.5, q.w - 1, q.h - 1);
      ctx.setLineDash([]);
    }
  }
  // row labels (thin out when rows are dense)
  ctx.fillStyle = o.theme.fg2;
  ctx.font = o.theme.font;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const every = Math.max(1, Math.ceil((o.theme.fs + 1) / g.ch));
  for (let r = 0; r < g.rows; r++) {
    if (r % every && r !== g.rows - 1) continue;
    const q = cellRect(g, r, 0);
    ctx.fillText(o.rowLabel(r), g.x0 - 4, q.y + q.h / 2);
  }
  // token labels, rotated
  ctx.font = o.theme.mono;
  ctx.textAlign = "right";
  ctx.fillStyle = o.theme.fg;
  const yl = g.y0 + g.rows * g.ch + 4;
  for (let c = 0; c < g.cols; c++) {
    let t = showToken(o.tokens[c] ?? "");
    if (t.length > 12) t = `${t.slice(0, 11)}…`;
    ctx.save();
    ctx.translate(g.x0 + (c + 0.5) * g.cw, yl);
    ctx.rotate(-Math.PI / 3);
    ctx.fillText(t, 0, 0);
    ctx.restore();
  }
  ctx.restore();
}

/** Height reserved under the grid for the rotated token labels, CSS px (at an 11 px font). */
export const LABEL_H = 78;

/** `LABEL_H` for a canvas font of `fs` px. */
export function labelH(fs: number): number {
  return Math.round((LABEL_H * fs) / 11);
}
