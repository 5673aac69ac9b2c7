import type { Run, RunEvent } from "../contracts/run";
import type { Env } from "../env";
import type { CancelResult, CreateRunCommand } from "./coordinator";
import type { AttemptGrant, AttemptOutcome } from "./decide";
import type { RunSnapshot } from "./snapshot";

/**
 * The RPC surface of a run's coordinator. Declared by hand because the stub type the runtime
 * derives from the class recurses through the JSON types too deeply for the type checker;
 * `RunCoordinator implements RunApi` keeps the two in step.
 */
export interface RunApi {
  create(cmd: CreateRunCommand): Promise<Run>;
  get(): Promise<Run | null>;
  events(after: number, limit: number): Promise<RunEvent[] | null>;
  startAttempt(stepNumber: number, attempt: number): Promise<AttemptGrant | null>;
  finishAttempt(stepNumber: number, attempt: number, outcome: AttemptOutcome): Promise<void>;
  deadLetter(stepNumber: number, attempt: number, reason: string): Promise<void>;
  cancel(reason: string): Promise<CancelResult>;
  snapshot(): Promise<RunSnapshot | null>;
  synced(seq: number): Promise<void>;
  fetch(request: Request): Promise<Response>;
}

/**
 * The coordinator of one run. Its name includes the tenant, so a tenant that guesses another
 * tenant's run id addresses a different (empty) object and gets a 404.
 */
export function runStub(env: Env, tenant: string, runId: string): RunApi {
  return env.RUNS.get(env.RUNS.idFromName(`${tenant}:${runId}`)) as unknown as RunApi;
}
