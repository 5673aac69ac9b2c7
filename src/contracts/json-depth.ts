/**
 * Nesting limits for JSON that comes from outside: request bodies and what a model writes (plans,
 * tool-call arguments). Both checks are loops, not recursion, so a hostile value costs its size
 * and nothing more: parsers, validators and serialisers that recurse (`JSON.stringify`, the plan
 * validator, structured clone on a Durable Object RPC) would otherwise exhaust the stack on
 * 10,000 nested arrays.
 */

/** Whether JSON text nests arrays and objects deeper than `max`. One pass, skipping strings. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 91 /* [ */ || ch === 123 /* { */) {
      if (++depth > max) return true;
    } else if (ch === 93 /* ] */ || ch === 125 /* } */) depth--;
  }
  return false;
}

/** Whether an already parsed value nests arrays and objects deeper than `max` (the same count as the text's). */
export function valueNestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [v, depth] = next;
    if (v === null || typeof v !== "object") continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
    }
  }
  return false;
}
