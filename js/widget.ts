/**
 * anywidget entry point: builds the DOM of one view and wires it to the synced model.
 *
 *   header   prompt (as text) · status
 *   controls view · row · kind · site · strip metric · scale · overview · source · token pair · buttons
 *   progress sweep progress bar + cancel
 *   message  kernel errors / disconnection, in words
 *   panels   [map: output strip + downstream map + legends]  [view: future profile | similarity]
 *            [overview: one value per source cell]   (dom.ts builds them; overviewpanel.ts, lecturepanel.ts draw)
 *
 * Views (`view` trait): map; first_reached (the pinned cell's first-reached row outlined in each
 * column, from `effect.first_reached`); profile; similarity — see lecture.ts.
 *   tooltip  row, position, token, value, logit-lens top-5 clean / under the intervention
 *
 * Interaction: hovering an overview cell (or a map cell while nothing is pinned) previews that
 * source's map from the atlas — no kernel round trip. Click pins (asks the kernel to intervene),
 * shift-click adds to / removes from the set. Arrow keys move a cursor, Enter pins,
 * Shift+Enter adds, Escape drops the preview.
 *
 * Kernel requests go through `Requests` (protocol.ts): ids, acks, stale replies dropped.
 * Test hook: `root.__rw.current()` returns exactly what is painted; every paint dispatches an
 * `rw-paint` event on the root and updates `data-*` attributes (rows, positions, mode, cells, id,
 * view, first-reached); `root.__rw.view()` returns what the view panel drew.
 */

import type { AnyModel, RenderProps } from "@anywidget/types";
import css from "./widget.css";
import { makeControls } from "./controls";
import { buildDom } from "./dom";
import { drawOverviewPanel } from "./overviewpanel";
import { fillTooltip } from "./tooltip";
import { LABEL_H, hitTest, paint, type Cell, type Geom, type Theme } from "./heatmap";
import { MARK, gridLayout, sizeCanvas, theme } from "./draw";
import { drawLecturePanel } from "./lecturepanel";
import {
  decodeFirstReached,
  decodeProfile,
  decodeSimilarity,
  firstReachedMarks,
  type ProfileData,
  type SimilarityData,
} from "./lecture";
import { Requests, watchKernel } from "./protocol";
import { drawLegend, fmt, makeScale } from "./scale";
import {
  atlasHas,
  currentMap,
  decodeAtlas,
  decodeEffect,
  mapCellToSource,
  overviewValues,
  slowPathNote,
  storageNote,
  toggleCell,
  type AtlasData,
  type EffectData,
  type Shown,
} from "./mapstate";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Model = AnyModel<any>;

function render({ model, el }: RenderProps): () => void {
  const m = model as Model;
  const {
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
  } = buildDom(css);

  const req = new Requests(undefined, 4000, () => {
    say(
      "warn",
      "No reply from the kernel within 4 s: it is busy running a cell, dead, or restarted " +
        "(or this is a saved page without a kernel). Showing the last saved view.",
    );
  });

  // ---- view state -------------------------------------------------------------------------
  let effect: EffectData | null = null;
  let atlas: AtlasData | null = null;
  let firstReached: number[] | null = null;
  let profile: ProfileData | null = null;
  let simil: SimilarityData | null = null;
  let viewInfo: Record<string, unknown> = {};
  let preview: Cell | null = null;
  let cursor: Cell | null = null;
  let shown: Shown = currentMap({ effect: null, atlas: null, preview: null, metric: "kl", rows: 0, cols: 0 });
  let mapGeom: Geom | null = null;
  let ovGeom: Geom | null = null;
  let paints = 0;
  let lensTimer: ReturnType<typeof setTimeout> | undefined;
  const lensCache = new Map<string, { clean: [string, number][]; intervened: [string, number][] | null }>();
  let tooltipFor: { key: string; x: number; y: number; lines: () => void } | null = null;

  const rows = () => (m.get("n_rows") as number) || 0;
  const cols = () => ((m.get("tokens") as string[]) ?? []).length;
  const tokens = () => (m.get("tokens") as string[]) ?? [];
  const site = () => ((m.get("site") as string) || "resid") as EffectData["site"];
  const view = () => (m.get("view") as string) || "map";

  function say(kind: "error" | "warn" | "", text: string) {
    message.className = "rw-message" + (kind ? ` rw-${kind}` : "");
    message.textContent = text;
  }

  const controls = makeControls(m, {
    sweep: () => m.send({ type: "sweep", id: req.next("sweep") }),
    cancel: () => m.send({ type: "cancel", id: req.next("cancel") }),
    clear: () => {
      preview = null;
      m.set("selection", []);
      m.save_changes();
    },
  });
  root.append(style, header, controls.el, progress, message, panels, help, tooltip);
  el.append(root);

  // ---- layout -----------------------------------------------------------------------------
  function layout() {
    const S = atlas
      ? atlas.done.shape[0]
      : site() === "resid" && m.get("kind") !== "knockout"
        ? rows()
        : Math.max(0, rows() - 1);
    ({ map: mapGeom, overview: ovGeom } = gridLayout(rows(), cols(), S, root.clientWidth || el.clientWidth || 900));
    const w = mapGeom.x0 + cols() * mapGeom.cw + 16;
    sizeCanvas(mapCanvas, w, mapGeom.y0 + mapGeom.rows * mapGeom.ch + LABEL_H);
    sizeCanvas(ovCanvas, w, ovGeom.y0 + S * ovGeom.ch + LABEL_H);
    sizeCanvas(mapLegend, Math.max(w, 260), 80);
    sizeCanvas(ovLegend, Math.max(w, 260), 40);
  }

  // ---- painting ---------------------------------------------------------------------------
  function draw() {
    const t0 = performance.now();
    const th = theme(root);
    const R = rows();
    const P = cols();
    if (
      !mapGeom ||
      mapGeom.rows !== R ||
      mapGeom.cols !== P ||
      (ovGeom && atlas && ovGeom.rows !== atlas.done.shape[0])
    )
      layout();
    const g = mapGeom!;
    const metric = m.get("metric") as string;
    const sk = m.get("scale") as "linear" | "log";
    shown = currentMap({ effect, atlas, preview, metric, rows: R, cols: P });
    const dprOf = (c: HTMLCanvasElement) => c.width / Math.max(1, parseFloat(c.style.width) || c.width);
    const mapScale = makeScale(shown.values ?? [], { kind: sk, unit: "‖h′−h‖ / ‖h‖", mask: shown.reach });
    const stripScale = makeScale(shown.strip ?? [], {
      kind: sk,
      diverging: metric !== "kl",
      unit: "nats",
    });
    const ctx = mapCanvas.getContext("2d");
    const rowLabel = (r: number) => (r === 0 ? "emb" : String(r));
    if (ctx) {
      paint(ctx, g, {
        values: shown.values,
        color: mapScale.css,
        strip: shown.strip,
        stripColor: (v) => (Number.isFinite(v) ? stripScale.css(v) : th.bg),
        reach: shown.reach,
        sources: shown.site === "resid" ? shown.cells : shown.cells.map(([n, i]) => [n + 1, i] as Cell),
        cursor,
        tokens: tokens(),
        rowLabel,
        theme: th,
        dpr: dprOf(mapCanvas),
        stripLabel: metric === "kl" ? "KL" : "Δlogp",
        marks: view() === "first_reached" && shown.mode === "effect" ? firstReachedMarks(firstReached) : [],
        markColor: MARK,
      });
    }
    const lctx = mapLegend.getContext("2d");
    if (lctx) {
      const d = dprOf(mapLegend);
      lctx.setTransform(d, 0, 0, d, 0, 0);
      lctx.clearRect(0, 0, mapLegend.width, mapLegend.height);
      const lw = Math.min(240, parseFloat(mapLegend.style.width) - 20);
      drawLegend(lctx, mapScale, "map", 8, 2, lw, th.fg, th.font);
      drawLegend(lctx, stripScale, metric === "kl" ? "strip: KL" : "strip: Δlog p", 8, 42, lw, th.fg, th.font);
    }
    const what =
      shown.mode === "effect"
        ? `pinned ${shown.cells.map(([r, c]) => `(${r}, ${c})`).join(" ")} · ${effect?.kind} @ ${effect?.site}` +
          (effect?.logitDiff != null ? ` · logit diff ${fmt(effect.logitDiff)}` : "")
        : shown.mode === "atlas"
          ? `preview from sweep: (${shown.cells[0][0]}, ${shown.cells[0][1]}) · ${atlas?.kind} @ ${atlas?.site}`
          : "hover the overview or click a cell";
    mapSub.textContent = what + (shown.stripNote ? ` · ${shown.stripNote}` : "");
    drawOverview(th, sk);
    drawView(th);
    paints++;
    root.dataset.rows = String(R);
    root.dataset.positions = String(P);
    root.dataset.mode = shown.mode;
    root.dataset.cells = JSON.stringify(shown.cells);
    root.dataset.effectId = effect?.id ?? "";
    root.dataset.paints = String(paints);
    root.dataset.view = view();
    root.dispatchEvent(
      new CustomEvent("rw-paint", {
        detail: { mode: shown.mode, cells: shown.cells, id: shown.id, ms: performance.now() - t0 },
      }),
    );
  }

  function drawView(th: Theme) {
    mapTitle.textContent =
      view() === "first_reached"
        ? "Downstream effect · first row reached per position (outlined)"
        : "Downstream effect";
    viewInfo = drawLecturePanel({
      view: view(),
      th,
      panel: viewPanel,
      title: viewTitle,
      sub: viewSub,
      canvas: viewCanvas,
      root,
      shownMode: shown.mode,
      firstReached,
      profile,
      simil,
      viewRow: m.get("view_row") ?? -1,
      preview,
      pinned: effect ? effect.cells : [],
      site: site(),
      rows: rows(),
      tokens: tokens(),
      cw: mapGeom ? mapGeom.cw : 16,
      mapWidth: parseFloat(mapCanvas.style.width) || 420,
    });
  }

  function drawOverview(th: Theme, sk: "linear" | "log") {
    if (ovGeom) {
      drawOverviewPanel({
        canvas: ovCanvas,
        legend: ovLegend,
        sub: ovSub,
        g: ovGeom,
        th,
        sk,
        atlas,
        preview,
        which: m.get("overview_metric"),
        site: site(),
        tokens: tokens(),
      });
    }
  }

  // ---- sync from the model ----------------------------------------------------------------
  function syncHeader() {
    prompt.textContent = m.get("prompt") ?? "";
    const st = (m.get("remote_status") as string) || (m.get("status") as string) || "idle";
    status.textContent = `${m.get("model_name") ?? ""} · ${rows()} rows × ${cols()} positions · ${st}${slowPathNote(atlas)}`;
    status.classList.toggle("rw-slow", slowPathNote(atlas) !== "");
    const p = m.get("progress") ?? {};
    const total = p.total || 0;
    bar.max = Math.max(1, total);
    bar.value = p.done || 0;
    progText.textContent = total
      ? `sweep ${p.done}/${total}${p.running ? "" : p.cancelled ? " (cancelled)" : ""}${storageNote(atlas)}`
      : "";
    controls.sync();
  }
  function onEffect() {
    const raw = m.get("effect");
    const id = raw?.id;
    if (raw && !req.accept("intervene", id)) return; // stale reply: a newer click is pending
    req.settle("intervene", id);
    effect = decodeEffect(raw);
    firstReached = decodeFirstReached(raw);
    if (message.classList.contains("rw-warn")) say("", "");
    draw();
  }
  function onAtlas() {
    atlas = decodeAtlas(m.get("atlas"));
    syncHeader();
    layout();
    draw();
  }
  function onError() {
    const e = m.get("error") as string;
    if (e) say("error", e);
    else if (message.classList.contains("rw-error")) say("", "");
  }
  const onMsg = (msg: { type?: string; id?: string; [k: string]: unknown }) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "ack" && msg.id) {
      req.ack(msg.id);
      if (message.classList.contains("rw-warn")) say("", "");
    } else if (msg.type === "error") {
      const t = (msg.request as string) || "intervene";
      if (msg.id && !req.accept(t, msg.id)) return;
      req.settle(t, msg.id);
      say("error", String(msg.message ?? "error in the kernel"));
    } else if (msg.type === "lens") {
      const key = msg.key as string;
      lensCache.set(key, {
        clean: msg.clean as [string, number][],
        intervened: (msg.intervened as [string, number][]) ?? null,
      });
      req.settle("lens", msg.id);
      if (tooltipFor && tooltipFor.key === key) tooltipFor.lines();
    }
  };
  const onDead = () =>
    say(
      "error",
      "The kernel connection is closed (kernel dead or restarted). The view is frozen; re-run the cell to reconnect.",
    );
  const onRedraw = () => {
    syncHeader();
    draw();
  };
  const kernel = watchKernel(m, (text) => say("error", text));

  m.on("change:effect", onEffect);
  m.on("change:atlas", onAtlas);
  m.on("change:error", onError);
  m.on("msg:custom", onMsg);
  m.on("comm_live_update", onDead);
  for (const t of [
    "status",
    "remote_status",
    "progress",
    "prompt",
    "model_name",
    "kind",
    "source_prompt",
    "logit_pair",
  ])
    m.on(`change:${t}`, syncHeader);
  for (const t of ["metric", "scale", "overview_metric", "tokens", "n_rows", "site", "view", "view_row"])
    m.on(`change:${t}`, onRedraw);
  const onProfile = () => {
    profile = decodeProfile(m.get("profile"));
    draw();
  };
  const onSimil = () => {
    simil = decodeSimilarity(m.get("similarity"));
    draw();
  };
  m.on("change:profile", onProfile);
  m.on("change:similarity", onSimil);

  // ---- interaction ------------------------------------------------------------------------
  function intervene(cells: Cell[]) {
    const id = req.next("intervene");
    m.send({ type: "intervene", id, cells });
  }
  function selection(): Cell[] {
    return ((m.get("selection") as number[][]) ?? []).map((c) => [c[0], c[1]] as Cell);
  }
  function pin(src: Cell, add: boolean) {
    const cells = add ? toggleCell(selection(), src) : [src];
    if (!cells.length) return;
    intervene(cells);
  }
  function local(ev: MouseEvent, c: HTMLCanvasElement) {
    const r = c.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  }
  function showTooltip(ev: MouseEvent, head: string, token: string, value: string, lensCell: Cell | null) {
    const rr = root.getBoundingClientRect();
    const x = ev.clientX - rr.left + 14;
    const y = ev.clientY - rr.top + 14;
    const key = lensCell ? `${effect?.id ?? "clean"}|${lensCell[0]},${lensCell[1]}` : "";
    const lines = () => {
      fillTooltip(tooltip, head, token, value, lensCell ? (lensCache.get(key) ?? "pending") : null);
      tooltip.style.display = "block";
      tooltip.style.left = `${Math.min(x, (root.clientWidth || 600) - 200)}px`;
      tooltip.style.top = `${y}px`;
    };
    tooltipFor = { key, x, y, lines };
    lines();
    if (lensCell && !lensCache.has(key)) {
      clearTimeout(lensTimer);
      lensTimer = setTimeout(() => m.send({ type: "lens", id: req.next("lens"), cell: lensCell, key }), 150);
    }
  }
  function hideTooltip() {
    tooltip.style.display = "none";
    tooltipFor = null;
    clearTimeout(lensTimer);
  }

  function setPreview(c: Cell | null) {
    const same = (a: Cell | null, b: Cell | null) => a === b || (!!a && !!b && a[0] === b[0] && a[1] === b[1]);
    if (same(c, preview)) return;
    preview = c;
    draw();
  }

  const onMapMove = (ev: MouseEvent) => {
    if (!mapGeom) return;
    const { x, y } = local(ev, mapCanvas);
    const hit = hitTest(mapGeom, x, y);
    if (!hit) {
      hideTooltip();
      return;
    }
    if (hit.region === "strip") {
      const v = shown.strip ? shown.strip[hit.col] : NaN;
      showTooltip(
        ev,
        `output at position ${hit.col}`,
        tokens()[hit.col] ?? "",
        `${m.get("metric") === "kl" ? "KL" : "Δlog p"} = ${Number.isFinite(v) ? fmt(v) : "—"} nats`,
        null,
      );
      return;
    }
    const k = hit.row * mapGeom.cols + hit.col;
    const v = shown.values ? shown.values[k] : NaN;
    const unreachable = shown.reach && !shown.reach[k];
    showTooltip(
      ev,
      `row ${hit.row}${hit.row === 0 ? " (embeddings)" : ` (after block ${hit.row - 1})`}, position ${hit.col}`,
      tokens()[hit.col] ?? "",
      unreachable ? "unreachable: exactly 0" : `‖Δh‖/‖h‖ = ${Number.isFinite(v) ? fmt(v) : "—"}`,
      [hit.row, hit.col],
    );
    if (!effect) {
      const src = mapCellToSource(hit.row, hit.col, site());
      if (src && atlasHas(atlas, src)) setPreview(src);
    }
  };
  const onMapClick = (ev: MouseEvent) => {
    if (!mapGeom) return;
    const { x, y } = local(ev, mapCanvas);
    const hit = hitTest(mapGeom, x, y);
    if (!hit || hit.region !== "grid") return;
    const src = mapCellToSource(hit.row, hit.col, site());
    if (!src) {
      say("error", "Row 0 (embeddings) has no block output: for attn_out/mlp_out click rows 1…L.");
      return;
    }
    cursor = [hit.row, hit.col];
    preview = null; // show the kernel's answer, not the atlas preview under the mouse
    pin(src, ev.shiftKey);
    root.focus({ preventScroll: true });
  };
  const onOvMove = (ev: MouseEvent) => {
    if (!ovGeom) return;
    const { x, y } = local(ev, ovCanvas);
    const hit = hitTest(ovGeom, x, y);
    if (!hit || hit.region !== "grid") {
      hideTooltip();
      setPreview(null);
      return;
    }
    const c: Cell = [hit.row, hit.col];
    const ov = atlas ? overviewValues(atlas, m.get("overview_metric")) : null;
    const v = ov ? ov.values[hit.row * ovGeom.cols + hit.col] : NaN;
    showTooltip(
      ev,
      `source ${atlas?.site === "resid" || !atlas ? "row" : "block"} ${hit.row}, position ${hit.col}`,
      tokens()[hit.col] ?? "",
      ov ? `${ov.title} = ${Number.isFinite(v) ? fmt(v) : "not swept yet"} ${ov.unit}` : "no sweep yet",
      null,
    );
    setPreview(atlasHas(atlas, c) ? c : null);
  };
  const onOvClick = (ev: MouseEvent) => {
    if (!ovGeom) return;
    const { x, y } = local(ev, ovCanvas);
    const hit = hitTest(ovGeom, x, y);
    if (!hit || hit.region !== "grid") return;
    preview = null;
    pin([hit.row, hit.col], ev.shiftKey);
  };
  const onLeave = () => {
    hideTooltip();
    setPreview(null);
  };
  const onKey = (ev: KeyboardEvent) => {
    const R = rows();
    const P = cols();
    if (!R || !P) return;
    const moves: Record<string, [number, number]> = {
      ArrowUp: [1, 0],
      ArrowDown: [-1, 0],
      ArrowLeft: [0, -1],
      ArrowRight: [0, 1],
    };
    if (ev.key in moves) {
      ev.preventDefault();
      const [dr, dc] = moves[ev.key];
      const base: Cell = cursor ?? (selection()[0] as Cell | undefined) ?? [0, 0];
      cursor = [Math.min(R - 1, Math.max(0, base[0] + dr)), Math.min(P - 1, Math.max(0, base[1] + dc))];
      const src = mapCellToSource(cursor[0], cursor[1], site());
      if (!effect && src && atlasHas(atlas, src)) preview = src;
      draw();
    } else if (ev.key === "Enter" && cursor) {
      ev.preventDefault();
      const src = mapCellToSource(cursor[0], cursor[1], site());
      if (src) pin(src, ev.shiftKey);
    } else if (ev.key === "Escape") {
      preview = null;
      cursor = null;
      draw();
    }
  };
  mapCanvas.addEventListener("mousemove", onMapMove);
  mapCanvas.addEventListener("click", onMapClick);
  mapCanvas.addEventListener("mouseleave", onLeave);
  ovCanvas.addEventListener("mousemove", onOvMove);
  ovCanvas.addEventListener("click", onOvClick);
  ovCanvas.addEventListener("mouseleave", onLeave);
  root.addEventListener("keydown", onKey);

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

  // Test/bench hook: exactly what is painted.
  (root as unknown as { __rw: unknown }).__rw = {
    current: () => ({
      mode: shown.mode,
      cells: shown.cells,
      id: shown.id,
      rows: rows(),
      cols: cols(),
      values: shown.values ? Array.from(shown.values) : null,
      reach: shown.reach ? Array.from(shown.reach) : null,
      strip: shown.strip ? Array.from(shown.strip) : null,
    }),
    geom: () => ({ map: mapGeom, overview: ovGeom }),
    view: () => viewInfo,
    atlasDone: () => (atlas ? Array.from(atlas.done.data) : null),
    paints: () => paints,
    clientId: req.client,
    kernelStatus: kernel.status,
  };

  effect = decodeEffect(m.get("effect"));
  firstReached = decodeFirstReached(m.get("effect"));
  profile = decodeProfile(m.get("profile"));
  simil = decodeSimilarity(m.get("similarity"));
  atlas = decodeAtlas(m.get("atlas"));
  syncHeader();
  onError();
  layout();
  draw();

  return () => {
    m.off("change:effect", onEffect);
    m.off("change:atlas", onAtlas);
    m.off("change:error", onError);
    m.off("change:profile", onProfile);
    m.off("change:similarity", onSimil);
    m.off("msg:custom", onMsg);
    m.off("comm_live_update", onDead);
    kernel.dispose();
    mo?.disconnect();
    ro?.disconnect();
    req.dispose();
    clearTimeout(lensTimer);
  };
}

export default { render };
