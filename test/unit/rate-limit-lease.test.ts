import { describe, expect, it, vi } from "vitest";
import { take } from "../../src/api/middleware/rate-limit";

describe("a key's request lease, shared by concurrent requests", () => {
  it("asks once for a burst, and keeps each ask alive past the request that made it", async () => {
    const answers: ((a: { granted: number; remaining: number }) => void)[] = [];
    const ask = () => new Promise<{ granted: number; remaining: number }>((r) => answers.push(r));
    const kept: Promise<unknown>[] = [];
    const keepAlive = (p: Promise<unknown>) => kept.push(p);
    const burst = Array.from({ length: 5 }, () => take("k-burst", Date.now() - (Date.now() % 60_000), ask, keepAlive));
    // One ask, handed to the asking request's waitUntil: should that request be cancelled, the
    // four waiting on its ask still get their lease.
    expect(answers).toHaveLength(1);
    expect(kept).toHaveLength(1);
    answers[0]?.({ granted: 3, remaining: 0 });
    await kept[0];
    // The slice of three is spent: the next ask (one, for the two left) is kept alive too, and the
    // window is spent for every isolate.
    await vi.waitFor(() => expect(answers).toHaveLength(2));
    expect(kept).toHaveLength(2);
    answers[1]?.({ granted: 0, remaining: 0 });
    const taken = await Promise.all(burst);
    expect(taken.map((t) => t.admitted).sort()).toEqual([false, false, true, true, true]);
  });

  it("keeps a failed ask alive without an unhandled rejection, and the requests that waited get the error", async () => {
    const kept: Promise<unknown>[] = [];
    const burst = Array.from({ length: 2 }, () =>
      take(
        "k-fail",
        Date.now(),
        () => Promise.reject(new Error("gate unavailable")),
        (p) => kept.push(p),
      ),
    );
    await expect(kept[0]).resolves.toBeUndefined();
    for (const t of burst) await expect(t).rejects.toThrow("gate unavailable");
  });
});
