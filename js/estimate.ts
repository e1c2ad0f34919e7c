/**
 * The instant overview: which overview cells show the attribution-patching estimate and which
 * the exact sweep, the cells where the estimate is most wrong, and the words for both — pure
 * functions of the synced state (no DOM), unit-tested in js/test/estimate.test.ts.
 *
 * Synced payloads (built by `src/residual_widgets/_payloads.py`):
 * - `estimate`: `{kind, site, method: "atp", note, caveat, logit_diff: f32[S, P] | null,
 *   logprob_delta: f32[S, P] | null, clean_logit_diff}` — computed before the sweep starts
 *   (one forward + one backward pass). `note` says why there is none (kinds set/knockout, a
 *   refused site); `caveat` where it is known to be poor (zero/mean on whole residual vectors).
 * - `atlas.agreement`: `{logit_diff?: A, logprob_delta?: A}` with
 *   `A = {pearson, spearman, max_abs_error, n, worst: [[row, pos], …]}` over the cells the sweep
 *   has done so far (null correlations: undefined, e.g. a constant side).
 *
 * Overview metrics (`overview_metric`): `logprob_delta` (Σ Δlog p of the prompt's next tokens;
 * exact: `atlas.logprob_total`), `logit_diff` (exact: `atlas.logit_diff`) — both estimated — and
 * `total_kl`, exact only: KL(clean ‖ new) has zero gradient at the clean run, so there is no
 * first-order estimate of it and none is shown.
 *
 * A cell shows its exact value once the sweep has done it, else the estimate (marked), else
 * nothing (NaN).
 */

import { decodeMaybe, type NDArray, num, type Payload, str } from "./codec";
import type { Cell, Site } from "./heatmap";
import type { AtlasData } from "./mapstate";
import { fmt } from "./scale";

export interface EstimateData {
  kind: string;
  site: Site;
  method: string;
  /** Why there is no estimate ("" when there is one). */
  note: string;
  /** Where the estimate is known to be poor ("" when not). */
  caveat: string;
  logitDiff: NDArray | null;
  logprob: NDArray | null;
  cleanLogitDiff: number | null;
}

export interface Agreement {
  pearson: number | null;
  spearman: number | null;
  maxAbsError: number | null;
  n: number;
  worst: Cell[];
}

export function decodeEstimate(raw: Payload | null | undefined): EstimateData | null {
  if (!raw || typeof raw !== "object") return null;
  return {
    kind: str(raw.kind, ""),
    site: str(raw.site, "resid") as Site,
    method: str(raw.method, ""),
    note: str(raw.note, ""),
    caveat: str(raw.caveat, ""),
    logitDiff: decodeMaybe(raw.logit_diff),
    logprob: decodeMaybe(raw.logprob_delta),
    cleanLogitDiff: num(raw.clean_logit_diff),
  };
}

/** `atlas.agreement` (raw JSON) by metric, or null. */
export function decodeAgreement(raw: unknown): Record<string, Agreement> | null {
  if (!raw || typeof raw !== "object") return null;
  const out: Record<string, Agreement> = {};
  for (const [k, v] of Object.entries(raw as Record<string, Record<string, unknown>>)) {
    if (!v || typeof v !== "object") continue;
    const worst = Array.isArray(v.worst) ? (v.worst as number[][]).map((c) => [c[0], c[1]] as Cell) : [];
    out[k] = {
      pearson: num(v.pearson),
      spearman: num(v.spearman),
      maxAbsError: num(v.max_abs_error),
      n: num(v.n) ?? 0,
      worst,
    };
  }
  return out;
}

/** What each overview metric is called, its unit, and whether an estimate of it exists. */
export const OVERVIEW: Record<string, { title: string; unit: string; estimated: boolean }> = {
  logprob_delta: { title: "Σ Δlog p of the next tokens", unit: "nats", estimated: true },
  logit_diff: { title: "logit diff after intervening", unit: "logits", estimated: true },
  total_kl: { title: "total KL over positions", unit: "nats", estimated: false },
};

/** The words for total KL while it has no exact values: why there is no estimate of it. */
export const NO_KL_ESTIMATE =
  "KL has no estimate (its gradient at the clean run is 0, so a first-order estimate is 0): choose Σ Δlog p or logit diff for the instant overview";

export interface OverviewCells {
  /** The metric shown (`overview_metric`, or the fallback when it has no data). */
  which: string;
  /** [S, P] row-major: exact where done, else the estimate, else NaN. */
  values: Float32Array;
  /** [S, P]: 1 where the value is the estimate. */
  estimated: Uint8Array;
  nExact: number;
  nEstimated: number;
  diverging: boolean;
  center: number;
  unit: string;
  title: string;
  /** The estimate applies (same kind and site as the atlas, if any; a metric with an estimate). */
  usesEstimate: boolean;
}

/** The exact `[S, P]` array of `which` in the atlas (null when it has none). */
export function exactOf(a: AtlasData | null, which: string): NDArray | null {
  if (!a) return null;
  if (which === "logit_diff") return a.logitDiff;
  if (which === "logprob_delta") return a.logprobTotal ?? null;
  return a.totalKl;
}

/** The estimate's `[S, P]` array of `which` (null for total KL, or when it has none). */
export function estimateOf(e: EstimateData | null, which: string): NDArray | null {
  if (!e) return null;
  if (which === "logit_diff") return e.logitDiff;
  if (which === "logprob_delta") return e.logprob;
  return null;
}

/** Whether the estimate describes the same sweep as the atlas (kind and site), or there is none. */
function matches(e: EstimateData | null, a: AtlasData | null): boolean {
  return !!e && (!a || (a.kind === e.kind && a.site === e.site));
}

/**
 * The overview's cells for metric `which`: exact where the sweep is done, the estimate elsewhere.
 * `S`, `P`: the grid (from the atlas, the estimate or the session). Returns null when neither
 * side has anything to show for `which`. Logit diff without a token pair falls back to Σ Δlog p,
 * and Σ Δlog p to total KL for an atlas without it (and no estimate: an older saved page).
 */
export function overviewCells(
  atlas: AtlasData | null,
  est: EstimateData | null,
  which: string,
  S: number,
  P: number,
): OverviewCells | null {
  let w = which in OVERVIEW ? which : "logprob_delta";
  if (w === "logit_diff" && !exactOf(atlas, w) && !estimateOf(est, w)) w = "logprob_delta";
  if (w === "logprob_delta" && atlas && !exactOf(atlas, w) && !estimateOf(est, w)) w = "total_kl";
  const exact = exactOf(atlas, w);
  const ok = matches(est, atlas);
  const guess = ok ? estimateOf(est, w) : null;
  const fits = (x: NDArray | null) => !!x && x.data.length === S * P;
  if (!fits(exact) && !fits(guess)) return null;
  const values = new Float32Array(S * P).fill(NaN);
  const estimated = new Uint8Array(S * P);
  let nExact = 0;
  let nEstimated = 0;
  const done = atlas && atlas.done.data.length === S * P ? atlas.done.data : null;
  for (let k = 0; k < S * P; k++) {
    if (done?.[k] && exact && fits(exact)) {
      values[k] = exact.data[k];
      nExact++;
    } else if (guess && fits(guess)) {
      values[k] = guess.data[k];
      estimated[k] = 1;
      nEstimated++;
    }
  }
  const center = w === "logit_diff" ? (atlas?.cleanLogitDiff ?? est?.cleanLogitDiff ?? 0) : 0;
  return {
    which: w,
    values,
    estimated,
    nExact,
    nEstimated,
    diverging: w !== "total_kl",
    center,
    unit: OVERVIEW[w].unit,
    title: OVERVIEW[w].title,
    usesEstimate: !!guess && fits(guess),
  };
}

/** The overview's subtitle: what it shows, how much is estimated, and why not when it is not. */
export function overviewNote(
  ov: OverviewCells | null,
  atlas: AtlasData | null,
  est: EstimateData | null,
  which: string,
): string {
  const setting = atlas ? `${atlas.kind} @ ${atlas.site}` : est ? `${est.kind} @ ${est.site}` : "";
  if (!ov) {
    if (which === "total_kl" && est && !est.note) return `${NO_KL_ESTIMATE} · or wait for the sweep`;
    if (est?.note) return `${est.note} · no sweep yet — press Sweep`;
    return est ? "estimating… · no sweep yet" : "no sweep yet — press Sweep";
  }
  const parts = [ov.title];
  if (ov.nEstimated > 0) {
    parts.push(
      ov.nExact > 0
        ? `${ov.nExact} exact, ${ov.nEstimated} estimated (dotted: first-order estimate, ${est?.method || "atp"})`
        : `ESTIMATE (first-order attribution patching, ${est?.method || "atp"}; dotted) — exact cells replace it as the sweep runs`,
    );
    if (est?.caveat) parts.push(est.caveat);
  } else if (atlas && !atlas.complete) parts.push("incomplete");
  if (setting) parts.push(setting);
  if (ov.which === "total_kl" && est && !est.note && !atlas?.complete) parts.push(NO_KL_ESTIMATE);
  if (est?.note && ov.which !== "total_kl") parts.push(est.note);
  return parts.join(" · ");
}

/** The agreement of `which` when the overview shows both sides (else null). */
export function agreementFor(atlas: AtlasData | null, est: EstimateData | null, which: string): Agreement | null {
  if (!atlas?.agreement || !matches(est, atlas) || !estimateOf(est, which)) return null;
  return atlas.agreement[which] ?? null;
}

/** "Pearson r 0.86 · Spearman ρ 0.92 · 120 cells" (undefined correlations: "—"). */
export function agreementLabel(ag: Agreement | null): string {
  if (!ag || ag.n === 0) return "";
  const f = (x: number | null) => (x === null || !Number.isFinite(x) ? "—" : x.toFixed(2));
  return `estimate vs exact: Pearson r ${f(ag.pearson)} · Spearman ρ ${f(ag.spearman)} · ${ag.n} cells`;
}

/** The cells to outline on the overview: the worst-estimated cells that are exact now (inside
 * the grid), from the kernel's agreement. */
export function outlineCells(ag: Agreement | null, atlas: AtlasData | null): Cell[] {
  if (!ag || !atlas) return [];
  const [S, P] = atlas.done.shape;
  return ag.worst.filter(([r, c]) => r >= 0 && r < S && c >= 0 && c < P && !!atlas.done.data[r * P + c]);
}

export interface ScatterPoints {
  /** estimate (x) and exact (y) of each done cell with both finite */
  x: Float32Array;
  y: Float32Array;
  /** 1 where the point is one of the outlined worst cells */
  worst: Uint8Array;
}

/** Points of the estimate-vs-exact scatter: every done cell, the outlined ones flagged. */
export function scatterPoints(
  atlas: AtlasData | null,
  est: EstimateData | null,
  which: string,
  outlined: Cell[],
): ScatterPoints | null {
  const ex = exactOf(atlas, which);
  const gs = matches(est, atlas) ? estimateOf(est, which) : null;
  if (!atlas || !ex || !gs || ex.data.length !== gs.data.length) return null;
  const P = atlas.done.shape[1];
  const bad = new Set(outlined.map(([r, c]) => r * P + c));
  const xs: number[] = [];
  const ys: number[] = [];
  const ws: number[] = [];
  for (let k = 0; k < ex.data.length; k++) {
    if (!atlas.done.data[k] || !Number.isFinite(ex.data[k]) || !Number.isFinite(gs.data[k])) continue;
    xs.push(gs.data[k]);
    ys.push(ex.data[k]);
    ws.push(bad.has(k) ? 1 : 0);
  }
  if (!xs.length) return null;
  return { x: Float32Array.from(xs), y: Float32Array.from(ys), worst: Uint8Array.from(ws) };
}

/** The tooltip line of overview cell (row, col): the exact value, or — while the sweep has not
 * reached it — that the exact value is not computed yet, and the estimate, marked as such. */
export function cellText(ov: OverviewCells | null, row: number, col: number, P: number, sweeping: boolean): string {
  if (!ov) return "no sweep yet";
  const k = row * P + col;
  const v = ov.values[k];
  if (ov.estimated[k]) {
    return `exact not computed yet${sweeping ? " (the sweep has not reached it)" : ""} · estimate ≈ ${fmt(v)} ${ov.unit} (${ov.title}, first-order attribution patching)`;
  }
  if (!Number.isFinite(v)) return `${ov.title}: exact not computed yet`;
  return `${ov.title} = ${fmt(v)} ${ov.unit}`;
}
