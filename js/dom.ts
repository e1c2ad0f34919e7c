/** The widget's DOM skeleton (no behaviour): header, progress, message, panels, tooltip, help. */

import { h } from "./controls";

export function buildDom(css: string) {
  const style = document.createElement("style");
  style.textContent = css;
  const root = h("div", "rw-root");
  root.tabIndex = 0;
  // While the widget has focus its keys (arrows, Enter, Escape) are its own: Lumino skips
  // Jupyter's shortcuts for events from inside this element (Notebook 7 would otherwise take the
  // arrows to move between cells).
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  const header = h("div", "rw-header");
  const prompt = h("span", "rw-prompt");
  const status = h("span", "rw-status");
  header.append(prompt, status);
  const progress = h("div", "rw-progress");
  const bar = h("progress");
  const progText = h("span");
  progress.append(bar, progText);
  const message = h("div", "rw-message");
  message.setAttribute("role", "alert");
  const panels = h("div", "rw-panels");
  const mapPanel = h("div", "rw-panel rw-map");
  const mapTitle = h("div", "rw-title", "Downstream effect");
  const mapSub = h("div", "rw-sub");
  const mapCanvas = h("canvas");
  const mapLegend = h("canvas");
  mapPanel.append(mapTitle, mapSub, mapCanvas, mapLegend);
  const ovPanel = h("div", "rw-panel rw-overview");
  const ovTitle = h("div", "rw-title", "Overview: which cells matter");
  const ovSub = h("div", "rw-sub");
  const ovCanvas = h("canvas");
  const ovLegend = h("canvas");
  ovPanel.append(ovTitle, ovSub, ovCanvas, ovLegend);
  const viewPanel = h("div", "rw-panel rw-view");
  const viewTitle = h("div", "rw-title");
  const viewSub = h("div", "rw-sub");
  const viewCanvas = h("canvas");
  viewPanel.append(viewTitle, viewSub, viewCanvas);
  panels.append(mapPanel, viewPanel, ovPanel);
  const tooltip = h("div", "rw-tooltip");
  const help = h("div", "rw-help",
    "Hover a cell to preview its map from the sweep · click to intervene (pin) · shift-click to add to the set · arrows + Enter · hatched = unreachable (exactly 0)");
  return { style, root, header, prompt, status, progress, bar, progText, message, panels, mapPanel, mapTitle, mapSub, mapCanvas, mapLegend, ovPanel, ovTitle, ovSub, ovCanvas, ovLegend, viewPanel, viewTitle, viewSub, viewCanvas, tooltip, help };
}
