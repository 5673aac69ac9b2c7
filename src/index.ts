import { createApp } from "./api/app";
import type { Env } from "./env";
import { handleStepBatch } from "./executor/consumer";

export { RunCoordinator } from "./run/coordinator";

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch, env, _ctx) {
    await handleStepBatch(batch, env);
  },
} satisfies ExportedHandler<Env>;
