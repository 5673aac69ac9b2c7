import type { LiveMessage } from "../contracts/run";
import type { RunEvent } from "./events";

/** Most watchers one run accepts; each is a hibernatable WebSocket held by its Durable Object. */
export const MAX_WATCHERS_PER_RUN = 100;
export const LIVE_SUBPROTOCOL = "crane.v1";

export function send(ws: WebSocket, message: LiveMessage): void {
  try {
    ws.send(JSON.stringify(message satisfies LiveMessage));
  } catch (err) {
    // A socket that closed between getWebSockets() and send() has nobody to tell.
    console.log(JSON.stringify({ level: "debug", msg: "live send failed", error: String(err) }));
  }
}

/** Sends events to every watcher; after a terminal event, closes each socket with 1000. */
export function broadcast(sockets: WebSocket[], events: readonly RunEvent[], terminal: boolean): void {
  for (const ws of sockets) {
    for (const event of events) send(ws, { type: "event", event });
    if (terminal) closeNormally(ws);
  }
}

export function closeNormally(ws: WebSocket): void {
  try {
    ws.close(1000, "run finished");
  } catch (err) {
    console.log(JSON.stringify({ level: "debug", msg: "live close failed", error: String(err) }));
  }
}
