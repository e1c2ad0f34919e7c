/**
 * What the map shows, as pure functions of the synced state (no DOM) — unit-testable.
 *
 * Synced payloads (built by `src/residual_widgets/_payloads.py`):
 * - `effect`: the pinned intervention's result —
 *   `{id, cells: [[row, pos], …], kind, site, resid_delta: f32[R, P], kl: f32[P],
 *     logprob_delta: f32[P-1], reachable: bool[R, P], logit_diff: number | null}`
 * - `atlas`: the sweep, filled progressively —
 *   `{kind, site, complete, resid_delta: f32|f16[S, P, R, P], kl: f32[S, P, P] | null,
 *     total_kl: f32[S, P], logit_diff: f32[S, P] | null, done: bool[S, P], clean_logit_diff,
 *     method: "cone"|"batch"|"loop", slow_path: why the cone was refused ("" if it was not),
 *     logprob_total: f32[S, P] (Σ Δlog p), agreement: with the estimate (see estimate.ts)}`
 *   where S = R source rows for the residual site and S = L = R-1 blocks for attn_out/mlp_out.
 *   The saved page (`_payloads.page_atlas_payload`) may keep only some cells' maps: then
 *   `resid_delta` is `f16[K, R, P]` and `map_index: i32[S, P]` says which map is whose (-1: none,
 *   storage "subset"); it also carries `logprob_delta: f32|f16[S, P, P-1]` (or null).
 *
 * `currentMap` decides: an atlas preview (hovered source cell whose sweep entry is done) wins,
 * then the pinned effect, else nothing.
 */

import { block2d, decode, decodeMaybe, isEncoded, type NDArray, num, type Payload, row1d, str } from "./codec";
import { type Agreement, decodeAgreement } from "./estimate";
import { type Cell, reachable, type Site } from "./heatmap";

export interface EffectData {
  id: string | null;
  cells: Cell[];
  kind: string;
  site: Site;
  resid: NDArray;
  kl: NDArray | null;
  logprob: NDArray | null;
  reach: NDArray | null;
  logitDiff: number | null;
  /** Rebuilt from the saved sweep by the saved page (offline.ts), not computed by a kernel. */
  fromSweep: boolean;
}

export interface AtlasData {
  kind: string;
  site: Site;
  complete: boolean;
  /** null when the sweep kept summaries only (storage "summary"): maps come from clicks. */
  resid: NDArray | null;
  /** `[S, P]` index into `resid` (`[K, R, P]`), -1 where no map was kept; null: `resid` is
   * `[S, P, R, P]`. */
  index: NDArray | null;
  /** "float32" | "float16" | "subset" | "summary": how the maps were kept within memory. */
  storage: string;
  kl: NDArray | null;
  /** `[S, P, P-1]` Δlog p of every source cell, when sent (the saved page), else null. */
  logprob: NDArray | null;
  totalKl: NDArray;
  /** `[S, P]` Σ Δlog p of the next tokens per source cell (exact; estimate.ts), when sent. */
  logprobTotal?: NDArray | null;
  /** The estimate's agreement with the cells done so far (estimate.ts), when sent. */
  agreement?: Record<string, Agreement> | null;
  logitDiff: NDArray | null;
  done: NDArray;
  cleanLogitDiff: number | null;
  /** "cone" | "batch" | "loop": how the kernel computed the sweep. */
  method: string;
  /** Why an "auto" sweep could not use the cone ("" when it did): shown in the status line. */
  slowPath: string;
}

export function decodeEffect(raw: Payload | null | undefined): EffectData | null {
  if (!raw || !isEncoded(raw.resid_delta)) return null;
  return {
    id: typeof raw.id === "string" ? raw.id : null,
    cells: (Array.isArray(raw.cells) ? raw.cells : []).map((c: number[]) => [c[0], c[1]] as Cell),
    kind: str(raw.kind, ""),
    site: str(raw.site, "resid") as Site,
    resid: decode(raw.resid_delta),
    kl: decodeMaybe(raw.kl),
    logprob: decodeMaybe(raw.logprob_delta),
    reach: decodeMaybe(raw.reachable),
    logitDiff: num(raw.logit_diff),
    fromSweep: raw.from_sweep === true,
  };
}

export function decodeAtlas(raw: Payload | null | undefined): AtlasData | null {
  if (!raw || !isEncoded(raw.total_kl) || !isEncoded(raw.done)) return null;
  return {
    kind: str(raw.kind, ""),
    site: str(raw.site, "resid") as Site,
    complete: !!raw.complete,
    resid: decodeMaybe(raw.resid_delta),
    index: decodeMaybe(raw.map_index),
    storage: str(raw.storage, isEncoded(raw.resid_delta) ? "float32" : "summary"),
    kl: decodeMaybe(raw.kl),
    logprob: decodeMaybe(raw.logprob_delta),
    totalKl: decode(raw.total_kl),
    logprobTotal: decodeMaybe(raw.logprob_total),
    agreement: decodeAgreement(raw.agreement),
    logitDiff: decodeMaybe(raw.logit_diff),
    done: decode(raw.done),
    cleanLogitDiff: num(raw.clean_logit_diff),
    method: str(raw.method, ""),
    slowPath: str(raw.slow_path, ""),
  };
}

export interface Shown {
  mode: "effect" | "atlas" | "empty";
  cells: Cell[];
  site: Site;
  /** [R, P] row-major, or null when empty. */
  values: Float32Array | null;
  /** [R, P] 1 = reachable, or null. */
  reach: Uint8Array | null;
  /** [P] per-position strip metric (NaN where undefined), or null. */
  strip: Float32Array | null;
  stripNote: string;
  /** Effect id shown (null for atlas previews). */
  id: string | null;
}

/** Whether the atlas holds the downstream map of source cell `c` (false for a summary atlas,
 * and for the cells of a subset atlas whose maps were not kept). */
export function atlasHas(a: AtlasData | null, c: Cell | null): boolean {
  if (!a || !c || !a.resid) return false;
  const [S, P] = a.done.shape;
  if (!(c[0] >= 0 && c[0] < S && c[1] >= 0 && c[1] < P && !!a.done.data[c[0] * P + c[1]])) return false;
  return !a.index || a.index.data[c[0] * P + c[1]] >= 0;
}

/** The `[R, P]` downstream map of source cell `c` (a view into the atlas), or null. */
export function atlasMap(a: AtlasData | null, c: Cell): Float32Array | Uint8Array | Int32Array | null {
  if (!a?.resid || !atlasHas(a, c)) return null;
  return a.index ? block2d(a.resid, [a.index.data[c[0] * a.done.shape[1] + c[1]]]) : block2d(a.resid, c);
}

function toF32(x: ArrayLike<number>): Float32Array {
  return x instanceof Float32Array ? x : Float32Array.from(x);
}

/** Strip values [P] from a per-position metric: KL has P entries; Δlog p has P-1 (entry j
 * predicts token j+1, drawn at position j; the last position has none). */
export function stripFrom(metric: NDArray | null, P: number): Float32Array | null {
  if (!metric) return null;
  const out = new Float32Array(P).fill(NaN);
  for (let j = 0; j < Math.min(P, metric.data.length); j++) out[j] = metric.data[j];
  return out;
}

export function currentMap(s: {
  effect: EffectData | null;
  atlas: AtlasData | null;
  preview: Cell | null;
  metric: string;
  rows: number;
  cols: number;
}): Shown {
  const { effect, atlas, preview, rows, cols } = s;
  const map = preview ? atlasMap(atlas, preview) : null;
  if (atlas && preview && map) {
    const values = toF32(map);
    let strip: Float32Array | null = null;
    let note = "";
    if (s.metric === "kl" && atlas.kl) strip = toF32(row1d(atlas.kl, preview)).slice();
    else if (s.metric !== "kl" && atlas.logprob)
      strip = stripFrom({ data: row1d(atlas.logprob, preview), shape: [] }, cols);
    else note = s.metric === "kl" ? "KL per position not in atlas" : "Δlog p: click to compute";
    return {
      mode: "atlas",
      cells: [preview],
      site: atlas.site,
      values,
      reach: reachable(rows, cols, [preview], atlas.site, atlas.kind),
      strip,
      stripNote: note,
      id: null,
    };
  }
  if (effect) {
    const reach = effect.reach ? Uint8Array.from(effect.reach.data) : reachable(rows, cols, effect.cells, effect.site);
    const strip = stripFrom(s.metric === "kl" ? effect.kl : effect.logprob, cols);
    return {
      mode: "effect",
      cells: effect.cells,
      site: effect.site,
      values: toF32(effect.resid.data),
      reach,
      strip,
      stripNote: "",
      id: effect.id,
    };
  }
  return { mode: "empty", cells: [], site: "resid", values: null, reach: null, strip: null, stripNote: "", id: null };
}

/** Overview values [S, P] (NaN where the sweep has not reached yet) and how to color them: the
 * exact side only (estimate.ts mixes in the estimate). */
export function overviewValues(
  a: AtlasData,
  which: string,
): { values: Float32Array; diverging: boolean; center: number; unit: string; title: string } {
  const ld = which === "logit_diff" ? a.logitDiff : null;
  const lp = which === "logprob_delta" ? (a.logprobTotal ?? null) : null;
  const src = ld ?? lp ?? a.totalKl;
  const values = new Float32Array(src.data.length);
  for (let k = 0; k < values.length; k++) values[k] = a.done.data[k] ? src.data[k] : NaN;
  if (ld) {
    return {
      values,
      diverging: true,
      center: a.cleanLogitDiff ?? 0,
      unit: "logits",
      title: "logit diff after intervening",
    };
  }
  if (lp) return { values, diverging: true, center: 0, unit: "nats", title: "Σ Δlog p of the next tokens" };
  return { values, diverging: false, center: 0, unit: "nats", title: "total KL over positions" };
}

/**
 * Source cell for a click on map cell (row, pos): the cell itself for the residual site; for
 * attn_out/mlp_out, the block writing into that row (row - 1), null for row 0 (no block below).
 */
export function mapCellToSource(row: number, pos: number, site: Site): Cell | null {
  if (site === "resid") return [row, pos];
  return row >= 1 ? [row - 1, pos] : null;
}

/** Toggle `c` in a cell list (shift-click). */
export function toggleCell(cells: Cell[], c: Cell): Cell[] {
  const i = cells.findIndex((x) => x[0] === c[0] && x[1] === c[1]);
  return i >= 0 ? cells.filter((_, k) => k !== i) : [...cells, c];
}

/** The status line's words for a sweep that runs on the slow path ("" when it does not). */
export function slowPathNote(a: AtlasData | null): string {
  return a?.slowPath ? ` · ${a.slowPath}` : "";
}

/** What the progress line says about how the sweep's maps were kept within memory. */
export function storageNote(a: AtlasData | null): string {
  if (!a || a.storage === "float32") return "";
  if (a.storage === "float16") return " · maps kept as float16 to fit memory";
  if (a.storage === "subset") return " · maps of the most important cells only (float16)";
  return " · summary only (maps too large for memory): hover shows none, click computes one";
}
