/**
 * What an `Idempotency-Key` is checked against: a hash of the request's body as JSON with every
 * object's keys sorted, so that a retry is the same body however its client ordered the keys of
 * `tool_input` or a signal's `data`. `legacy` is the hash as it was taken before 2026-12-04 (keys
 * in the order sent): a key claimed then is still replayed by the same request.
 */
export interface BodyHash {
  hash: string;
  legacy: string;
}

/** JSON text of a JSON value with every object's keys sorted (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** Whether a stored hash names the same body. */
export const sameBody = (stored: string, body: BodyHash): boolean => stored === body.hash || stored === body.legacy;

/** A signal's `Idempotency-Key` and its body's hashes, as the API hands them to the run. */
export interface SignalIdempotency {
  key: string;
  body: BodyHash;
}
