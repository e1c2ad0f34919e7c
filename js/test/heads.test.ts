import { describe, expect, it } from "vitest";
import {
  ALL,
  decodeHeads,
  type HeadsData,
  headAt,
  headCells,
  headCol,
  headCols,
  headGrid,
  headHeading,
  headKeyAction,
  headLabel,
  headMap,
  headRequest,
  headRings,
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

// The all-positions sweep of the same 2 × 3 heads: per head (l, h) total KL 100·l + 10·h, its
// map filled with that number, KL per position [l, h, p] = 100·l + 10·h + p; head (1, 2) not done.
const hid = (l: number, h: number) => 100 * l + 10 * h;
function rawAll(extra: Record<string, unknown> = {}) {
  const tot: number[] = [];
  const done: number[] = [];
  const maps: number[] = [];
  const kl: number[] = [];
  for (let l = 0; l < L; l++)
    for (let h = 0; h < H; h++) {
      tot.push(hid(l, h));
      done.push(l === 1 && h === 2 ? 0 : 1);
      for (let k = 0; k < R * P; k++) maps.push(hid(l, h));
      for (let p = 0; p < P; p++) kl.push(hid(l, h) + p);
    }
  return {
    kind: "mean",
    site: "head",
    all_positions: true,
    complete: false,
    storage: "float32",
    n_layers: L,
    n_heads: H,
    done: enc("bool", [L, H], done),
    total_kl: enc("float32", [L, H], tot),
    logprob_total: enc(
      "float32",
      [L, H],
      tot.map((v) => -v),
    ),
    logit_diff: null,
    clean_logit_diff: null,
    kl: enc("float32", [L, H, P], kl),
    resid_delta: enc("float32", [L, H, R, P], maps),
    progress: { done: 5, total: 6, running: true, cancelled: false },
    ...extra,
  };
}
const dataAll = (): HeadsData => must(decodeHeads(rawAll()));

describe("the all-positions sweep (each head at every position at once)", () => {
  it("decodes [L, H] arrays into a one-column grid", () => {
    const d = dataAll();
    expect([d.L, d.H, d.P, d.allPos]).toEqual([L, H, P, true]);
    expect(data().allPos).toBe(false);
    expect(headCols(d)).toBe(1);
    expect(headCols(data())).toBe(P);
    const g = headGrid(d, -1, "total_kl");
    expect(g.rows).toBe(L * H);
    expect(Array.from(g.values.slice(0, 5))).toEqual([0, 10, 20, 100, 110]);
    expect(g.values[5]).toBeNaN(); // (1, 2) not swept yet
    expect(Array.from(headGrid(d, 1, "logprob_delta").values.slice(0, 2))).toEqual([-100, -110]);
    // a [L, H] done without the flag is still refused (not a by-position sweep)
    expect(decodeHeads(rawAll({ all_positions: false }))).toBeNull();
  });

  it("a grid cell is the head at every position; clicking it asks for exactly that", () => {
    const d = dataAll();
    expect(headAt(d, -1, 4, 0)).toEqual([1, 1, ALL]);
    expect(headAt(d, -1, 4, 1)).toBeNull(); // one column only
    expect(headCol(d, [1, 1, ALL])).toBe(0);
    expect(headCol(data(), [1, 1, 3])).toBe(3);
    expect(headValue(d, [0, 2, ALL], "total_kl")).toBe(20);
    expect(headValue(d, [0, 2, 1], "total_kl")).toBeNaN(); // not a cell of this sweep
    expect(headRequest([1, 1, ALL])).toEqual({ type: "head", cell: [1, 1], positions: "all" });
    expect(headRequest([1, 1, 2])).toEqual({ type: "head", cell: [1, 1, 2] });
  });

  it("previews the head's map with every position of row layer + 1 as its source", () => {
    const d = dataAll();
    const s = must(headShown(d, [0, 2, ALL], "kl", R, P));
    expect(s.cells).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [0, 3],
    ]);
    expect(Array.from(must(s.values))).toEqual(new Array(R * P).fill(20));
    expect(Array.from(must(s.reach))).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(must(s.strip))).toEqual([20, 21, 22, 23]);
    expect(headShown(d, [1, 2, ALL], "kl", R, P)).toBeNull();
  });

  it("says what it is, and the map names the head at every position", () => {
    expect(headsStatus(dataAll(), true)).toBe("mean on every head at all positions at once · 5/6 heads");
    expect(headHeading([[1, 2, 3]])).toBe("layer 1 head 2 at position 3");
    expect(headHeading([[1, 2, ALL]])).toBe("layer 1 head 2 at every position");
    const pinned: [number, number, number][] = [0, 1, 2, 3].map((p) => [1, 2, p]);
    expect(headHeading(pinned)).toBe("layer 1 head 2 at every position");
  });
});

describe("keys on the heads grid", () => {
  const key = (k: string, mods: Partial<Record<"shiftKey" | "ctrlKey" | "altKey" | "metaKey", boolean>> = {}) => ({
    key: k,
    shiftKey: false,
    ctrlKey: false,
    altKey: false,
    metaKey: false,
    ...mods,
  });
  const none = { cursor: null, pinned: [], preview: null };

  it("the first arrow starts at the pinned head shown, else bottom left; up is the next head", () => {
    const d = data();
    expect(headKeyAction(key("ArrowRight"), d, -1, none)).toEqual({ do: "move", to: [0, 0], cell: [0, 0, 0] });
    const pinned: [number, number, number][] = [[1, 0, 2]];
    expect(headKeyAction(key("ArrowUp"), d, -1, { ...none, pinned })).toEqual({
      do: "move",
      to: [4, 2],
      cell: [1, 1, 2],
    });
    // past a layer's last head to the next layer's first (every layer shown)
    expect(headKeyAction(key("ArrowUp"), d, -1, { ...none, cursor: [0, 2, 1] })).toMatchObject({ cell: [1, 0, 1] });
    // one layer shown: clamped to its heads and to the positions
    expect(headKeyAction(key("ArrowUp"), d, 0, { ...none, cursor: [0, 2, 1] })).toMatchObject({ cell: [0, 2, 1] });
    expect(headKeyAction(key("ArrowRight"), d, 0, { ...none, cursor: [0, 1, P - 1] })).toMatchObject({
      cell: [0, 1, P - 1],
    });
    expect(headKeyAction(key("ArrowLeft"), d, 0, { ...none, cursor: [0, 1, 2] })).toMatchObject({ cell: [0, 1, 1] });
    expect(headKeyAction(key("ArrowDown"), d, 0, { ...none, cursor: [0, 1, 2] })).toMatchObject({ cell: [0, 0, 2] });
    // a cursor on a layer no longer shown starts again at the bottom left
    expect(headKeyAction(key("ArrowUp"), d, 1, { ...none, cursor: [0, 1, 2] })).toMatchObject({ cell: [1, 0, 0] });
  });

  it("in the all-positions grid the cursor moves over heads only", () => {
    const d = dataAll();
    expect(headKeyAction(key("ArrowUp"), d, -1, { ...none, cursor: [0, 2, ALL] })).toEqual({
      do: "move",
      to: [3, 0],
      cell: [1, 0, ALL],
    });
    expect(headKeyAction(key("ArrowRight"), d, -1, { ...none, cursor: [0, 2, ALL] })).toMatchObject({
      cell: [0, 2, ALL],
    });
  });

  it("Enter or Space pins the cursor head, Escape drops it, Ctrl+Z undoes; else the notebook's", () => {
    const d = data();
    const at = { ...none, cursor: [1, 1, 2] as [number, number, number] };
    expect(headKeyAction(key("Enter"), d, -1, at)).toEqual({ do: "pin", cell: [1, 1, 2] });
    expect(headKeyAction(key(" "), d, -1, at)).toEqual({ do: "pin", cell: [1, 1, 2] });
    expect(headKeyAction(key("Enter"), d, -1, none)).toBeNull();
    expect(headKeyAction(key("Enter", { shiftKey: true }), d, -1, at)).toBeNull(); // runs the cell
    expect(headKeyAction(key("Escape"), d, -1, at)).toEqual({ do: "drop" });
    expect(headKeyAction(key("Escape"), d, -1, none)).toBeNull();
    expect(headKeyAction(key("z", { ctrlKey: true }), d, -1, { ...at, canUndo: true })).toEqual({ do: "undo" });
    expect(headKeyAction(key("z", { ctrlKey: true }), d, -1, at)).toBeNull();
    expect(headKeyAction(key("ArrowUp"), null, -1, none)).toBeNull(); // no sweep yet
    expect(headKeyAction(key("t"), d, -1, at)).toBeNull();
  });
});

describe("pin rings on the heads grid (headRings)", () => {
  const every = (l: number, h: number) => Array.from({ length: P }, (_, p) => [l, h, p] as [number, number, number]);
  it("all-positions grid: a head pinned at every position is ringed solid in its column", () => {
    const d = dataAll();
    expect(headRings(d, -1, every(1, 0))).toEqual({ whole: [[3, 0]], partial: [], notes: [] });
    expect(headRings(d, -1, [[0, 2, ALL]])).toEqual({ whole: [[2, 0]], partial: [], notes: [] });
    expect(headRings(d, 1, every(1, 2)).whole).toEqual([[2, 0]]); // one layer shown: row = head
  });
  it("all-positions grid: a pin made by position is dashed and said, not ringed as the whole head", () => {
    const d = dataAll();
    const r = headRings(d, -1, [[1, 1, 2]]);
    expect(r.whole).toEqual([]);
    expect(r.partial).toEqual([[4, 0]]);
    expect(r.notes).toEqual(["1.1 pinned at position 2 only"]);
    const some = headRings(d, -1, [[0, 1, 3], [0, 1, 0], [1, 0, 1], ...every(0, 2)]);
    expect(some.whole).toEqual([[2, 0]]);
    expect(some.partial).toEqual([
      [1, 0],
      [3, 0],
    ]);
    expect(some.notes).toEqual(["0.1 pinned at positions 0, 3 only", "1.0 pinned at position 1 only"]);
    expect(headRings(d, 0, [[1, 1, 2]])).toEqual({ whole: [], partial: [], notes: [] }); // layer 1 not shown
  });
  it("by-position grid: each pinned cell ringed; a head pinned at all positions rings its row", () => {
    const d = data();
    expect(headRings(d, -1, [[1, 1, 2]])).toEqual({ whole: [[4, 2]], partial: [], notes: [] });
    expect(headRings(d, -1, [[0, 2, ALL]]).whole).toEqual([
      [2, 0],
      [2, 1],
      [2, 2],
      [2, 3],
    ]);
    expect(headRings(d, -1, [[0, 0, 9]]).whole).toEqual([]); // out of range: no ring
    expect(headRings(d, -1, []).whole).toEqual([]);
  });
});
