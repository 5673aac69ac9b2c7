import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PromptParseError } from "../../src/planner/errors";
import { planWithRules } from "../../src/planner/rules";
import { CalculatorError } from "../../src/tools/calculator/errors";
import { evaluate } from "../../src/tools/calculator/evaluate";

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
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.array(words, { maxLength: 40 }).map((w) => w.join(" ")),
        ),
        (prompt) => {
          try {
            const plan = planWithRules(prompt);
            expect(plan.steps.length).toBeGreaterThan(0);
          } catch (err) {
            expect(err).toBeInstanceOf(PromptParseError);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
