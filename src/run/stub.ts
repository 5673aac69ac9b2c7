import type { Env } from "../env";
import { countedStub, counting } from "../observability/cost";
import type { RunApi } from "./api";

/**
 * The coordinator of one run. Its name includes the tenant, so a tenant that guesses another
 * tenant's run id addresses a different (empty) object and gets a 404.
 */
export function runStub(env: Env, tenant: string, runId: string): RunApi {
  const stub = env.RUNS.get(env.RUNS.idFromName(`${tenant}:${runId}`)) as unknown as RunApi;
  return counting(env) ? countedStub(stub) : stub;
}

/** The coordinator a callback token routes to (by its object id), or null for an id that is not one. */
export function runStubById(env: Env, objectId: string): RunApi | null {
  try {
    const stub = env.RUNS.get(env.RUNS.idFromString(objectId)) as unknown as RunApi;
    return counting(env) ? countedStub(stub) : stub;
  } catch {
    // idFromString refuses ids this namespace did not make: the same answer as an unknown token.
    return null;
  }
}
