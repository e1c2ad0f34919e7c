/** `x` itself, failing the test when it is null or undefined (instead of a `!` assertion). */
export function must<T>(x: T | null | undefined): T {
  if (x === null || x === undefined) throw new Error(`expected a value, got ${String(x)}`);
  return x;
}
