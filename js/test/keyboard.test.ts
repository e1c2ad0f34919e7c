import { describe, expect, it } from "vitest";
import { type KeyInput, type KeyState, keyAction } from "../keyboard";

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
  cursor: null,
  anchor: null,
  preview: null,
  ...s,
});

describe("keyAction: which key does what", () => {
  it("arrows move the cursor: up is a higher row, right a later position", () => {
    const s = state({ cursor: [1, 2] });
    expect(keyAction(key("ArrowUp"), s)).toEqual({ do: "move", to: [2, 2] });
    expect(keyAction(key("ArrowDown"), s)).toEqual({ do: "move", to: [0, 2] });
    expect(keyAction(key("ArrowLeft"), s)).toEqual({ do: "move", to: [1, 1] });
    expect(keyAction(key("ArrowRight"), s)).toEqual({ do: "move", to: [1, 3] });
  });

  it("the cursor stays on the grid", () => {
    expect(keyAction(key("ArrowDown"), state({ cursor: [0, 0] }))).toEqual({ do: "move", to: [0, 0] });
    expect(keyAction(key("ArrowLeft"), state({ cursor: [0, 0] }))).toEqual({ do: "move", to: [0, 0] });
    expect(keyAction(key("ArrowUp"), state({ cursor: [3, 5] }))).toEqual({ do: "move", to: [3, 5] });
    expect(keyAction(key("ArrowRight"), state({ cursor: [3, 5] }))).toEqual({ do: "move", to: [3, 5] });
  });

  it("without a cursor, arrows start from the first pinned cell, else from (0, 0)", () => {
    expect(keyAction(key("ArrowUp"), state({ anchor: [2, 4] }))).toEqual({ do: "move", to: [3, 4] });
    expect(keyAction(key("ArrowRight"), state())).toEqual({ do: "move", to: [0, 1] });
  });

  it("Enter pins the cursor cell; nothing to pin without a cursor", () => {
    expect(keyAction(key("Enter"), state({ cursor: [1, 1] }))).toEqual({ do: "pin", add: false });
    expect(keyAction(key("Enter"), state())).toBeNull();
  });

  it("Space adds the cursor cell to the set (toggles it); nothing without a cursor", () => {
    expect(keyAction(key(" "), state({ cursor: [1, 1] }))).toEqual({ do: "pin", add: true });
    expect(keyAction(key(" "), state())).toBeNull();
  });

  it("Escape drops the cursor or the preview, and is the notebook's when there is neither", () => {
    expect(keyAction(key("Escape"), state({ cursor: [1, 1] }))).toEqual({ do: "drop" });
    expect(keyAction(key("Escape"), state({ preview: [0, 2] }))).toEqual({ do: "drop" });
    expect(keyAction(key("Escape"), state({ anchor: [0, 2] }))).toBeNull();
  });

  it("keys with a modifier are the notebook's: Shift+Enter runs the cell, Ctrl+Enter, Shift+arrows…", () => {
    const s = state({ cursor: [1, 1], preview: [1, 1] });
    expect(keyAction(key("Enter", { shiftKey: true }), s)).toBeNull();
    expect(keyAction(key("Enter", { ctrlKey: true }), s)).toBeNull();
    expect(keyAction(key("Enter", { metaKey: true }), s)).toBeNull();
    expect(keyAction(key("Enter", { altKey: true }), s)).toBeNull();
    expect(keyAction(key("ArrowDown", { shiftKey: true }), s)).toBeNull();
    expect(keyAction(key("ArrowUp", { ctrlKey: true, shiftKey: true }), s)).toBeNull();
    expect(keyAction(key(" ", { shiftKey: true }), s)).toBeNull();
    expect(keyAction(key("Escape", { shiftKey: true }), s)).toBeNull();
  });

  it("other keys, and any key on an empty grid, are the notebook's", () => {
    for (const k of ["a", "b", "m", "y", "d", "Tab", "+", "Shift", "Control"]) {
      expect(keyAction(key(k), state({ cursor: [1, 1] }))).toBeNull();
    }
    expect(keyAction(key("ArrowUp"), state({ rows: 0 }))).toBeNull();
    expect(keyAction(key("ArrowUp"), state({ cols: 0 }))).toBeNull();
  });
});
