import type { Env } from "../env";
import type { Principal } from "./middleware/auth";

/** Hono's environment for the API: bindings plus what middleware puts on the context. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    traceId: string;
    tenant: string;
    principal: Principal;
    /** The run a request created (its access log line carries it). */
    runId: string;
  };
}
