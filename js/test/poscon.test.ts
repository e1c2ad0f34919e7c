import { describe, expect, it } from "vitest";
import type { Theme } from "../heatmap";
import { decodePositionContent } from "../lecture";
import { drawLecturePanel, type LecturePanelArgs, NO_KERNEL_VIEW } from "../lecturepanel";
import { drawPositionContent, pcHeight } from "../poscon";
import { must } from "./must";

const enc = (dtype: string, shape: number[], data: ArrayLike<number>) => {
  const arr = dtype === "int32" ? new Int32Array(data) : new Float32Array(data);
  return { dtype, shape, buffer: new DataView(arr.buffer) };
};

const th: Theme = {
  fg: "#000",
  fg2: "#666",
  bg: "#fff",
  border: "#ccc",
  accent: "#1976d2",
  hatch: "#ccc",
  font: "11px sans-serif",
  mono: "11px monospace",
  fs: 11,
  line: 2,
};

// R = 3 rows, one massive dim, K = 5 kinds, D = 4 distances; value = 100k + 10r + d
const K = 5;
const R = 3;
const D = 4;
const vals = (off: number) => {
  const out: number[] = [];
  for (let k = 0; k < K; k++)
    for (let r = 0; r < R; r++) for (let d = 1; d <= D; d++) out.push((100 * k + 10 * r + d) / 1000 + off);
  return out;
};
const raw = {
  kinds: ["raw", "no_massive", "centred", "content", "content_other"],
  massive_dims: enc("int32", [1], [12]),
  massive_abs: enc("float32", [R, 1], [2, 60, 90]),
  median_abs: enc("float32", [R], [1, 3, 3]),
  energy: enc("float32", [R, 3], [0.2, 0.3, 0.5, 0.9, 0.05, 0.05, 0.8, 0.1, 0.1]),
  energy_no_massive: enc("float32", [R, 3], [0.2, 0.3, 0.5, 0.1, 0.2, 0.7, 0.1, 0.2, 0.7]),
  distance: enc("int32", [D], [1, 2, 3, 4]),
  mean: enc("float32", [K, R, D], vals(0)),
  lo: enc("float32", [K, R, D], vals(-0.02)),
  hi: enc("float32", [K, R, D], vals(0.02)),
  conf: 0.95,
  n_prompts: 20,
  n_tokens: 12,
  first: 1,
};

/** A 2-D context that records what is drawn (only what poscon.ts calls). */
function recorder() {
  const calls: { op: string; args: unknown[] }[] = [];
  const texts: string[] = [];
  const rec =
    (op: string) =>
    (...args: unknown[]) => {
      calls.push({ op, args });
    };
  const ctx = {
    save: rec("save"),
    restore: rec("restore"),
    setTransform: rec("setTransform"),
    clearRect: rec("clearRect"),
    strokeRect: rec("strokeRect"),
    fillRect: rec("fillRect"),
    beginPath: rec("beginPath"),
    moveTo: rec("moveTo"),
    lineTo: rec("lineTo"),
    closePath: rec("closePath"),
    stroke: rec("stroke"),
    fill: rec("fill"),
    setLineDash: rec("setLineDash"),
    fillText: (t: string, ...rest: unknown[]) => {
      texts.push(t);
      calls.push({ op: "fillText", args: [t, ...rest] });
    },
    measureText: (t: string) => ({ width: 6 * t.length }),
    font: "",
    fillStyle: "",
    strokeStyle: "",
    lineWidth: 1,
    globalAlpha: 1,
    textAlign: "",
    textBaseline: "",
  };
  return { ctx: ctx as unknown as CanvasRenderingContext2D, calls, texts };
}

function fakeCanvas(ctx: CanvasRenderingContext2D | null) {
  return {
    style: {} as Record<string, string>,
    width: 0,
    height: 0,
    getContext: () => ctx,
  } as unknown as HTMLCanvasElement;
}

function args(over: Partial<LecturePanelArgs>): LecturePanelArgs {
  const el = () => ({ style: {} as Record<string, string>, textContent: "", dataset: {} }) as unknown as HTMLElement;
  return {
    view: "position_content",
    th,
    panel: el(),
    title: el(),
    sub: el(),
    canvas: fakeCanvas(null),
    root: el(),
    shownMode: "overview",
    firstReached: null,
    profile: null,
    simil: null,
    poscon: null,
    viewRow: -1,
    preview: null,
    pinned: [],
    site: "resid",
    rows: R,
    tokens: ["a", "b"],
    cw: 20,
    mapWidth: 480,
    palette: "default",
    ...over,
  };
}

describe("position vs content panel", () => {
  const pc = must(decodePositionContent(raw));

  it("shows the chosen row's numbers and says how many prompts and tokens", () => {
    const a = args({ poscon: pc, viewRow: 1 });
    const info = drawLecturePanel(a);
    expect(a.panel.style.display).toBe("");
    expect(info.row).toBe(1);
    expect([info.nPrompts, info.nTokens]).toEqual([20, 12]);
    expect(info.massiveDims).toEqual([12]);
    expect(info.massive).toEqual([60]);
    expect(info.median).toBe(3);
    expect((info.energy as number[]).map((x) => Math.round(x * 100) / 100)).toEqual([0.9, 0.05, 0.05]);
    const mean = info.mean as Record<string, number[]>;
    expect(Object.keys(mean)).toEqual(raw.kinds);
    // content = kind 3, row 1: (300 + 10 + d) / 1000
    expect(mean.content.map((x) => Math.round(x * 1000))).toEqual([311, 312, 313, 314]);
    expect((info.lo as Record<string, number[]>).content[0]).toBeCloseTo(0.291, 5);
    expect(a.sub.textContent).toContain("20 corpus prompts × 12 tokens");
    expect(a.sub.textContent).toContain("largest massive dim 20× the median at row 1"); // 60 / 3
    expect(a.title.textContent).toContain("row 1");
    // the canvas is sized for three charts
    expect(a.canvas.style.height).toBe(`${pcHeight(th.fs)}px`);
  });

  it("follows the hovered row (resid site) and the pinned one, else the last row", () => {
    expect(drawLecturePanel(args({ poscon: pc, preview: [2, 0] })).row).toBe(2);
    expect(drawLecturePanel(args({ poscon: pc, pinned: [[0, 1]] })).row).toBe(0);
    expect(drawLecturePanel(args({ poscon: pc })).row).toBe(R - 1);
    expect(drawLecturePanel(args({ poscon: pc, site: "mlp_out", pinned: [[0, 1]] })).row).toBe(R - 1);
  });

  it("says it is computing until the payload arrives; other views hide the panel", () => {
    const a = args({ poscon: null });
    const info = drawLecturePanel(a);
    expect(info.mean).toBeNull();
    expect(a.sub.textContent).toContain("computing");
    const m = args({ view: "map", poscon: pc });
    drawLecturePanel(m);
    expect(m.panel.style.display).toBe("none");
  });

  it("draws a band and a line per kind, the row marker, and the labels", () => {
    const { ctx, calls, texts } = recorder();
    drawLecturePanel(args({ poscon: pc, viewRow: 2, canvas: fakeCanvas(ctx) }));
    expect(calls.filter((c) => c.op === "fill").length).toBe(K); // one band per kind
    expect(texts).toContain("mean |value| by row, dims");
    expect(texts).toContain("12"); // the massive dim, in its line's color
    expect(texts).toContain("shared 0.8"); // row 2's energy split
    expect(texts).toContain("content 0.1");
    expect(texts.some((t) => t.includes("95% interval"))).toBe(true);
    for (const label of ["raw", "massive dims zeroed", "centred", "content", "content, other prompt"])
      expect(texts).toContain(label);
    // stacked energy bars: 3 parts per row
    expect(calls.filter((c) => c.op === "fillRect").length).toBeGreaterThanOrEqual(3 * R);
    // nothing to draw → a message, no charts
    const empty = recorder();
    drawPositionContent(empty.ctx, 400, 1, null, null, th);
    expect(empty.texts[0]).toContain("computing");
    expect(empty.calls.some((c) => c.op === "strokeRect")).toBe(false);
  });
});

describe("the saved page without a decomposition", () => {
  it("says the view needs a kernel instead of computing forever", () => {
    const a = args({ poscon: null, kernel: false });
    const info = drawLecturePanel(a);
    expect(info.mean).toBeNull();
    expect(a.sub.textContent).toBe(NO_KERNEL_VIEW);
    expect(a.sub.textContent).not.toContain("computing");
    const s = args({ view: "similarity", simil: null, kernel: false });
    drawLecturePanel(s);
    expect(s.sub.textContent).toContain("needs a kernel");
  });
});
