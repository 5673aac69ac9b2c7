import { ToolError } from "../errors";

/**
 * Any problem with an expression: never retried, the same input fails the same way.
 * `kind` tells a malformed expression (`syntax`) from a well-formed one whose value is not
 * a finite number (`math`: division by zero, overflow); the rules planner uses it to decide
 * whether a clause is a calculation at all.
 */
export class CalculatorError extends ToolError {
  readonly kind: "syntax" | "math";
  constructor(message: string, kind: "syntax" | "math" = "syntax") {
    super(message, { retryable: false, code: kind === "math" ? "math_error" : "invalid_expression" });
    this.name = "CalculatorError";
    this.kind = kind;
  }
}
