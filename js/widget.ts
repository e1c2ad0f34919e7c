/**
 * anywidget entry point: builds one view's DOM and wires its parts to the synced model.
 *
 *   dom.ts          the skeleton: header, progress, message, panels, help, tooltip
 *   controls.ts     the control bar (each control writes one trait)
 *   sync.ts         traits and kernel messages → header, decoded payloads, messages
 *   painter.ts      layout + painting: mappanel.ts, overviewpanel.ts, lecturepanel.ts
 *   pointer.ts      hover previews and tooltips, click pins
 *   keyboard.ts     the map's keys
 *   sidepointer.ts  the heads and transplant-source panels, transplanting by dragging
 *   tooltip.ts      the tooltip and its logit lens (lens.ts)
 *
 * Kernel requests go through `Requests` (protocol.ts): ids, acks, stale replies dropped. The view
 * also says when it opens and closes (`{type: "view", state, client}`, no reply), so a kernel
 * whose views are all gone stops its sweep.
 * Test hook: `root.__rw.current()` returns exactly what is painted; every paint dispatches an
 * `rw-paint` event on the root and updates `data-*` attributes (rows, positions, mode, cells, id,
 * view, first-reached); `root.__rw.view()` returns what the lecture panel drew.
 */

import type { RenderProps } from "@anywidget/types";
import { makeAnimator } from "./animate";
import { makeControls } from "./controls";
import { buildDom, sayIn } from "./dom";
import { headRequest } from "./heads";
import { attachKeys } from "./keyboard";
import { toggleCell } from "./mapstate";
import { type Local, makePainter } from "./painter";
import { type Actions, attachPointer } from "./pointer";
import { Requests } from "./protocol";
import { attachSidePointer } from "./sidepointer";
import { syncModel } from "./sync";
import { makeTooltip } from "./tooltip";
import { type Model, reads, type Traits } from "./traits";
import { emptyHand } from "./transplant";
import css from "./widget.css";

/** How often a view tells the kernel it is still showing (the kernel's `orphan_timeout_s` is
 * much longer: hidden tabs run timers once a minute). */
const ALIVE_MS = 5000;

function render({ model, el }: RenderProps<Traits>): () => void {
  const m: Model = model;
  const t = reads(m);
  const dom = buildDom(css);
  const say = sayIn(dom.message);
  const req = new Requests(undefined, 4000, () => {
    say(
      "warn",
      "No reply from the kernel within 4 s: it is busy running a cell, dead, or restarted " +
        "(or this is a saved page without a kernel). Showing the last saved view.",
    );
  });
  const local: Local = {
    effect: null,
    atlas: null,
    firstReached: null,
    profile: null,
    simil: null,
    preview: null,
    cursor: null,
    reveal: null,
    hand: emptyHand(),
    heads: { data: null, preview: null, pinned: [], cursor: null },
  };
  const painter = makePainter(m, t, dom, local, el);
  const anim = makeAnimator(
    local,
    () => [t.rows(), t.cols()],
    () => painter.draw(),
    (on) => controls.animating(on),
  );
  const controls = makeControls(m, {
    animate: () => {
      if (!local.effect) say("warn", "Pin a cell first: the animation reveals its effect row by row.");
      else anim.toggle();
    },
    sweep: () => m.send({ type: "sweep", id: req.next("sweep") }),
    cancel: () => m.send({ type: "cancel", id: req.next("cancel") }),
    clear: () => {
      local.preview = null;
      m.set("selection", []);
      m.save_changes();
    },
    undo: () => act.undo(),
  });
  dom.header.el.after(controls.el);
  el.append(dom.root);

  const act: Actions = {
    pin(src, add) {
      const cells = add ? toggleCell(t.selection(), src) : [src];
      if (cells.length) m.send({ type: "intervene", id: req.next("intervene"), cells });
    },
    setPreview(c) {
      const p = local.preview;
      if (c === p || (c && p && c[0] === p[0] && c[1] === p[1])) return;
      local.preview = c;
      painter.draw();
    },
    transplant(r) {
      m.send({ ...r, id: req.next("intervene") });
    },
    head(c) {
      m.send({ ...headRequest(c), id: req.next("intervene") });
    },
    undo() {
      m.send({ type: "undo", id: req.next("intervene") });
    },
    say,
  };
  const tip = makeTooltip(dom.tooltip, dom.root, (cell, key) =>
    m.send({ type: "lens", id: req.next("lens"), cell, key }),
  );
  const sync = syncModel({ m, t, dom, local, painter, req, say, controls, tip });
  const unpoint = attachPointer({ m, t, dom, local, painter, tip, act });
  const unside = attachSidePointer({ m, t, dom, local, painter, tip, act });
  const unkey = attachKeys({
    root: dom.root,
    t,
    local,
    act,
    draw: painter.draw,
    headsLayer: () => m.get("heads_layer") ?? -1,
  });
  const unobserve = painter.observe();

  // Tell the kernel while this view is showing: when every view of the widget is gone (output
  // cleared, tab or page closed), it stops its sweep (widget.py, `view` messages). A view also
  // says "alive" every few seconds: where the host drops the connection before the page can say
  // "closed" (Voilà), the kernel notices the silence.
  const view = (state: "open" | "alive" | "closed") => {
    try {
      m.send({ type: "view", state, client: req.client });
    } catch {
      /* the comm is already closed */
    }
  };
  const win = el.ownerDocument?.defaultView ?? (typeof window !== "undefined" ? window : null);
  const onHide = () => view("closed");
  const onShow = (ev: PageTransitionEvent) => ev.persisted && view("open");
  // Before the host's own beforeunload handlers (capture runs first at the window): Voilà's
  // disposes the kernel connection there, so a message sent at pagehide would be lost. If the
  // page stays after all (the unload was cancelled), the view says it is open again.
  const onLeave = () => {
    view("closed");
    setTimeout(() => view("open"), 1000);
  };
  win?.addEventListener("beforeunload", onLeave, { capture: true });
  win?.addEventListener("pagehide", onHide);
  win?.addEventListener("pageshow", onShow);
  view("open");
  const beat = setInterval(() => view("alive"), ALIVE_MS);

  // Test/bench hook: exactly what is painted.
  (dom.root as unknown as { __rw: unknown }).__rw = {
    current: () => {
      const s = painter.shown();
      return {
        mode: s.mode,
        cells: s.cells,
        id: s.id,
        rows: t.rows(),
        cols: t.cols(),
        values: s.values ? Array.from(s.values) : null,
        reach: s.reach ? Array.from(s.reach) : null,
        strip: s.strip ? Array.from(s.strip) : null,
        reveal: s.mode === "effect" ? local.reveal : null,
      };
    },
    geom: painter.geom,
    view: painter.lectureInfo,
    side: painter.sideInfo,
    overview: painter.overviewInfo,
    atlasDone: () => (local.atlas ? Array.from(local.atlas.done.data) : null),
    paints: painter.paints,
    clientId: req.client,
    kernelStatus: sync.kernelStatus,
  };

  return () => {
    anim.stop();
    view("closed");
    clearInterval(beat);
    win?.removeEventListener("beforeunload", onLeave, { capture: true });
    win?.removeEventListener("pagehide", onHide);
    win?.removeEventListener("pageshow", onShow);
    sync.dispose();
    unpoint();
    unside();
    unkey();
    unobserve();
    req.dispose();
    tip.hide();
  };
}

export default { render };
