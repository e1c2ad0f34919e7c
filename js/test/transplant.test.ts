import { describe, expect, it } from "vitest";
import { type KeyInput, type KeyState, keyAction } from "../keyboard";
import {
  clickOnMap,
  decodeSource,
  emptyHand,
  type Grab,
  marks,
  move,
  pinInfo,
  press,
  release,
  request,
} from "../transplant";
import { must } from "./must";

const onMap = (r: number, c: number): Grab => ({ where: "map", cell: [r, c] });
const onSource = (r: number, c: number): Grab => ({ where: "source", cell: [r, c] });

describe("dragging a cell", () => {
  it("a press, a move to another map cell and a release there transplants", () => {
    let d = press(onMap(2, 1));
    expect(d).toEqual({ grab: onMap(2, 1), over: onMap(2, 1), moved: false });
    d = move(d, onMap(2, 2));
    d = move(d, onMap(1, 4));
    expect(must(d).moved).toBe(true);
    expect(release(d, onMap(1, 4))).toEqual({ do: "transplant", from: "map", source: [2, 1], target: [1, 4] });
  });

  it("a press and release on the same cell is a click, even after wandering off and back", () => {
    expect(release(press(onMap(2, 1)), onMap(2, 1))).toEqual({ do: "click", at: onMap(2, 1) });
    const back = move(move(press(onMap(2, 1)), onMap(3, 3)), onMap(2, 1));
    expect(release(back, onMap(2, 1))).toEqual({ do: "click", at: onMap(2, 1) });
  });

  it("a drag from the source grid drops on the map; a drop outside the map does nothing", () => {
    const d = move(press(onSource(5, 7)), onMap(5, 0));
    expect(release(d, onMap(5, 0))).toEqual({ do: "transplant", from: "source", source: [5, 7], target: [5, 0] });
    expect(release(move(press(onMap(1, 1)), onSource(0, 0)), onSource(0, 0))).toEqual({ do: "none" });
    expect(release(move(press(onMap(1, 1)), null), null)).toEqual({ do: "none" });
    expect(release(null, onMap(1, 1))).toEqual({ do: "none" });
    expect(press(null)).toBeNull();
    expect(move(null, onMap(0, 0))).toBeNull();
  });

  it("a click on the map drops an armed source there, else pins", () => {
    expect(clickOnMap(onSource(3, 2), [4, 4])).toEqual({
      do: "transplant",
      from: "source",
      source: [3, 2],
      target: [4, 4],
    });
    expect(clickOnMap(null, [4, 4])).toEqual({ do: "pin" });
  });
});

describe("the request sent to the kernel", () => {
  it("residual site: map cells are the cells; the source says which prompt", () => {
    expect(request("map", [2, 1], [1, 4], "resid")).toEqual({
      type: "transplant",
      source: "this",
      source_cell: [2, 1],
      target_cell: [1, 4],
    });
    expect(request("source", [0, 9], [3, 0], "resid")).toMatchObject({ source: "prompt", source_cell: [0, 9] });
  });

  it("block sites: map row r is block r − 1, and row 0 has no block", () => {
    expect(request("map", [2, 1], [1, 4], "attn_out")).toMatchObject({ source_cell: [1, 1], target_cell: [0, 4] });
    expect(request("map", [0, 1], [1, 4], "mlp_out")).toHaveProperty("error");
    expect(request("map", [2, 1], [0, 4], "mlp_out")).toHaveProperty("error");
  });
});

describe("marks and the pinned transplant", () => {
  const raw = { transplant: { source: "this", prompt: null, source_cell: [2, 1], target_cell: [1, 4] } };

  it("pinInfo reads the effect payload; anything else is not a transplant", () => {
    expect(pinInfo(raw)).toEqual({ source: "this", prompt: null, sourceCell: [2, 1], targetCell: [1, 4] });
    expect(pinInfo({ transplant: null })).toBeNull();
    expect(pinInfo(null)).toBeNull();
    expect(pinInfo({ transplant: { source: "this", source_cell: [1], target_cell: [1, 2] } })).toBeNull();
  });

  it("a transplant within the prompt marks source and target on the map, nothing on the source grid", () => {
    const h = { ...emptyHand(), pin: pinInfo(raw) };
    expect(marks(h, "map", "resid")).toEqual({ source: [[2, 1]], target: [[1, 4]], pending: [] });
    expect(marks(h, "source", "resid")).toEqual({ source: [], target: [], pending: [] });
    // block sites are drawn one row up (where the block writes)
    expect(marks(h, "map", "attn_out")).toEqual({ source: [[3, 1]], target: [[2, 4]], pending: [] });
  });

  it("a transplant from the other prompt marks its source there; armed and dragged cells are pending", () => {
    const pin = must(
      pinInfo({ transplant: { source: "prompt", prompt: "x", source_cell: [0, 3], target_cell: [1, 1] } }),
    );
    const h = { ...emptyHand(), pin, armed: onSource(4, 4), drag: move(press(onMap(1, 0)), onMap(2, 2)) };
    expect(marks(h, "source", "resid")).toEqual({ source: [[0, 3]], target: [], pending: [[4, 4]] });
    expect(marks(h, "map", "resid")).toEqual({
      source: [],
      target: [[1, 1]],
      pending: [
        [1, 0],
        [2, 2],
      ],
    });
  });

  it("decodeSource needs the prompt, its tokens and a 2-d norm", () => {
    const dec = (e: unknown) => (e ? { data: [1, 2, 3, 4, 5, 6], shape: [2, 3] } : null);
    expect(decodeSource({ prompt: "a b c", tokens: ["a", " b", " c"], norm: {} }, dec)).toMatchObject({
      prompt: "a b c",
      rows: 2,
      tokens: ["a", " b", " c"],
    });
    expect(decodeSource({ prompt: "a", tokens: ["a"], norm: null }, dec)).toBeNull();
    expect(decodeSource(null, dec)).toBeNull();
  });
});

describe("transplant and undo keys", () => {
  const key = (k: string, mods: Partial<KeyInput> = {}): KeyInput => ({
    key: k,
    shiftKey: false,
    ctrlKey: false,
    altKey: false,
    metaKey: false,
    ...mods,
  });
  const state = (s: Partial<KeyState> = {}): KeyState => ({
    rows: 4,
    cols: 6,
    cursor: [1, 2],
    anchor: null,
    preview: null,
    ...s,
  });

  it("T arms the cursor cell; Enter then transplants instead of pinning; Escape disarms first", () => {
    expect(keyAction(key("t"), state())).toEqual({ do: "arm" });
    expect(keyAction(key("T"), state())).toEqual({ do: "arm" });
    expect(keyAction(key("t"), state({ cursor: null }))).toBeNull();
    expect(keyAction(key("Enter"), state({ armed: true }))).toEqual({ do: "transplant" });
    expect(keyAction(key("Enter"), state())).toEqual({ do: "pin", add: false });
    expect(keyAction(key("Escape"), state({ armed: true }))).toEqual({ do: "disarm" });
    expect(keyAction(key("Escape"), state())).toEqual({ do: "drop" });
  });

  it("Ctrl+Z and ⌘Z undo only while there is something to undo; other modifiers are the notebook's", () => {
    expect(keyAction(key("z", { ctrlKey: true }), state({ canUndo: true }))).toEqual({ do: "undo" });
    expect(keyAction(key("z", { metaKey: true }), state({ canUndo: true, cursor: null }))).toEqual({ do: "undo" });
    expect(keyAction(key("z", { ctrlKey: true }), state())).toBeNull();
    expect(keyAction(key("z", { ctrlKey: true, shiftKey: true }), state({ canUndo: true }))).toBeNull();
    expect(keyAction(key("t", { shiftKey: true }), state())).toBeNull();
  });
});
