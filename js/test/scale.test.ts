import { describe, expect, it } from "vitest";
import { colormap, fmt, makeScale } from "../scale";

describe("color scales", () => {
  it("linear sequential maps 0 → bottom, max → top, monotone", () => {
    const s = makeScale([0, 0.5, 2], { kind: "linear", unit: "x" });
    expect(s.vmin).toBe(0);
    expect(s.vmax).toBe(2);
    expect(s.norm(0)).toBe(0);
    expect(s.norm(1)).toBeCloseTo(0.5);
    expect(s.norm(2)).toBe(1);
    expect(s.norm(5)).toBe(1);
    expect(s.color(0)).toEqual([68, 1, 84]);
    expect(s.color(2)).toEqual([253, 231, 37]);
  });

  it("log sequential: decades equally spaced; zeros and tiny values clamp to the bottom", () => {
    const s = makeScale([0, 1e-3, 1e-2, 1e-1], { kind: "log", unit: "x" });
    expect(s.vmin).toBeCloseTo(1e-3);
    expect(s.norm(1e-3)).toBe(0);
    expect(s.norm(1e-2)).toBeCloseTo(0.5);
    expect(s.norm(1e-1)).toBeCloseTo(1);
    expect(s.norm(0)).toBe(0);
    const t = s.ticks();
    expect(t.map((x) => x.label)).toEqual(["0.001", "0.01", "0.1"]);
  });

  it("log floor is 1e-4 of the max", () => {
    const s = makeScale([1e-9, 1], { kind: "log", unit: "x" });
    expect(s.vmin).toBeCloseTo(1e-4);
  });

  it("mask restricts the fitted range (unreachable cells ignored)", () => {
    const s = makeScale([100, 1, 2], { kind: "linear", unit: "x", mask: [0, 1, 1] });
    expect(s.vmax).toBe(2);
  });

  it("diverging is symmetric around the center", () => {
    const s = makeScale([-1, 3], { kind: "linear", diverging: true, center: 1, unit: "logits" });
    expect(s.norm(1)).toBe(0.5);
    expect(s.norm(3)).toBe(1);
    expect(s.norm(-1)).toBe(0);
    expect(s.vmin).toBe(-1);
    expect(s.vmax).toBe(3);
    expect(s.color(1)).toEqual([247, 247, 247]);
    const sl = makeScale([-10, 0.01, 10], { kind: "log", diverging: true, unit: "nats" });
    expect(sl.norm(0)).toBe(0.5);
    expect(sl.norm(10)).toBeCloseTo(1);
    expect(sl.norm(-10)).toBeCloseTo(0);
    expect(sl.norm(1)).toBeGreaterThan(0.5);
  });

  it("all-zero and NaN input does not break", () => {
    const s = makeScale([0, 0, NaN], { kind: "log", unit: "x" });
    expect(Number.isFinite(s.vmax)).toBe(true);
    expect(
      colormap(
        [
          [0, 0, 0],
          [255, 255, 255],
        ],
        NaN,
      ),
    ).toEqual([128, 128, 128]);
  });

  it("formats numbers shortly", () => {
    expect(fmt(0)).toBe("0");
    expect(fmt(0.123456)).toBe("0.123");
    expect(fmt(2.5e-5)).toBe("2.5e-5");
    expect(fmt(123456)).toBe("1.2e5");
  });
});
