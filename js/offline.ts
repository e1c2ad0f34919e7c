/**
 * The saved page's stand-in for the kernel: answers the view's requests from the data saved in
 * the page (see `_export.page_state`), so the same widget code runs with no kernel.
 *
 *   intervene (one swept cell)   the cell's effect, rebuilt from the saved sweep: its map, KL and
 *                                Δlog p rows, logit difference, cone and first-reached rows
 *   intervene (a set, or a cell  an error in words: that needs a kernel
 *     the sweep has no map for)
 *   lens                         the recorded logit lens of the cell (clean; intervened under the
 *                                saved pin), or a reply saying it was not recorded
 *   sweep, cancel                an error in words: that needs a kernel
 *
 * Every request is acknowledged first, as the kernel does. Traits that only a kernel can act on
 * (kind, site, token pair, source prompt) are put back if changed; clearing the selection unpins.
 */

import { type Encoded, row1d } from "./codec";
import { type Cell, reachable } from "./heatmap";
import type { Backend, PageModel } from "./host";
import { atlasMap, decodeAtlas } from "./mapstate";
import type { Traits } from "./traits";

/** The logit lens recorded in the page: top tokens per cell `"r,p"`. */
export interface SavedLens {
  k?: number;
  clean: Record<string, [string, number][]>;
  effect_id: string | null;
  intervened: Record<string, [string, number][]>;
}

const KERNEL_TRAITS = ["kind", "site", "logit_pair", "source_prompt"] as const;

export const NO_KERNEL = "This is a saved page: there is no kernel.";

function enc(dtype: string, shape: number[], data: Float32Array | Uint8Array | Int32Array): Encoded {
  return { dtype, shape, buffer: data };
}

/** Lowest row whose value is > 0 at each position, -1 where none (`views.first_reached`). */
export function firstReached(map: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(cols).fill(-1);
  for (let p = 0; p < cols; p++) {
    for (let r = 0; r < rows; r++) {
      if (map[r * cols + p] > 0) {
        out[p] = r;
        break;
      }
    }
  }
  return out;
}

const cellsKey = (cells: number[][]) =>
  JSON.stringify(cells.map((c) => [c[0], c[1]]).sort((a, b) => a[0] - b[0] || a[1] - b[1]));

export class OfflineBackend implements Backend {
  private original: Partial<Record<string, unknown>> = {};
  /** The pinned effect saved with the page (it may be a set), and the ids it was shown under. */
  private savedEffect: Record<string, unknown> | null;
  private savedIds = new Set<string>();

  constructor(
    private m: PageModel<Traits>,
    private lens: SavedLens | null,
  ) {
    for (const k of KERNEL_TRAITS) this.original[k] = m.get(k);
    this.savedEffect = (m.get("effect") as Record<string, unknown> | null) ?? null;
    const id = this.savedEffect?.id;
    if (typeof id === "string") this.savedIds.add(id);
    if (lens?.effect_id) this.savedIds.add(lens.effect_id);
  }

  message(c: Record<string, unknown>): void {
    const id = typeof c.id === "string" ? c.id : undefined;
    if (id !== undefined) this.m.reply({ type: "ack", id });
    const type = String(c.type ?? "");
    if (type === "intervene") this.intervene(id, c.cells);
    else if (type === "lens") this.lensReply(id, c.cell as Cell, String(c.key ?? ""));
    else if (type === "ping") this.m.reply({ type: "pong", id });
    else if (type === "view")
      return; // a view opened or closed: nothing runs here to stop
    else this.fail(type || "request", id, `${NO_KERNEL} A ${type || "request"} needs one: open the notebook.`);
  }

  saved(names: string[]): void {
    const back: Partial<Traits> = {};
    for (const k of KERNEL_TRAITS) {
      if (names.includes(k) && JSON.stringify(this.m.get(k)) !== JSON.stringify(this.original[k])) {
        (back as Record<string, unknown>)[k] = this.original[k];
      }
    }
    if (Object.keys(back).length) {
      setTimeout(
        () => this.m.update({ ...back, error: `${NO_KERNEL} Changing ${Object.keys(back).join(", ")} needs one.` }),
        0,
      );
    }
    if (names.includes("selection") && !(this.m.get("selection") ?? []).length) {
      setTimeout(() => this.m.update({ effect: null }), 0);
    }
  }

  private fail(request: string, id: string | undefined, message: string): void {
    this.m.reply({ type: "error", id, request, message });
  }

  private intervene(id: string | undefined, raw: unknown): void {
    const cells = Array.isArray(raw) ? (raw as number[][]).map((c) => [c[0], c[1]] as Cell) : [];
    const saved = this.savedEffect;
    if (saved && cells.length && cellsKey(cells) === cellsKey(saved.cells as number[][])) {
      // the saved pin again: its own numbers (computed by the kernel), under this request's id
      if (id !== undefined) this.savedIds.add(id);
      const effect = { ...saved, id: id ?? null };
      setTimeout(() => this.m.update({ selection: saved.cells as number[][], effect, error: "" }), 0);
      return;
    }
    if (cells.length !== 1) {
      this.fail("intervene", id, `${NO_KERNEL} Intervening on a set of cells needs one: open the notebook.`);
      return;
    }
    const cell = cells[0];
    const atlas = decodeAtlas(this.m.get("atlas"));
    const map = atlasMap(atlas, cell);
    if (!atlas || !map) {
      const why = atlas ? "its map was not saved with the sweep" : "the page holds no sweep";
      this.fail("intervene", id, `${NO_KERNEL} Cell (${cell[0]}, ${cell[1]}) needs one: ${why}.`);
      return;
    }
    const R = this.m.get("n_rows") || 0;
    const P = (this.m.get("tokens") ?? []).length;
    const resid = Float32Array.from(map);
    const S = atlas.done.shape[0];
    const k = cell[0] * P + cell[1];
    const effect = {
      id: id ?? null,
      cells: [[cell[0], cell[1]]],
      kind: atlas.kind,
      site: atlas.site,
      resid_delta: enc("float32", [R, P], resid),
      kl: atlas.kl ? enc("float32", [P], Float32Array.from(row1d(atlas.kl, cell))) : null,
      logprob_delta: atlas.logprob
        ? enc("float32", [Math.max(0, P - 1)], Float32Array.from(row1d(atlas.logprob, cell)))
        : null,
      reachable: enc("bool", [R, P], reachable(R, P, [cell], atlas.site, atlas.kind)),
      logit_diff: atlas.logitDiff && k < S * P ? atlas.logitDiff.data[k] : null,
      clean_logit_diff: atlas.cleanLogitDiff,
      first_reached: enc("int32", [P], firstReached(resid, R, P)),
      from_sweep: true,
    };
    setTimeout(() => this.m.update({ selection: [[cell[0], cell[1]]], effect, error: "" }), 0);
  }

  private lensReply(id: string | undefined, cell: Cell, key: string): void {
    const ck = `${cell[0]},${cell[1]}`;
    const clean = this.lens?.clean?.[ck];
    const base = { type: "lens", id, key, cell: [cell[0], cell[1]] };
    if (!clean) {
      this.m.reply({ ...base, clean: [], intervened: null, note: "logit lens: not recorded in this saved page" });
      return;
    }
    const effectId = key.slice(0, key.lastIndexOf("|"));
    if (effectId === "clean" || effectId === "") {
      this.m.reply({ ...base, clean, intervened: null });
    } else if (this.savedIds.has(effectId)) {
      this.m.reply({ ...base, clean, intervened: this.lens?.intervened?.[ck] ?? null });
    } else {
      this.m.reply({
        ...base,
        clean,
        intervened: null,
        note: "intervened lens: recorded for the saved pin only",
      });
    }
  }
}
