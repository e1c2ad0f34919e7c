import { describe, expect, it } from "vitest";
import type { Geom } from "../heatmap";
import { mapSubtitle } from "../mappanel";
import { currentMap, decodeAtlas, decodeEffect, type Shown } from "../mapstate";
import { mapTip, overviewTip } from "../pointer";

const enc = (dtype: string, shape: number[], data: ArrayLike<number>) => {
  const arr = dtype === "float32" ? new Float32Array(data) : new Uint8Array(data);
  return { dtype, shape, buffer: new DataView(arr.buffer) };
};
const R = 2;
const P = 3;
const g: Geom = { x0: 0, y0: 0, cw: 10, ch: 10, rows: R, cols: P, stripH: 10, stripGap: 2 };
const tokens = ["A", " b", " c"];
const effect = decodeEffect({
  id: "x:1",
  cells: [[0, 1]],
  kind: "zero",
  site: "resid",
  resid_delta: enc("float32", [R, P], [0, 0.5, 0.25, 0, 0.125, 2]),
  kl: enc("float32", [P], [0, 0.5, 1.5]),
  logprob_delta: enc("float32", [P - 1], [0, -1]),
  reachable: enc("bool", [R, P], [0, 1, 1, 0, 1, 1]),
  logit_diff: 1.5,
});
const atlas = decodeAtlas({
  kind: "mean",
  site: "resid",
  complete: false,
  resid_delta: enc("float32", [R, P, R, P], new Array(R * P * R * P).fill(0.5)),
  kl: null,
  total_kl: enc("float32", [R, P], [1, 2, 3, 4, 5, 6]),
  logit_diff: null,
  done: enc("bool", [R, P], [1, 1, 1, 0, 1, 1]),
});
const shownEffect: Shown = currentMap({ effect, atlas: null, preview: null, metric: "kl", rows: R, cols: P });

describe("tooltips", () => {
  it("a map cell says its row, position, token and value, and asks for its logit lens", () => {
    expect(mapTip({ region: "grid", row: 1, col: 2 }, g, shownEffect, tokens, "kl")).toEqual({
      head: "row 1 (after block 0), position 2",
      token: " c",
      value: "‖Δh‖/‖h‖ = 2",
      lensCell: [1, 2],
    });
    expect(mapTip({ region: "grid", row: 0, col: 1 }, g, shownEffect, tokens, "kl").head).toBe(
      "row 0 (embeddings), position 1",
    );
  });

  it("an unreachable cell says it is exactly 0", () => {
    expect(mapTip({ region: "grid", row: 0, col: 0 }, g, shownEffect, tokens, "kl").value).toBe(
      "unreachable: exactly 0",
    );
  });

  it("an output-strip cell says its metric, without a lens", () => {
    const tip = mapTip({ region: "strip", col: 2 }, g, shownEffect, tokens, "kl");
    expect(tip).toEqual({ head: "output at position 2", token: " c", value: "KL = 1.5 nats", lensCell: null });
    const empty = currentMap({ effect: null, atlas: null, preview: null, metric: "logprob", rows: R, cols: P });
    expect(mapTip({ region: "strip", col: 0 }, g, empty, tokens, "logprob").value).toBe("Δlog p = — nats");
  });

  it("an overview cell says its summary, or that it is not swept yet", () => {
    expect(overviewTip(0, 2, g, atlas, "total_kl", tokens)).toEqual({
      head: "source row 0, position 2",
      token: " c",
      value: "total KL over positions = 3 nats",
      lensCell: null,
    });
    expect(overviewTip(1, 0, g, atlas, "total_kl", tokens).value).toBe("total KL over positions = not swept yet nats");
    expect(overviewTip(1, 0, g, null, "total_kl", tokens).value).toBe("no sweep yet");
  });
});

describe("the map's subtitle", () => {
  it("says what is pinned, previewed, or that nothing is", () => {
    expect(mapSubtitle(shownEffect, effect, null)).toBe("pinned (0, 1) · zero @ resid · logit diff 1.5");
    const preview = currentMap({ effect, atlas, preview: [1, 1], metric: "kl", rows: R, cols: P });
    expect(mapSubtitle(preview, effect, atlas)).toBe(
      "preview from sweep: (1, 1) · mean @ resid · KL per position not in atlas",
    );
    const empty = currentMap({ effect: null, atlas: null, preview: null, metric: "kl", rows: R, cols: P });
    expect(mapSubtitle(empty, null, null)).toBe("hover the overview or click a cell");
  });
});
