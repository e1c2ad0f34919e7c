import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Cell } from "../heatmap";
import { LensCache, lensKey } from "../lens";

describe("logit-lens requests", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("keys a cell by the effect shown (clean when none)", () => {
    expect(lensKey(null, [2, 3])).toBe("clean|2,3");
    expect(lensKey("ab:7", [0, 1])).toBe("ab:7|0,1");
  });

  it("asks once the pointer rests; a newer cell replaces a waiting request", () => {
    const asked: [Cell, string][] = [];
    const lens = new LensCache((cell, key) => asked.push([cell, key]), 150);
    lens.want("clean|0,0", [0, 0]);
    vi.advanceTimersByTime(100);
    lens.want("clean|1,1", [1, 1]);
    vi.advanceTimersByTime(149);
    expect(asked).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(asked).toEqual([[[1, 1], "clean|1,1"]]);
  });

  it("cancel drops a waiting request", () => {
    const asked: unknown[] = [];
    const lens = new LensCache((cell) => asked.push(cell), 150);
    lens.want("clean|0,0", [0, 0]);
    lens.cancel();
    vi.advanceTimersByTime(1000);
    expect(asked).toEqual([]);
  });

  it("a stored reply is served from the cache and never asked again", () => {
    const asked: unknown[] = [];
    const lens = new LensCache((cell) => asked.push(cell), 150);
    const key = lens.store({ type: "lens", key: "x:1|2,3", clean: [[" the", 0.5]], intervened: [[" a", 0.25]] });
    expect(key).toBe("x:1|2,3");
    expect(lens.get(key)).toEqual({ clean: [[" the", 0.5]], intervened: [[" a", 0.25]] });
    lens.want(key, [2, 3]);
    vi.advanceTimersByTime(1000);
    expect(asked).toEqual([]);
    lens.store({ key: "clean|0,0", clean: [] });
    expect(lens.get("clean|0,0")).toEqual({ clean: [], intervened: null });
  });
});
