import { describe, expect, it } from "vitest";
import { healthSignal } from "../../src/breaker/state";
import { classifyError, ToolError } from "../../src/tools/errors";

const failed = (code: string, retryable: boolean, waited?: true) => ({
  ok: false as const,
  error: { code, retryable, ...(waited ? { waited } : {}) },
});

describe("what an attempt tells its tool's circuit breaker", () => {
  it("a success, bad input and the tenant's own LLM budget say the tool is healthy; transient failures do not", () => {
    expect(healthSignal({ ok: true })).toBe(true);
    expect(healthSignal(failed("invalid_input", false))).toBe(true);
    // A call the tenant's budget refused was never made: nothing to say about the provider.
    expect(healthSignal(failed("budget_busy", true, true))).toBe(true);
    expect(healthSignal(failed("budget_exhausted", false))).toBe(true);
    expect(healthSignal(failed("transient", true))).toBe(false);
    expect(healthSignal(failed("timeout", true))).toBe(false);
    expect(healthSignal(failed("http_status", true))).toBe(false);
  });
});

describe("a tool's budget wait reaches the attempt machine and the breaker", () => {
  it("classifyError keeps what a ToolError says: waited, and when to retry", () => {
    const busy = classifyError(
      new ToolError("budget_busy: held", { retryable: true, code: "budget_busy", retryAfterMs: 1000, waited: true }),
    );
    expect(busy).toEqual({
      message: "budget_busy: held",
      retryable: true,
      code: "budget_busy",
      retry_after_ms: 1000,
      waited: true,
    });
    expect(healthSignal({ ok: false, error: busy })).toBe(true);
    expect(classifyError(new ToolError("down", { retryable: true }))).toEqual({
      message: "down",
      retryable: true,
      code: "transient",
    });
  });
});
