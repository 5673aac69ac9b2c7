import { CalculatorError } from "./errors";

export type Token =
  | { kind: "number"; value: number; pos: number }
  | { kind: "ident"; name: string; pos: number }
  | { kind: "op"; op: "+" | "-" | "*" | "/" | "%" | "^"; pos: number }
  | { kind: "lparen"; pos: number }
  | { kind: "rparen"; pos: number }
  | { kind: "comma"; pos: number }
  | { kind: "end"; pos: number };

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";
const isLetter = (c: string | undefined): boolean =>
  c !== undefined && ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_");
const isSpace = (c: string | undefined): boolean => c === " " || c === "\t" || c === "\n" || c === "\r";

/** Longer than any name the grammar knows (`sqrt`, `floor`, …): such a word cannot be valid. */
const MAX_IDENT = 16;

/** Length of the number literal starting at `start` (digits, fraction, exponent). */
function scanNumber(src: string, start: number): number {
  let i = start;
  while (isDigit(src[i])) i++;
  if (src[i] === "." && isDigit(src[i + 1])) {
    i++;
    while (isDigit(src[i])) i++;
  }
  if (src[i] === "e" || src[i] === "E") {
    let j = i + 1;
    if (src[j] === "+" || src[j] === "-") j++;
    if (isDigit(src[j])) {
      while (isDigit(src[j])) j++;
      i = j;
    }
  }
  return i - start;
}

/**
 * Splits an expression into tokens. Hand-written (no regex) so its cost is linear in the input
 * and every rejected character is reported with its position.
 */
export function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (isDigit(c) || (c === "." && isDigit(src[i + 1]))) {
      const len = scanNumber(src, i);
      const value = Number(src.slice(i, i + len));
      if (!Number.isFinite(value)) {
        throw new CalculatorError(`Number at position ${i + 1} is too large`);
      }
      tokens.push({ kind: "number", value, pos: i });
      i += len;
      continue;
    }
    if (isLetter(c)) {
      const start = i;
      while (isLetter(src[i]) || isDigit(src[i])) i++;
      const name = src.slice(start, i);
      if (name.length > MAX_IDENT) {
        throw new CalculatorError(`Unknown name '${name.slice(0, MAX_IDENT)}…'`);
      }
      tokens.push({ kind: "ident", name: name.toLowerCase(), pos: start });
      continue;
    }
    switch (c) {
      case "+":
      case "-":
      case "/":
      case "%":
      case "^":
        tokens.push({ kind: "op", op: c, pos: i++ });
        continue;
      case "*":
        if (src[i + 1] === "*") {
          tokens.push({ kind: "op", op: "^", pos: i });
          i += 2;
        } else {
          tokens.push({ kind: "op", op: "*", pos: i++ });
        }
        continue;
      case "×":
        tokens.push({ kind: "op", op: "*", pos: i++ });
        continue;
      case "÷":
        tokens.push({ kind: "op", op: "/", pos: i++ });
        continue;
      case "(":
        tokens.push({ kind: "lparen", pos: i++ });
        continue;
      case ")":
        tokens.push({ kind: "rparen", pos: i++ });
        continue;
      case ",":
        tokens.push({ kind: "comma", pos: i++ });
        continue;
      default:
        throw new CalculatorError(`Unexpected character '${c}' at position ${i + 1}`);
    }
  }
  tokens.push({ kind: "end", pos: src.length });
  return tokens;
}
