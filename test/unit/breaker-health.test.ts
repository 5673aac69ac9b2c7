import { describe, expect, it } from "vitest";
import { healthSignal } from "../../src/breaker/state";

const failed = (code: string, retryable: boolean) => ({ ok: false as const, error: { code, retryable } });

describe("what an attempt tells its tool's circuit breaker", () => {
  it("a success, bad input and the tenant's own LLM budget say the tool is healthy; transient failures do not", () => {
    expect(healthSignal({ ok: true })).toBe(true);
    expect(healthSignal(failed("invalid_input", false))).toBe(true);
    // A call the tenant's budget refused was never made: nothing to say about the provider.
    expect(healthSignal(failed("budget_busy", true))).toBe(true);
    expect(healthSignal(failed("budget_exhausted", false))).toBe(true);
    expect(healthSignal(failed("transient", true))).toBe(false);
    expect(healthSignal(failed("timeout", true))).toBe(false);
    expect(healthSignal(failed("http_status", true))).toBe(false);
  });
});
