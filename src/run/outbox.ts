import type { Json } from "../contracts/common";
import type { Tables } from "./tables";

/**
 * `enqueue`: send dispatched attempts to the steps queue. `sync`: ask the archive to copy the run
 * to D1. `gate`: tell the tenant's gate the run's new place (active, waiting, finished), listing and
 * open approvals.
 */
export type OutboxKind = "enqueue" | "sync" | "gate";

export interface OutboxItem {
  id: number;
  kind: OutboxKind;
  payload: Json;
  attempts: number;
}

interface OutboxRow extends Record<string, SqlStorageValue> {
  id: number;
  kind: string;
  payload: string;
  attempts: number;
}

/** Retry delay for a side effect that failed `attempts` times: 0.5 s doubling, capped at a minute. */
export const outboxDelay = (attempts: number): number => Math.min(60_000, 500 * 2 ** Math.max(0, attempts - 1));

/**
 * Side effects (queue sends) recorded in the same transaction as the events that cause them,
 * attempted after the commit, deleted once done, and retried from the alarm when they fail —
 * so a failed send delays a step but never loses it.
 */
export class Outbox {
  constructor(
    private readonly sql: SqlStorage,
    private readonly tables: Tables,
  ) {}

  private exists(): boolean {
    return this.tables.has("outbox");
  }

  /** Call inside the transaction that appends the causing events. */
  add(kind: OutboxKind, payload: Json, now: number): void {
    // INTEGER PRIMARY KEY, not AUTOINCREMENT: ids only order the live items, and no
    // sqlite_sequence row is written with each one.
    this.tables.ensure(
      "outbox",
      `CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_error TEXT)`,
    );
    this.sql.exec("INSERT INTO outbox (kind, payload, next_at) VALUES (?, ?, ?)", kind, JSON.stringify(payload), now);
  }

  due(now: number): OutboxItem[] {
    if (!this.exists()) return [];
    return this.sql
      .exec<OutboxRow>("SELECT id, kind, payload, attempts FROM outbox WHERE next_at <= ? ORDER BY id", now)
      .toArray()
      .map((r) => ({
        id: r.id,
        kind: r.kind as OutboxKind,
        payload: JSON.parse(r.payload) as Json,
        attempts: r.attempts,
      }));
  }

  done(id: number): void {
    this.sql.exec("DELETE FROM outbox WHERE id = ?", id);
  }

  failed(id: number, now: number, error: string): number {
    const row = this.sql
      .exec<{ attempts: number }>("UPDATE outbox SET attempts = attempts + 1 WHERE id = ? RETURNING attempts", id)
      .one();
    const nextAt = now + outboxDelay(row.attempts);
    this.sql.exec("UPDATE outbox SET next_at = ?, last_error = ? WHERE id = ?", nextAt, error.slice(0, 500), id);
    return nextAt;
  }

  /** Epoch ms of the earliest pending item, or null when nothing is pending. */
  nextAt(): number | null {
    if (!this.exists()) return null;
    const row = this.sql.exec<{ t: number | null }>("SELECT MIN(next_at) AS t FROM outbox").one();
    return row.t;
  }
}
