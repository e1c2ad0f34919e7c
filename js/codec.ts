/**
 * Binary arrays from the kernel ⇄ typed arrays in the browser. The only place that knows the
 * wire format.
 *
 * Python's `residual_widgets._codec.encode` sends an n-d array as
 * `{dtype: "float32" | "float16" | "uint8" | "bool" | "int32", shape: number[], buffer}` where
 * `buffer` is the raw little-endian C-order bytes. ipywidgets lifts the bytes out of the JSON and
 * hands them back here as a `DataView` (live kernel, saved widget state) — we also accept an
 * `ArrayBuffer` or any typed array, which is what unit tests and exported pages may give.
 *
 * Decoding always yields a `Float32Array` for floating dtypes (float16 is widened) and a
 * `Uint8Array` for bool/uint8, so drawing code deals with two cases only.
 */

export type WireDType = "float32" | "float16" | "uint8" | "bool" | "int32";

/** What the kernel puts in a trait: dtype + shape + bytes. */
export interface Encoded {
  dtype: WireDType | string;
  shape: number[];
  buffer: DataView | ArrayBuffer | ArrayBufferView;
}

/** A decoded n-d array, C order: element (i, j, …) is at `data[i * stride0 + j * stride1 + …]`. */
export interface NDArray<T extends Float32Array | Uint8Array | Int32Array = Float32Array | Uint8Array | Int32Array> {
  data: T;
  shape: number[];
}

const BYTES: Record<string, number> = { float32: 4, float16: 2, uint8: 1, bool: 1, int32: 4 };

/** Is `x` shaped like an `Encoded` value (as opposed to null or a plain number)? */
export function isEncoded(x: unknown): x is Encoded {
  return (
    typeof x === "object" &&
    x !== null &&
    "dtype" in x &&
    "shape" in x &&
    "buffer" in x &&
    Array.isArray((x as Encoded).shape)
  );
}

/** A synced payload (effect, atlas, profile, similarity) as it arrives: JSON whose array fields
 * are `Encoded`. Its fields are checked where they are read (`isEncoded`, `str`, `num`). */
export type Payload = Record<string, unknown>;

/** `x` if it is a string, else `fallback`. */
export function str(x: unknown, fallback: string): string {
  return typeof x === "string" ? x : fallback;
}

/** `x` if it is a number, else null. */
export function num(x: unknown): number | null {
  return typeof x === "number" ? x : null;
}

/** Bytes of any buffer-like as a Uint8Array view (no copy). */
export function asBytes(b: DataView | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  throw new TypeError("codec: buffer is not an ArrayBuffer, DataView or typed array");
}

/** Number of elements for a shape (1 for a scalar shape `[]`). */
export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** IEEE 754 half → number. Handles subnormals, infinities and NaN. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Decode an `Encoded` array. Throws with a readable message on a size or dtype mismatch. */
export function decode(e: Encoded): NDArray {
  const bytes = asBytes(e.buffer);
  const n = size(e.shape);
  const width = BYTES[e.dtype];
  if (width === undefined) throw new TypeError(`codec: unsupported dtype ${e.dtype}`);
  if (bytes.byteLength !== n * width) {
    throw new RangeError(
      `codec: ${e.dtype}${JSON.stringify(e.shape)} needs ${n * width} bytes, got ${bytes.byteLength}`,
    );
  }
  // Typed arrays need aligned offsets; copy when the view is not aligned.
  const aligned = bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  const buf = aligned.buffer;
  const off = aligned.byteOffset;
  switch (e.dtype) {
    case "float32":
      return { data: new Float32Array(buf, off, n), shape: [...e.shape] };
    case "int32":
      return { data: new Int32Array(buf, off, n), shape: [...e.shape] };
    case "uint8":
    case "bool":
      return { data: new Uint8Array(buf, off, n), shape: [...e.shape] };
    case "float16": {
      const halves = new Uint16Array(buf, off, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(halves[i]);
      return { data: out, shape: [...e.shape] };
    }
  }
  throw new TypeError(`codec: unsupported dtype ${e.dtype}`);
}

/** Decode if `e` is an encoded array; anything else (`null`, absent, a number) gives `null`. */
export function decodeMaybe(e: unknown): NDArray | null {
  return isEncoded(e) ? decode(e) : null;
}

/**
 * The trailing 2-D block at leading index `lead` of an array of shape `[...lead, R, P]`
 * — e.g. the downstream map `atlas.resid_delta[r, p]` of shape `[R, P]` — as a view (no copy).
 */
export function block2d(a: NDArray, lead: number[]): Float32Array | Uint8Array | Int32Array {
  const k = a.shape.length - 2;
  if (lead.length !== k) throw new RangeError(`codec: need ${k} leading indices, got ${lead.length}`);
  let off = 0;
  for (let d = 0; d < k; d++) {
    if (lead[d] < 0 || lead[d] >= a.shape[d]) throw new RangeError(`codec: index ${lead[d]} out of range`);
    off = off * a.shape[d] + lead[d];
  }
  const m = a.shape[k] * a.shape[k + 1];
  return a.data.subarray(off * m, off * m + m);
}

/**
 * The trailing 1-D row at leading index `lead` of an array of shape `[...lead, N]`
 * (e.g. `atlas.kl[r, p]` → `[P]`), as a view.
 */
export function row1d(a: NDArray, lead: number[]): Float32Array | Uint8Array | Int32Array {
  const k = a.shape.length - 1;
  let off = 0;
  for (let d = 0; d < k; d++) off = off * a.shape[d] + lead[d];
  const m = a.shape[k];
  return a.data.subarray(off * m, off * m + m);
}

/** Element at a full index. */
export function at(a: NDArray, idx: number[]): number {
  let off = 0;
  for (let d = 0; d < a.shape.length; d++) off = off * a.shape[d] + idx[d];
  return a.data[off];
}
