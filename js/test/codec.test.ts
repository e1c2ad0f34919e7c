import { describe, expect, it } from "vitest";
import { at, block2d, decode, halfToFloat, row1d, size } from "../codec";

function f32(shape: number[], values: number[]) {
  return { dtype: "float32", shape, buffer: new DataView(new Float32Array(values).buffer) };
}

describe("codec", () => {
  it("decodes float32 from a DataView, keeping shape and C order", () => {
    const a = decode(f32([2, 3], [0, 1, 2, 3, 4, 5]));
    expect(a.shape).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(at(a, [1, 2])).toBe(5);
    expect(at(a, [0, 1])).toBe(1);
  });

  it("accepts ArrayBuffer, typed arrays and unaligned views", () => {
    const buf = new ArrayBuffer(4 * 3 + 1);
    const bytes = new Uint8Array(buf);
    bytes.set(new Uint8Array(new Float32Array([1.5, -2, 3]).buffer), 1);
    const unaligned = new DataView(buf, 1, 12);
    expect(Array.from(decode({ dtype: "float32", shape: [3], buffer: unaligned }).data)).toEqual([1.5, -2, 3]);
    expect(
      Array.from(decode({ dtype: "float32", shape: [3], buffer: new Float32Array([1, 2, 3]).buffer }).data),
    ).toEqual([1, 2, 3]);
    expect(Array.from(decode({ dtype: "uint8", shape: [2], buffer: new Uint8Array([0, 1]) }).data)).toEqual([0, 1]);
  });

  it("widens float16 exactly (normals, subnormals, zero, inf, nan)", () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x0000)).toBe(0);
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
    const halves = new Uint16Array([0x3c00, 0x3800, 0x3555]); // 1, 0.5, ≈1/3
    const a = decode({ dtype: "float16", shape: [3], buffer: new DataView(halves.buffer) });
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(a.data[0]).toBe(1);
    expect(a.data[1]).toBe(0.5);
    expect(a.data[2]).toBeCloseTo(1 / 3, 3);
  });

  it("rejects a buffer of the wrong size and unknown dtypes, in words", () => {
    expect(() => decode(f32([2, 2], [1, 2, 3]))).toThrow(/needs 16 bytes, got 12/);
    expect(() => decode({ dtype: "complex64", shape: [1], buffer: new ArrayBuffer(8) })).toThrow(/unsupported dtype/);
  });

  it("slices blocks of a 4-d atlas without copying", () => {
    const S = 2,
      P = 3,
      R = 2;
    const n = size([S, P, R, P]);
    const vals = Array.from({ length: n }, (_, k) => k);
    const a = decode(f32([S, P, R, P], vals));
    const b = block2d(a, [1, 2]);
    expect(b.length).toBe(R * P);
    expect(b[0]).toBe((1 * P + 2) * R * P);
    expect(b.buffer).toBe(a.data.buffer);
    const kl = decode(
      f32(
        [S, P, P],
        Array.from({ length: S * P * P }, (_, k) => k),
      ),
    );
    expect(Array.from(row1d(kl, [1, 0]))).toEqual([9, 10, 11]);
    expect(() => block2d(a, [2, 0])).toThrow(/out of range/);
  });
});
