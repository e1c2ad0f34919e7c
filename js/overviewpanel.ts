/** The overview panel: one summary value per source cell of the sweep (total KL or logit diff). */

import type { Cell, Geom, Theme } from "./heatmap";
import { paint } from "./heatmap";
import { type AtlasData, overviewValues } from "./mapstate";
import { drawLegend, makeScale } from "./scale";

export interface OverviewArgs {
  canvas: HTMLCanvasElement;
  legend: HTMLCanvasElement;
  sub: HTMLElement;
  g: Geom;
  th: Theme;
  sk: "linear" | "log";
  atlas: AtlasData | null;
  preview: Cell | null;
  which: string;
  site: string;
  tokens: string[];
  palette: string;
}

export function drawOverviewPanel(a: OverviewArgs): void {
  const { canvas: ovCanvas, legend: ovLegend, sub: ovSub, g, th, sk, atlas, preview } = a;
  const ctx = ovCanvas.getContext("2d");
  if (!ctx) return;
  const d = ovCanvas.width / Math.max(1, parseFloat(ovCanvas.style.width) || ovCanvas.width);
  const rowLabel = (r: number) =>
    a.site === "resid" || (atlas && atlas.site === "resid") ? (r === 0 ? "emb" : String(r)) : `b${r}`;
  const lctx = ovLegend.getContext("2d");
  if (!atlas) {
    paint(ctx, g, {
      values: null,
      color: () => th.bg,
      strip: null,
      stripColor: null,
      reach: null,
      sources: [],
      cursor: null,
      tokens: a.tokens,
      rowLabel,
      theme: th,
      dpr: d,
      stripLabel: "",
    });
    ovSub.textContent = "no sweep yet — press Sweep";
    lctx?.clearRect(0, 0, ovLegend.width, ovLegend.height);
    return;
  }
  const ov = overviewValues(atlas, a.which);
  const sc = makeScale(ov.values, {
    kind: sk,
    diverging: ov.diverging,
    center: ov.center,
    unit: ov.unit,
    palette: a.palette,
  });
  paint(ctx, g, {
    values: ov.values,
    color: (v) => (Number.isFinite(v) ? sc.css(v) : th.bg),
    strip: null,
    stripColor: null,
    reach: null,
    sources: preview ? [preview] : [],
    cursor: null,
    tokens: a.tokens,
    rowLabel,
    theme: th,
    dpr: d,
    stripLabel: "",
  });
  ovSub.textContent = `${ov.title} · ${atlas.kind} @ ${atlas.site}${atlas.complete ? "" : " · incomplete"}`;
  if (lctx) {
    lctx.setTransform(1, 0, 0, 1, 0, 0);
    lctx.clearRect(0, 0, ovLegend.width, ovLegend.height);
    const dl = ovLegend.width / Math.max(1, parseFloat(ovLegend.style.width));
    lctx.setTransform(dl, 0, 0, dl, 0, 0);
    drawLegend(lctx, sc, "overview", 8, 2, Math.min(240, parseFloat(ovLegend.style.width) - 20), th.fg, th.font);
  }
}
