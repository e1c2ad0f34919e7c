/**
 * The map panel: the downstream map of what is shown (pinned effect or atlas preview, see
 * `currentMap` in mapstate.ts) with its output strip, the cursor, the first-reached marks, the two
 * legends, and the title and subtitle that say what is shown.
 */

import type { LegendPanel } from "./dom";
import { MARK } from "./draw";
import { type HeadCell, headHeading } from "./heads";
import { drawRings } from "./headspanel";
import { type Cell, type Geom, paint, type Theme } from "./heatmap";
import type { AtlasData, EffectData, Shown } from "./mapstate";
import { drawLegend, fmt, makeScale, type ScaleKind } from "./scale";
import type { PinInfo } from "./transplant";

export interface MapPanelArgs {
  dom: LegendPanel;
  g: Geom;
  th: Theme;
  shown: Shown;
  /** strip metric: "kl" | "logprob" */
  metric: string;
  sk: ScaleKind;
  cursor: Cell | null;
  tokens: string[];
  /** The first-reached view is on: outline `marks`. */
  firstReachedView: boolean;
  marks: Cell[];
  effect: EffectData | null;
  atlas: AtlasData | null;
  palette: string;
  /** The animation: rows above this one are not shown yet (null: all). */
  hideAbove: number | null;
  /** Transplant marks on this map (map cells): the pinned transplant's source and target, and
   * the armed / dragged source and the cell under the drag (transplant.ts `marks`). */
  hand?: { source: Cell[]; target: Cell[]; pending: Cell[] };
  /** The pinned effect's transplant, if it is one (for the subtitle). */
  pinInfo?: PinInfo | null;
  /** The head cells shown (a pinned or previewed head intervention), for the subtitle. */
  headCells?: HeadCell[];
}

/** Device pixels per CSS pixel of a canvas sized by `sizeCanvas`. */
export function dprOf(c: HTMLCanvasElement): number {
  return c.width / Math.max(1, parseFloat(c.style.width) || c.width);
}

export function drawMapPanel(a: MapPanelArgs): void {
  const { dom, shown, metric, th } = a;
  const mapScale = makeScale(shown.values ?? [], {
    kind: a.sk,
    unit: "‖h′−h‖ / ‖h‖",
    mask: shown.reach,
    palette: a.palette,
  });
  const stripScale = makeScale(shown.strip ?? [], {
    kind: a.sk,
    diverging: metric !== "kl",
    unit: "nats",
    palette: a.palette,
  });
  const ctx = dom.canvas.getContext("2d");
  if (ctx) {
    paint(ctx, a.g, {
      values: shown.values,
      color: mapScale.css,
      strip: shown.strip,
      stripColor: (v) => (Number.isFinite(v) ? stripScale.css(v) : th.bg),
      reach: shown.reach,
      sources: shown.site === "resid" ? shown.cells : shown.cells.map(([n, i]) => [n + 1, i] as Cell),
      cursor: a.cursor,
      tokens: a.tokens,
      rowLabel: (r: number) => (r === 0 ? "emb" : String(r)),
      theme: th,
      dpr: dprOf(dom.canvas),
      stripLabel: metric === "kl" ? "KL" : "Δlogp",
      marks: a.firstReachedView && shown.mode === "effect" ? a.marks : [],
      markColor: MARK,
      hideAbove: a.hideAbove,
    });
    if (a.hand) {
      const dpr = dprOf(dom.canvas);
      drawRings(ctx, a.g, a.hand.source, MARK, { dpr, width: th.line + 1 });
      drawRings(ctx, a.g, a.hand.target, th.fg, { dpr, width: th.line + 1, inset: 3 });
      drawRings(ctx, a.g, a.hand.pending, MARK, { dpr, dash: [3, 2], width: th.line });
    }
  }
  const lctx = dom.legend.getContext("2d");
  if (lctx) {
    const d = dprOf(dom.legend);
    lctx.setTransform(d, 0, 0, d, 0, 0);
    lctx.clearRect(0, 0, dom.legend.width, dom.legend.height);
    const lw = Math.min(240, parseFloat(dom.legend.style.width) - 20);
    drawLegend(lctx, mapScale, "map", 8, 2, lw, th.fg, th.font);
    const y2 = 2 * th.fs + 24;
    drawLegend(lctx, stripScale, metric === "kl" ? "strip: KL" : "strip: Δlog p", 8, y2, lw, th.fg, th.font);
  }
  dom.title.textContent = a.firstReachedView
    ? "Downstream effect · first row reached per position (outlined)"
    : "Downstream effect";
  dom.sub.textContent = mapSubtitle(shown, a.effect, a.atlas, a.pinInfo ?? null, a.headCells ?? []);
}

/** What the map's subtitle says about what is shown. */
export function mapSubtitle(
  shown: Shown,
  effect: EffectData | null,
  atlas: AtlasData | null,
  pin: PinInfo | null = null,
  heads: HeadCell[] = [],
): string {
  const cell = (c: number[]) => `(${c.join(", ")})`;
  const heading = headHeading(heads);
  const what =
    shown.mode === "effect" && pin
      ? `transplant ${cell(pin.sourceCell)} of ${pin.source === "this" ? "this prompt" : "the source prompt"} → ` +
        `${cell(pin.targetCell)} · ${effect?.site}` +
        (effect?.logitDiff != null ? ` · logit diff ${fmt(effect.logitDiff)}` : "")
      : shown.site === ("head" as string) && heads.length
        ? `${shown.mode === "effect" ? "pinned" : "preview from head sweep:"} ${heading} · ${effect?.kind ?? ""} @ head` +
          (shown.mode === "effect" && effect?.logitDiff != null ? ` · logit diff ${fmt(effect.logitDiff)}` : "")
        : shown.mode === "effect"
          ? `pinned ${shown.cells.map(([r, c]) => `(${r}, ${c})`).join(" ")} · ${effect?.kind} @ ${effect?.site}` +
            (effect?.logitDiff != null ? ` · logit diff ${fmt(effect.logitDiff)}` : "") +
            (effect?.fromSweep ? " · from the saved sweep" : "")
          : shown.mode === "atlas"
            ? `preview from sweep: (${shown.cells[0][0]}, ${shown.cells[0][1]}) · ${atlas?.kind} @ ${atlas?.site}`
            : "hover the overview or click a cell";
  return what + (shown.stripNote ? ` · ${shown.stripNote}` : "");
}
