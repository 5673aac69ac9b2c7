import type { Json } from "../contracts/common";
import { LIMITS } from "../contracts/limits";
import { nonRetryable } from "../tools/errors";

export interface Reference {
  step: number;
  path: string[];
}

// Bounded quantifiers only: matching is linear in the input, whatever a client sends.
const REF_SOURCE = String.raw`\{\{\s{0,8}steps\.(\d{1,6})\.output((?:\.[A-Za-z0-9_-]{1,64}){0,16})\s{0,8}\}\}`;
const WHOLE = new RegExp(`^${REF_SOURCE}$`);
const ANY = () => new RegExp(REF_SOURCE, "g");

function parseMatch(step: string, path: string): Reference {
  return { step: Number(step), path: path === "" ? [] : path.slice(1).split(".") };
}

/** The reference a string is, when the whole string is exactly one `{{steps.N.output…}}`. */
export function wholeReference(s: string): Reference | null {
  const m = WHOLE.exec(s);
  return m ? parseMatch(m[1] as string, m[2] ?? "") : null;
}

/** Calls `visit` for every string in a JSON value with the JSON path segments leading to it. */
export function forEachString(
  value: Json,
  visit: (s: string, path: (string | number)[]) => void,
  path: (string | number)[] = [],
): void {
  if (typeof value === "string") visit(value, path);
  else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) forEachString(v, visit, [...path, i]);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) forEachString(v, visit, [...path, k]);
  }
}

/** Every reference in a tool input. */
export function findReferences(input: Json): Reference[] {
  const refs: Reference[] = [];
  forEachString(input, (s) => {
    if (!s.includes("{{")) return;
    for (const m of s.matchAll(ANY())) refs.push(parseMatch(m[1] as string, m[2] ?? ""));
  });
  return refs;
}

function lookup(outputs: ReadonlyMap<number, Json>, ref: Reference): Json {
  if (!outputs.has(ref.step)) {
    throw nonRetryable(`Reference to step ${ref.step} has no output`, "bad_reference");
  }
  let value = outputs.get(ref.step) as Json;
  for (const key of ref.path) {
    const next =
      Array.isArray(value) && /^\d{1,6}$/.test(key)
        ? value[Number(key)]
        : value !== null && typeof value === "object" && !Array.isArray(value) && Object.hasOwn(value, key)
          ? value[key]
          : undefined;
    if (next === undefined) {
      const where = ["steps", ref.step, "output", ...ref.path].join(".");
      throw nonRetryable(`Reference {{${where}}} does not exist in step ${ref.step}'s output`, "bad_reference");
    }
    value = next;
  }
  return value;
}

const asText = (v: Json): string => (typeof v === "string" ? v : JSON.stringify(v));

/**
 * Substitutes references with earlier steps' outputs. A string that is exactly one reference
 * takes the value with its type; a reference inside longer text is substituted as text.
 *
 * The result is built against a budget of `maxBytes` (JSON characters): a small input that names
 * a large output many times fails with `input_too_large` (not retried) as soon as the budget is
 * spent, instead of allocating the product.
 */
export function resolveReferences(
  input: Json,
  outputs: ReadonlyMap<number, Json>,
  maxBytes: number = LIMITS.maxResolvedInputBytes,
): Json {
  let left = maxBytes;
  const spend = (n: number) => {
    left -= n;
    if (left < 0) {
      throw nonRetryable(`Input with its references resolved exceeds ${maxBytes} bytes`, "input_too_large");
    }
  };
  const walk = (value: Json): Json => {
    if (typeof value === "string") {
      if (!value.includes("{{")) {
        spend(value.length + 2);
        return value;
      }
      const whole = wholeReference(value);
      if (whole) {
        const resolved = lookup(outputs, whole);
        spend(typeof resolved === "string" ? resolved.length + 2 : JSON.stringify(resolved).length);
        return resolved;
      }
      spend(2);
      let last = 0;
      let out = "";
      for (const m of value.matchAll(ANY())) {
        const literal = value.slice(last, m.index);
        spend(literal.length);
        const text = asText(lookup(outputs, parseMatch(m[1] as string, m[2] ?? "")));
        spend(text.length);
        out += literal + text;
        last = (m.index ?? 0) + m[0].length;
      }
      spend(value.length - last);
      return out + value.slice(last);
    }
    if (Array.isArray(value)) {
      spend(2);
      return value.map(walk);
    }
    if (value !== null && typeof value === "object") {
      spend(2);
      const out: { [k: string]: Json } = {};
      for (const [k, v] of Object.entries(value)) {
        spend(k.length + 4);
        out[k] = walk(v);
      }
      return out;
    }
    spend(String(value).length);
    return value;
  };
  return walk(input);
}
