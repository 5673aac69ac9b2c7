/**
 * A tenant's daily LLM token budget, as its gate keeps it: tokens spent per UTC day, and holds —
 * what calls in flight may still spend. A call holds its estimated cost before it asks the
 * provider and settles with what it really cost after, so that calls made at the same moment
 * cannot each see the whole of what is left (ten parallel agent steps once spent four times a
 * 100-token day). A hold whose call never settles (its isolate died mid-call) lapses.
 */

/** How long a hold lasts unless settled: longer than any call with its retries. */
export const HOLD_MS = 5 * 60_000;

export type HoldAnswer =
  | { held: true; left: number }
  /** `spent`: the day's tokens are used up; else calls in flight hold what is left, for now. */
  | { held: false; spent: boolean; left: number };

export const TOKEN_TABLES = [
  "CREATE TABLE IF NOT EXISTS tokens (day TEXT PRIMARY KEY, used INTEGER NOT NULL)",
  "CREATE TABLE IF NOT EXISTS token_holds (id TEXT PRIMARY KEY, tokens INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
];

const usedOn = (sql: SqlStorage, day: string): number =>
  sql.exec<{ used: number }>("SELECT used FROM tokens WHERE day = ?", day).toArray()[0]?.used ?? 0;

/** Holds `want` tokens for a call (`id`) when the day is not spent and the holds of other calls leave room. */
export function holdTokens(
  sql: SqlStorage,
  day: string,
  limit: number,
  want: number,
  id: string,
  now: number,
): HoldAnswer {
  sql.exec("DELETE FROM token_holds WHERE expires_at <= ?", now);
  const used = usedOn(sql, day);
  if (used >= limit) return { held: false, spent: true, left: 0 };
  const held = sql.exec<{ n: number }>("SELECT COALESCE(SUM(tokens), 0) AS n FROM token_holds").one().n;
  if (used + held >= limit) return { held: false, spent: false, left: limit - used };
  sql.exec(
    "INSERT INTO token_holds (id, tokens, expires_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
    id,
    Math.max(0, Math.ceil(want)),
    now + HOLD_MS,
  );
  return { held: true, left: Math.max(0, limit - used - held - want) };
}

/** Ends a call's hold and charges what it cost (0 for a call that failed). */
export function settleTokens(sql: SqlStorage, day: string, id: string, spend: number): void {
  sql.exec("DELETE FROM token_holds WHERE id = ?", id);
  if (spend <= 0) return;
  sql.exec(
    "INSERT INTO tokens (day, used) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET used = used + excluded.used",
    day,
    spend,
  );
  sql.exec("DELETE FROM tokens WHERE day < ?", day);
}
