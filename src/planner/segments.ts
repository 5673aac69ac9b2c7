import { startsWith, type Word } from "./words";

/** A clause of the prompt and how it joins the one before: in parallel (`and`) or after it (`then`). */
export interface Segment {
  words: Word[];
  join: "start" | "and" | "then";
  /** The joining words (`and`), put back if this clause is merged into the previous one. */
  joiner: Word[];
}

/** Words that can begin a command; `and` before one of them starts a new clause. */
const COMMAND_STARTS = new Set([
  "calculate",
  "compute",
  "evaluate",
  "solve",
  "what",
  "what's",
  "whats",
  "how",
  "add",
  "create",
  "list",
  "show",
  "display",
  "get",
  "complete",
  "finish",
  "mark",
  "delete",
  "remove",
  "multiply",
  "divide",
  "subtract",
  "uppercase",
  "lowercase",
  "reverse",
  "trim",
  "count",
  "sleep",
  "wait",
  "ask",
]);

const endsWithComma = (w: Word | undefined) => w !== undefined && (w.raw.endsWith(",") || w.raw.endsWith(";"));

/**
 * Splits a prompt into clauses. `then` (also `and then`, `after that`) is a hard boundary;
 * `and` or a comma is a boundary only before a word that can begin a command, so
 * "add todo buy milk and eggs" stays one clause.
 */
export function segment(ws: readonly Word[]): Segment[] {
  const out: Segment[] = [];
  let current: Word[] = [];
  let join: Segment["join"] = "start";
  let joiner: Word[] = [];
  const close = (nextJoin: Segment["join"], nextJoiner: Word[]) => {
    if (current.length > 0) {
      out.push({ words: current, join, joiner });
      join = nextJoin;
      joiner = nextJoiner;
      current = [];
    } else if (nextJoin === "then" && out.length > 0) {
      // "…, and then then …": a `then` with no clause before it still orders what follows.
      join = "then";
      joiner = [];
    }
  };
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i] as Word;
    const rest = ws.slice(i);
    if (startsWith(rest, "and", "then")) {
      close("then", []);
      i++;
    } else if (startsWith(rest, "and", "after", "that")) {
      close("then", []);
      i += 2;
    } else if (w.low === "then" || startsWith(rest, "after", "that")) {
      close("then", []);
      if (w.low !== "then") i++;
    } else if (w.low === "and" && current.length > 0 && COMMAND_STARTS.has(ws[i + 1]?.low ?? "")) {
      close("and", [w]);
    } else if (current.length > 0 && endsWithComma(current[current.length - 1]) && COMMAND_STARTS.has(w.low)) {
      close("and", []);
      current.push(w);
    } else {
      current.push(w);
    }
  }
  close("and", []);
  return out;
}
