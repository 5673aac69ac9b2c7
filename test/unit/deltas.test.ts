import { describe, expect, it } from "vitest";
import { coalesce } from "../../src/executor/deltas";

/** A coalescer that records what it sends; it sends only on flush. */
function recorded() {
  const sent: [string, boolean][] = [];
  const d = coalesce(async (text, reset) => {
    sent.push([text, reset]);
  }, 10_000);
  return { sent, d };
}

describe("coalesce: a model's streamed text, batched for watchers", () => {
  it("sends pieces together, in order, and all of them by flush", async () => {
    const { sent, d } = recorded();
    d.push("The ", true);
    d.push("answer");
    await d.flush();
    d.push(" is 42");
    await d.flush();
    expect(sent).toEqual([
      ["The answer", true],
      [" is 42", false],
    ]);
  });

  it("a new try's first piece drops what the failed try left pending and is sent marked reset", async () => {
    const { sent, d } = recorded();
    d.push("AAA", true);
    await d.flush();
    d.push("BBB");
    d.push("fi", true);
    d.push("nal");
    await d.flush();
    expect(sent).toEqual([
      ["AAA", true],
      ["final", true],
    ]);
  });

  it("sends an empty reset (a failed try's text is gone even if no text follows)", async () => {
    const { sent, d } = recorded();
    d.push("AAA", true);
    d.push("", true);
    await d.flush();
    await d.flush();
    expect(sent).toEqual([["", true]]);
  });
});
