import type { StepMessage } from "./contracts/tool";

/** The Worker's bindings and variables (wrangler.toml). */
export interface Env {
  /** `development` enables the local default API key and admin token; anything else refuses them. */
  ENVIRONMENT: string;
  DB: D1Database;
  /** One RunCoordinator per run; reach it through `runStub`, which types its RPC methods. */
  RUNS: DurableObjectNamespace;
  STEPS: Queue<StepMessage>;
  /** Watchdog slack (ms) for a dispatched attempt to be picked up; default 30000. */
  WATCHDOG_DISPATCH_GRACE_MS?: string;
  /** Watchdog slack (ms) past a step's timeout for its report to arrive; default 5000. */
  WATCHDOG_REPORT_GRACE_MS?: string;
  /** Admin token for key management (a secret in production). */
  ADMIN_TOKEN?: string;
}
