/**
 * The transplant source panel: the transplant prompt's grid (rows × its own positions, any
 * length) beside the main map, coloured by the norm `‖h‖` of each clean residual of that prompt,
 * so there is something to aim at. Press on a cell and drag it onto the main map, or click it
 * (arms it) and then click a target there. The pinned transplant's source and the armed cell
 * are outlined (transplant.ts `marks`). Hidden while there is no transplant prompt.
 */

import type { Panel } from "./dom";
import { MARK, sizeCanvas } from "./draw";
import { drawRings } from "./headspanel";
import { type Geom, labelH, paint, type Theme } from "./heatmap";
import { makeScale } from "./scale";
import type { Hand, Where } from "./transplant";
import { marks } from "./transplant";

export interface SourcePanelArgs {
  dom: Panel;
  th: Theme;
  hand: Hand;
  site: string;
  /** Cell width and height of the main map. */
  cw: number;
  ch: number;
  palette: string;
}

/** Draw the panel (hidden without a transplant prompt); returns its geometry or null. */
export function drawSourcePanel(a: SourcePanelArgs): { geom: Geom | null; info: Record<string, unknown> } {
  const s = a.hand.source;
  a.dom.panel.style.display = s ? "" : "none";
  if (!s) return { geom: null, info: { shown: false } };
  const P = s.tokens.length;
  const g: Geom = { x0: 44, y0: 6, cw: a.cw, ch: a.ch, rows: s.rows, cols: P, stripH: 0, stripGap: 0 };
  const dpr = sizeCanvas(a.dom.canvas, g.x0 + P * a.cw + 16, g.y0 + s.rows * a.ch + labelH(a.th.fs));
  a.dom.title.textContent = "Transplant source";
  a.dom.sub.textContent = `${JSON.stringify(s.prompt)} · ${P} tokens · ‖h‖ per cell · drag a cell onto the map (or click it, then a target)`;
  const sc = makeScale(s.norm, { kind: "linear", unit: "‖h‖", palette: a.palette });
  const ctx = a.dom.canvas.getContext("2d");
  const where: Where = "source";
  const m = marks(a.hand, where, a.site as "resid");
  if (ctx) {
    paint(ctx, g, {
      values: s.norm,
      color: (v) => (Number.isFinite(v) ? sc.css(v) : a.th.bg),
      strip: null,
      stripColor: null,
      reach: null,
      sources: [],
      cursor: null,
      tokens: s.tokens,
      rowLabel: (r) => (r === 0 ? "emb" : String(r)),
      theme: a.th,
      dpr,
      stripLabel: "",
    });
    drawRings(ctx, g, m.source, MARK, { dpr, width: a.th.line + 1 });
    drawRings(ctx, g, m.pending, MARK, { dpr, dash: [3, 2], width: a.th.line });
  }
  return { geom: g, info: { shown: true, rows: s.rows, cols: P, marks: m } };
}
