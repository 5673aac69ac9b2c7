import type { Json } from "../contracts/common";
import { nestsDeeperThan, valueNestsDeeperThan } from "../contracts/json-depth";
import { LIMITS } from "../contracts/limits";

/**
 * A tool call's arguments as a model wrote them, checked before anything is stored: the parsed
 * object, or (with empty arguments) why they were refused. A refused call is recorded as a failed
 * call and the reason is answered to the model (`callProblem` in src/run/agent.ts); what the
 * model wrote is not kept, so a hostile answer cannot put a value into the run's log that its
 * readers (`JSON.stringify`, a Durable Object RPC's structured clone) cannot walk.
 */
export type CheckedArguments = { arguments: Json; invalid?: undefined } | { arguments: Json; invalid: string };

const refused = (invalid: string): CheckedArguments => ({ arguments: {}, invalid });

const tooLarge = `exceed ${LIMITS.maxToolInputBytes} bytes`;
const tooDeep = `nest arrays or objects deeper than ${LIMITS.maxJsonDepth} levels`;

/** Arguments sent as JSON text (OpenAI-compatible providers): size, then depth, then the parse. */
export function parseArguments(text: string): CheckedArguments {
  if (text.trim() === "") return { arguments: {} };
  // Characters first: a string's UTF-8 size is at least its length, so most of an oversized text is never encoded.
  if (text.length > LIMITS.maxToolInputBytes || new TextEncoder().encode(text).length > LIMITS.maxToolInputBytes) {
    return refused(tooLarge);
  }
  if (nestsDeeperThan(text, LIMITS.maxJsonDepth)) return refused(tooDeep);
  try {
    return { arguments: JSON.parse(text) as Json };
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return refused(`are not valid JSON (${err.message.slice(0, 200)})`);
  }
}

/** Arguments a provider already parsed (Workers AI may hand over an object or a JSON string). */
export function checkArguments(value: unknown): CheckedArguments {
  if (typeof value === "string") return parseArguments(value);
  if (value === undefined) return { arguments: {} };
  if (valueNestsDeeperThan(value, LIMITS.maxJsonDepth)) return refused(tooDeep);
  if (new TextEncoder().encode(JSON.stringify(value)).length > LIMITS.maxToolInputBytes) return refused(tooLarge);
  return { arguments: value as Json };
}
