import { createApp } from "./api/app";
import type { Env } from "./env";
import { handleQueueBatch } from "./executor/consumer";
import { count, countedBatch, countedEnv, counting } from "./observability/cost";
import { log, setLogLevel } from "./observability/log";
import { database } from "./store/db";
import { deleteExpiredKeys } from "./store/idempotency";

export { ToolBreaker } from "./breaker/breaker";
export { RunCoordinator } from "./run/coordinator";
export { TenantGate } from "./tenancy/gate";

const app = createApp();

export default {
  fetch(request, env, ctx) {
    setLogLevel(env.LOG_LEVEL);
    if (counting(env)) count("worker_invocations");
    return app.fetch(request, countedEnv(env), ctx);
  },
  async scheduled(_controller, env) {
    setLogLevel(env.LOG_LEVEL);
    const deleted = await deleteExpiredKeys(database(env.DB));
    log("info", "expired idempotency keys deleted", { deleted });
  },
  async queue(batch, env, ctx) {
    setLogLevel(env.LOG_LEVEL);
    if (counting(env)) count("worker_invocations");
    await handleQueueBatch(counting(env) ? countedBatch(batch) : batch, countedEnv(env), ctx);
  },
} satisfies ExportedHandler<Env>;
