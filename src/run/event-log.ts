import type { Json } from "../contracts/common";
import type { RunEvent } from "./events";

const SCHEMA_VERSION = 1;

interface EventRow extends Record<string, SqlStorageValue> {
  seq: number;
  type: string;
  at: string;
  step_number: number | null;
  attempt: number | null;
  data: string | null;
}

function fromRow(row: EventRow): RunEvent {
  const e: RunEvent = { seq: row.seq, type: row.type as RunEvent["type"], at: row.at };
  if (row.step_number !== null) e.step_number = row.step_number;
  if (row.attempt !== null) e.attempt = row.attempt;
  if (row.data !== null) e.data = JSON.parse(row.data) as Record<string, Json>;
  return e;
}

/**
 * The run's append-only event log in the Durable Object's SQLite storage. Appends happen inside
 * the coordinator's `transactionSync`, so a command's events land together or not at all.
 */
export class EventLog {
  private ready = false;

  constructor(private readonly sql: SqlStorage) {}

  /**
   * Whether the log's tables exist, creating them only when `create` (before a write). Reads of
   * an object that never held a run find no table and write nothing: looking up an unknown run id
   * stores nothing and costs only the read.
   */
  private tables(create: boolean): boolean {
    if (this.ready) return true;
    const found = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").toArray();
    if (found.length === 0 && !create) return false;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS events (
      seq INTEGER PRIMARY KEY,
      type TEXT NOT NULL,
      at TEXT NOT NULL,
      step_number INTEGER,
      attempt INTEGER,
      data TEXT
    )`);
    this.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    this.sql.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", String(SCHEMA_VERSION));
    this.ready = true;
    return true;
  }

  /** A small key-value record beside the log (schema version, archive progress). */
  meta(key: string): string | null {
    if (!this.tables(false)) return null;
    const rows = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray();
    return rows[0]?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.tables(true);
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  /** Events with `seq > after`, oldest first, at most `limit`. */
  after(after: number, limit = Number.MAX_SAFE_INTEGER): RunEvent[] {
    if (!this.tables(false)) return [];
    return this.sql
      .exec<EventRow>(
        "SELECT seq, type, at, step_number, attempt, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        after,
        limit,
      )
      .toArray()
      .map(fromRow);
  }

  append(events: readonly RunEvent[]): void {
    this.tables(true);
    for (const e of events) {
      this.sql.exec(
        "INSERT INTO events (seq, type, at, step_number, attempt, data) VALUES (?, ?, ?, ?, ?, ?)",
        e.seq,
        e.type,
        e.at,
        e.step_number ?? null,
        e.attempt ?? null,
        e.data === undefined ? null : JSON.stringify(e.data),
      );
    }
  }
}
