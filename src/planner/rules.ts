import type { PlanInput, StepInput } from "../contracts/plan";
import { CLAUSE_PARSERS, type ClauseContext, type Draft } from "./clauses";
import { PromptParseError } from "./errors";
import { type Segment, segment } from "./segments";
import { MAX_SLEEP_MS } from "./waiting";
import { startsWith, text, type Word, words } from "./words";

const FILLERS = [["please"], ["first"], ["also"], ["next"], ["finally"], ["and"], ["can", "you"], ["could", "you"]];

function stripFillers(ws: Word[]): Word[] {
  let rest = ws;
  for (let changed = true; changed; ) {
    changed = false;
    for (const f of FILLERS) {
      if (rest.length > f.length && startsWith(rest, ...f)) {
        rest = rest.slice(f.length);
        changed = true;
      }
    }
  }
  return rest;
}

function parseClause(ws: Word[], prev: number | null, ctx: ClauseContext): Draft[] | null {
  const clause = stripFillers(ws);
  for (const parse of CLAUSE_PARSERS) {
    const drafts = parse(clause, prev, ctx);
    if (drafts) return drafts;
  }
  return null;
}

/**
 * A clause after `and` that means nothing on its own belongs to the clause before it:
 * "add todo buy milk and get bread" is one todo, not a todo and a broken `get`.
 */
function mergeUnparseable(segments: Segment[], ctx: ClauseContext): Segment[] {
  const merged: Segment[] = [];
  for (const seg of segments) {
    const last = merged[merged.length - 1];
    if (last && seg.join === "and" && parseClause(seg.words, 1, ctx) === null) {
      const joined = [...last.words, ...seg.joiner, ...seg.words];
      if (parseClause(joined, 1, ctx) !== null) {
        last.words = joined;
        continue;
      }
    }
    merged.push({ ...seg, words: [...seg.words] });
  }
  return merged;
}

/**
 * The deterministic planner: turns the POC's prompt language into a plan.
 * Clauses joined by `and` are independent; a clause after `then` depends on every step of
 * the clause group before it; "it", "that" and "the result" refer to the previous step.
 *
 * @example planWithRules("calculate 2 * 3 then add 4 to it")
 * // steps: calculator "2 * 3"; calculator "({{steps.1.output}}) + (4)", depends on 1
 * A pause ("wait 2 seconds", "sleep 500 ms") is the `sleep` tool up to `sleepMaxMs` (at most
 * 60 s) and a durable `wait` beyond it.
 * @throws PromptParseError when a clause is not understood.
 */
export function planWithRules(prompt: string, opts: { sleepMaxMs?: number } = {}): PlanInput {
  const ctx: ClauseContext = { sleepMaxMs: Math.min(MAX_SLEEP_MS, opts.sleepMaxMs ?? MAX_SLEEP_MS) };
  const segments = mergeUnparseable(segment(words(prompt)), ctx);
  if (segments.length === 0) throw new PromptParseError("nothing to do");
  const steps: StepInput[] = [];
  let group: number[] = [];
  let before: number[] = [];
  for (const seg of segments) {
    if (seg.join === "then") {
      before = group;
      group = [];
    }
    const prev = steps.length > 0 ? (steps[steps.length - 1] as StepInput).step_number : null;
    const drafts = parseClause(seg.words, prev, ctx);
    if (!drafts) throw new PromptParseError(`did not understand "${text(seg.words).slice(0, 100)}"`);
    for (const d of drafts) {
      const step_number = steps.length + 1;
      steps.push({ step_number, ...d, depends_on: [...before] });
      group.push(step_number);
    }
  }
  if (steps.length > 50) throw new PromptParseError("more than 50 steps");
  return { steps, final_goal: prompt.trim() };
}
