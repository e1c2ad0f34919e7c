import { describe, expect, it } from "vitest";
import {
  decodeFirstReached,
  decodeProfile,
  decodeSimilarity,
  firstReachedMarks,
  niceMax,
  pickRow,
  profileSeries,
  similarityBlock,
} from "../lecture";
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
