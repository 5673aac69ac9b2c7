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

interface Pending extends OutboxItem {
  nextAt: number;
}

/**
 * Side effects (queue sends) recorded in the same transaction as the events that cause them,
 * attempted after the commit, and retried from the alarm when they fail — so a failed send delays
 * a step but never loses it.
 *
 * The object is the table's only writer, so the pending items are kept in memory as well (read
 * once per instance): finding what is due, or when, reads no storage. An item carried out is
 * forgotten at once and its row deleted with the next write the run makes anyway, not in a write
 * of its own; a run's last rows go with its storage at the purge. Should the object restart in
 * between, the item is carried out again — a duplicate queue message or archive sync, which
 * their consumers already take as at-least-once delivery.
 */
export class Outbox {
  private pending: Map<number, Pending> | null = null;
  /** Added in the transaction under way; pending once it commits. */
  private staged: Pending[] = [];
  /** Carried out; their rows go with the next write. */
  private delivered: number[] = [];
  /** Deleted in the transaction under way. */
  private deleting = 0;
  private lastId = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly tables: Tables,
  ) {}

  private load(): Map<number, Pending> {
    if (this.pending) return this.pending;
    this.pending = new Map();
    if (!this.tables.has("outbox")) return this.pending;
    for (const r of this.sql.exec<OutboxRow & { next_at: number }>(
      "SELECT id, kind, payload, attempts, next_at FROM outbox ORDER BY id",
    )) {
      this.pending.set(r.id, {
        id: r.id,
        kind: r.kind as OutboxKind,
        payload: JSON.parse(r.payload) as Json,
        attempts: r.attempts,
        nextAt: r.next_at,
      });
      this.lastId = Math.max(this.lastId, r.id);
    }
    return this.pending;
  }

  /** Call inside the transaction that appends the causing events; then `committed` or `rolledBack`. */
  add(kind: OutboxKind, payload: Json, now: number): void {
    this.load();
    // INTEGER PRIMARY KEY, not AUTOINCREMENT: ids only order the live items, and no
    // sqlite_sequence row is written with each one.
    this.tables.ensure(
      "outbox",
      `CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_error TEXT)`,
    );
    const id = ++this.lastId;
    this.sql.exec(
      "INSERT INTO outbox (id, kind, payload, next_at) VALUES (?, ?, ?, ?)",
      id,
      kind,
      JSON.stringify(payload),
      now,
    );
    this.staged.push({ id, kind, payload, attempts: 0, nextAt: now });
  }

  /** Call inside any transaction of the run: deletes the rows of items carried out since the last one. */
  tidy(): void {
    this.deleting = this.delivered.length;
    if (this.deleting === 0) return;
    this.sql.exec(`DELETE FROM outbox WHERE id IN (${this.delivered.map(() => "?").join(",")})`, ...this.delivered);
  }

  /** The transaction committed: what it added is pending, what it deleted is gone. */
  committed(): void {
    const pending = this.load();
    for (const item of this.staged) pending.set(item.id, item);
    this.staged = [];
    this.delivered.splice(0, this.deleting);
    this.deleting = 0;
  }

  rolledBack(): void {
    this.lastId -= this.staged.length;
    this.staged = [];
    this.deleting = 0;
  }

  due(now: number): OutboxItem[] {
    const items: OutboxItem[] = [];
    for (const { nextAt, ...item } of this.load().values()) if (nextAt <= now) items.push(item);
    return items;
  }

  done(id: number): void {
    if (this.load().delete(id)) this.delivered.push(id);
  }

  failed(id: number, now: number, error: string): number {
    const item = this.load().get(id);
    const attempts = (item?.attempts ?? 0) + 1;
    const nextAt = now + outboxDelay(attempts);
    this.sql.exec(
      "UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
      attempts,
      nextAt,
      error.slice(0, 500),
      id,
    );
    if (item) Object.assign(item, { attempts, nextAt });
    return nextAt;
  }

  /** Whether every pending item is of this kind (true when none is pending). */
  onlyOf(kind: OutboxKind): boolean {
    for (const item of this.load().values()) if (item.kind !== kind) return false;
    return true;
  }

  /** Epoch ms of the earliest pending item, or null when nothing is pending. */
  nextAt(): number | null {
    let at: number | null = null;
    for (const item of this.load().values()) if (at === null || item.nextAt < at) at = item.nextAt;
    return at;
  }

  /** Forget everything (the storage was deleted). */
  reset(): void {
    this.pending = null;
    this.staged = [];
    this.delivered = [];
    this.deleting = 0;
    this.lastId = 0;
  }
}
