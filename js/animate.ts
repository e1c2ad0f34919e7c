/**
 * The "animate" control: reveal the pinned effect row by row, from the lowest row it changes
 * upward — the effect climbing one block at a time (the depth-bound picture). The painter shows
 * rows up to `local.reveal` (rows above are blank, the output strip appears with the top row);
 * `null` shows every row. A new pin, or a second press, stops it.
 */

import type { EffectData } from "./mapstate";
import type { Local } from "./painter";

/** The rows to reveal, one per frame: from the lowest row `reach` marks up to `rows - 1`. */
export function revealRows(effect: EffectData | null, rows: number, cols: number): number[] {
  if (!effect || rows <= 0) return [];
  let first = 0;
  const reach = effect.reach?.data;
  if (reach) {
    first = rows - 1;
    for (let k = 0; k < rows * cols; k++) {
      if (reach[k]) {
        first = Math.floor(k / cols);
        break;
      }
    }
  } else {
    first = Math.min(...effect.cells.map((c) => c[0]));
  }
  const out: number[] = [];
  for (let r = Math.max(0, first); r < rows; r++) out.push(r);
  return out;
}

/** Milliseconds per row: about 6 s for the whole climb, between 150 and 600 ms a row. */
export function frameMs(n: number): number {
  return Math.max(150, Math.min(600, Math.round(6000 / Math.max(1, n))));
}

export interface Animator {
  /** Start (or, while running, stop) the climb of the pinned effect. */
  toggle(): void;
  stop(): void;
  running(): boolean;
}

export function makeAnimator(
  local: Local,
  size: () => [number, number],
  draw: () => void,
  onState: (running: boolean) => void,
): Animator {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (local.reveal !== null) {
      local.reveal = null;
      draw();
    }
    onState(false);
  };
  const start = () => {
    const effect = local.effect;
    const [rows, cols] = size();
    const frames = revealRows(effect, rows, cols);
    if (!frames.length) return;
    const ms = frameMs(frames.length);
    let k = 0;
    const step = () => {
      if (local.effect !== effect) return stop(); // a new pin
      if (k >= frames.length) {
        timer = undefined;
        local.reveal = null;
        draw();
        onState(false);
        return;
      }
      local.reveal = frames[k++];
      draw();
      timer = setTimeout(step, ms);
    };
    onState(true);
    step();
  };
  return {
    toggle: () => (timer !== undefined ? stop() : start()),
    stop,
    running: () => timer !== undefined,
  };
}
