/**
 * The lecture views, as pure functions of the synced state (no DOM) — unit-tested.
 *
 * Synced payloads (computed by the engine in Python, see `src/residual_widgets/_payloads.py`):
 * - `effect.first_reached`: int32[P] — lowest residual row changed at each position by the
 *   pinned intervention, -1 where none (`views.first_reached`);
 * - `profile`: `{kind, site, metric, mean: f32[S, P], max: f32[S, P]}` — for source row n, the
 *   atlas's KL at position j = i + d aggregated over sources (n, i), by distance d
 *   (`views.future_profile`); d = 0 is the next-token term, d ≥ 1 the far future;
 * - `similarity`: `{sim: f32[R, P, P], by_distance: f32[R, P]}` — cosine similarity between the
 *   clean residuals of every pair of positions, per row (`views.similarity`).
 * - `position_content`: `{kinds: string[K], massive_dims: i32[M], massive_abs: f32[R, M],
 *   median_abs: f32[R], energy: f32[R, 3], energy_no_massive: f32[R, 3], distance: i32[D],
 *   mean/lo/hi: f32[K, R, D], conf, n_prompts, n_tokens, first}` — corpus prompts decomposed
 *   into shared / position / content parts (`lecture.position_content_for`): the massive
 *   dimensions, the energy split, and the cosine of positions d apart for each kind with its
 *   interval over prompts.
 */

import { at, block2d, decode, decodeMaybe, isEncoded, type NDArray, num, type Payload, row1d, str } from "./codec";
import type { Cell } from "./heatmap";

export type ViewName = "map" | "first_reached" | "profile" | "similarity" | "position_content";
export const VIEWS: [ViewName, string][] = [
  ["map", "downstream map"],
  ["first_reached", "first reached"],
  ["profile", "future profile"],
  ["similarity", "similarity"],
  ["position_content", "position vs content"],
];
/** Views drawn in the lecture panel with a row chosen by `view_row` / hover / pin. */
export const ROW_VIEWS = ["profile", "similarity", "position_content"];

export interface ProfileData {
  kind: string;
  site: string;
  metric: string;
  mean: NDArray;
  max: NDArray;
}
export interface SimilarityData {
  sim: NDArray;
  byDistance: NDArray | null;
}

export function decodeProfile(raw: Payload | null | undefined): ProfileData | null {
  if (!raw || !isEncoded(raw.mean) || !isEncoded(raw.max)) return null;
  return {
    kind: str(raw.kind, ""),
    site: str(raw.site, "resid"),
    metric: str(raw.metric, "KL (nats)"),
    mean: decode(raw.mean),
    max: decode(raw.max),
  };
}

export function decodeSimilarity(raw: Payload | null | undefined): SimilarityData | null {
  if (!raw || !isEncoded(raw.sim)) return null;
  return { sim: decode(raw.sim), byDistance: decodeMaybe(raw.by_distance) };
}

/** `effect.first_reached` as plain numbers, or null when absent. */
export function decodeFirstReached(rawEffect: Payload | null | undefined): number[] | null {
  const a = decodeMaybe(rawEffect?.first_reached);
  return a ? Array.from(a.data) : null;
}

/** Cells to outline in the first-reached view: (first row, position) where a row was reached. */
export function firstReachedMarks(first: ArrayLike<number> | null): Cell[] {
  const out: Cell[] = [];
  if (!first) return out;
  for (let p = 0; p < first.length; p++) if (first[p] >= 0) out.push([first[p], p]);
  return out;
}

/** Which row a profile / similarity view shows: the explicit `view_row` (≥ 0) if valid, else the
 * hovered source row, else the first pinned row, else `fallback`; clamped to [0, n). */
export function pickRow(explicit: number, hovered: Cell | null, pinned: Cell[], n: number, fallback: number): number {
  const ok = (r: number | undefined) => r !== undefined && r >= 0 && r < n;
  if (ok(explicit)) return explicit;
  if (hovered && ok(hovered[0])) return hovered[0];
  if (pinned.length && ok(pinned[0][0])) return pinned[0][0];
  return Math.max(0, Math.min(n - 1, fallback));
}

export interface ProfileSeries {
  row: number;
  mean: Float32Array;
  max: Float32Array;
  /** value at d = 0 (the prediction at i itself), mean aggregate */
  nextToken: number;
  /** sum over d ≥ 1 (NaN entries skipped), mean aggregate */
  farFuture: number;
}

export function profileSeries(p: ProfileData | null, row: number): ProfileSeries | null {
  if (!p || row < 0 || row >= p.mean.shape[0]) return null;
  const mean = Float32Array.from(row1d(p.mean, [row]));
  const max = Float32Array.from(row1d(p.max, [row]));
  let far = 0;
  for (let d = 1; d < mean.length; d++) if (Number.isFinite(mean[d])) far += mean[d];
  return { row, mean, max, nextToken: mean.length ? mean[0] : NaN, farFuture: far };
}

/** The [P, P] similarity block of `row`, row-major [j, i] (grid row j, column i). */
export function similarityBlock(s: SimilarityData | null, row: number): Float32Array | null {
  if (!s || row < 0 || row >= s.sim.shape[0]) return null;
  return Float32Array.from(block2d(s.sim, [row]));
}

/** Nice y-axis upper bound for a line chart of non-negative values. */
export function niceMax(values: ArrayLike<number>[]): number {
  let m = 0;
  for (const v of values) for (let k = 0; k < v.length; k++) if (Number.isFinite(v[k])) m = Math.max(m, v[k]);
  if (m <= 0) return 1;
  const e = 10 ** Math.floor(Math.log10(m));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * e >= m) return f * e;
  return 10 * e;
}

// ---- position vs content ------------------------------------------------------------------------

export interface PositionContentData {
  kinds: string[];
  massiveDims: number[];
  massiveAbs: NDArray;
  medianAbs: NDArray;
  energy: NDArray;
  energyNoMassive: NDArray;
  distance: number[];
  mean: NDArray;
  lo: NDArray;
  hi: NDArray;
  conf: number;
  nPrompts: number;
  nTokens: number;
  first: number;
}

export function decodePositionContent(raw: Payload | null | undefined): PositionContentData | null {
  const keys = ["massive_dims", "massive_abs", "median_abs", "energy", "distance", "mean", "lo", "hi"];
  if (!raw || !keys.every((k) => isEncoded(raw[k]))) return null;
  const d = (k: string) => decode(raw[k] as never);
  return {
    kinds: Array.isArray(raw.kinds) ? raw.kinds.map(String) : [],
    massiveDims: Array.from(d("massive_dims").data),
    massiveAbs: d("massive_abs"),
    medianAbs: d("median_abs"),
    energy: d("energy"),
    energyNoMassive: decodeMaybe(raw.energy_no_massive) ?? d("energy"),
    distance: Array.from(d("distance").data),
    mean: d("mean"),
    lo: d("lo"),
    hi: d("hi"),
    conf: num(raw.conf) ?? 0.95,
    nPrompts: num(raw.n_prompts) ?? 0,
    nTokens: num(raw.n_tokens) ?? 0,
    first: num(raw.first) ?? 1,
  };
}

/** Number of residual rows in a position/content payload. */
export function pcRows(pc: PositionContentData | null): number {
  return pc ? pc.energy.shape[0] : 0;
}

export interface PcCurve {
  kind: string;
  mean: number[];
  lo: number[];
  hi: number[];
  /** mean over distances ≥ `farFrom` (NaN when there are none) */
  far: number;
}

export interface PcRow {
  row: number;
  /** each massive dimension's mean |value| at this row, largest first as sent */
  massive: { dim: number; value: number }[];
  median: number;
  /** shared, position, content shares of the energy at this row (sum 1) */
  energy: [number, number, number];
  /** the largest massive value over the median dimension's, at this row (NaN without any) */
  ratio: number;
  curves: PcCurve[];
  farFrom: number;
  /** content within a prompt minus the different-prompt baseline, at distances ≥ farFrom */
  excess: number;
}

/** What the position/content view shows at `row`: the row's massive dimensions and energy split,
 * and the cosine-by-distance curve of every kind with its interval. */
export function positionContentAt(pc: PositionContentData | null, row: number, farFrom = 5): PcRow | null {
  if (!pc || row < 0 || row >= pcRows(pc)) return null;
  const massive = pc.massiveDims.map((dim, k) => ({ dim, value: at(pc.massiveAbs, [row, k]) }));
  const median = at(pc.medianAbs, [row]);
  const e = Array.from(row1d(pc.energy, [row])) as [number, number, number];
  const top = massive.reduce((m, x) => Math.max(m, x.value), Number.NEGATIVE_INFINITY);
  const curves: PcCurve[] = pc.kinds.map((kind, k) => {
    const mean = Array.from(row1d(pc.mean, [k, row]));
    const far = pc.distance.map((d, j) => (d >= farFrom ? mean[j] : NaN)).filter(Number.isFinite);
    return {
      kind,
      mean,
      lo: Array.from(row1d(pc.lo, [k, row])),
      hi: Array.from(row1d(pc.hi, [k, row])),
      far: far.length ? far.reduce((a, b) => a + b, 0) / far.length : NaN,
    };
  });
  const by = (k: string) => curves.find((c) => c.kind === k)?.far ?? NaN;
  return {
    row,
    massive,
    median,
    energy: e,
    ratio: massive.length && median > 0 ? top / median : NaN,
    curves,
    farFrom,
    excess: by("content") - by("content_other"),
  };
}
