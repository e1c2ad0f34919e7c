import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Requests } from "../protocol";

describe("request ids and stale replies", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("only the latest of our requests is accepted; 100 clicks end on the last", () => {
    const r = new Requests("abc", 0);
    const ids = Array.from({ length: 100 }, () => r.next("intervene"));
    expect(new Set(ids).size).toBe(100);
    // replies arrive for a few of them, out of order
    for (const id of [ids[3], ids[50], ids[98]]) expect(r.accept("intervene", id)).toBe(false);
    expect(r.accept("intervene", ids[99])).toBe(true);
    r.settle("intervene", ids[99]);
    expect(r.accept("intervene", ids[97])).toBe(false); // late stale reply after settling
  });

  it("types are independent; other clients' replies accepted only when idle", () => {
    const r = new Requests("me", 0);
    const a = r.next("intervene");
    const l = r.next("lens");
    expect(r.accept("intervene", a)).toBe(true);
    expect(r.accept("lens", l)).toBe(true);
    expect(r.accept("intervene", "other:7")).toBe(false);
    r.settle("intervene", a);
    expect(r.accept("intervene", "other:7")).toBe(true);
    expect(r.accept("intervene", "py:1")).toBe(true);
    expect(r.mine(a)).toBe(true);
    expect(r.mine("other:7")).toBe(false);
  });

  it("reports silence when no ack arrives, not when it does", () => {
    const silent = vi.fn();
    const r = new Requests("me", 1000, silent);
    const a = r.next("intervene");
    r.ack(a);
    vi.advanceTimersByTime(1500);
    expect(silent).not.toHaveBeenCalled();
    r.next("intervene");
    vi.advanceTimersByTime(1500);
    expect(silent).toHaveBeenCalledTimes(1);
    r.dispose();
  });
});
