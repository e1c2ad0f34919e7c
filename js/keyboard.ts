/**
 * Keyboard on the map while the widget has focus: arrow keys move a cursor (previewing the atlas
 * map under it while nothing is pinned), Enter pins the cursor cell, Shift+Enter adds it to the
 * set, Escape drops the preview and the cursor.
 *
 * `keyAction` decides what a key does (pure, unit-tested); `attachKeys` listens and applies it.
 */

import type { Cell } from "./heatmap";
import { atlasHas, mapCellToSource } from "./mapstate";
import type { Local } from "./painter";
import type { Actions } from "./pointer";
import type { Reads } from "./traits";

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
}

/** `move`: the cursor goes to `to`; `pin`: pin the cursor cell (`add`: toggle it in the set);
 * `drop`: drop the preview and the cursor. */
export type KeyAction = { do: "move"; to: Cell } | { do: "pin"; add: boolean } | { do: "drop" };

const MOVES: Record<string, [number, number]> = {
  ArrowUp: [1, 0],
  ArrowDown: [-1, 0],
  ArrowLeft: [0, -1],
  ArrowRight: [0, 1],
};

/** What key `ev` does to the map in state `s`; null: nothing. */
export function keyAction(ev: KeyInput, s: KeyState): KeyAction | null {
  if (!s.rows || !s.cols) return null;
  const step = MOVES[ev.key];
  if (step) {
    const base = s.cursor ?? s.anchor ?? [0, 0];
    const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
    return { do: "move", to: [clamp(base[0] + step[0], s.rows), clamp(base[1] + step[1], s.cols)] };
  }
  if (ev.key === "Enter" && s.cursor) return { do: "pin", add: ev.shiftKey };
  if (ev.key === "Escape") return { do: "drop" };
  return null;
}

export interface KeyDeps {
  root: HTMLElement;
  t: Reads;
  local: Local;
  act: Actions;
  draw(): void;
}

/** Listen for keys on the widget's root; returns the removal. */
export function attachKeys({ root, t, local, act, draw }: KeyDeps): () => void {
  const onKey = (ev: KeyboardEvent) => {
    const anchor = t.selection()[0] ?? null;
    const a = keyAction(ev, { rows: t.rows(), cols: t.cols(), cursor: local.cursor, anchor });
    if (!a) return;
    if (a.do !== "drop") ev.preventDefault();
    if (a.do === "pin") {
      const src = local.cursor && mapCellToSource(local.cursor[0], local.cursor[1], t.site());
      if (src) act.pin(src, a.add);
      return;
    }
    if (a.do === "drop") {
      local.preview = null;
      local.cursor = null;
    } else {
      local.cursor = a.to;
      const src = mapCellToSource(a.to[0], a.to[1], t.site());
      if (!local.effect && src && atlasHas(local.atlas, src)) local.preview = src;
    }
    draw();
  };
  root.addEventListener("keydown", onKey);
  return () => root.removeEventListener("keydown", onKey);
}
