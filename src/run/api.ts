import type { SignalIdempotency } from "../contracts/body-hash";
import type { Json } from "../contracts/common";
import type { Plan } from "../contracts/plan";
import type { RerunOf } from "../contracts/recovery";
import type { PlannerChoice, Run, RunEvent, RunOptions } from "../contracts/run";
import type { ApproveBody, CallbackAnswer, CallbackBody, SignalAnswer } from "../contracts/waiting";
import type { AttemptGrant, AttemptOutcome } from "../tools/types";
import type { RunSnapshot } from "./snapshot";

/** Everything a coordinator needs to create its run; the API has validated all of it. */
export interface CreateRunCommand {
  runId: string;
  tenant: string;
  prompt: string;
  planner: PlannerChoice;
  options: RunOptions;
  /** An explicit plan, already validated by the API (invalid ones never reach a coordinator). */
  plan: Plan | null;
  traceId: string | null;
  /** The request that creates the run: its log lines carry it. */
  requestId: string | null;
  /** The origin the API was reached at: callback URLs are built on it. */
  origin: string | null;
  rerunOf: RerunOf | null;
  /** A rerun's outputs taken from the original run instead of running those steps again. */
  reuse: { fromRun: string; outputs: Record<string, Json> } | null;
  /** The tenant's quotas, applied by its gate before the run's first commit. */
  limits: { maxActive: number; maxWaiting: number };
}

/** An attempt of a step, or of its task (`task`), that a consumer received. */
export interface AttemptAsk {
  step_number: number;
  attempt: number;
  task?: string;
}

/** An attempt's outcome; `ran`: it ran on the grant its message carried, never asked for (a pure tool's step). */
export interface AttemptReport extends AttemptAsk {
  outcome: AttemptOutcome;
  ran?: true;
}

/** A command that does not fit the run: the HTTP status and one sentence saying why. */
export interface Refusal {
  ok: false;
  status: 404 | 409 | 422 | 429;
  detail: string;
}
export type Result<T> = { ok: true; value: T } | Refusal;

/** What `create` answers: the run, and whether an earlier create had made it (an idempotent replay). */
export interface CreatedRun {
  run: Run;
  replayed: boolean;
}

/**
 * The RPC surface of a run's coordinator. Declared by hand because the stub type the runtime
 * derives from the class recurses through the JSON types too deeply for the type checker;
 * `RunCoordinator implements RunApi` keeps the two in step. `task` names a step's compensation or
 * an agent's turn or call (`compensate`, `turn:N`, `call:N`); absent, the step itself.
 */
export interface RunApi {
  create(cmd: CreateRunCommand): Promise<Result<CreatedRun>>;
  get(): Promise<Run | null>;
  events(after: number, limit: number): Promise<RunEvent[] | null>;
  /** Asks to run attempts (one grant, or null, per ask), in one commit. */
  startAttempts(asks: AttemptAsk[]): Promise<(AttemptGrant | null)[]>;
  /** Reports attempts' outcomes, in one commit. */
  reportAttempts(reports: AttemptReport[]): Promise<void>;
  deadLetter(stepNumber: number, attempt: number, reason: string, task?: string): Promise<void>;
  /** Text a model is writing for an attempt, passed on to live watchers (not stored). */
  delta(stepNumber: number, attempt: number, task: string | undefined, text: string, reset?: boolean): Promise<void>;
  cancel(reason: string, compensate: boolean): Promise<Result<Run>>;
  approve(stepNumber: number, body: ApproveBody): Promise<Result<Run>>;
  reject(stepNumber: number, reason: string | undefined): Promise<Result<Run>>;
  signal(
    name: string,
    data: Json,
    idempotency: SignalIdempotency | null,
  ): Promise<Result<SignalAnswer & { replayed?: true }>>;
  callback(token: string, body: CallbackBody): Promise<Result<CallbackAnswer>>;
  snapshot(): Promise<RunSnapshot | null>;
  /** Closes the live streams opened with an API key (it was revoked); answers how many. */
  dropWatchers(keyId: string): Promise<number>;
  fetch(request: Request): Promise<Response>;
}
