export type Level = "debug" | "info" | "warn" | "error";

/**
 * One JSON object per line through `console.log`, which Workers Logs indexes field by field.
 * Callers pass correlation fields (`request_id`, `run_id`, `step_number`, …), never secrets.
 */
export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ level, msg, at: new Date().toISOString(), ...fields }));
}
