/**
 * Keys on the map while the widget's root has focus (a click on the map focuses it):
 *
 *   arrows   move a cursor (previewing the atlas map under it while nothing is pinned)
 *   Enter    pins the cursor cell
 *   Space    adds the cursor cell to the pinned set, or removes it (like shift-click)
 *   Escape   disarms an armed transplant source; else drops the preview and the cursor — only
 *            while there is one
 *   T        arms the cursor cell as a transplant source; Enter then transplants it onto the
 *            cursor cell (transplant.ts)
 *   Ctrl+Z   (⌘Z) restores the previous pinned effect — only while the kernel has one to restore
 *
 * In the heads view the arrows, Enter/Space and Escape act on the heads grid instead
 * (`headKeyAction`, heads.ts): the cursor moves over (layer.head, position), the main map
 * previews the head under it, Enter or Space pins that head.
 *
 * Every other key, and these with a modifier (Shift+Enter, Ctrl+Enter, Shift+arrows, …), is the
 * notebook's: Shift+Enter runs the cell, Escape then `a`/`b`/… are command-mode keys as on any
 * output. `keyAction` decides (pure, unit-tested); `attachKeys` listens and applies.
 *
 * How the widget's keys are kept from Jupyter: Lumino (JupyterLab 4, Notebook 7) runs shortcuts
 * from one keydown listener on `document` — capture phase in Notebook 7, bubbling phase in
 * JupyterLab 4 (`bubblingKeydown`) — matching selectors such as `.jp-Notebook.jp-mod-commandMode
 * :focus`, which a focused widget root matches. A listener on the root would run after Notebook 7's,
 * so the widget listens on `window` in the capture phase (before both) and stops exactly the keys
 * it acts on. (It used to set `data-lm-suppress-shortcuts` on its root, which made Lumino skip
 * every shortcut — Shift+Enter included — while the widget had focus; only the control bar keeps
 * that attribute, for its fields and selects.)
 */

import { headKeyAction } from "./heads";
import type { Cell } from "./heatmap";
import { atlasHas, mapCellToSource } from "./mapstate";
import type { Local } from "./painter";
import type { Actions } from "./pointer";
import type { Reads } from "./traits";
import { request } from "./transplant";

/** The parts of a keydown event that decide what it does. */
export interface KeyInput {
  key: string;
  shiftKey: boolean;
  ctrlKey: boolean;
  altKey: boolean;
  metaKey: boolean;
}

export interface KeyState {
  rows: number;
  cols: number;
  /** The keyboard cursor (map row, position), or null. */
  cursor: Cell | null;
  /** Where the cursor starts when there is none: the first pinned cell, or null. */
  anchor: Cell | null;
  /** The previewed source cell, or null. */
  preview: Cell | null;
  /** A transplant source is armed (T, or a click on the source grid). */
  armed?: boolean;
  /** The kernel holds an earlier pinned effect to go back to. */
  canUndo?: boolean;
}

/** `move`: the cursor goes to `to`; `pin`: pin the cursor cell (`add`: toggle it in the set);
 * `drop`: drop the preview and the cursor; `arm`: the cursor cell becomes the transplant source;
 * `transplant`: the armed source goes onto the cursor cell; `disarm`: forget the armed source;
 * `undo`: back to the previous pinned effect. */
export type KeyAction =
  | { do: "move"; to: Cell }
  | { do: "pin"; add: boolean }
  | { do: "drop" }
  | { do: "arm" }
  | { do: "transplant" }
  | { do: "disarm" }
  | { do: "undo" };

const MOVES = new Map<string, [number, number]>([
  ["ArrowUp", [1, 0]],
  ["ArrowDown", [-1, 0]],
  ["ArrowLeft", [0, -1]],
  ["ArrowRight", [0, 1]],
]);

/** What key `ev` does to the map in state `s`; null: nothing — the key is the notebook's. */
export function keyAction(ev: KeyInput, s: KeyState): KeyAction | null {
  const z = ev.key === "z" || ev.key === "Z";
  if (z && (ev.ctrlKey || ev.metaKey) && !ev.shiftKey && !ev.altKey) return s.canUndo ? { do: "undo" } : null;
  if (!s.rows || !s.cols || ev.shiftKey || ev.ctrlKey || ev.altKey || ev.metaKey) return null;
  const step = MOVES.get(ev.key);
  if (step) {
    const base = s.cursor ?? s.anchor ?? [0, 0];
    const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
    return { do: "move", to: [clamp(base[0] + step[0], s.rows), clamp(base[1] + step[1], s.cols)] };
  }
  if ((ev.key === "t" || ev.key === "T") && s.cursor) return { do: "arm" };
  if (ev.key === "Enter" && s.cursor) return s.armed ? { do: "transplant" } : { do: "pin", add: false };
  if (ev.key === " " && s.cursor) return { do: "pin", add: true };
  if (ev.key === "Escape" && s.armed) return { do: "disarm" };
  if (ev.key === "Escape" && (s.cursor || s.preview)) return { do: "drop" };
  return null;
}

export interface KeyDeps {
  root: HTMLElement;
  t: Reads;
  local: Local;
  act: Actions;
  draw(): void;
  /** The heads view's layer (`heads_layer`, -1 every layer); without it the heads grid takes no keys. */
  headsLayer?: () => number;
}

/** Take the widget's keys while its root has focus; returns the removal. */
export function attachKeys({ root, t, local, act, draw, headsLayer }: KeyDeps): () => void {
  const onHeadsKey = (ev: KeyboardEvent) => {
    const hs = local.heads;
    const a = headKeyAction(ev, hs.data, headsLayer?.() ?? -1, { ...hs, canUndo: local.hand.undo > 0 });
    if (!a) return; // the notebook's key
    ev.preventDefault();
    ev.stopPropagation();
    if (a.do === "undo") return act.undo();
    if (a.do === "pin") {
      hs.preview = null;
      act.head(a.cell);
    } else if (a.do === "move") hs.cursor = hs.preview = a.cell;
    else hs.cursor = hs.preview = null;
    draw();
  };
  const onKey = (ev: KeyboardEvent) => {
    if (ev.target !== root || ev.isComposing) return;
    if (headsLayer && t.view() === "heads") return onHeadsKey(ev);
    const anchor = t.selection()[0] ?? null;
    const a = keyAction(ev, {
      rows: t.rows(),
      cols: t.cols(),
      cursor: local.cursor,
      anchor,
      preview: local.preview,
      armed: !!local.hand.armed,
      canUndo: local.hand.undo > 0,
    });
    if (!a) return; // the notebook's key: Lumino sees it
    ev.preventDefault();
    ev.stopPropagation();
    if (a.do === "undo") {
      act.undo();
      return;
    }
    if (a.do === "transplant" && local.cursor && local.hand.armed) {
      const r = request(local.hand.armed.where, local.hand.armed.cell, local.cursor, t.site());
      local.hand.armed = null;
      if ("error" in r) act.say("error", r.error);
      else act.transplant(r);
      draw();
      return;
    }
    if (a.do === "pin") {
      const src = local.cursor && mapCellToSource(local.cursor[0], local.cursor[1], t.site());
      if (src) act.pin(src, a.add);
      return;
    }
    if (a.do === "arm" && local.cursor) {
      local.hand.armed = { where: "map", cell: [local.cursor[0], local.cursor[1]] };
    } else if (a.do === "disarm") {
      local.hand.armed = null;
    } else if (a.do === "drop") {
      local.preview = null;
      local.cursor = null;
    } else if (a.do === "move") {
      local.cursor = a.to;
      const src = mapCellToSource(a.to[0], a.to[1], t.site());
      if (!local.effect && src && atlasHas(local.atlas, src)) local.preview = src;
    }
    draw();
  };
  const win = root.ownerDocument.defaultView ?? window;
  win.addEventListener("keydown", onKey, true);
  return () => win.removeEventListener("keydown", onKey, true);
}
