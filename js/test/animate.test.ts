import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { frameMs, makeAnimator, revealRows } from "../animate";
import type { EffectData } from "../mapstate";
import type { Local } from "../painter";
import { makeScale, stopsOf } from "../scale";

const R = 4,
  P = 3;
function effect(reach: number[], cells: [number, number][] = [[1, 1]]): EffectData {
  return {
    id: "x:1",
    cells,
    kind: "zero",
    site: "resid",
    resid: { data: new Float32Array(R * P), shape: [R, P] },
    kl: null,
    logprob: null,
    reach: { data: Uint8Array.from(reach), shape: [R, P] },
    logitDiff: null,
    fromSweep: false,
  };
}
// the cone of (1, 1): the cell itself, rows 2-3 at positions >= 1
const CONE = [0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1];

describe("the row-by-row reveal", () => {
  it("climbs from the lowest row the effect can reach to the top", () => {
    expect(revealRows(effect(CONE), R, P)).toEqual([1, 2, 3]);
    // a knockout of (1, 1) changes nothing before row 2
    expect(revealRows(effect([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1]), R, P)).toEqual([2, 3]);
    expect(revealRows(null, R, P)).toEqual([]);
  });

  it("takes about six seconds, 150-600 ms a row", () => {
    expect(frameMs(30)).toBe(200);
    expect(frameMs(3)).toBe(600);
    expect(frameMs(100)).toBe(150);
  });

  describe("the animator", () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });
    function setup() {
      const local = { effect: effect(CONE), reveal: null } as unknown as Local;
      const seen: (number | null)[] = [];
      const states: boolean[] = [];
      const anim = makeAnimator(
        local,
        () => [R, P],
        () => seen.push(local.reveal),
        (on) => states.push(on),
      );
      return { local, seen, states, anim };
    }

    it("shows each row in turn, then every row", () => {
      const { seen, states, anim } = setup();
      anim.toggle();
      expect(anim.running()).toBe(true);
      vi.advanceTimersByTime(600 * 4);
      expect(seen).toEqual([1, 2, 3, null]);
      expect(states).toEqual([true, false]);
      expect(anim.running()).toBe(false);
    });

    it("stops on a second press, and when a new cell is pinned", () => {
      const { local, seen, anim } = setup();
      anim.toggle();
      anim.toggle();
      expect(seen).toEqual([1, null]);
      anim.toggle();
      local.effect = effect(CONE, [[0, 0]]);
      vi.advanceTimersByTime(600);
      expect(seen.slice(2)).toEqual([1, null]);
      expect(anim.running()).toBe(false);
    });
  });
});

describe("palettes", () => {
  it("high contrast spans black to pale yellow, and the legend uses the scale's own map", () => {
    const dark = stopsOf("contrast", false);
    expect(dark[0]).toEqual([0, 0, 4]);
    expect(dark[dark.length - 1]).toEqual([252, 255, 164]);
    const s = makeScale([0, 1], { kind: "linear", unit: "u", palette: "contrast" });
    expect(s.stops).toBe(dark);
    expect(s.css(0)).toBe("rgb(0,0,4)");
    expect(makeScale([0, 1], { kind: "linear", unit: "u" }).css(0)).toBe("rgb(68,1,84)");
    expect(stopsOf("contrast", true)[4]).toEqual([255, 255, 255]);
  });
});
