export type Level = "debug" | "info" | "warn" | "error";

const RANK: Record<Level | "off", number> = { debug: 10, info: 20, warn: 30, error: 40, off: 100 };
let threshold = RANK.info;

/** Sets the lowest level written (`LOG_LEVEL`: debug, info, warn, error or off); unknown values keep `info`. */
export function setLogLevel(level: string | undefined): void {
  threshold = level && level in RANK ? RANK[level as Level | "off"] : RANK.info;
}

/**
 * One JSON object per line through `console.log`, which Workers Logs indexes field by field.
 * Callers pass correlation fields (`request_id`, `run_id`, `step_number`, …), never secrets.
 */
export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (RANK[level] < threshold) return;
  console.log(JSON.stringify({ level, msg, at: new Date().toISOString(), ...fields }));
}
