/**
 * The tooltip's logit lens: the top-k next tokens read from one cell, clean and under the pinned
 * intervention. Asked from the kernel (`{type: "lens", id, cell, key}`) once the pointer has rested
 * on a cell for `delayMs`; the reply (`{type: "lens", id, key, clean, intervened}`) is cached per
 * key — the shown effect's id and the cell — so a cell is asked once per effect.
 */

import type { Cell } from "./heatmap";

export interface Lens {
  clean: [string, number][];
  intervened: [string, number][] | null;
  /** What the host says about this lens (the saved page: "not recorded …"), if anything. */
  note?: string;
}

/** Cache key of `cell`'s lens under effect `effectId` (null: the clean run). */
export function lensKey(effectId: string | null, cell: Cell): string {
  return `${effectId ?? "clean"}|${cell[0]},${cell[1]}`;
}

export class LensCache {
  private cache = new Map<string, Lens>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private ask: (cell: Cell, key: string) => void,
    private delayMs = 150,
  ) {}

  get(key: string): Lens | undefined {
    return this.cache.get(key);
  }

  /** Ask for the lens of `cell` after the delay, unless cached; replaces a request still waiting. */
  want(key: string, cell: Cell): void {
    if (this.cache.has(key)) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.ask(cell, key), this.delayMs);
  }

  /** Drop a request still waiting (the pointer left). */
  cancel(): void {
    clearTimeout(this.timer);
  }

  /** Store a lens reply; returns its key. */
  store(msg: Record<string, unknown>): string {
    const key = msg.key as string;
    this.cache.set(key, {
      clean: msg.clean as [string, number][],
      intervened: (msg.intervened as [string, number][]) ?? null,
      note: typeof msg.note === "string" ? msg.note : undefined,
    });
    return key;
  }
}
