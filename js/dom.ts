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
  const map = panel("rw-map", "Downstream effect", true);
  const ov = panel("rw-overview", "Overview: which cells matter", true);
  const view = panel("rw-view", "", false);
  const [mapPanel, mapTitle, mapSub, mapCanvas, mapLegend] = [map.el, map.title, map.sub, map.canvas, map.legend!];
  const [ovPanel, ovTitle, ovSub, ovCanvas, ovLegend] = [ov.el, ov.title, ov.sub, ov.canvas, ov.legend!];
  const [viewPanel, viewTitle, viewSub, viewCanvas] = [view.el, view.title, view.sub, view.canvas];
  panels.append(mapPanel, viewPanel, ovPanel);
  const tooltip = h("div", "rw-tooltip");
  const help = h(
    "div",
    "rw-help",
    "Hover a cell to preview its map from the sweep · click to intervene (pin) · shift-click to add to the set · arrows + Enter · hatched = unreachable (exactly 0)",
  );
  return {
    style,
    root,
    header,
    prompt,
    status,
    progress,
    bar,
    progText,
    message,
    panels,
    mapPanel,
    mapTitle,
    mapSub,
    mapCanvas,
    mapLegend,
    ovPanel,
    ovTitle,
    ovSub,
    ovCanvas,
    ovLegend,
    viewPanel,
    viewTitle,
    viewSub,
    viewCanvas,
    tooltip,
    help,
  };
}

/** One panel: title, subtitle, the heatmap canvas and (optionally) its legend canvas. */
function panel(cls: string, title: string, legend: boolean) {
  const el = h("div", `rw-panel ${cls}`);
  const t = h("div", "rw-title", title || undefined);
  const sub = h("div", "rw-sub");
  const canvas = h("canvas");
  const leg = legend ? h("canvas") : null;
  el.append(t, sub, canvas, ...(leg ? [leg] : []));
  return { el, title: t, sub, canvas, legend: leg };
}
