import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LIMITS } from "../../src/contracts/limits";
import { PromptParseError } from "../../src/planner/errors";
import { planWithRules } from "../../src/planner/rules";
import { CalculatorError } from "../../src/tools/calculator/errors";
import { evaluate } from "../../src/tools/calculator/evaluate";

/** A plan, or the planner's own error; the waiting tools' inputs always within their schemas (API.md, "Waiting"). */
function planOrParseError(prompt: string): void {
  let plan: ReturnType<typeof planWithRules>;
  try {
    plan = planWithRules(prompt);
  } catch (err) {
    expect(err).toBeInstanceOf(PromptParseError);
    return;
  }
  expect(plan.steps.length).toBeGreaterThan(0);
  for (const { tool_name, tool_input: input } of plan.steps) {
    if (tool_name === "sleep") expect(input.ms).toBeLessThanOrEqual(60_000);
    if (tool_name === "wait" && "ms" in input) {
      expect(Number.isInteger(input.ms) && (input.ms as number) > 60_000).toBe(true);
      expect(input.ms).toBeLessThanOrEqual(LIMITS.maxWaitMs);
    }
    if (tool_name === "wait" && "until" in input) {
      expect(new Date(input.until as string).toISOString()).toBe(input.until);
    }
    if (tool_name === "signal") expect(input.name).toMatch(/^[A-Za-z0-9_.-]{1,64}$/);
    if (tool_name === "approval") {
      expect((input.message as string).length).toBeGreaterThan(0);
      expect((input.message as string).length).toBeLessThanOrEqual(LIMITS.maxMessageChars);
    }
  }
}

const CALC_ALPHABET = "0123456789+-*/%^().,e piqrtsabcdlgmnox_$[]{}'\"`;:\\ ".split("");

describe("property-based: pure modules never throw anything unexpected", () => {
  it("evaluate returns a finite number or throws CalculatorError, for any string", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 600 }),
          fc.array(fc.constantFrom(...CALC_ALPHABET), { maxLength: 300 }).map((cs) => cs.join("")),
        ),
        (s) => {
          try {
            expect(Number.isFinite(evaluate(s))).toBe(true);
          } catch (err) {
            expect(err).toBeInstanceOf(CalculatorError);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("the rules planner returns a plan or throws PromptParseError, for any prompt", () => {
    const words = fc.constantFrom(
      "calculate",
      "add",
      "todo",
      "then",
      "and",
      "it",
      "list",
      "todos",
      "1",
      "+",
      "(",
      "plus",
      "the",
      "result",
      "x",
      ",",
      "complete",
      "delete",
      "sleep",
      "ms",
      "wait",
      "for",
      "until",
      "2027-01-04T09:00:00Z",
      "hours",
      "signal",
      "Deploy_OK",
      "ask",
      "approval",
      "to",
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.array(words, { maxLength: 40 }).map((w) => w.join(" ")),
        ),
        planOrParseError,
      ),
      { numRuns: 3000 },
    );
  });

  it("the waiting phrases plan inputs their tools accept, or throw PromptParseError, for any pieces", () => {
    const piece = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom("a", "an", "0", "60", "61", "1.5", "1e3", "-1", "365", "366", "the", "signal", "for", "to", "x"),
      fc.nat({ max: 40_000_000_000 }).map(String),
    );
    const unit = fc.oneof(
      fc.string({ maxLength: 4 }),
      fc.constantFrom("ms", "s", "seconds", "m", "min", "h", "hours", "d", "days", "w", "weeks"),
    );
    const timestamp = fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc
        .tuple(
          fc.nat({ max: 9999 }),
          fc.nat({ max: 13 }),
          fc.nat({ max: 32 }),
          fc.nat({ max: 25 }),
          fc.nat({ max: 61 }),
        )
        .map(([y, mo, d, h, mi]) => {
          const two = (n: number) => String(n).padStart(2, "0");
          return `${String(y).padStart(4, "0")}-${two(mo)}-${two(d)}T${two(h)}:${two(mi)}:00+${two(h)}:${two(mi)}`;
        }),
      fc.string({ maxLength: 30 }),
    );
    const clause = fc.oneof(
      fc.tuple(fc.constantFrom("wait", "wait for", "sleep"), piece, unit).map((ws) => ws.join(" ")),
      fc.tuple(fc.constantFrom("wait", "sleep"), piece).map((ws) => ws.join("")),
      timestamp.map((t) => `wait until ${t}`),
      fc.tuple(fc.constantFrom("wait for the signal", "wait for signal", "wait for"), piece).map((ws) => ws.join(" ")),
      piece.map((p) => `wait for the ${p} signal`),
      fc
        .tuple(fc.constantFrom("ask for approval to", "get approval for", "ask for approval:", "get approval"), piece)
        .map((ws) => ws.join(" ")),
    );
    fc.assert(
      fc.property(
        fc.array(clause, { minLength: 1, maxLength: 6 }),
        fc.constantFrom(" then ", " and ", ", "),
        (clauses, join) => planOrParseError(clauses.join(join)),
      ),
      { numRuns: 3000 },
    );
  });
});
