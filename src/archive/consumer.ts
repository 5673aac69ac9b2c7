import { archiveMessageSchema } from "../contracts/tool";
import type { Env } from "../env";
import { faultInjector } from "../faults";
import { log } from "../observability/log";
import type { RunSnapshot } from "../run/snapshot";
import { runStub } from "../run/stub";
import { gateStub } from "../tenancy/gate";
import { writeArchive } from "./write";

/** The archive queue (wrangler.toml). */
export const ARCHIVE_QUEUE = "crane-archive";
const RETRY_DELAY_SECONDS = 2;

/**
 * Copies runs to D1 in batches: takes each run's snapshot from its message (or, for a large run,
 * from its coordinator), writes all of them in as few D1 batches as fit (each run's rows
 * atomically), and tells each tenant's gate which runs D1 now lists. A failed write retries the
 * messages; a coordinator deletes its storage only once D1 holds its run, and syncs again if it
 * does not — so an archive is never lost.
 */
export async function handleArchiveBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const pulled = await Promise.all(
    batch.messages.map(async (message) => {
      if ((message.body as { health?: unknown } | null)?.health === true) {
        message.ack(); // a health check's proof that the queue accepts sends
        return null;
      }
      const parsed = archiveMessageSchema.safeParse(message.body);
      if (!parsed.success) {
        log("error", "dropped malformed archive message", { message_id: message.id, error: parsed.error.message });
        message.ack();
        return null;
      }
      if (faultInjector()?.loseArchiveMessage?.(parsed.data.run_id)) {
        message.ack();
        return null;
      }
      const stub = runStub(env, parsed.data.tenant, parsed.data.run_id);
      try {
        const snap = (parsed.data.snapshot as RunSnapshot | undefined) ?? (await stub.snapshot());
        if (!snap) message.ack(); // gone: purged after an earlier, confirmed archive
        return snap ? { message, snap } : null;
      } catch (err) {
        log("error", "could not read a run for the archive; will retry", {
          run_id: parsed.data.run_id,
          error: err,
        });
        message.retry({ delaySeconds: RETRY_DELAY_SECONDS });
        return null;
      }
    }),
  );
  const items = pulled.filter((i): i is { message: Message<unknown>; snap: RunSnapshot } => i !== null);
  if (items.length === 0) return;

  try {
    await writeArchive(
      env.DB,
      items.map((i) => i.snap),
    );
  } catch (err) {
    log("error", "archive write to D1 failed; will retry", { runs: items.length, error: err });
    for (const i of items) i.message.retry({ delaySeconds: RETRY_DELAY_SECONDS });
    return;
  }

  // D1 lists these runs from now on: each tenant's gate stops listing them (one call per tenant).
  const byTenant = new Map<string, { run_id: string; seq: number }[]>();
  for (const { snap } of items) {
    if (!snap.finished) continue;
    byTenant.set(snap.tenant, [...(byTenant.get(snap.tenant) ?? []), { run_id: snap.run.run_id, seq: snap.seq }]);
  }
  await Promise.all(
    [...byTenant].map(async ([tenant, runs]) => {
      try {
        await gateStub(env, tenant).archived(runs);
      } catch (err) {
        // The gate keeps listing them; the list merges and de-duplicates, so nothing is wrong, only slower.
        log("warn", "could not tell the gate about archived runs", { tenant, runs: runs.length, error: err });
      }
    }),
  );
  for (const { message } of items) message.ack();
}
