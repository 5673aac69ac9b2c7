export type Level = "debug" | "info" | "warn" | "error";

const RANK: Record<Level | "off", number> = { debug: 10, info: 20, warn: 30, error: 40, off: 100 };
let threshold = RANK.info;
let forced: number | null = null;

/** Sets the lowest level written (`LOG_LEVEL`: debug, info, warn, error or off); unknown values keep `info`. */
export function setLogLevel(level: string | undefined): void {
  threshold = level && level in RANK ? RANK[level as Level | "off"] : RANK.info;
}

/** Test-only: pins the level regardless of `LOG_LEVEL` (null lifts the pin). Not reachable from config. */
export function pinLogLevel(level: Level | "off" | null): void {
  forced = level === null ? null : RANK[level];
}

/** Whether a line of `level` would be written: callers skip building the fields of one that would not. */
export function logs(level: Level): boolean {
  return RANK[level] >= (forced ?? threshold);
}

/** The correlation fields a line may carry; every one is optional. */
export interface LogFields {
  request_id?: string;
  tenant?: string;
  run_id?: string;
  step_number?: number;
  attempt?: number;
  tool?: string;
  duration_ms?: number;
  trace_id?: string | null;
  span_id?: string;
  error?: unknown;
  [extra: string]: unknown;
}

/** `{ name, message, retryable }` of anything thrown or recorded; never a stack of secrets. */
export function errorFields(err: unknown): { name: string; message: string; retryable?: boolean } {
  if (err instanceof Error) {
    const retryable = (err as { retryable?: unknown }).retryable;
    return { name: err.name, message: err.message, ...(typeof retryable === "boolean" ? { retryable } : {}) };
  }
  if (err && typeof err === "object" && "message" in err) {
    const e = err as { message: unknown; retryable?: unknown; code?: unknown };
    return {
      name: typeof e.code === "string" ? e.code : "Error",
      message: String(e.message),
      ...(typeof e.retryable === "boolean" ? { retryable: e.retryable } : {}),
    };
  }
  return { name: "Error", message: String(err) };
}

/**
 * One JSON object per line through `console.log`, which Workers Logs indexes field by field.
 * Callers pass correlation fields (`request_id`, `run_id`, `step_number`, …), never secrets:
 * no header, body or key is ever handed to the logger.
 */
export function log(level: Level, msg: string, fields: LogFields = {}): void {
  if (!logs(level)) return;
  const { error, ...rest } = fields;
  const line = {
    level,
    msg,
    at: new Date().toISOString(),
    ...rest,
    ...(error === undefined ? {} : { error: errorFields(error) }),
  };
  console.log(JSON.stringify(line));
}

/** A logger bound to a context (a request, a run, an attempt): every line carries its fields. */
export function logger(base: LogFields) {
  return {
    debug: (msg: string, fields: LogFields = {}) => log("debug", msg, { ...base, ...fields }),
    info: (msg: string, fields: LogFields = {}) => log("info", msg, { ...base, ...fields }),
    warn: (msg: string, fields: LogFields = {}) => log("warn", msg, { ...base, ...fields }),
    error: (msg: string, fields: LogFields = {}) => log("error", msg, { ...base, ...fields }),
  };
}
export type Logger = ReturnType<typeof logger>;
