import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, sameBody } from "../../src/contracts/body-hash";

/** The same JSON value with every object's keys shuffled (arrays keep their order). */
function shuffled(value: unknown, random: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffled(v, random));
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, shuffled(v, random)] as const);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [entries[i], entries[j]] = [entries[j] as (typeof entries)[number], entries[i] as (typeof entries)[number]];
  }
  return Object.fromEntries(entries);
}

describe("canonicalJson: what an Idempotency-Key's body hash is taken over", () => {
  it("is the same text for the same value whatever the order of its keys, and parses back to it", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (value, seed) => {
        let s = seed;
        const random = () => {
          s = (s * 1103515245 + 12345) % 2 ** 31;
          return Math.abs(s) / 2 ** 31;
        };
        expect(canonicalJson(shuffled(value, random))).toBe(canonicalJson(value));
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it("tells different values apart, array order included", () => {
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: "1" }));
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe('{"a":{"c":3,"d":2},"b":1}');
  });

  it("a stored hash names the body when it is either of the body's hashes (the legacy one for keys claimed before)", () => {
    expect(sameBody("new", { hash: "new", legacy: "old" })).toBe(true);
    expect(sameBody("old", { hash: "new", legacy: "old" })).toBe(true);
    expect(sameBody("other", { hash: "new", legacy: "old" })).toBe(false);
  });
});
