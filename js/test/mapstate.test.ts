import { describe, expect, it } from "vitest";
import {
  atlasHas,
  currentMap,
  decodeAtlas,
  decodeEffect,
  mapCellToSource,
  overviewValues,
  slowPathNote,
  storageNote,
  stripFrom,
  toggleCell,
} from "../mapstate";
import { must } from "./must";

const enc = (dtype: string, shape: number[], data: ArrayLike<number>) => {
  const arr = dtype === "float32" ? new Float32Array(data) : new Uint8Array(data);
  return { dtype, shape, buffer: new DataView(arr.buffer) };
};

const R = 3,
  P = 2;
function atlasRaw() {
  const n = R * P * R * P;
  return {
    kind: "zero",
    site: "resid",
    complete: false,
    resid_delta: enc(
      "float32",
      [R, P, R, P],
      Array.from({ length: n }, (_, k) => k),
    ),
    kl: enc(
      "float32",
      [R, P, P],
      Array.from({ length: R * P * P }, (_, k) => k / 10),
    ),
    total_kl: enc("float32", [R, P], [1, 2, 3, 4, 5, 6]),
    logit_diff: null,
    done: enc("bool", [R, P], [1, 1, 0, 1, 1, 1]),
  };
}

describe("what the map shows", () => {
  it("atlas preview wins over the pinned effect, only for finished entries", () => {
    const atlas = decodeAtlas(atlasRaw());
    const effect = decodeEffect({
      id: "x:1",
      cells: [[0, 1]],
      kind: "zero",
      site: "resid",
      resid_delta: enc("float32", [R, P], [9, 9, 9, 9, 9, 9]),
      kl: enc("float32", [P], [0.5, 0.25]),
      logprob_delta: enc("float32", [P - 1], [-1]),
      reachable: enc("bool", [R, P], [0, 1, 0, 1, 0, 1]),
    });
    expect(atlasHas(atlas, [1, 0])).toBe(false);
    const s1 = currentMap({ effect, atlas, preview: [0, 1], metric: "kl", rows: R, cols: P });
    expect(s1.mode).toBe("atlas");
    expect(Array.from(must(s1.values))).toEqual([6, 7, 8, 9, 10, 11]);
    expect(Array.from(must(s1.strip))).toEqual([0.2, 0.3].map((x) => Math.fround(x)));
    const s2 = currentMap({ effect, atlas, preview: [1, 0], metric: "kl", rows: R, cols: P });
    expect(s2.mode).toBe("effect");
    expect(s2.id).toBe("x:1");
    expect(Array.from(must(s2.reach))).toEqual([0, 1, 0, 1, 0, 1]);
    const s3 = currentMap({ effect, atlas, preview: null, metric: "logprob", rows: R, cols: P });
    expect(must(s3.strip)[0]).toBe(-1);
    expect(Number.isNaN(must(s3.strip)[1])).toBe(true);
    expect(currentMap({ effect: null, atlas: null, preview: null, metric: "kl", rows: R, cols: P }).mode).toBe("empty");
  });

  it("a summary-only atlas draws the overview but previews no maps, and says so", () => {
    const raw = { ...atlasRaw(), resid_delta: null, storage: "summary" };
    const atlas = must(decodeAtlas(raw));
    expect(atlas).not.toBeNull();
    expect(atlas.resid).toBeNull();
    expect(atlasHas(atlas, [0, 1])).toBe(false);
    expect(overviewValues(atlas, "total_kl").values[5]).toBe(6);
    const s = currentMap({ effect: null, atlas, preview: [0, 1], metric: "kl", rows: R, cols: P });
    expect(s.mode).toBe("empty");
    expect(storageNote(atlas)).toMatch(/summary only.*click computes/);
    expect(storageNote(decodeAtlas({ ...atlasRaw(), storage: "float16" }))).toMatch(/float16/);
    expect(storageNote(decodeAtlas(atlasRaw()))).toBe("");
  });

  it("a sweep on the slow path says so, with the kernel's reason", () => {
    const slow = must(
      decodeAtlas({
        ...atlasRaw(),
        method: "loop",
        slow_path: "slow path: one forward per cell — x; about 10× slower",
      }),
    );
    expect(slow.method).toBe("loop");
    expect(slowPathNote(slow)).toBe(" · slow path: one forward per cell — x; about 10× slower");
    const fast = must(decodeAtlas({ ...atlasRaw(), method: "cone", slow_path: "" }));
    expect(fast.method).toBe("cone");
    expect(slowPathNote(fast)).toBe("");
    expect(slowPathNote(null)).toBe("");
  });

  it("overview hides unfinished cells", () => {
    const ov = overviewValues(must(decodeAtlas(atlasRaw())), "total_kl");
    expect(Number.isNaN(ov.values[2])).toBe(true);
    expect(ov.values[5]).toBe(6);
    expect(ov.diverging).toBe(false);
  });

  it("helpers", () => {
    expect(stripFrom(null, 3)).toBeNull();
    expect(mapCellToSource(0, 2, "attn_out")).toBeNull();
    expect(mapCellToSource(3, 2, "mlp_out")).toEqual([2, 2]);
    expect(mapCellToSource(3, 2, "resid")).toEqual([3, 2]);
    expect(toggleCell([[1, 1]], [2, 2])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(
      toggleCell(
        [
          [1, 1],
          [2, 2],
        ],
        [1, 1],
      ),
    ).toEqual([[2, 2]]);
    expect(decodeEffect(null)).toBeNull();
    expect(decodeAtlas({})).toBeNull();
  });
});
