import { describe, expect, it } from "vitest";
import { CalculatorError } from "../../src/tools/calculator/errors";
import { evaluate, MAX_DEPTH } from "../../src/tools/calculator/evaluate";

const fails = (expr: string, message?: RegExp) => {
  let caught: unknown;
  try {
    evaluate(expr);
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected "${expr.slice(0, 40)}" to fail`).toBeInstanceOf(CalculatorError);
  expect((caught as CalculatorError).retryable).toBe(false);
  if (message) expect((caught as Error).message).toMatch(message);
};

describe("calculator: arithmetic", () => {
  it.each([
    ["(41*7)+13", 300],
    ["2 + 3 * 4", 14],
    ["(2 + 3) * 4", 20],
    ["10 - 4 - 3", 3],
    ["100 / 10 / 2", 5],
    ["7 % 4", 3],
    ["2 ^ 10", 1024],
    ["2 ** 10", 1024],
    ["2 ^ 3 ^ 2", 512],
    ["-2 ^ 2", -4],
    ["(-2) ^ 2", 4],
    ["2 ^ -1", 0.5],
    ["-3", -3],
    ["+3", 3],
    ["--3", 3],
    ["3 * -2", -6],
    ["1.5e3", 1500],
    ["2E-3", 0.002],
    [".5 + .25", 0.75],
    ["0.1 + 0.2", 0.3],
    ["6 × 7", 42],
    ["8 ÷ 2", 4],
    ["0 * -1", 0],
  ])("%s = %d", (expr, value) => {
    expect(evaluate(expr)).toBe(value);
  });

  it("keeps the sign of a result that rounds to zero positive", () => {
    expect(Object.is(evaluate("0 * -1"), 0)).toBe(true);
  });
});

describe("calculator: functions and constants", () => {
  it.each([
    ["sqrt(16)", 4],
    ["abs(-5)", 5],
    ["round(2.5)", 3],
    ["round(3.14159, 2)", 3.14],
    ["floor(2.7)", 2],
    ["ceil(2.1)", 3],
    ["min(3, 1, 2)", 1],
    ["max(3, 1, 2)", 3],
    ["log(e)", 1],
    ["log(8, 2)", 3],
    ["exp(0)", 1],
    ["sin(0)", 0],
    ["cos(0)", 1],
    ["tan(0)", 0],
    ["2 * pi", Number((2 * Math.PI).toPrecision(15))],
    ["PI", Number(Math.PI.toPrecision(15))],
    ["SQRT(9) + Max(1, 2)", 5],
  ])("%s = %d", (expr, value) => {
    expect(evaluate(expr)).toBe(value);
  });

  it("checks function arity", () => {
    fails("sqrt(1, 2)", /sqrt\(\) takes 1 argument/);
    fails("max()", /max\(\) takes 1 to 100/);
  });
});

describe("calculator: errors are not retried", () => {
  it.each([
    ["1 / 0", /Division by zero/],
    ["5 % 0", /Division by zero/],
    ["0 ^ -1", /Division by zero/],
    ["sqrt(-1)", /not a number/],
    ["10 ^ 400", /too large/],
    ["9 ^ 9 ^ 9", /too large/],
    ["1e400", /too large/],
    ["", /empty/],
    ["   ", /empty/],
    ["2 +", /Unexpected end/],
    ["(2 + 3", /Expected '\)'/],
    ["2 + 3)", /Unexpected token/],
    ["2 3", /Unexpected token/],
    ["foo(2)", /Unknown name 'foo'/],
    ["x + 1", /Unknown name 'x'/],
    ["2 $ 3", /Unexpected character '\$'/],
    ["sqrt", /Expected '\(' after sqrt/],
    ["round(2.5, 0.5)", /digits/],
  ])("%s fails with %s", (expr, message) => fails(expr, message));
});

describe("calculator: hostile input", () => {
  it.each([
    "__proto__",
    "constructor",
    "process.exit()",
    "(1).constructor.constructor('return process')()",
    "toString()",
    "valueOf()",
    "hasOwnProperty(1)",
    "this",
    "globalThis",
    "eval('1')",
    "Function('return 1')()",
    "require('fs')",
    "import('x')",
    "a = 1",
    "1; 2",
    "`1`",
    "'1'",
    "[1]",
    "{}",
    "1 && 2",
    "1 == 1",
    "Math.PI",
    "\u0000",
  ])("rejects %j", (expr) => fails(expr));

  it("rejects nesting deeper than the limit", () => {
    const ok = `${"(".repeat(MAX_DEPTH - 1)}1${")".repeat(MAX_DEPTH - 1)}`;
    expect(evaluate(ok)).toBe(1);
    fails(`${"(".repeat(200)}1${")".repeat(200)}`, /nested too deeply/);
    fails(`${"-".repeat(400)}1`, /nested too deeply/);
    fails(`2${"^2".repeat(200)}`, /nested too deeply/);
  });

  it("rejects input longer than 500 characters", () => {
    fails(`1${"+1".repeat(300)}`, /longer than 500/);
  });

  it("handles the longest accepted input", () => {
    expect(evaluate(`1${"+1".repeat(249)}`)).toBe(250);
  });
});
