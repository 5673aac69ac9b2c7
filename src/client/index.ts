/**
 * `crane/client`: a typed client of the Crane API v1 over fetch and WebSocket only, so it runs
 * in Node ≥ 22, browsers and Workers. Request and response types are inferred from the zod
 * contracts the server validates with (`src/contracts`); the client imports them as types only
 * and does not validate answers at run time (no zod in the bundle).
 */
export {
  CraneClient,
  type CraneClientOptions,
  DEFAULT_BASE_URL,
  DEV_ADMIN_TOKEN,
  DEV_API_KEY,
  type IdempotencyOptions,
  LIVE_SUBPROTOCOL,
} from "./client";
export { CraneConnectionError, CraneError } from "./errors";
export type * from "./types";
export { isFinished, isTerminalEvent, type WatchOptions } from "./watch";
