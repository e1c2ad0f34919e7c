import { describe, expect, it } from "vitest";
import { cellRect, entryCell, type Geom, hitTest, outline, reachable, showToken, stripRect } from "../heatmap";

const g: Geom = { x0: 40, y0: 30, cw: 10, ch: 8, rows: 4, cols: 5, stripH: 12, stripGap: 4 };

describe("cell ↔ pixel", () => {
  it("row 0 is at the bottom, positions left to right", () => {
    expect(cellRect(g, 0, 0)).toEqual({ x: 40, y: 30 + 3 * 8, w: 10, h: 8 });
    expect(cellRect(g, 3, 4)).toEqual({ x: 80, y: 30, w: 10, h: 8 });
  });

  it("hitTest inverts cellRect on every cell (centre and corners)", () => {
    for (let r = 0; r < g.rows; r++) {
      for (let c = 0; c < g.cols; c++) {
        const q = cellRect(g, r, c);
        for (const [dx, dy] of [
          [0.5, 0.5],
          [0.01, 0.01],
          [0.99, 0.99],
        ]) {
          expect(hitTest(g, q.x + dx * q.w, q.y + dy * q.h)).toEqual({ region: "grid", row: r, col: c });
        }
      }
    }
  });

  it("strip and outside", () => {
    const s = stripRect(g, 2);
    expect(hitTest(g, s.x + 1, s.y + 1)).toEqual({ region: "strip", col: 2 });
    expect(hitTest(g, 39, 40)).toBeNull();
    expect(hitTest(g, 41, 30 + 4 * 8)).toBeNull();
    expect(hitTest(g, 41, 30 - 2)).toBeNull(); // the gap
    expect(hitTest(g, 90, 40)).toBeNull();
  });
});

describe("cone", () => {
  it("resid cell (n, i): itself plus rows above at positions ≥ i", () => {
    const m = reachable(4, 5, [[1, 2]]);
    const at = (r: number, c: number) => m[r * 5 + c];
    expect(at(1, 2)).toBe(1);
    expect(at(1, 3)).toBe(0); // same row, later position: not reachable
    expect(at(0, 2)).toBe(0);
    expect(at(2, 1)).toBe(0);
    expect(at(2, 2)).toBe(1);
    expect(at(3, 4)).toBe(1);
    let n = 0;
    for (const v of m) n += v;
    expect(n).toBe(1 + 2 * 3);
  });

  it("a set is the union of cones", () => {
    const m = reachable(4, 5, [
      [2, 4],
      [0, 0],
    ]);
    expect(m[2 * 5 + 4]).toBe(1);
    expect(m[0]).toBe(1);
    expect(m[0 * 5 + 1]).toBe(0);
    expect(m[3 * 5 + 0]).toBe(1);
  });

  it("attn_out/mlp_out of block n enter at row n+1", () => {
    expect(entryCell([1, 3], "attn_out")).toEqual([2, 3]);
    expect(entryCell([1, 3], "resid")).toEqual([1, 3]);
    expect(Array.from(reachable(4, 5, [[1, 2]], "mlp_out"))).toEqual(Array.from(reachable(4, 5, [[2, 2]])));
  });

  it("outline encloses exactly the masked cells", () => {
    const m = reachable(3, 3, [[1, 1]]);
    // mask: (1,1), (2,1), (2,2) — perimeter of this L-shape is 8 unit edges
    const segs = outline(m, 3, 3);
    expect(segs.length).toBe(8);
    // every segment borders one inside and one outside cell
    for (const [xa, ya, xb, yb] of segs) expect(Math.abs(xa - xb) + Math.abs(ya - yb)).toBe(1);
    expect(outline(new Uint8Array(9), 3, 3)).toEqual([]);
    expect(outline(new Uint8Array(9).fill(1), 3, 3).length).toBe(12);
  });
});

describe("token labels", () => {
  it("make whitespace visible", () => {
    expect(showToken(" Mary")).toBe("␣Mary");
    expect(showToken("\n")).toBe("↵");
    expect(showToken("\t x")).toBe("⇥␣x");
    expect(showToken("<img src=x>")).toBe("<img␣src=x>");
  });
});

describe("knockout cone", () => {
  it("covers rows above n at positions after i only", () => {
    const m = reachable(3, 3, [[0, 1]], "resid", "knockout");
    expect(Array.from(m)).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 1]);
  });
});
