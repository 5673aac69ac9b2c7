/** A word of the prompt: `raw` as typed, `low` lower-cased without trailing punctuation. */
export interface Word {
  raw: string;
  low: string;
}

const TRAILING = new Set([",", ".", ";", "!", "?", ":"]);

function stripTrailing(s: string): string {
  let end = s.length;
  while (end > 0 && TRAILING.has(s[end - 1] as string)) end--;
  return s.slice(0, end);
}

/** Splits a prompt on white space. No regex: the cost is linear whatever the input. */
export function words(prompt: string): Word[] {
  const out: Word[] = [];
  let start = -1;
  for (let i = 0; i <= prompt.length; i++) {
    const c = prompt[i];
    const space = c === undefined || c === " " || c === "\t" || c === "\n" || c === "\r";
    if (space && start >= 0) {
      const raw = prompt.slice(start, i);
      out.push({ raw, low: stripTrailing(raw).toLowerCase() });
      start = -1;
    } else if (!space && start < 0) start = i;
  }
  return out;
}

/** The original text of some words, with the trailing punctuation of the last one removed. */
export function text(ws: readonly Word[]): string {
  const joined = ws.map((w) => w.raw).join(" ");
  return stripTrailing(joined).trim();
}

/** True when `ws` starts with the given lower-case words. */
export function startsWith(ws: readonly Word[], ...seq: string[]): boolean {
  return seq.length <= ws.length && seq.every((s, i) => ws[i]?.low === s);
}

/** Index of the first occurrence of the word sequence `seq` in `ws` at or after `from`, or -1. */
export function indexOf(ws: readonly Word[], seq: readonly string[], from = 0): number {
  for (let i = from; i + seq.length <= ws.length; i++) {
    if (seq.every((s, j) => ws[i + j]?.low === s)) return i;
  }
  return -1;
}

/** `"x"` or `'x'` → `x`: quotes around the whole of a text are not part of it. */
export const stripQuotes = (s: string) =>
  s.length >= 2 && (s[0] === '"' || s[0] === "'") && s[s.length - 1] === s[0] ? s.slice(1, -1) : s;
