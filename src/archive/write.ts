import { faultInjector } from "../faults";
import type { RunSnapshot } from "../run/snapshot";
import { batchRuns, syncStatements } from "../store/archive-write";

/**
 * Writes runs' snapshots to D1 in as few batches as fit, each run's rows atomically; throws when
 * a batch fails (the caller keeps the snapshots and tries again). Used by the archive queue's
 * consumer and by a tenant's gate for the archives handed to it.
 */
export async function writeArchive(db: D1Database, snapshots: readonly RunSnapshot[]): Promise<void> {
  if (snapshots.length === 0) return;
  faultInjector()?.beforeArchiveWrite?.(snapshots.map((s) => s.run.run_id));
  for (const statements of batchRuns(snapshots.map((s) => syncStatements(db, s)))) await db.batch(statements);
}
