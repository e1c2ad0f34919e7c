/**
 * Pointer interaction of the heads panel, the transplant source panel, and transplanting by
 * dragging (the decisions are pure functions in transplant.ts and heads.ts):
 *
 *   heads panel   hover: tooltip + the head's map from the sweep previewed in the main map;
 *                 click: intervene on that head (pins its effect)
 *   source panel  hover: tooltip (row, position, token, ‖h‖); click: arm the cell as the
 *                 transplant source (click again: disarm)
 *   drag          press on a cell of the main map or the source panel, release on a cell of
 *                 the main map: transplant. The press and the drop are marked while dragging.
 *
 * A drag's moves and release are followed on the window, so a drag may leave a canvas and come
 * back; a release that ends a real drag makes the map ignore the click that follows it.
 */

import type { Dom } from "./dom";
import { ALL, headAt, headSummary, headValue } from "./heads";
import { type Geom, type Hit, hitTest } from "./heatmap";
import type { Local, Painter } from "./painter";
import type { Actions } from "./pointer";
import { fmt } from "./scale";
import type { Tooltip } from "./tooltip";
import type { Model, Reads } from "./traits";
import { type Grab, move, press, release, request } from "./transplant";

export interface SideDeps {
  m: Model;
  t: Reads;
  dom: Dom;
  local: Local;
  painter: Painter;
  tip: Tooltip;
  act: Actions;
}

function hitIn(ev: MouseEvent, c: HTMLCanvasElement, g: Geom | null): Hit {
  if (!g || c.offsetParent === null) return null;
  const r = c.getBoundingClientRect();
  return hitTest(g, ev.clientX - r.left, ev.clientY - r.top);
}

/** Listen to the side panels and to drags; returns the removal. */
export function attachSidePointer({ m, t, dom, local, painter, tip, act }: SideDeps): () => void {
  const effectId = () => local.effect?.id ?? null;
  const headUnder = (ev: MouseEvent) => {
    const d = local.heads.data;
    const hit = hitIn(ev, dom.heads.canvas, painter.geom().heads);
    if (!d || hit?.region !== "grid") return null;
    return headAt(d, m.get("heads_layer") ?? -1, hit.row, hit.col);
  };
  const setHeadPreview = (c: [number, number, number] | null) => {
    const p = local.heads.preview;
    if (c === p || (c && p && c.every((v, k) => v === p[k]))) return;
    local.heads.preview = c;
    painter.draw();
  };
  const onHeadsMove = (ev: MouseEvent) => {
    const c = headUnder(ev);
    const d = local.heads.data;
    if (!c || !d) {
      tip.hide();
      setHeadPreview(null);
      return;
    }
    const which = m.get("overview_metric");
    const v = headValue(d, c, which);
    const name = headSummary(d, which).title;
    tip.show(
      ev,
      {
        head: `layer ${c[0]}, head ${c[1]}, ${c[2] === ALL ? "every position" : `position ${c[2]}`}`,
        token: c[2] === ALL ? "" : (t.tokens()[c[2]] ?? ""),
        value: `${name} = ${Number.isFinite(v) ? fmt(v) : "not swept yet"}`,
        lensCell: null,
      },
      effectId(),
    );
    setHeadPreview(c);
  };
  const onHeadsClick = (ev: MouseEvent) => {
    const c = headUnder(ev);
    if (!c) return;
    local.heads.preview = null;
    local.heads.cursor = c; // the keys go on from the clicked head
    dom.root.focus({ preventScroll: true });
    act.head(c);
  };
  const onHeadsLeave = () => {
    tip.hide();
    setHeadPreview(null);
  };

  const grabAt = (ev: MouseEvent): Grab | null => {
    const mh = hitIn(ev, dom.map.canvas, painter.geom().map);
    if (mh?.region === "grid") return { where: "map", cell: [mh.row, mh.col] };
    const sh = hitIn(ev, dom.source.canvas, painter.geom().source);
    if (sh?.region === "grid") return { where: "source", cell: [sh.row, sh.col] };
    return null;
  };
  const onSourceMove = (ev: MouseEvent) => {
    const s = local.hand.source;
    const hit = hitIn(ev, dom.source.canvas, painter.geom().source);
    if (!s || hit?.region !== "grid") {
      tip.hide();
      return;
    }
    const v = s.norm[hit.row * s.tokens.length + hit.col];
    tip.show(
      ev,
      {
        head: `transplant source: row ${hit.row}, position ${hit.col}`,
        token: s.tokens[hit.col] ?? "",
        value: `‖h‖ = ${fmt(v)} · drag onto the map`,
        lensCell: null,
      },
      null,
    );
  };
  const onDown = (ev: MouseEvent) => {
    if (ev.button !== 0 || ev.shiftKey) return;
    const at = grabAt(ev);
    if (!at) return;
    local.hand.drag = press(at);
    local.hand.swallowClick = false;
    if (at.where === "source") ev.preventDefault(); // no text selection while dragging
  };
  const onMove = (ev: MouseEvent) => {
    const d = local.hand.drag;
    if (!d) return;
    const next = move(d, grabAt(ev));
    const changed = next?.moved !== d.moved || JSON.stringify(next?.over) !== JSON.stringify(d.over);
    local.hand.drag = next;
    if (changed && next?.moved) {
      dom.root.style.cursor = "grabbing";
      painter.draw();
    }
  };
  const onUp = (ev: MouseEvent) => {
    const d = local.hand.drag;
    if (!d) return;
    local.hand.drag = null;
    dom.root.style.cursor = "";
    const r = release(d, grabAt(ev));
    if (r.do === "transplant") {
      local.hand.swallowClick = d.grab.where === "map"; // a click follows on the map canvas
      local.hand.armed = null;
      local.cursor = r.target;
      local.preview = null;
      const q = request(r.from, r.source, r.target, t.site());
      if ("error" in q) act.say("error", q.error);
      else act.transplant(q);
      dom.root.focus({ preventScroll: true });
    } else if (r.do === "click" && r.at.where === "source") {
      const a = local.hand.armed;
      const same = a?.where === "source" && a.cell[0] === r.at.cell[0] && a.cell[1] === r.at.cell[1];
      local.hand.armed = same ? null : r.at;
      dom.root.focus({ preventScroll: true });
    }
    if (d.moved || r.do === "click") painter.draw();
  };

  const win = dom.root.ownerDocument.defaultView ?? window;
  const listeners: [EventTarget, string, (ev: MouseEvent) => void][] = [
    [dom.heads.canvas, "mousemove", onHeadsMove],
    [dom.heads.canvas, "click", onHeadsClick],
    [dom.heads.canvas, "mouseleave", onHeadsLeave],
    [dom.source.canvas, "mousemove", onSourceMove],
    [dom.source.canvas, "mouseleave", () => tip.hide()],
    [dom.map.canvas, "mousedown", onDown],
    [dom.source.canvas, "mousedown", onDown],
    [win, "mousemove", onMove],
    [win, "mouseup", onUp],
  ];
  for (const [el, type, fn] of listeners) el.addEventListener(type, fn as EventListener);
  return () => {
    for (const [el, type, fn] of listeners) el.removeEventListener(type, fn as EventListener);
  };
}
