import { describe, expect, it } from "vitest";
import {
  decodeHeads,
  type HeadsData,
  headAt,
  headCells,
  headGrid,
  headLabel,
  headMap,
  headRows,
  headShown,
  headsStatus,
  headValue,
  rowOfHead,
  shownLayer,
} from "../heads";
import { must } from "./must";

const enc = (dtype: string, shape: number[], data: ArrayLike<number>) => {
  const arr = dtype === "float32" ? new Float32Array(data) : new Uint8Array(data);
  return { dtype, shape, buffer: new DataView(arr.buffer) };
};

// 2 layers × 3 heads × 4 positions; R = 3 residual rows. Head cell (l, h, p) has total KL
// 100·l + 10·h + p, its map is filled with the same number, and (1, 2, 3) is not done yet.
const L = 2,
  H = 3,
  P = 4,
  R = 3;
const id = (l: number, h: number, p: number) => 100 * l + 10 * h + p;
function raw(extra: Record<string, unknown> = {}) {
  const cells: number[] = [];
  const done: number[] = [];
  const maps: number[] = [];
  const kl: number[] = [];
  for (let l = 0; l < L; l++)
    for (let h = 0; h < H; h++)
      for (let p = 0; p < P; p++) {
        cells.push(id(l, h, p));
        done.push(l === 1 && h === 2 && p === 3 ? 0 : 1);
        for (let k = 0; k < R * P; k++) maps.push(id(l, h, p));
        for (let j = 0; j < P; j++) kl.push(j === p ? id(l, h, p) : 0);
      }
  return {
    kind: "zero",
    site: "head",
    complete: false,
    storage: "float32",
    n_layers: L,
    n_heads: H,
    done: enc("bool", [L, H, P], done),
    total_kl: enc("float32", [L, H, P], cells),
    logprob_total: enc(
      "float32",
      [L, H, P],
      cells.map((v) => -v),
    ),
    logit_diff: enc(
      "float32",
      [L, H, P],
      cells.map((v) => v / 2),
    ),
    clean_logit_diff: 1.5,
    kl: enc("float32", [L, H, P, P], kl),
    resid_delta: enc("float32", [L, H, P, R, P], maps),
    progress: { done: 23, total: 24, running: true, cancelled: false },
    ...extra,
  };
}
const data = (): HeadsData => must(decodeHeads(raw()));

describe("decoding the heads payload", () => {
  it("reads the shapes and the progress", () => {
    const d = data();
    expect([d.L, d.H, d.P]).toEqual([L, H, P]);
    expect(d.progress).toEqual({ done: 23, total: 24, running: true, cancelled: false });
    expect(must(d.maps).shape).toEqual([L, H, P, R, P]);
  });

  it("refuses what is not a by-position head sweep", () => {
    expect(decodeHeads(null)).toBeNull();
    expect(
      decodeHeads({ done: enc("bool", [L, H], [1, 1, 1, 1, 1, 1]), total_kl: enc("float32", [L, H], []) }),
    ).toBeNull();
  });
});

describe("which heads the grid shows", () => {
  it("one layer: its heads bottom up; every layer: layer by layer, layer 0 at the bottom", () => {
    expect(headRows(L, H, 1)).toEqual([
      [1, 0],
      [1, 1],
      [1, 2],
    ]);
    expect(headRows(L, H, -1)).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
      [1, 2],
    ]);
    expect(headRows(L, H, 7)).toHaveLength(L * H); // an invalid layer shows all
    expect(shownLayer(data(), 7)).toBe(-1);
  });

  it("a grid cell is a head cell, and back", () => {
    const d = data();
    expect(headAt(d, -1, 4, 2)).toEqual([1, 1, 2]);
    expect(headAt(d, 0, 2, 3)).toEqual([0, 2, 3]);
    expect(headAt(d, 0, 3, 0)).toBeNull();
    expect(headAt(d, -1, 0, P)).toBeNull();
    expect(rowOfHead(d, -1, 1, 1)).toBe(4);
    expect(rowOfHead(d, 1, 1, 1)).toBe(1);
    expect(rowOfHead(d, 0, 1, 1)).toBe(-1);
    expect(headLabel(d, -1, 4)).toBe("1.1");
    expect(headLabel(d, 1, 2)).toBe("h2");
  });

  it("grid values follow the rows; cells not swept yet are NaN", () => {
    const d = data();
    const g = headGrid(d, 1, "total_kl");
    expect(g.rows).toBe(H);
    expect(Array.from(g.values.slice(0, P))).toEqual([100, 101, 102, 103]);
    expect(g.values[2 * P + 3]).toBeNaN(); // (1, 2, 3)
    const all = headGrid(d, -1, "total_kl");
    expect(all.values[4 * P + 2]).toBe(id(1, 1, 2));
    expect(all.diverging).toBe(false);
  });

  it("the summary follows the overview's choice: logit diff around the clean one, Σ Δlog p around 0", () => {
    const d = data();
    const ld = headGrid(d, 0, "logit_diff");
    expect(ld).toMatchObject({ diverging: true, center: 1.5, unit: "logits" });
    expect(ld.values[P + 1]).toBe(id(0, 1, 1) / 2);
    const lp = headGrid(d, 0, "logprob_delta");
    expect(lp).toMatchObject({ diverging: true, center: 0 });
    expect(lp.values[P + 1]).toBe(-id(0, 1, 1));
    expect(headValue(d, [0, 1, 1], "logprob_delta")).toBe(-11);
    expect(headValue(d, [1, 2, 3], "total_kl")).toBeNaN();
    // without a token pair the logit diff falls back to total KL
    const noPair = must(decodeHeads(raw({ logit_diff: null })));
    expect(headGrid(noPair, 0, "logit_diff").unit).toBe("nats");
  });
});

describe("previewing a head's map on the main map", () => {
  it("shows the sweep's map, drawn where the head writes (row layer + 1)", () => {
    const d = data();
    const s = must(headShown(d, [0, 2, 1], "kl", R, P));
    expect(s.mode).toBe("atlas");
    expect(s.cells).toEqual([[0, 1]]);
    expect(Array.from(must(s.values))).toEqual(new Array(R * P).fill(id(0, 2, 1)));
    // the cone: nothing at row 0; row 1 only at the head's position; positions ≥ 1 above
    expect(Array.from(must(s.reach))).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(must(s.strip))).toEqual([0, id(0, 2, 1), 0, 0]);
  });

  it("nothing for a head not swept yet, without maps, or without a hovered head", () => {
    const d = data();
    expect(headShown(d, [1, 2, 3], "kl", R, P)).toBeNull();
    expect(headMap(must(decodeHeads(raw({ resid_delta: null }))), [0, 0, 0])).toBeNull();
    expect(headShown(d, null, "kl", R, P)).toBeNull();
    expect(headShown(null, [0, 0, 0], "kl", R, P)).toBeNull();
  });

  it("a pinned head effect's head cells come from its payload", () => {
    expect(headCells({ head_cells: [[1, 2, 3]] })).toEqual([[1, 2, 3]]);
    expect(headCells({ cells: [[1, 3]] })).toBeNull();
  });

  it("the panel says what the sweep holds", () => {
    expect(headsStatus(null, true)).toMatch(/sweeping/);
    expect(headsStatus(null, true, false)).toMatch(/needs a kernel/);
    expect(headsStatus(data(), true)).toBe("zero on every head · 23/24 head cells");
    const cancelled = must(decodeHeads(raw({ storage: "summary", progress: { done: 5, total: 24, cancelled: true } })));
    expect(headsStatus(cancelled, false)).toMatch(/5\/24 head cells \(cancelled\) · summary only/);
  });
});
