/**
 * Pointer interaction on the map and the overview.
 *
 * Hovering an overview cell (or a map cell while nothing is pinned) previews that source's map
 * from the atlas — no kernel round trip — and shows a tooltip (map cells: with their logit lens).
 * A click pins (asks the kernel to intervene), shift-click adds to / removes from the set; a click
 * on the map also puts the keyboard cursor there and focuses the widget (keyboard.ts). A click that
 * ends a drag is not a pin, and a click while a transplant source is armed drops it there
 * (sidepointer.ts, transplant.ts).
 */

import type { Dom, Say } from "./dom";
import { cellText, type EstimateData, overviewCells } from "./estimate";
import type { HeadCell } from "./heads";
import { type Cell, type Geom, type Hit, hitTest } from "./heatmap";
import { type AtlasData, atlasHas, mapCellToSource, overviewValues, type Shown } from "./mapstate";
import type { Local, Painter } from "./painter";
import { fmt } from "./scale";
import type { TipText, Tooltip } from "./tooltip";
import type { Model, Reads } from "./traits";
import { clickOnMap, request, type TransplantRequest } from "./transplant";

/** What pointer and keyboard do to the view. */
export interface Actions {
  /** Pin `src` (a source cell), or toggle it in the pinned set when `add`. */
  pin(src: Cell, add: boolean): void;
  /** Preview `c`'s atlas map (null: none); repaints when it changes. */
  setPreview(c: Cell | null): void;
  /** Send a transplant (it pins its effect). */
  transplant(r: TransplantRequest): void;
  /** Intervene on one head (layer, head, pos) and pin its effect. */
  head(c: HeadCell): void;
  /** Restore the previous pinned effect. */
  undo(): void;
  say: Say;
}

export interface PointerDeps {
  m: Model;
  t: Reads;
  dom: Dom;
  local: Local;
  painter: Painter;
  tip: Tooltip;
  act: Actions;
}

const show = (v: number, none: string) => (Number.isFinite(v) ? fmt(v) : none);

/** The tooltip of a map hit: an output-strip cell, or a grid cell (with its logit lens). */
export function mapTip(hit: NonNullable<Hit>, g: Geom, shown: Shown, tokens: string[], metric: string): TipText {
  const token = tokens[hit.col] ?? "";
  if (hit.region === "strip") {
    const v = shown.strip ? shown.strip[hit.col] : NaN;
    const value = `${metric === "kl" ? "KL" : "Δlog p"} = ${show(v, "—")} nats`;
    return { head: `output at position ${hit.col}`, token, value, lensCell: null };
  }
  const k = hit.row * g.cols + hit.col;
  const v = shown.values ? shown.values[k] : NaN;
  const unreachable = shown.reach && !shown.reach[k];
  const row = `row ${hit.row}${hit.row === 0 ? " (embeddings)" : ` (after block ${hit.row - 1})`}`;
  return {
    head: `${row}, position ${hit.col}`,
    token,
    value: unreachable ? "unreachable: exactly 0" : `‖Δh‖/‖h‖ = ${show(v, "—")}`,
    lensCell: [hit.row, hit.col],
  };
}

/** The tooltip of overview cell (row, col) of `g`: the sweep's summary value of that source cell;
 * with an estimate (`est`), a cell the sweep has not reached says so and gives the estimate. */
export function overviewTip(
  row: number,
  col: number,
  g: Geom,
  atlas: AtlasData | null,
  which: string,
  tokens: string[],
  est: EstimateData | null = null,
  sweeping = false,
): TipText {
  const head = `source ${(atlas?.site ?? est?.site ?? "resid") === "resid" ? "row" : "block"} ${row}, position ${col}`;
  const token = tokens[col] ?? "";
  if (est) {
    const cells = overviewCells(atlas, est, which, g.rows, g.cols);
    return { head, token, value: cellText(cells, row, col, g.cols, sweeping), lensCell: null };
  }
  const ov = atlas ? overviewValues(atlas, which) : null;
  const v = ov ? ov.values[row * g.cols + col] : NaN;
  return {
    head,
    token,
    value: ov ? `${ov.title} = ${show(v, "not swept yet")} ${ov.unit}` : "no sweep yet",
    lensCell: null,
  };
}

/** Listen to the map and overview canvases; returns the removal. */
export function attachPointer({ m, t, dom, local, painter, tip, act }: PointerDeps): () => void {
  const hitIn = (ev: MouseEvent, c: HTMLCanvasElement, g: Geom | null): Hit => {
    if (!g) return null;
    const r = c.getBoundingClientRect();
    return hitTest(g, ev.clientX - r.left, ev.clientY - r.top);
  };
  const effectId = () => local.effect?.id ?? null;

  const onMapMove = (ev: MouseEvent) => {
    const g = painter.geom().map;
    if (!g) return;
    const hit = hitIn(ev, dom.map.canvas, g);
    if (!hit) {
      tip.hide();
      return;
    }
    tip.show(ev, mapTip(hit, g, painter.shown(), t.tokens(), m.get("metric")), effectId());
    if (hit.region === "grid" && !local.effect) {
      const src = mapCellToSource(hit.row, hit.col, t.site());
      if (src && atlasHas(local.atlas, src)) act.setPreview(src);
    }
  };
  const onMapClick = (ev: MouseEvent) => {
    if (local.hand.swallowClick) {
      local.hand.swallowClick = false; // the release of a drag, handled by sidepointer.ts
      return;
    }
    const hit = hitIn(ev, dom.map.canvas, painter.geom().map);
    if (hit?.region !== "grid") return;
    const two = clickOnMap(local.hand.armed, [hit.row, hit.col]);
    if (two.do === "transplant") {
      local.hand.armed = null;
      local.cursor = [hit.row, hit.col];
      const r = request(two.from, two.source, two.target, t.site());
      if ("error" in r) act.say("error", r.error);
      else act.transplant(r);
      painter.draw();
      return;
    }
    const src = mapCellToSource(hit.row, hit.col, t.site());
    if (!src) {
      act.say("error", "Row 0 (embeddings) has no block output: for attn_out/mlp_out click rows 1…L.");
      return;
    }
    local.cursor = [hit.row, hit.col];
    local.preview = null; // show the kernel's answer, not the atlas preview under the mouse
    act.pin(src, ev.shiftKey);
    dom.root.focus({ preventScroll: true });
  };
  const onOvMove = (ev: MouseEvent) => {
    const g = painter.geom().overview;
    if (!g) return;
    const hit = hitIn(ev, dom.overview.canvas, g);
    if (hit?.region !== "grid") {
      tip.hide();
      act.setPreview(null);
      return;
    }
    const c: Cell = [hit.row, hit.col];
    const which = m.get("overview_metric");
    const sweeping = !!m.get("progress")?.running;
    tip.show(
      ev,
      overviewTip(hit.row, hit.col, g, local.atlas, which, t.tokens(), local.estimate, sweeping),
      effectId(),
    );
    act.setPreview(atlasHas(local.atlas, c) ? c : null);
  };
  const onOvClick = (ev: MouseEvent) => {
    const hit = hitIn(ev, dom.overview.canvas, painter.geom().overview);
    if (hit?.region !== "grid") return;
    local.preview = null;
    act.pin([hit.row, hit.col], ev.shiftKey);
  };
  const onLeave = () => {
    tip.hide();
    act.setPreview(null);
  };

  const listeners: [HTMLCanvasElement, string, (ev: MouseEvent) => void][] = [
    [dom.map.canvas, "mousemove", onMapMove],
    [dom.map.canvas, "click", onMapClick],
    [dom.map.canvas, "mouseleave", onLeave],
    [dom.overview.canvas, "mousemove", onOvMove],
    [dom.overview.canvas, "click", onOvClick],
    [dom.overview.canvas, "mouseleave", onLeave],
  ];
  for (const [el, type, fn] of listeners) el.addEventListener(type, fn as EventListener);
  return () => {
    for (const [el, type, fn] of listeners) el.removeEventListener(type, fn as EventListener);
  };
}
