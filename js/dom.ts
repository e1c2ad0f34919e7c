/**
 * The widget's DOM skeleton (no behaviour), as panel objects:
 *
 *   root      .rw-root (focusable: the map's keys act while it has focus, see keyboard.ts)
 *   header    prompt (as text) · status
 *             (the control bar goes here: controls.ts, inserted by widget.ts)
 *   progress  sweep progress bar + its text
 *   note      the saved page only: what it holds, what needs a kernel
 *   message   kernel errors / disconnection, in words
 *   panels    [map: output strip + downstream map + legends]  [source: the transplant prompt]
 *             [lecture: profile | similarity]  [heads: head × position]
 *             [overview: one value per source cell]
 *   help, tooltip
 */

import { h } from "./controls";

/** One panel: title, subtitle and the heatmap / chart canvas. */
export interface Panel {
  panel: HTMLDivElement;
  title: HTMLDivElement;
  sub: HTMLDivElement;
  canvas: HTMLCanvasElement;
}

/** A panel with a legend canvas under its heatmap. */
export interface LegendPanel extends Panel {
  legend: HTMLCanvasElement;
}

export interface Dom {
  style: HTMLStyleElement;
  root: HTMLDivElement;
  header: { el: HTMLDivElement; prompt: HTMLSpanElement; status: HTMLSpanElement };
  progress: { el: HTMLDivElement; bar: HTMLProgressElement; text: HTMLSpanElement };
  message: HTMLDivElement;
  /** What the saved page holds and what needs a kernel (hidden in a notebook). */
  note: HTMLDivElement;
  panels: HTMLDivElement;
  map: LegendPanel;
  overview: LegendPanel;
  /** The lecture-view panel beside the map (future profile, similarity). */
  lecture: Panel;
  /** The heads view's head × position map (headspanel.ts). */
  heads: LegendPanel;
  /** The transplant prompt's grid, to drag source cells from (sourcepanel.ts). */
  source: Panel;
  tooltip: HTMLDivElement;
  help: HTMLDivElement;
}

export const HELP =
  "Hover a cell to preview its map from the sweep · click to intervene (pin) · shift-click or Space to add to the set · " +
  "arrows move the cursor, Enter pins, Esc drops · drag a cell onto another to transplant it (or T on the source, Enter on " +
  "the target), Ctrl+Z undoes · heads view: arrows move over layer.head × position, Enter or Space pins that head, " +
  "Esc drops · Shift+Enter runs the cell · hatched = unreachable (exactly 0)";

/** The help line of the saved page (no kernel). */
export const PAGE_HELP =
  "Hover a cell of the overview (or of the map, once nothing is pinned: Clear) to see its map from the saved sweep · " +
  "click a swept cell to pin it · arrows move the cursor, Enter pins, Esc drops · hatched = unreachable (exactly 0)";

/** Build the skeleton, everything but the control bar appended to `root` (in order). */
export function buildDom(css: string): Dom {
  const style = h("style");
  style.textContent = css;
  const root = h("div", "rw-root");
  root.tabIndex = 0;
  const header = { el: h("div", "rw-header"), prompt: h("span", "rw-prompt"), status: h("span", "rw-status") };
  header.el.append(header.prompt, header.status);
  const progress = { el: h("div", "rw-progress"), bar: h("progress"), text: h("span") };
  progress.el.append(progress.bar, progress.text);
  const message = h("div", "rw-message");
  message.setAttribute("role", "alert");
  const note = h("div", "rw-page-note");
  note.style.display = "none";
  const panels = h("div", "rw-panels");
  const map = legendPanel(panel("rw-map", "Downstream effect"));
  const overview = legendPanel(panel("rw-overview", "Overview: which cells matter"));
  const lecture = panel("rw-view", "");
  const heads = legendPanel(panel("rw-heads", "Heads"));
  const source = panel("rw-tsource", "Transplant source");
  heads.panel.style.display = "none";
  source.panel.style.display = "none";
  panels.append(map.panel, source.panel, lecture.panel, heads.panel, overview.panel);
  const tooltip = h("div", "rw-tooltip");
  const help = h("div", "rw-help", HELP);
  root.append(style, header.el, progress.el, note, message, panels, help, tooltip);
  return { style, root, header, progress, message, note, panels, map, overview, lecture, heads, source, tooltip, help };
}

function panel(cls: string, title: string): Panel {
  const el = h("div", `rw-panel ${cls}`);
  const p = {
    panel: el,
    title: h("div", "rw-title", title || undefined),
    sub: h("div", "rw-sub"),
    canvas: h("canvas"),
  };
  el.append(p.title, p.sub, p.canvas);
  return p;
}

function legendPanel(p: Panel): LegendPanel {
  const legend = h("canvas");
  p.panel.append(legend);
  return { ...p, legend };
}

export type Say = (kind: "error" | "warn" | "", text: string) => void;

/** Show `text` in the message line as an error, a warning, or plain ("" clears). */
export function sayIn(message: HTMLElement): Say {
  return (kind, text) => {
    message.className = `rw-message${kind ? ` rw-${kind}` : ""}`;
    message.textContent = text;
  };
}

/** Whether the message line currently shows a message of `kind`. */
export function showing(message: HTMLElement, kind: "error" | "warn"): boolean {
  return message.classList.contains(`rw-${kind}`);
}
