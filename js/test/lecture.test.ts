import { describe, expect, it } from "vitest";
import {
  decodeFirstReached,
  decodePositionContent,
  decodeProfile,
  decodeSimilarity,
  firstReachedMarks,
  niceMax,
  pcRows,
  pickRow,
  positionContentAt,
  profileSeries,
  ROW_VIEWS,
  similarityBlock,
  VIEWS,
} from "../lecture";
import { logTicks, pcYRange } from "../poscon";
import { must } from "./must";

const enc = (dtype: string, shape: number[], data: ArrayLike<number>) => {
  const arr =
    dtype === "float32" ? new Float32Array(data) : dtype === "int32" ? new Int32Array(data) : new Uint8Array(data);
  return { dtype, shape, buffer: new DataView(arr.buffer) };
};

describe("first reached", () => {
  it("decodes int32 rows from the effect and marks reached columns only", () => {
    const first = decodeFirstReached({ first_reached: enc("int32", [4], [-1, 2, 3, 3]) });
    expect(first).toEqual([-1, 2, 3, 3]);
    expect(firstReachedMarks(first)).toEqual([
      [2, 1],
      [3, 2],
      [3, 3],
    ]);
    expect(decodeFirstReached({})).toBeNull();
    expect(firstReachedMarks(null)).toEqual([]);
  });
});

describe("profile", () => {
  const raw = {
    kind: "zero",
    site: "resid",
    metric: "KL (nats)",
    mean: enc("float32", [2, 3], [1, 0.5, NaN, 4, 2, 1]),
    max: enc("float32", [2, 3], [2, 1, NaN, 8, 3, 1]),
  };
  it("splits the next-token term from the far future", () => {
    const p = must(decodeProfile(raw));
    const s = must(profileSeries(p, 1));
    expect(Array.from(s.mean)).toEqual([4, 2, 1]);
    expect(Array.from(s.max)).toEqual([8, 3, 1]);
    expect(s.nextToken).toBe(4);
    expect(s.farFuture).toBe(3);
    const s0 = must(profileSeries(p, 0));
    expect(s0.farFuture).toBe(0.5); // NaN skipped
    expect(profileSeries(p, 2)).toBeNull();
    expect(profileSeries(null, 0)).toBeNull();
    expect(decodeProfile({ mean: null })).toBeNull();
  });
  it("nice axis maxima", () => {
    expect(niceMax([[0.7, NaN]])).toBe(1);
    expect(niceMax([[3.1]])).toBe(5);
    expect(niceMax([[0]])).toBe(1);
    expect(niceMax([[12]])).toBe(20);
  });
});

describe("similarity and rows", () => {
  it("takes one row's [P, P] block", () => {
    const s = must(
      decodeSimilarity({ sim: enc("float32", [2, 2, 2], [1, 0, 0, 1, 1, 0.5, 0.5, 1]), by_distance: null }),
    );
    expect(Array.from(must(similarityBlock(s, 1)))).toEqual([1, 0.5, 0.5, 1]);
    expect(similarityBlock(s, 2)).toBeNull();
    expect(decodeSimilarity(null)).toBeNull();
  });
  it("picks explicit row, then hovered, then pinned, then the fallback", () => {
    expect(pickRow(2, [1, 0], [[0, 0]], 4, 3)).toBe(2);
    expect(pickRow(-1, [1, 0], [[0, 0]], 4, 3)).toBe(1);
    expect(pickRow(-1, null, [[0, 5]], 4, 3)).toBe(0);
    expect(pickRow(-1, null, [], 4, 3)).toBe(3);
    expect(pickRow(9, [7, 0], [[8, 0]], 4, 9)).toBe(3);
  });
});

describe("grid layout", () => {
  it("fits map and overview side by side and shares cell sizes", async () => {
    const { gridLayout } = await import("../draw");
    const { map, overview } = gridLayout(13, 24, 12, 1400);
    expect(map.cw).toBe(overview.cw);
    expect(map.x0 + 24 * map.cw).toBeLessThanOrEqual(1400 / 2);
    expect([map.rows, overview.rows, map.stripH, overview.stripH]).toEqual([13, 12, 14, 0]);
    expect(gridLayout(200, 4, 200, 900).map.ch).toBeGreaterThanOrEqual(5);
  });
});

describe("position vs content", () => {
  // R = 2 rows, M = 2 massive dims, K = 5 kinds, D = 6 distances (1..6)
  const kinds = ["raw", "no_massive", "centred", "content", "content_other"];
  const K = 5;
  const R = 2;
  const D = 6;
  const mean: number[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  for (let k = 0; k < K; k++)
    for (let r = 0; r < R; r++)
      for (let d = 0; d < D; d++) {
        const v = (k + 1) / 10 + r / 100 - (d + 1) / 1000; // distinct per kind, row, distance
        mean.push(v);
        lo.push(v - 0.05);
        hi.push(v + 0.05);
      }
  const raw = {
    kinds,
    massive_dims: enc("int32", [2], [7, 3]),
    massive_abs: enc("float32", [R, 2], [1, 1, 80, 40]),
    median_abs: enc("float32", [R], [1, 4]),
    energy: enc("float32", [R, 3], [0.1, 0.2, 0.7, 0.6, 0.1, 0.3]),
    energy_no_massive: enc("float32", [R, 3], [0.05, 0.2, 0.75, 0.1, 0.2, 0.7]),
    distance: enc("int32", [D], [1, 2, 3, 4, 5, 6]),
    mean: enc("float32", [K, R, D], mean),
    lo: enc("float32", [K, R, D], lo),
    hi: enc("float32", [K, R, D], hi),
    conf: 0.95,
    n_prompts: 24,
    n_tokens: 16,
    first: 1,
  };

  it("decodes the payload and slices one row", () => {
    const pc = must(decodePositionContent(raw));
    expect(pcRows(pc)).toBe(2);
    expect(pc.massiveDims).toEqual([7, 3]);
    expect([pc.nPrompts, pc.nTokens, pc.first, pc.conf]).toEqual([24, 16, 1, 0.95]);
    const s = must(positionContentAt(pc, 1));
    expect(s.massive).toEqual([
      { dim: 7, value: 80 },
      { dim: 3, value: 40 },
    ]);
    expect(s.median).toBe(4);
    expect(s.ratio).toBe(20); // 80 / 4
    expect(s.energy.map((x) => Math.round(x * 10) / 10)).toEqual([0.6, 0.1, 0.3]);
    expect(s.curves.map((c) => c.kind)).toEqual(kinds);
    const content = must(s.curves.find((c) => c.kind === "content"));
    // kind 3, row 1: 0.4 + 0.01 - d/1000 for d = 1..6
    expect(content.mean.map((x) => Math.round(x * 1e4) / 1e4)).toEqual([0.409, 0.408, 0.407, 0.406, 0.405, 0.404]);
    expect(content.lo[0]).toBeCloseTo(0.359, 5);
    expect(content.hi[5]).toBeCloseTo(0.454, 5);
    // far: mean over d >= 5 (0.405, 0.404); excess: content − content_other there = −0.1
    expect(content.far).toBeCloseTo(0.4045, 5);
    expect(s.excess).toBeCloseTo(-0.1, 5);
    expect(must(positionContentAt(pc, 0, 1)).curves[0].far).toBeCloseTo(0.1 - 0.0035, 5);
  });

  it("is null when absent or out of range, and has no ratio without massive dims", () => {
    expect(decodePositionContent(null)).toBeNull();
    expect(decodePositionContent({ ...raw, mean: undefined })).toBeNull();
    const pc = must(decodePositionContent(raw));
    expect(positionContentAt(pc, 2)).toBeNull();
    expect(positionContentAt(null, 0)).toBeNull();
    const none = must(
      decodePositionContent({
        ...raw,
        massive_dims: enc("int32", [0], []),
        massive_abs: enc("float32", [R, 0], []),
      }),
    );
    expect(Number.isNaN(must(positionContentAt(none, 0)).ratio)).toBe(true);
  });

  it("follows view_row, then the hovered row, then the pin, else the last row", () => {
    const n = pcRows(must(decodePositionContent(raw)));
    expect(pickRow(1, [0, 3], [[0, 2]], n, n - 1)).toBe(1);
    expect(pickRow(-1, [0, 3], [[1, 2]], n, n - 1)).toBe(0);
    expect(pickRow(-1, null, [[0, 2]], n, n - 1)).toBe(0);
    expect(pickRow(-1, null, [], n, n - 1)).toBe(1);
    expect(pickRow(5, [9, 0], [], n, n - 1)).toBe(1); // out of range everywhere: the fallback
  });

  it("chart helpers: the cosine axis covers every band and 0; log ticks span the values", () => {
    const s = must(positionContentAt(must(decodePositionContent(raw)), 1));
    const [a, b] = pcYRange(s);
    expect(a).toBe(-0.1);
    expect(b).toBeCloseTo(0.6, 10); // highest band: 0.5 + 0.01 + 0.05 → rounded up to 0.6
    for (const c of s.curves) for (const v of [...c.lo, ...c.hi]) expect(v >= a && v <= b).toBe(true);
    expect(pcYRange(null)).toEqual([-0.1, 0.5]);
    expect(logTicks(0.5, 80)).toEqual([0.1, 1, 10, 100]);
    expect(logTicks(0, 1)).toEqual([]);
    expect(VIEWS.map((v) => v[0])).toContain("position_content");
    expect(ROW_VIEWS).toContain("position_content");
  });
});
