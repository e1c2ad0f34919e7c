/**
 * Layout and painting of the three panels from the view's local state and the synced traits:
 * `draw()` decides what the map shows (`currentMap`), paints the map, the overview and the lecture
 * panel, then records it for tests — `data-*` attributes on the root (rows, positions, mode,
 * cells, effect id, paints, view) and an `rw-paint` event. Theme switches and resizes repaint.
 */

import type { Dom } from "./dom";
import { gridLayout, sizeCanvas, theme } from "./draw";
import type { EstimateData } from "./estimate";
import { type HeadsLocal, headShown } from "./heads";
import { drawHeadsPanel } from "./headspanel";
import { type Cell, type Geom, labelH } from "./heatmap";
import { firstReachedMarks, type PositionContentData, type ProfileData, type SimilarityData } from "./lecture";
import { drawLecturePanel } from "./lecturepanel";
import { drawMapPanel } from "./mappanel";
import { type AtlasData, currentMap, type EffectData, type Shown } from "./mapstate";
import { drawOverviewPanel, type OverviewInfo } from "./overviewpanel";
import type { ScaleKind } from "./scale";
import { drawSourcePanel } from "./sourcepanel";
import type { Model, Reads } from "./traits";
import { type Hand, marks } from "./transplant";

/** What this view holds besides the synced traits: decoded payloads, the hovered preview, the
 * keyboard cursor. */
export interface Local {
  effect: EffectData | null;
  atlas: AtlasData | null;
  firstReached: number[] | null;
  profile: ProfileData | null;
  simil: SimilarityData | null;
  /** The position-vs-content decomposition (`position_content` trait), or null. */
  poscon?: PositionContentData | null;
  /** Source cell whose atlas map is previewed (hover), or null. */
  preview: Cell | null;
  /** Keyboard cursor on the map (map row, position), or null. */
  cursor: Cell | null;
  /** The animation: the pinned map is shown up to this row (null: every row). */
  reveal: number | null;
  /** Transplanting by hand: armed source, drag, the pinned transplant, the source grid. */
  hand: Hand;
  /** The heads view: the head sweep and the hovered head. */
  heads: HeadsLocal;
  /** The instant overview's estimate (estimate.ts), or null. */
  estimate?: EstimateData | null;
}

export interface Painter {
  layout(): void;
  draw(): void;
  /** What the map shows since the last `draw()`. */
  shown(): Shown;
  geom(): { map: Geom | null; overview: Geom | null; heads: Geom | null; source: Geom | null };
  /** What the heads and transplant-source panels drew last (the test hook's `heads()`). */
  sideInfo(): { heads: Record<string, unknown>; source: Record<string, unknown> };
  /** What the lecture panel drew last (the test hook's `view()`). */
  lectureInfo(): Record<string, unknown>;
  /** What the overview painted last: values, which are estimated, outlined cells, agreement. */
  overviewInfo(): OverviewInfo | null;
  paints(): number;
  /** Repaint on theme switches and resizes; returns the disconnect. */
  observe(): () => void;
}

/** Height of one legend (title, bar, tick labels) at a canvas font of `fs` px. */
function legendH(fs: number): number {
  return 2 * fs + 22;
}

export function makePainter(m: Model, t: Reads, dom: Dom, local: Local, el: HTMLElement): Painter {
  const { root } = dom;
  let shown: Shown = currentMap({ effect: null, atlas: null, preview: null, metric: "kl", rows: 0, cols: 0 });
  let mapGeom: Geom | null = null;
  let ovGeom: Geom | null = null;
  let lectureInfo: Record<string, unknown> = {};
  let overviewInfo: OverviewInfo | null = null;
  let headsGeom: Geom | null = null;
  let sourceGeom: Geom | null = null;
  let sideInfo = { heads: {} as Record<string, unknown>, source: {} as Record<string, unknown> };
  let paints = 0;
  let laidOut = "";

  function layout() {
    const { atlas } = local;
    const R = t.rows();
    const S = atlas
      ? atlas.done.shape[0]
      : t.site() === "resid" && m.get("kind") !== "knockout"
        ? R
        : Math.max(0, R - 1);
    const big = !!m.get("presentation");
    const g = gridLayout(R, t.cols(), S, root.clientWidth || el.clientWidth || 900, big);
    mapGeom = g.map;
    ovGeom = g.overview;
    const fs = theme(root).fs;
    const w = g.map.x0 + t.cols() * g.map.cw + 16;
    sizeCanvas(dom.map.canvas, w, g.map.y0 + g.map.rows * g.map.ch + labelH(fs));
    sizeCanvas(dom.overview.canvas, w, g.overview.y0 + S * g.overview.ch + labelH(fs));
    sizeCanvas(dom.map.legend, Math.max(w, 260), legendH(fs) * 2);
    sizeCanvas(dom.overview.legend, Math.max(w, 260), legendH(fs));
    laidOut = `${big}`;
    return g.map;
  }

  function draw() {
    const t0 = performance.now();
    const { effect, atlas, preview } = local;
    const th = theme(root);
    const R = t.rows();
    const P = t.cols();
    const relayout =
      !mapGeom ||
      mapGeom.rows !== R ||
      mapGeom.cols !== P ||
      (ovGeom && atlas && ovGeom.rows !== atlas.done.shape[0]) ||
      laidOut !== `${!!m.get("presentation")}`;
    const g = relayout || !mapGeom ? layout() : mapGeom;
    const metric = m.get("metric");
    const sk = m.get("scale") as ScaleKind;
    const palette = m.get("palette") || "default";
    const view = t.view();
    shown =
      (view === "heads" ? headShown(local.heads.data, local.heads.preview, metric, R, P) : null) ??
      currentMap({ effect, atlas, preview, metric, rows: R, cols: P });
    const tokens = t.tokens();
    drawMapPanel({
      dom: dom.map,
      g,
      th,
      shown,
      metric,
      sk,
      cursor: local.cursor,
      tokens,
      firstReachedView: view === "first_reached",
      marks: firstReachedMarks(local.firstReached),
      effect,
      atlas,
      palette,
      hideAbove: shown.mode === "effect" ? local.reveal : null,
      hand: marks(local.hand, "map", t.site()),
      pinInfo: shown.mode === "effect" ? local.hand.pin : null,
      headCells: shown.mode === "effect" ? local.heads.pinned : local.heads.preview ? [local.heads.preview] : [],
    });
    const hd = drawHeadsPanel({
      dom: dom.heads,
      show: view === "heads",
      th,
      data: local.heads.data,
      layer: m.get("heads_layer") ?? -1,
      which: m.get("overview_metric"),
      sk,
      palette,
      tokens,
      cw: g.cw,
      pinned: effect ? local.heads.pinned : [],
      hover: local.heads.preview,
      cursor: local.heads.cursor ?? null,
      running: !local.heads.data || local.heads.data.progress.running,
      kernel: !t.page(),
    });
    const sp = drawSourcePanel({ dom: dom.source, th, hand: local.hand, site: t.site(), cw: g.cw, ch: g.ch, palette });
    headsGeom = hd.geom;
    sourceGeom = sp.geom;
    sideInfo = { heads: hd.info, source: sp.info };
    if (ovGeom) {
      overviewInfo = drawOverviewPanel({
        canvas: dom.overview.canvas,
        legend: dom.overview.legend,
        sub: dom.overview.sub,
        g: ovGeom,
        th,
        sk,
        atlas,
        estimate: local.estimate ?? null,
        preview,
        which: m.get("overview_metric"),
        site: t.site(),
        tokens,
        palette,
      });
    }
    lectureInfo = drawLecturePanel({
      view,
      th,
      panel: dom.lecture.panel,
      title: dom.lecture.title,
      sub: dom.lecture.sub,
      canvas: dom.lecture.canvas,
      root,
      shownMode: shown.mode,
      firstReached: local.firstReached,
      profile: local.profile,
      simil: local.simil,
      poscon: local.poscon ?? null,
      kernel: !t.page(),
      viewRow: m.get("view_row") ?? -1,
      preview,
      pinned: effect ? effect.cells : [],
      site: t.site(),
      rows: R,
      tokens,
      cw: g.cw,
      mapWidth: parseFloat(dom.map.canvas.style.width) || 420,
      palette,
    });
    paints++;
    Object.assign(root.dataset, {
      rows: String(R),
      positions: String(P),
      mode: shown.mode,
      cells: JSON.stringify(shown.cells),
      effectId: effect?.id ?? "",
      paints: String(paints),
      view,
      reveal: shown.mode === "effect" && local.reveal !== null ? String(local.reveal) : "",
      ovExact: String(overviewInfo?.nExact ?? 0),
      ovEstimated: String(overviewInfo?.nEstimated ?? 0),
      transplant: shown.mode === "effect" && local.hand.pin ? JSON.stringify(local.hand.pin) : "",
      armed: local.hand.armed ? JSON.stringify(local.hand.armed) : "",
    });
    const detail = { mode: shown.mode, cells: shown.cells, id: shown.id, ms: performance.now() - t0 };
    root.dispatchEvent(new CustomEvent("rw-paint", { detail }));
  }

  function observe() {
    // Theme switches (JupyterLab sets data-jp-theme-light on <body>) and resizes repaint.
    const mo = typeof MutationObserver !== "undefined" ? new MutationObserver(() => draw()) : null;
    mo?.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
    let lastW = 0;
    const ro =
      typeof ResizeObserver !== "undefined"
        ? new ResizeObserver(() => {
            const w = root.clientWidth;
            if (Math.abs(w - lastW) > 8) {
              lastW = w;
              layout();
              draw();
            }
          })
        : null;
    ro?.observe(root);
    return () => {
      mo?.disconnect();
      ro?.disconnect();
    };
  }

  return {
    layout: () => void layout(),
    draw,
    shown: () => shown,
    geom: () => ({ map: mapGeom, overview: ovGeom, heads: headsGeom, source: sourceGeom }),
    sideInfo: () => sideInfo,
    lectureInfo: () => lectureInfo,
    overviewInfo: () => overviewInfo,
    paints: () => paints,
    observe,
  };
}
