import type { RunEvent } from "./events";

import type { Tables } from "./tables";

/** A commit's events are split over rows of at most this much JSON (a Durable Object row holds 2 MB). */
const MAX_ROW_CHARS = 512 * 1024;

/**
 * The run's append-only event log in the Durable Object's SQLite storage. A command's events are
 * appended as one row (split only when very large) inside the coordinator's `transactionSync`, so
 * they land together or not at all — and a run of 14 events is written as a row or two, not
 * fourteen (rows written are what a Durable Object's storage is billed by).
 *
 * Schema: `log` (one row per commit, since v1.1). `events` (one row per event, before v1.1) is
 * migrated on load. `meta` holds rare facts (the purge's next check) and exists only once used.
 */
export class EventLog {
  constructor(
    private readonly sql: SqlStorage,
    private readonly tables: Tables,
  ) {}

  private exists(): boolean {
    if (this.tables.has("log")) return true;
    if (!this.tables.has("events")) return false;
    this.create();
    this.migrate();
    return true;
  }

  private create(): void {
    this.tables.ensure(
      "log",
      "CREATE TABLE IF NOT EXISTS log (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, events TEXT NOT NULL)",
    );
  }

  /** A log written one row per event (before v1.1) becomes one row per chunk. */
  private migrate(): void {
    const rows = this.sql
      .exec<{
        seq: number;
        type: string;
        at: string;
        step_number: number | null;
        attempt: number | null;
        data: string | null;
      }>("SELECT seq, type, at, step_number, attempt, data FROM events ORDER BY seq")
      .toArray();
    this.insert(
      rows.map((r) => {
        const e: RunEvent = { seq: r.seq, type: r.type as RunEvent["type"], at: r.at };
        if (r.step_number !== null) e.step_number = r.step_number;
        if (r.attempt !== null) e.attempt = r.attempt;
        if (r.data !== null) e.data = JSON.parse(r.data);
        return e;
      }),
    );
    this.sql.exec("DROP TABLE events");
  }

  /** A small key-value record beside the log (schema version, archive progress). */
  meta(key: string): string | null {
    if (!this.tables.has("meta")) return null;
    const rows = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray();
    return rows[0]?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.tables.ensure("meta", "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  /** Events with `seq > after`, oldest first, at most `limit`. */
  after(after: number, limit = Number.MAX_SAFE_INTEGER): RunEvent[] {
    if (!this.exists()) return [];
    const out: RunEvent[] = [];
    const rows = this.sql.exec<{ events: string }>(
      "SELECT events FROM log WHERE last_seq > ? ORDER BY first_seq",
      after,
    );
    for (const row of rows) {
      for (const e of JSON.parse(row.events) as RunEvent[]) {
        if (e.seq <= after) continue;
        out.push(e);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  append(events: readonly RunEvent[]): void {
    if (!this.exists()) this.create();
    this.insert(events);
  }

  private insert(events: readonly RunEvent[]): void {
    // Each event is serialised once; a row is their JSON texts joined into an array.
    let parts: string[] = [];
    let first = 0;
    let last = 0;
    let size = 2;
    const flush = () => {
      if (parts.length === 0) return;
      this.sql.exec(
        "INSERT INTO log (first_seq, last_seq, events) VALUES (?, ?, ?)",
        first,
        last,
        `[${parts.join(",")}]`,
      );
      parts = [];
      size = 2;
    };
    for (const e of events) {
      const text = JSON.stringify(e);
      if (parts.length > 0 && size + text.length + 1 > MAX_ROW_CHARS) flush();
      if (parts.length === 0) first = e.seq;
      parts.push(text);
      last = e.seq;
      size += text.length + 1;
    }
    flush();
  }
}
