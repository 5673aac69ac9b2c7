/**
 * An integer variable from wrangler.toml (`[vars]` are strings), or `fallback` when it is unset,
 * empty, not an integer, or below `min`.
 */
export function intVar(value: string | undefined, fallback: number, min = 1): number {
  const n = Number(value);
  return value !== undefined && value.trim() !== "" && Number.isInteger(n) && n >= min ? n : fallback;
}
