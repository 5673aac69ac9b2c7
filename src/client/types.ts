/**
 * The client's request and response types, all derived from the zod contracts the server
 * validates with (`src/contracts`). Only types are imported, so no zod code reaches the bundle.
 *
 * Responses are the schemas' output types (`z.infer`): what the server sends. Request bodies
 * are their input types (`z.input`): what the server accepts, defaults still optional — for
 * `CreateRunBody` that means `planner` and `options` may be left out.
 */
import type { z } from "zod";
import type { ApiKeyView, createApiKeySchema, createdApiKeySchema } from "../contracts/admin";
import type { ListRunsQuery, metricsQuerySchema } from "../contracts/history";
import type { cancelBodySchema, rerunBodySchema } from "../contracts/recovery";
import type { createRunBodySchema, eventsQuerySchema } from "../contracts/run";
import type { approveBodySchema, callbackBodySchema, rejectBodySchema, signalBodySchema } from "../contracts/waiting";

export type { ApiKeyView } from "../contracts/admin";
export type { Json, Problem } from "../contracts/common";
export type { Metrics, Percentiles, RunSummary } from "../contracts/history";
export type { Plan, PlanInput, PlanStep, StepInput } from "../contracts/plan";
export type { CompensateSpec, Compensation, CompensationStep, RerunOf } from "../contracts/recovery";
export type {
  EventType,
  ExecutionLogEntry,
  LiveMessage,
  PlannerChoice,
  Run,
  RunEvent,
  RunOptions,
  RunStatus,
  StepStatus,
} from "../contracts/run";
export type { Health, ToolDescriptor } from "../contracts/tool";
export type { Approval, CallbackAnswer, SignalAnswer, WaitingFor, WaitingInfo } from "../contracts/waiting";

/** `POST /runs` body. */
export type CreateRunBody = z.input<typeof createRunBodySchema>;
/** `POST /runs/{id}/cancel` body (v1.1: `compensate`, `reason`). */
export type CancelBody = z.input<typeof cancelBodySchema>;
/** `POST /runs/{id}/rerun` body. */
export type RerunBody = z.input<typeof rerunBodySchema>;
export type ApproveBody = z.input<typeof approveBodySchema>;
export type RejectBody = z.input<typeof rejectBodySchema>;
export type SignalBody = z.input<typeof signalBodySchema>;
export type CallbackBody = z.input<typeof callbackBodySchema>;
/** `POST /admin/api-keys` body. */
export type CreateApiKeyBody = z.input<typeof createApiKeySchema>;
/** A new key: its metadata and, this once, the secret `api_key`. */
export type CreatedApiKey = z.infer<typeof createdApiKeySchema>;
/** Alias of the contract's `ApiKeyView`: a key's metadata, never its secret. */
export type ApiKey = ApiKeyView;

/**
 * `GET /runs` filters, as the server parses them (numbers as numbers); every field optional.
 * `since` / `until` also take a `Date`.
 */
export type ListRunsParams = {
  [K in keyof ListRunsQuery]?: K extends "since" | "until" ? ListRunsQuery[K] | Date : ListRunsQuery[K];
};
/** `GET /runs/{id}/events` query. */
export type EventsParams = Partial<z.output<typeof eventsQuerySchema>>;
/** `GET /metrics` window. */
export type MetricsParams = { [K in keyof z.output<typeof metricsQuerySchema>]?: string | Date };
/** A page of a list endpoint: its items and the cursor of the next page (`Link: rel="next"`), or null. */
export interface Page<T> {
  items: T[];
  next: string | null;
}
/** `GET /approvals` paging. */
export interface PageParams {
  limit?: number;
  cursor?: string;
}
