/** Byte → two hex digits, built once. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** Random bytes drawn from the platform's CSPRNG a pool at a time (one call per 32 ids, not one per id). */
const pool = new Uint8Array(512);
let used = pool.length;

/**
 * Random hex for trace and span ids (W3C: 16 and 8 bytes). Not for secrets: those draw their
 * own bytes. A trace id of all zeros is invalid; the chance is 2^-128.
 */
export function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    crypto.getRandomValues(pool);
    used = 0;
  }
  let out = "";
  for (let i = used; i < used + bytes; i++) out += HEX[pool[i] as number];
  used += bytes;
  return out;
}

/** A random W3C span id (8 bytes, hex). */
export const newSpanId = (): string => randomHex(8);
