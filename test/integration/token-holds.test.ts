import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { HOLD_MS, holdTokens, settleTokens, TOKEN_TABLES } from "../../src/tenancy/token-holds";

// The daily LLM token budget as a tenant's gate keeps it, on the gate's own SQLite storage:
// holds of calls in flight, what they settle with, and holds whose call never came back.

const DAY = "2026-12-04";

async function onGate<T>(name: string, fn: (sql: SqlStorage) => T): Promise<T> {
  return runInDurableObject(env.GATES.get(env.GATES.idFromName(name)), (_, state) => {
    for (const table of TOKEN_TABLES) state.storage.sql.exec(table);
    return fn(state.storage.sql);
  });
}

describe("token holds: calls in flight share what is left of the day", () => {
  it("holds while the day has room, refuses (busy) while others hold the rest, and spends what settles", async () => {
    await onGate("t-holds-basic", (sql) => {
      expect(holdTokens(sql, DAY, 100, 60, "a", 0)).toEqual({ held: true, left: 40 });
      expect(holdTokens(sql, DAY, 100, 60, "b", 0)).toEqual({ held: true, left: 0 });
      // 120 held of 100: the next call waits for those in flight.
      expect(holdTokens(sql, DAY, 100, 10, "c", 0)).toEqual({ held: false, spent: false, left: 100 });
      settleTokens(sql, DAY, "a", 30);
      settleTokens(sql, DAY, "b", 0);
      expect(holdTokens(sql, DAY, 100, 10, "c", 0)).toEqual({ held: true, left: 60 });
      settleTokens(sql, DAY, "c", 80);
      // 110 spent: the day is over for every call.
      expect(holdTokens(sql, DAY, 100, 1, "d", 0)).toEqual({ held: false, spent: true, left: 0 });
      // A new day starts empty.
      expect(holdTokens(sql, "2026-12-05", 100, 1, "e", 0)).toMatchObject({ held: true });
    });
  });

  it("a hold whose call never settles lapses after HOLD_MS", async () => {
    await onGate("t-holds-lapse", (sql) => {
      expect(holdTokens(sql, DAY, 100, 100, "lost", 0)).toMatchObject({ held: true });
      expect(holdTokens(sql, DAY, 100, 1, "next", HOLD_MS - 1)).toMatchObject({ held: false, spent: false });
      expect(holdTokens(sql, DAY, 100, 1, "next", HOLD_MS)).toMatchObject({ held: true });
    });
  });
});
