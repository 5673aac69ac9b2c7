/**
 * Which tables a run's Durable Object holds, read once per instance from `sqlite_master` (a read,
 * never a write) and kept up to date as the log and the outbox create theirs. An object that never
 * held a run has none, and a lookup of an unknown run id writes nothing.
 */
export class Tables {
  private names: Set<string> | null = null;

  constructor(private readonly sql: SqlStorage) {}

  has(name: string): boolean {
    this.names ??= new Set(
      this.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .toArray()
        .map((r) => r.name),
    );
    return this.names.has(name);
  }

  /** Creates a table (with `ddl`) unless it exists; call only before a write. */
  ensure(name: string, ddl: string): void {
    if (this.has(name)) return;
    this.sql.exec(ddl);
    this.names?.add(name);
  }

  /** Forget everything (the storage was deleted). */
  reset(): void {
    this.names = null;
  }
}
