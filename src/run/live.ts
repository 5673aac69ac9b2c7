import type { LiveMessage, Run } from "../contracts/run";
import { log } from "../observability/log";
import type { RunEvent } from "./events";

/** Most watchers one run accepts; each is a hibernatable WebSocket held by its Durable Object. */
export const MAX_WATCHERS_PER_RUN = 100;
export const LIVE_SUBPROTOCOL = "crane.v1";
/**
 * The API key a live request was authenticated with, set by the Worker on the request it hands
 * the run's object (a client's own value is replaced): its socket is tagged with it, so that
 * revoking the key closes the streams it holds open.
 */
export const WATCHER_KEY_HEADER = "X-Crane-Watcher-Key";
/** A socket's tag naming the API key it was opened with. */
export const watcherTag = (keyId: string): string => `key:${keyId}`;
/** The close code and reason of a stream whose API key was revoked (1008: policy violation). */
export const KEY_REVOKED_CLOSE = { code: 1008, reason: "API key revoked" } as const;

export function send(ws: WebSocket, message: LiveMessage): void {
  try {
    ws.send(JSON.stringify(message satisfies LiveMessage));
  } catch (err) {
    // A socket that closed between getWebSockets() and send() has nobody to tell.
    log("debug", "live send failed", { error: err });
  }
}

/**
 * What a live run's socket remembers across hibernation: a watcher that connected with `?after=N`
 * beyond the run's last event has, by its own account, seen events up to N already.
 */
interface Watcher {
  after: number;
}

/** Marks a hibernatable socket whose watcher asked for events after `after`, beyond the run's `seq`. */
export function watchAfter(ws: WebSocket, after: number | null, seq: number): void {
  if (after !== null && after > seq) ws.serializeAttachment({ after } satisfies Watcher);
}

/**
 * Sends events to every watcher — never one at or before the `?after=` its watcher gave — and,
 * after a terminal event, closes each socket with 1000.
 */
export function broadcast(sockets: WebSocket[], events: readonly RunEvent[], terminal: boolean): void {
  for (const ws of sockets) {
    const seen = (ws.deserializeAttachment() as Watcher | null)?.after ?? 0;
    for (const event of events) if (event.seq > seen) send(ws, { type: "event", event });
    if (terminal) closeNormally(ws);
  }
}

/** Text a model is writing now: to every watcher, not stored, no sequence number; `reset` starts a new try's text. */
export function broadcastDelta(sockets: WebSocket[], stepNumber: number, text: string, reset = false): void {
  for (const ws of sockets)
    send(ws, { type: "delta", step_number: stepNumber, text, ...(reset ? { reset: true } : {}) });
}

export function closeNormally(ws: WebSocket): void {
  try {
    ws.close(1000, "run finished");
  } catch (err) {
    log("debug", "live close failed", { error: err });
  }
}

/**
 * Starts a watcher's stream and answers its upgrade: the snapshot, the events after `after`
 * (when asked), and the close when the run is already over. Nothing here awaits, so no event
 * can slip between the snapshot and the replay. The server socket must already be accepted
 * (hibernatable in a coordinator, plain for a run served from the archive).
 */
export function openStream(
  request: Request,
  client: WebSocket,
  server: WebSocket,
  stream: { run: Run; seq: number; replay: Iterable<RunEvent>; finished: boolean },
): Response {
  send(server, { type: "snapshot", run: stream.run, seq: stream.seq });
  for (const event of stream.replay) send(server, { type: "event", event });
  if (stream.finished) closeNormally(server);
  const offered = request.headers.get("Sec-WebSocket-Protocol") ?? "";
  const headers = new Headers();
  if (offered.split(",").some((p) => p.trim() === LIVE_SUBPROTOCOL))
    headers.set("Sec-WebSocket-Protocol", LIVE_SUBPROTOCOL);
  return new Response(null, { status: 101, webSocket: client, headers });
}

/** The live stream of a run that only the D1 archive still holds, as its coordinator would have sent it. */
export function archivedLiveResponse(
  request: Request,
  run: Run,
  events: readonly RunEvent[],
  after: number | undefined,
): Response {
  const { 0: client, 1: server } = new WebSocketPair();
  server.accept();
  const replay = after === undefined ? [] : events.filter((e) => e.seq > after);
  return openStream(request, client, server, { run, seq: events.at(-1)?.seq ?? 0, replay, finished: true });
}
