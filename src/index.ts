import { createApp } from "./api/app";
import type { Env } from "./env";
import { handleStepBatch } from "./executor/consumer";
import { setLogLevel } from "./observability/log";

export { RunCoordinator } from "./run/coordinator";

const app = createApp();

export default {
  fetch(request, env, ctx) {
    setLogLevel(env.LOG_LEVEL);
    return app.fetch(request, env, ctx);
  },
  async queue(batch, env, _ctx) {
    setLogLevel(env.LOG_LEVEL);
    await handleStepBatch(batch, env);
  },
} satisfies ExportedHandler<Env>;
