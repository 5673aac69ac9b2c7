// The client does not validate answers (no zod in its bundle), so the CLI checks the few fields
// it reads before it reads them: a server (or a proxy) that answers 2xx with JSON of another
// shape gets one clear line and exit 1, not a TypeError's stack trace.
import type {
  ApiKey,
  Approval,
  CreatedApiKey,
  Health,
  LiveMessage,
  Page,
  Run,
  RunEvent,
  RunSummary,
  SignalAnswer,
  ToolDescriptor,
} from "../src/client";

/** A 2xx answer whose body is not what the API promises. */
export class UnexpectedAnswer extends Error {
  constructor(expected: string) {
    super(`unexpected answer from server: expected ${expected}`);
    this.name = "UnexpectedAnswer";
  }
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isString = (v: unknown) => typeof v === "string";
const isNumber = (v: unknown) => typeof v === "number";

function shape<T>(what: string, ok: (v: Obj) => boolean): (value: unknown) => T {
  return (value) => {
    if (!isObject(value) || !ok(value)) throw new UnexpectedAnswer(what);
    return value as T;
  };
}

function listOf<T>(what: string, item: (value: unknown) => T): (value: unknown) => T[] {
  return (value) => {
    if (!Array.isArray(value)) throw new UnexpectedAnswer(what);
    return value.map(item);
  };
}

export const asRun = shape<Run>(
  "a run",
  (r) =>
    isString(r.run_id) &&
    isString(r.status) &&
    isString(r.prompt) &&
    Array.isArray(r.execution_log) &&
    r.execution_log.every((s) => isObject(s) && isNumber(s.step_number) && isString(s.status)) &&
    Array.isArray(r.waiting_for) &&
    r.waiting_for.every(isObject) &&
    (r.compensation === null || r.compensation === undefined || isObject(r.compensation)) &&
    (r.rerun_of === null || r.rerun_of === undefined || isObject(r.rerun_of)),
);

export const asRunSummaries = listOf(
  "a list of runs",
  shape<RunSummary>("a list of runs", (r) => isString(r.run_id) && isString(r.status)),
);

/** One page of a listing as the client hands it over: `items` must be a list. */
export function asPage<T>(page: Page<unknown>, items: (value: unknown) => T[]): Page<T> {
  return { items: items(page.items), next: page.next };
}

export const asEvents = listOf(
  "a list of events",
  shape<RunEvent>("a list of events", (e) => isNumber(e.seq) && isString(e.type)),
);

export const asApprovals = listOf(
  "a list of approvals",
  shape<Approval>("a list of approvals", (a) => isString(a.run_id) && isNumber(a.step_number)),
);

export const asSignalAnswer = shape<SignalAnswer>(
  "a signal's answer",
  (a) => isString(a.name) && isString(a.run_id) && (a.delivered_to === null || isNumber(a.delivered_to)),
);

export const asTools = listOf(
  "the tool catalog",
  shape<ToolDescriptor>(
    "the tool catalog",
    (t) =>
      isString(t.name) && isObject(t.input_schema) && isObject(t.breaker) && isObject(t.effects) && isObject(t.retry),
  ),
);

export const asHealth = shape<Health>("the health checks", (h) => isString(h.status) && isObject(h.checks));

export const asCreatedKey = shape<CreatedApiKey>(
  "the created key",
  (k) => isString(k.key_id) && isString(k.api_key) && isString(k.tenant),
);

export const asKeys = listOf(
  "a list of API keys",
  shape<ApiKey>("a list of API keys", (k) => isString(k.key_id) && isString(k.name)),
);

/** A live message the progress lines can read: a snapshot's run, an event's type, a delta's text. */
export function asLiveMessage(m: LiveMessage): LiveMessage {
  const v = m as unknown as Obj;
  const ok =
    (v.type === "snapshot" && isObject(v.run)) ||
    (v.type === "event" && isObject(v.event) && isString(v.event.type)) ||
    (v.type === "delta" && isString(v.text));
  if (!ok) throw new UnexpectedAnswer(`a ${String(v.type)} message on the live stream`);
  return m;
}
