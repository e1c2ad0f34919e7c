/**
 * The lecture-view panel beside the map: the future profile (line chart), the cross-position
 * similarity heatmap of one row, or the position-vs-content decomposition (poscon.ts). Returns what it drew (the test hook's `view()`); for the
 * first-reached view (drawn on the map itself) it records the marks in `data-first-reached`.
 */

import { drawProfile, sizeCanvas } from "./draw";
import { type Cell, type Geom, labelH, paint, type Theme } from "./heatmap";
import {
  type PositionContentData,
  type ProfileData,
  pcRows,
  pickRow,
  positionContentAt,
  profileSeries,
  ROW_VIEWS,
  type SimilarityData,
  similarityBlock,
} from "./lecture";
import { drawPositionContent, pcHeight } from "./poscon";
import { fmt, makeScale } from "./scale";

export interface LecturePanelArgs {
  view: string;
  th: Theme;
  panel: HTMLElement;
  title: HTMLElement;
  sub: HTMLElement;
  canvas: HTMLCanvasElement;
  root: HTMLElement;
  shownMode: string;
  firstReached: number[] | null;
  profile: ProfileData | null;
  simil: SimilarityData | null;
  /** the position/content decomposition (null: not computed yet) */
  poscon?: PositionContentData | null;
  /** False on the saved page: nothing missing will arrive (no kernel to compute it). */
  kernel?: boolean;
  viewRow: number;
  preview: Cell | null;
  pinned: Cell[];
  site: string;
  rows: number;
  tokens: string[];
  cw: number;
  mapWidth: number;
  palette: string;
}

/** What a lecture view says on the saved page when its data was not saved with it. */
export const NO_KERNEL_VIEW =
  "the saved page does not hold this view: it needs a kernel (show the view in the notebook before saving)";

export function drawLecturePanel(a: LecturePanelArgs): Record<string, unknown> {
  const v = a.view;
  a.panel.style.display = ROW_VIEWS.includes(v) ? "" : "none";
  if (v === "first_reached") {
    const marks = a.shownMode === "effect" ? a.firstReached : null;
    a.root.dataset.firstReached = marks ? JSON.stringify(marks) : "";
    return { view: v, firstReached: marks };
  }
  if (v === "position_content") return drawPosCon(a);
  if (v !== "profile" && v !== "similarity") return { view: v };
  if (v === "profile") {
    const S = a.profile ? a.profile.mean.shape[0] : 0;
    const row = pickRow(a.viewRow, a.preview, a.pinned, S, 0);
    const s = profileSeries(a.profile, row);
    a.title.textContent = `Future profile: effect of row ${row} on the prediction j − i tokens ahead`;
    a.sub.textContent = a.profile
      ? `${a.profile.kind} @ ${a.profile.site} · KL at j, mean and max over sources (row, i)`
      : "needs a sweep";
    const w = Math.max(320, Math.min(560, a.mapWidth));
    const d = sizeCanvas(a.canvas, w, 220);
    const ctx = a.canvas.getContext("2d");
    if (ctx) drawProfile(ctx, w, 220, d, s, a.th, a.profile?.metric ?? "KL (nats)");
    return {
      view: v,
      row,
      mean: s ? Array.from(s.mean) : null,
      max: s ? Array.from(s.max) : null,
      nextToken: s?.nextToken ?? null,
      farFuture: s?.farFuture ?? null,
    };
  }
  const R = a.simil ? a.simil.sim.shape[0] : a.rows;
  const row = pickRow(a.viewRow, a.preview, a.site === "resid" ? a.pinned : [], R, R - 1);
  const block = similarityBlock(a.simil, row);
  const P = a.tokens.length;
  a.title.textContent = `Cross-position cosine similarity of the clean residual at row ${row}`;
  a.sub.textContent = a.simil
    ? "cell (j, i): cos(h[row, j], h[row, i]) · −1 … 1"
    : a.kernel === false
      ? NO_KERNEL_VIEW
      : "computing…";
  const cw = a.cw;
  const g: Geom = { x0: 44, y0: 6, cw, ch: Math.max(8, Math.min(22, cw)), rows: P, cols: P, stripH: 0, stripGap: 0 };
  const d = sizeCanvas(a.canvas, g.x0 + P * cw + 16, g.y0 + P * g.ch + labelH(a.th.fs));
  const sc = makeScale(block ?? [], {
    kind: "linear",
    diverging: true,
    center: 0,
    unit: "cosine",
    palette: a.palette,
  });
  const ctx = a.canvas.getContext("2d");
  if (ctx) {
    paint(ctx, g, {
      values: block,
      color: (x) => (Number.isFinite(x) ? sc.css(x) : a.th.bg),
      strip: null,
      stripColor: null,
      reach: null,
      sources: [],
      cursor: null,
      tokens: a.tokens,
      rowLabel: (r) => String(r),
      theme: a.th,
      dpr: d,
      stripLabel: "",
    });
  }
  return { view: v, row, sim: block ? Array.from(block) : null };
}

function drawPosCon(a: LecturePanelArgs): Record<string, unknown> {
  const pc = a.poscon ?? null;
  const R = pc ? pcRows(pc) : a.rows;
  const row = pickRow(a.viewRow, a.preview, a.site === "resid" ? a.pinned : [], R, R - 1);
  const s = positionContentAt(pc, row);
  a.title.textContent = `Position vs content at row ${row}: what the residual shares across positions`;
  a.sub.textContent = pc
    ? `${pc.nPrompts} corpus prompts × ${pc.nTokens} tokens (position${pc.first > 1 ? "s" : ""} < ${pc.first} left out) · ` +
      `shared = row mean, position = mean over prompts at that position, content = the rest · ` +
      (s?.massive.length ? `largest massive dim ${fmt(s.ratio)}× the median at row ${row} · ` : "") +
      `content − other prompt at d ≥ ${s?.farFrom ?? 5}: ${s ? s.excess.toFixed(3) : "–"}`
    : a.kernel === false
      ? NO_KERNEL_VIEW
      : "computing over the corpus prompts…";
  const w = Math.max(360, Math.min(620, a.mapWidth));
  const d = sizeCanvas(a.canvas, w, pcHeight(a.th.fs));
  const ctx = a.canvas.getContext("2d");
  if (ctx) drawPositionContent(ctx, w, d, pc, s, a.th);
  return {
    view: "position_content",
    row,
    nPrompts: pc?.nPrompts ?? null,
    nTokens: pc?.nTokens ?? null,
    massiveDims: pc?.massiveDims ?? null,
    massive: s ? s.massive.map((m) => m.value) : null,
    median: s?.median ?? null,
    energy: s ? s.energy : null,
    mean: s ? Object.fromEntries(s.curves.map((c) => [c.kind, c.mean])) : null,
    lo: s ? Object.fromEntries(s.curves.map((c) => [c.kind, c.lo])) : null,
    hi: s ? Object.fromEntries(s.curves.map((c) => [c.kind, c.hi])) : null,
    excess: s?.excess ?? null,
  };
}
