import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_TENANT_SHARE, Fairness } from "../../src/executor/fairness";
import wranglerToml from "../../wrangler.toml?raw";

const LONG = 60_000;

describe("a tenant's fair share of a consumer", () => {
  it("is one full batch of crane-steps by default, so a tenant's batch is never split into rounds", () => {
    const consumer = /\[\[queues\.consumers\]\]\s*\nqueue = "crane-steps"[^[]*?max_batch_size = (\d+)/.exec(
      wranglerToml,
    );
    expect(Number(consumer?.[1])).toBe(DEFAULT_TENANT_SHARE);
  });

  it("takes slots up to the share at once, then lines steps up behind it, then says no", async () => {
    const f = new Fairness();
    expect([f.acquire("a", 2, LONG), f.acquire("a", 2, LONG)]).toEqual([true, true]);
    const third = f.acquire("a", 2, LONG);
    const fourth = f.acquire("a", 2, LONG);
    expect(third).toBeInstanceOf(Promise);
    expect(f.queued("a")).toBe(2);
    // The line is as long as the share: a fifth step goes back through the queue.
    expect(f.acquire("a", 2, LONG)).toBe(false);
    // Another tenant never waits behind this one.
    expect(f.acquire("b", 2, LONG)).toBe(true);
    // A slot given back goes to the first in line; the count of steps in flight stays at the share.
    f.leave("a");
    await expect(third).resolves.toBe(true);
    expect(f.count("a")).toBe(2);
    f.leave("a");
    await expect(fourth).resolves.toBe(true);
    f.leave("a");
    f.leave("a");
    expect([f.count("a"), f.queued("a")]).toEqual([0, 0]);
  });

  it("gives up on a step that waited its longest, and forgets it", async () => {
    const f = new Fairness();
    expect(f.acquire("a", 1, LONG)).toBe(true);
    await expect(f.acquire("a", 1, 5)).resolves.toBe(false);
    expect(f.queued("a")).toBe(0);
    // A slot given back after the give-up goes back to the pool, to nobody stale.
    f.leave("a");
    expect(f.count("a")).toBe(0);
    expect(f.acquire("a", 1, 0)).toBe(true);
    // With no time to wait, a step over the share is told no at once.
    expect(f.acquire("a", 1, 0)).toBe(false);
  });

  it("never has more than the share in flight, whatever the order of arrivals and departures", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.boolean(), { maxLength: 60 }),
        async (share, ops) => {
          const f = new Fairness();
          let running = 0;
          let most = 0;
          const pending: Promise<void>[] = [];
          for (const arrive of ops) {
            if (arrive) {
              const got = f.acquire("t", share, LONG);
              const take = (ok: boolean) => {
                if (!ok) return;
                running++;
                most = Math.max(most, running);
              };
              if (typeof got === "boolean") take(got);
              else pending.push(got.then(take));
            } else if (running > 0) {
              running--;
              f.leave("t");
            }
            await Promise.resolve();
            await Promise.resolve();
          }
          while (running > 0) {
            running--;
            f.leave("t");
            await Promise.resolve();
            await Promise.resolve();
          }
          await Promise.all(pending);
          expect(most).toBeLessThanOrEqual(share);
          // Every waiting step got its slot in the end (none was stranded in the line).
          expect(f.queued("t")).toBe(0);
        },
      ),
    );
  });
});
