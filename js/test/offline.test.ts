import { describe, expect, it } from "vitest";
import { PageModel } from "../host";
import { decodeEffect } from "../mapstate";
import { firstReached, NO_KERNEL, OfflineBackend, type SavedLens } from "../offline";
import type { Traits } from "../traits";

const R = 3,
  P = 2;
const enc = (dtype: string, shape: number[], data: ArrayLike<number>) => {
  const arr =
    dtype === "float32" ? new Float32Array(data) : dtype === "int32" ? new Int32Array(data) : new Uint8Array(data);
  return { dtype, shape, buffer: arr.buffer };
};

function traits(extra: Partial<Traits> = {}): Traits {
  const maps = Array.from({ length: R * P * R * P }, (_, k) => k % 5);
  return {
    prompt: "a b",
    source_prompt: "",
    model_name: "m",
    tokens: ["a", " b"],
    n_rows: R,
    kind: "zero",
    site: "resid",
    metric: "kl",
    scale: "linear",
    overview_metric: "total_kl",
    logit_pair: [],
    selection: [],
    effect: null,
    atlas: {
      kind: "zero",
      site: "resid",
      complete: true,
      storage: "float16",
      resid_delta: enc("float32", [R, P, R, P], maps),
      kl: enc(
        "float32",
        [R, P, P],
        Array.from({ length: R * P * P }, (_, k) => k / 10),
      ),
      logprob_delta: enc(
        "float32",
        [R, P, P - 1],
        Array.from({ length: R * P }, (_, k) => -k),
      ),
      total_kl: enc("float32", [R, P], [1, 2, 3, 4, 5, 6]),
      logit_diff: enc("float32", [R, P], [6, 5, 4, 3, 2, 1]),
      clean_logit_diff: 7,
      done: enc("bool", [R, P], [1, 1, 1, 1, 1, 0]),
    },
    progress: {},
    status: "saved page",
    remote_status: "",
    error: "",
    view: "map",
    view_row: -1,
    profile: null,
    similarity: null,
    presentation: false,
    palette: "default",
    page: { note: "n", kernel: "k" },
    ...extra,
  };
}

function setup(extra: Partial<Traits> = {}, lens: SavedLens | null = null) {
  const m = new PageModel<Traits>(traits(extra));
  m.backend = new OfflineBackend(m, lens);
  const msgs: Record<string, unknown>[] = [];
  m.on("msg:custom", (msg) => msgs.push(msg as Record<string, unknown>));
  return { m, msgs };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("the page model (anywidget's model interface)", () => {
  it("set fires change events, off removes them, save_changes reports what changed", () => {
    const m = new PageModel<{ a: number; b: string }>({ a: 1, b: "x" });
    const seen: string[] = [];
    const fn = () => seen.push("a");
    m.on("change:a", fn);
    m.set("a", 2);
    m.set("a", 2); // unchanged: no event
    let saved: string[] = [];
    m.backend = { message() {}, saved: (n) => (saved = n) };
    m.save_changes();
    expect(seen).toEqual(["a"]);
    expect(saved).toEqual(["a"]);
    m.off("change:a", fn);
    m.set("a", 3);
    expect(seen).toEqual(["a"]);
    expect(m.listeners()).toBe(0);
    expect(m.get("b")).toBe("x");
  });
});

describe("the saved page's stand-in for the kernel", () => {
  it("acks, then pins a swept cell from the saved sweep", async () => {
    const { m, msgs } = setup();
    m.send({ type: "intervene", id: "c:1", cells: [[1, 0]] });
    await tick();
    expect(msgs[0]).toEqual({ type: "ack", id: "c:1" });
    const eff = decodeEffect(m.get("effect"));
    expect(eff?.id).toBe("c:1");
    expect(eff?.fromSweep).toBe(true);
    expect(Array.from(eff?.resid.data ?? [])).toEqual([2, 3, 4, 0, 1, 2]);
    expect(Array.from(eff?.kl?.data ?? [])).toEqual([0.4, 0.5].map((x) => Math.fround(x)));
    expect(Array.from(eff?.logprob?.data ?? [])).toEqual([-2]);
    expect(eff?.logitDiff).toBe(4);
    expect(Array.from(eff?.reach?.data ?? [])).toEqual([0, 0, 1, 0, 1, 1]);
    expect(m.get("selection")).toEqual([[1, 0]]);
  });

  it("answers what needs a kernel with words", async () => {
    const { m, msgs } = setup();
    m.send({
      type: "intervene",
      id: "c:1",
      cells: [
        [0, 0],
        [1, 1],
      ],
    });
    m.send({ type: "intervene", id: "c:2", cells: [[2, 1]] }); // not swept
    m.send({ type: "sweep", id: "c:3" });
    await tick();
    const errs = msgs.filter((x) => x.type === "error");
    expect(errs.map((e) => e.id)).toEqual(["c:1", "c:2", "c:3"]);
    expect(String(errs[0].message)).toContain("set of cells");
    expect(String(errs[1].message)).toContain("not saved");
    for (const e of errs) expect(String(e.message)).toContain(NO_KERNEL);
    expect(m.get("effect")).toBe(null);
  });

  it("puts back traits only a kernel can act on, and unpins on clear", async () => {
    const { m } = setup({ selection: [[0, 0]] });
    m.set("kind", "mean");
    m.set("selection", []);
    m.save_changes();
    await tick();
    expect(m.get("kind")).toBe("zero");
    expect(m.get("error")).toContain("kind");
  });

  it("replies with the recorded lens, the intervened one for the saved pin only", async () => {
    const saved = { id: "py:1", cells: [[0, 1]], resid_delta: enc("float32", [R, P], [0, 0, 0, 0, 0, 0]) };
    const lens: SavedLens = {
      clean: { "2,1": [["x", 0.5]] },
      effect_id: "py:1",
      intervened: { "2,1": [["y", 0.25]] },
    };
    const { m, msgs } = setup({ effect: saved }, lens);
    m.send({ type: "lens", id: "c:1", cell: [2, 1], key: "py:1|2,1" });
    m.send({ type: "lens", id: "c:2", cell: [2, 1], key: "clean|2,1" });
    m.send({ type: "lens", id: "c:3", cell: [0, 0], key: "clean|0,0" });
    m.send({ type: "lens", id: "c:4", cell: [2, 1], key: "c:9|2,1" });
    // the saved pin again, under a new id: same numbers, and its lens
    m.send({ type: "intervene", id: "c:5", cells: [[0, 1]] });
    m.send({ type: "lens", id: "c:6", cell: [2, 1], key: "c:5|2,1" });
    await tick();
    const lr = msgs.filter((x) => x.type === "lens");
    expect(lr[0]).toMatchObject({ clean: [["x", 0.5]], intervened: [["y", 0.25]] });
    expect(lr[1]).toMatchObject({ clean: [["x", 0.5]], intervened: null });
    expect(lr[2]).toMatchObject({ clean: [], note: expect.stringContaining("not recorded") });
    expect(lr[3]).toMatchObject({ intervened: null, note: expect.stringContaining("saved pin") });
    expect(lr[4]).toMatchObject({ intervened: [["y", 0.25]] });
    expect(m.get("effect")?.id).toBe("c:5");
  });

  it("first-reached rows as views.first_reached", () => {
    // [R=3, P=2]: position 0 first > 0 at row 1; position 1 never
    expect(Array.from(firstReached([0, 0, 0.5, 0, 1, 0], 3, 2))).toEqual([1, -1]);
  });
});

describe("a subset atlas (the saved page kept some cells' maps)", () => {
  it("finds each kept map through map_index and has none for the others", async () => {
    const { atlasHas, atlasMap, decodeAtlas } = await import("../mapstate");
    const raw = { ...(traits().atlas as Record<string, unknown>) };
    raw.resid_delta = enc("float32", [2, R, P], [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
    raw.map_index = enc("int32", [R, P], [-1, 1, -1, 0, -1, -1]);
    raw.storage = "subset";
    const a = decodeAtlas(raw);
    expect(atlasHas(a, [0, 1])).toBe(true);
    expect(atlasHas(a, [0, 0])).toBe(false);
    expect(Array.from(atlasMap(a, [0, 1]) ?? [])).toEqual([2, 2, 2, 2, 2, 2]);
    expect(Array.from(atlasMap(a, [1, 1]) ?? [])).toEqual([1, 1, 1, 1, 1, 1]);
    expect(atlasMap(a, [2, 0])).toBe(null);
  });
});
