import { describe, expect, it } from "vitest";
import {
  agreementFor,
  agreementLabel,
  cellText,
  decodeAgreement,
  decodeEstimate,
  NO_KL_ESTIMATE,
  outlineCells,
  overviewCells,
  overviewNote,
  scatterPoints,
} from "../estimate";
import type { Geom } from "../heatmap";
import { decodeAtlas } from "../mapstate";
import { overviewTip } from "../pointer";
import { must } from "./must";

const enc = (dtype: string, shape: number[], data: ArrayLike<number>) => {
  const arr = dtype === "float32" ? new Float32Array(data) : new Uint8Array(data);
  return { dtype, shape, buffer: new DataView(arr.buffer) };
};

const S = 2;
const P = 3;
const EST_LP = [-1, -2, -3, -4, -5, -6];
const EST_LD = [0.5, 1, 1.5, 2, 2.5, 3];
const EXACT_LP = [-10, -20, -30, -40, -50, -60];
const EXACT_LD = [5, 6, 7, 8, 9, 10];

function estimateRaw(over: Record<string, unknown> = {}) {
  return {
    kind: "zero",
    site: "resid",
    method: "atp",
    note: "",
    caveat: "",
    logit_diff: enc("float32", [S, P], EST_LD),
    logprob_delta: enc("float32", [S, P], EST_LP),
    clean_logit_diff: 2,
    ...over,
  };
}

function atlasRaw(done: number[], over: Record<string, unknown> = {}) {
  return {
    kind: "zero",
    site: "resid",
    complete: done.every((d) => d === 1),
    resid_delta: null,
    kl: null,
    total_kl: enc("float32", [S, P], [1, 2, 3, 4, 5, 6]),
    logprob_total: enc("float32", [S, P], EXACT_LP),
    logit_diff: enc("float32", [S, P], EXACT_LD),
    clean_logit_diff: 2,
    done: enc("bool", [S, P], done),
    agreement: {
      logprob_delta: {
        pearson: 0.9,
        spearman: null,
        max_abs_error: 54,
        n: 2,
        worst: [
          [1, 2],
          [0, 0],
          [1, 0],
        ],
      },
      logit_diff: { pearson: 0.5, spearman: 0.25, max_abs_error: 7, n: 2, worst: [[1, 0]] },
    },
    ...over,
  };
}

const est = decodeEstimate(estimateRaw());
const nan = (xs: Float32Array) => Array.from(xs, (v) => (Number.isNaN(v) ? "nan" : v));

describe("which overview cells show the estimate and which the exact sweep", () => {
  it("before the sweep: every cell is the estimate, marked", () => {
    const ov = must(overviewCells(null, est, "logprob_delta", S, P));
    expect(Array.from(ov.values)).toEqual(EST_LP);
    expect(Array.from(ov.estimated)).toEqual([1, 1, 1, 1, 1, 1]);
    expect([ov.nExact, ov.nEstimated, ov.usesEstimate, ov.diverging, ov.center]).toEqual([0, 6, true, true, 0]);
  });

  it("done cells are exact, the rest stay estimated; all exact once the sweep completes", () => {
    const part = decodeAtlas(atlasRaw([1, 0, 0, 1, 0, 1]));
    const ov = must(overviewCells(part, est, "logprob_delta", S, P));
    expect(Array.from(ov.values)).toEqual([-10, -2, -3, -40, -5, -60]);
    expect(Array.from(ov.estimated)).toEqual([0, 1, 1, 0, 1, 0]);
    expect([ov.nExact, ov.nEstimated]).toEqual([3, 3]);
    const full = must(overviewCells(decodeAtlas(atlasRaw([1, 1, 1, 1, 1, 1])), est, "logprob_delta", S, P));
    expect(Array.from(full.values)).toEqual(EXACT_LP);
    expect(full.nEstimated).toBe(0);
  });

  it("logit diff: estimate and exact are values under the intervention, centred on the clean one", () => {
    const ov = must(overviewCells(decodeAtlas(atlasRaw([0, 1, 0, 0, 0, 0])), est, "logit_diff", S, P));
    expect(Array.from(ov.values)).toEqual([0.5, 6, 1.5, 2, 2.5, 3]);
    expect(ov.center).toBe(2);
  });

  it("total KL is never estimated: exact cells only, NaN elsewhere, and nothing at all before the sweep", () => {
    expect(overviewCells(null, est, "total_kl", S, P)).toBeNull();
    const ov = must(overviewCells(decodeAtlas(atlasRaw([1, 0, 0, 0, 0, 0])), est, "total_kl", S, P));
    expect(nan(ov.values)).toEqual([1, "nan", "nan", "nan", "nan", "nan"]);
    expect([ov.nEstimated, ov.usesEstimate, ov.diverging]).toEqual([0, false, false]);
  });

  it("an estimate of another kind or site than the atlas is not mixed in", () => {
    const other = decodeEstimate(estimateRaw({ kind: "mean" }));
    const ov = must(overviewCells(decodeAtlas(atlasRaw([1, 0, 0, 0, 0, 0])), other, "logprob_delta", S, P));
    expect(nan(ov.values)).toEqual([-10, "nan", "nan", "nan", "nan", "nan"]);
    expect(ov.nEstimated).toBe(0);
  });

  it("a refused estimate (knockout) shows nothing until the sweep and says why", () => {
    const none = decodeEstimate({ kind: "knockout", site: "resid", note: "no estimate for knockout: …" });
    expect(overviewCells(null, none, "logprob_delta", S, P)).toBeNull();
    expect(overviewNote(null, null, none, "logprob_delta")).toBe(
      "no estimate for knockout: … · no sweep yet — press Sweep",
    );
  });

  it("logit diff without a token pair falls back to Σ Δlog p", () => {
    const noPair = decodeEstimate(estimateRaw({ logit_diff: null }));
    expect(must(overviewCells(null, noPair, "logit_diff", S, P)).which).toBe("logprob_delta");
  });
});

describe("the overview's words", () => {
  it("names the estimate, counts exact and estimated cells, and says the caveat", () => {
    const poor = decodeEstimate(estimateRaw({ caveat: "far from linear" }));
    const ov0 = overviewCells(null, poor, "logprob_delta", S, P);
    expect(overviewNote(ov0, null, poor, "logprob_delta")).toBe(
      "Σ Δlog p of the next tokens · ESTIMATE (first-order attribution patching, atp; dotted) — exact cells replace it as the sweep runs · far from linear · zero @ resid",
    );
    const part = decodeAtlas(atlasRaw([1, 0, 0, 0, 0, 0]));
    const ov1 = overviewCells(part, poor, "logprob_delta", S, P);
    expect(overviewNote(ov1, part, poor, "logprob_delta")).toContain("1 exact, 5 estimated");
    const full = decodeAtlas(atlasRaw([1, 1, 1, 1, 1, 1]));
    expect(overviewNote(overviewCells(full, poor, "logprob_delta", S, P), full, poor, "logprob_delta")).toBe(
      "Σ Δlog p of the next tokens · zero @ resid",
    );
  });

  it("says why total KL has no estimate", () => {
    expect(overviewNote(null, null, est, "total_kl")).toBe(`${NO_KL_ESTIMATE} · or wait for the sweep`);
    const part = decodeAtlas(atlasRaw([1, 0, 0, 0, 0, 0]));
    expect(overviewNote(overviewCells(part, est, "total_kl", S, P), part, est, "total_kl")).toContain(NO_KL_ESTIMATE);
  });

  it("correlation labels: two decimals, undefined ones as a dash", () => {
    const ag = must(must(decodeAgreement(atlasRaw([1]).agreement)).logprob_delta);
    expect(agreementLabel(ag)).toBe("estimate vs exact: Pearson r 0.90 · Spearman ρ — · 2 cells");
    expect(agreementLabel({ pearson: -0.123, spearman: 1, maxAbsError: 1, n: 9, worst: [] })).toBe(
      "estimate vs exact: Pearson r -0.12 · Spearman ρ 1.00 · 9 cells",
    );
    expect(agreementLabel(null)).toBe("");
  });

  it("a hovered cell without its exact value says so and gives the estimate, marked", () => {
    const part = decodeAtlas(atlasRaw([1, 0, 0, 0, 0, 0]));
    const ov = overviewCells(part, est, "logprob_delta", S, P);
    expect(cellText(ov, 0, 1, P, true)).toBe(
      "exact not computed yet (the sweep has not reached it) · estimate ≈ -2 nats (Σ Δlog p of the next tokens, first-order attribution patching)",
    );
    expect(cellText(ov, 0, 0, P, true)).toBe("Σ Δlog p of the next tokens = -10 nats");
    const g: Geom = { x0: 0, y0: 0, cw: 10, ch: 10, rows: S, cols: P, stripH: 0, stripGap: 0 };
    const tip = overviewTip(1, 2, g, part, "logprob_delta", ["a", "b", "c"], est, false);
    expect(tip.value).toBe(
      "exact not computed yet · estimate ≈ -6 nats (Σ Δlog p of the next tokens, first-order attribution patching)",
    );
    expect(tip.head).toBe("source row 1, position 2");
  });
});

describe("the worst cells and the scatter", () => {
  it("outlines the kernel's worst cells that are exact now, for the metric shown", () => {
    const part = decodeAtlas(atlasRaw([1, 0, 0, 1, 0, 1]));
    expect(outlineCells(agreementFor(part, est, "logprob_delta"), part)).toEqual([
      [1, 2],
      [0, 0],
      [1, 0],
    ]);
    expect(outlineCells(agreementFor(part, est, "logit_diff"), part)).toEqual([[1, 0]]);
    expect(agreementFor(part, est, "total_kl")).toBeNull(); // no estimate: no outline
    const notDone = decodeAtlas(atlasRaw([0, 0, 0, 0, 0, 1]));
    expect(outlineCells(agreementFor(notDone, est, "logprob_delta"), notDone)).toEqual([[1, 2]]);
    const other = decodeEstimate(estimateRaw({ site: "attn_out" }));
    expect(agreementFor(part, other, "logprob_delta")).toBeNull();
  });

  it("scatter points: one per exact cell, estimate on x, exact on y, worst flagged", () => {
    const part = decodeAtlas(atlasRaw([1, 0, 0, 1, 0, 1]));
    const pts = must(scatterPoints(part, est, "logprob_delta", [[1, 2]]));
    expect(Array.from(pts.x)).toEqual([-1, -4, -6]);
    expect(Array.from(pts.y)).toEqual([-10, -40, -60]);
    expect(Array.from(pts.worst)).toEqual([0, 0, 1]);
    expect(scatterPoints(decodeAtlas(atlasRaw([0, 0, 0, 0, 0, 0])), est, "logprob_delta", [])).toBeNull();
    expect(scatterPoints(part, est, "total_kl", [])).toBeNull();
  });
});

describe("without an estimate (the saved page)", () => {
  it("the exact Σ Δlog p is shown and named alike by the overview and its tooltip", () => {
    const part = decodeAtlas(atlasRaw([1, 0, 0, 0, 0, 0]));
    const ov = must(overviewCells(part, null, "logprob_delta", S, P));
    expect(nan(ov.values)).toEqual([-10, "nan", "nan", "nan", "nan", "nan"]);
    const g: Geom = { x0: 0, y0: 0, cw: 10, ch: 10, rows: S, cols: P, stripH: 0, stripGap: 0 };
    expect(overviewTip(0, 0, g, part, "logprob_delta", ["a", "b", "c"]).value).toBe(
      "Σ Δlog p of the next tokens = -10 nats",
    );
  });

  it("an atlas without Σ Δlog p falls back to total KL", () => {
    const old = decodeAtlas(atlasRaw([1, 0, 0, 0, 0, 0], { logprob_total: null }));
    expect(must(overviewCells(old, null, "logprob_delta", S, P)).which).toBe("total_kl");
  });
});
