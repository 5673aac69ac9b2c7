import { LIMITS } from "../contracts/limits";
import { signalNameSchema } from "../contracts/waiting";
import type { ClauseParser, Draft } from "./clauses";
import { startsWith, stripQuotes, text, type Word } from "./words";

/**
 * Clauses that pause a run (docs/api.md, "Waiting"): short demo sleeps (`sleep`), durable timers
 * (`wait`), approvals (`approval`) and signals (`signal`). Every pattern here is anchored and has
 * bounded quantifiers only, so matching stays linear whatever the prompt.
 */

/** The `sleep` tool's ceiling; `wait` for longer is a durable `wait` step. */
export const MAX_SLEEP_MS = 60_000;

const UNIT_MS = new Map<string, number>();
for (const [names, ms] of [
  [["ms", "msec", "msecs", "millisecond", "milliseconds"], 1],
  [["s", "sec", "secs", "second", "seconds"], 1000],
  [["m", "min", "mins", "minute", "minutes"], 60_000],
  [["h", "hr", "hrs", "hour", "hours"], 3_600_000],
  [["d", "day", "days"], 86_400_000],
  [["w", "wk", "wks", "week", "weeks"], 604_800_000],
] as const) {
  for (const name of names) UNIT_MS.set(name, ms);
}

const ONE = new Set(["a", "an", "one"]);
const AMOUNT = /^(\d{1,12})(?:\.(\d{1,6}))?$/;
/** "90s", "500ms", "2h": an amount and its unit written as one word. */
const COMPACT = /^(\d{1,12}(?:\.\d{1,6})?)([a-z]{1,12})$/;

/** `amount` (a decimal) times `factor` ms, when that is a whole number of ms no longer than a year. */
function times(amount: string, factor: number): number | null {
  const m = AMOUNT.exec(amount);
  if (!m) return null;
  const whole = Number(m[1]) * factor;
  // Beyond any wait; it also keeps the arithmetic below exact (every value < 2^53).
  if (whole > LIMITS.maxWaitMs) return null;
  const digits = m[2] ?? "";
  const fraction = Number(digits === "" ? "0" : digits) * factor;
  const scale = 10 ** digits.length;
  if (fraction % scale !== 0) return null;
  const ms = whole + fraction / scale;
  return ms <= LIMITS.maxWaitMs ? ms : null;
}

/** "2 hours", "an hour", "1.5 days", "90s": a duration in whole milliseconds (0 … 365 days), or null. */
export function duration(ws: readonly Word[]): number | null {
  let amount: string;
  let unit: string;
  if (ws.length === 2) {
    amount = (ws[0] as Word).low;
    unit = (ws[1] as Word).low;
    if (ONE.has(amount)) amount = "1";
  } else if (ws.length === 1) {
    const m = COMPACT.exec((ws[0] as Word).low);
    if (!m) return null;
    amount = m[1] as string;
    unit = m[2] as string;
  } else {
    return null;
  }
  const factor = UNIT_MS.get(unit);
  return factor === undefined ? null : times(amount, factor);
}

/**
 * "sleep 200 ms", "wait 2 seconds": the `sleep` tool, up to `ctx.sleepMaxMs` (at most 60 s; the
 * planner gives half the run's step timeout, since a `sleep` holds a consumer and is bound by that
 * timeout). "wait 2 hours", "wait for 3 days", "sleep 40 seconds" past it: a durable `wait` step,
 * up to 365 days. `sleep` over 60 s is not understood, and a `wait` of nothing (0) means nothing.
 */
export const pause: ClauseParser = (ws, _prev, ctx) => {
  const verb = ws[0]?.low;
  if (verb !== "sleep" && verb !== "wait") return null;
  const ms = duration(ws.slice(ws[1]?.low === "for" ? 2 : 1));
  if (ms === null || (verb === "sleep" && ms > MAX_SLEEP_MS) || (verb === "wait" && ms === 0)) return null;
  if (ms <= ctx.sleepMaxMs) return [{ tool_name: "sleep", tool_input: { ms }, reasoning: `Wait ${ms} ms` }];
  return [{ tool_name: "wait", tool_input: { ms }, reasoning: `Wait ${text(ws.slice(1))}` }];
};

const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:t(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * An ISO-8601 date or date-time (`2027-01-04`, `2027-01-04T09:00Z`, `2027-01-04T10:00:00.5+01:00`)
 * as `toISOString()`, or null when it is not one or names no real time (`2027-02-30`, `25:00`).
 * Without an offset the time is UTC (a Worker's clock), whatever the machine's time zone.
 * Past or future alike: whether the time is acceptable is the `wait` tool's question.
 */
export function isoTimestamp(s: string): string | null {
  const m = ISO_8601.exec(s);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? "0")) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const millis = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  const zone = (m[8] ?? "z").toLowerCase();
  let offsetMinutes = 0;
  if (zone !== "z") {
    const digits = zone.slice(1).replace(":", "");
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2) || "0");
    if (hours > 23 || minutes > 59) return null;
    offsetMinutes = (zone[0] === "-" ? -1 : 1) * (hours * 60 + minutes);
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: the latter reads years 0–99 as 1900–1999.
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null;
  date.setUTCHours(hour, minute, second, millis);
  return new Date(date.getTime() - offsetMinutes * 60_000).toISOString();
}

/** "wait until 2027-01-04T09:00:00Z": a durable `wait` step until that time. */
export const waitUntil: ClauseParser = (ws) => {
  if (ws.length !== 3 || !startsWith(ws, "wait", "until")) return null;
  const until = isoTimestamp(text(ws.slice(2)));
  return until === null ? null : [{ tool_name: "wait", tool_input: { until }, reasoning: `Wait until ${until}` }];
};

/**
 * "wait for the signal payment_received", "wait for signal X", "wait for the X signal",
 * "wait for X signal": a `signal` step. The name is one word, kept as written (its case too,
 * without the sentence's trailing punctuation), and must be a valid signal name.
 */
export const waitForSignal: ClauseParser = (ws) => {
  if (!startsWith(ws, "wait", "for")) return null;
  let rest = ws.slice(2);
  if (rest[0]?.low === "the") rest = rest.slice(1);
  if (rest.length !== 2) return null;
  let nameWord: Word;
  if (rest[0]?.low === "signal") nameWord = rest[1] as Word;
  else if (rest[1]?.low === "signal") nameWord = rest[0] as Word;
  else return null;
  const name = stripQuotes(text([nameWord]));
  if (!signalNameSchema.safeParse(name).success) return null;
  return [{ tool_name: "signal", tool_input: { name }, reasoning: `Wait for the signal ${name}` }];
};

const APPROVAL_VERBS = [
  ["ask", "for", "approval"],
  ["get", "approval"],
];
const APPROVAL_LINKS = new Set(["to", "for"]);

/**
 * "ask for approval to deploy v2", "get approval for the release", "ask for approval: ship it":
 * an `approval` step whose message is the rest of the clause as written (1–2000 characters).
 */
export const approval: ClauseParser = (ws) => {
  const verb = APPROVAL_VERBS.find((v) => startsWith(ws, ...v));
  if (!verb) return null;
  let rest = ws.slice(verb.length);
  const colon = (ws[verb.length - 1] as Word).raw.endsWith(":");
  if (!colon) {
    if (!APPROVAL_LINKS.has(rest[0]?.low ?? "")) return null;
    rest = rest.slice(1);
  }
  const message = stripQuotes(text(rest)).trim();
  if (message === "" || message.length > LIMITS.maxMessageChars) return null;
  const shown = message.length > 100 ? `${message.slice(0, 100)}…` : message;
  const draft: Draft = { tool_name: "approval", tool_input: { message }, reasoning: `Ask for approval: ${shown}` };
  return [draft];
};
