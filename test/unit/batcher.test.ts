import { describe, expect, it } from "vitest";
import { batcher } from "../../src/executor/batcher";

/** A send that records each batch and answers when `release` is called. */
function recorder() {
  const batches: number[][] = [];
  const releases: (() => void)[] = [];
  const send = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push(items);
      releases.push(() => (items.includes(-1) ? reject(new Error("refused")) : resolve(items.map((i) => `#${i}`))));
    });
  return { batches, send, release: () => releases.shift()?.() };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("a batcher of a run's calls", () => {
  it("sends the calls made in one turn together, each caller getting its own answer", async () => {
    const r = recorder();
    const call = batcher(r.send);
    const answers = [call(1), call(2), call(3)];
    await tick();
    expect(r.batches).toEqual([[1, 2, 3]]);
    r.release();
    await expect(Promise.all(answers)).resolves.toEqual(["#1", "#2", "#3"]);
  });

  it("gathers the calls made while a send is under way into the next one, sent when it returns", async () => {
    const r = recorder();
    const call = batcher(r.send);
    const first = call(1);
    await tick();
    const later = [call(2), call(3)];
    await tick();
    // Nothing overtakes the send under way.
    expect(r.batches).toEqual([[1]]);
    r.release();
    await expect(first).resolves.toBe("#1");
    await tick();
    expect(r.batches).toEqual([[1], [2, 3]]);
    r.release();
    await expect(Promise.all(later)).resolves.toEqual(["#2", "#3"]);
  });

  it("fails every call a failed send carried, and goes on with the next calls", async () => {
    const r = recorder();
    const call = batcher(r.send);
    const failed = [call(-1), call(4)];
    await tick();
    r.release();
    for (const f of failed) await expect(f).rejects.toThrow("refused");
    const next = call(5);
    await tick();
    r.release();
    await expect(next).resolves.toBe("#5");
    expect(r.batches).toEqual([[-1, 4], [5]]);
  });
});
