import { CraneConnectionError } from "./errors";
import { type LiveSocket, SocketFeed } from "./socket-feed";
import type { LiveMessage, Run, RunEvent, RunStatus } from "./types";

export interface WatchOptions {
  /**
   * Replay the events after this sequence number first (`0`: the whole log). Left out, the
   * stream starts at the snapshot: only events that happen from then on follow it.
   */
  after?: number;
  /** Stops the stream: the iterator ends quietly and the socket is closed. */
  signal?: AbortSignal;
  /** Reconnections in a row that may fail to make progress before `watch` gives up (default 8). */
  retries?: number;
  /** First reconnection delay in ms, doubled on each failure up to 5 s, with jitter (default 250). */
  backoffMs?: number;
  /**
   * Told when a socket starts delivering (`"open"`, at its first message) and when one dropped
   * before the run ended (`"lost"`: a reconnection follows) — for a "live" indicator.
   */
  onConnection?: (state: "open" | "lost") => void;
}

export type LiveSocketConstructor = new (url: string, protocols: string[]) => LiveSocket;

/** What `watch` needs from the client. */
export interface WatchDeps {
  liveUrl(runId: string, after: number | null): string;
  protocols: string[];
  WebSocket: LiveSocketConstructor;
  getRun(runId: string): Promise<Run>;
  events(runId: string, query: { after: number; limit: number }): Promise<RunEvent[]>;
}

const TERMINAL_EVENTS = new Set<string>(["run.completed", "run.failed", "run.cancelled"]);
const FINISHED = new Set<RunStatus>(["completed", "failed", "cancelled"]);
const MAX_BACKOFF_MS = 5_000;
const EVENTS_PAGE = 1000;

export const isTerminalEvent = (event: RunEvent): boolean => TERMINAL_EVENTS.has(event.type);
export const isFinished = (status: RunStatus): boolean => FINISHED.has(status);

function parse(data: string): LiveMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch (err) {
    if (err instanceof SyntaxError) return null; // not ours; the stream only carries JSON
    throw err;
  }
  const type = (value as { type?: unknown } | null)?.type;
  return type === "snapshot" || type === "event" || type === "delta" ? (value as LiveMessage) : null;
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * A run's live stream as an async iterator: the first snapshot, then every event in `seq` order
 * exactly once (and `delta` messages as they come). When the socket drops before the run ends it
 * reconnects with `?after=<last seq>`; a gap (which the server never leaves) would be filled from
 * `GET …/events`. The iterator returns right after the terminal event: under `wrangler dev` the
 * socket's `close` can lag the last message by seconds, so it never waits for it.
 */
export async function* watchRun(deps: WatchDeps, runId: string, opts: WatchOptions = {}): AsyncGenerator<LiveMessage> {
  const retries = opts.retries ?? 8;
  const backoff = opts.backoffMs ?? 250;
  let lastSeq: number | null = opts.after ?? null;
  let snapshotSeen = false;
  let failures = 0;

  // Events after `lastSeq`, over HTTP: the gap filler, and the way to finish when the socket cannot.
  async function* fetchEvents(until: number | null): AsyncGenerator<RunEvent> {
    for (;;) {
      const page = await deps.events(runId, { after: lastSeq ?? 0, limit: EVENTS_PAGE });
      for (const event of page) {
        if (until !== null && event.seq >= until) return;
        yield event;
      }
      if (page.length < EVENTS_PAGE) return;
    }
  }

  for (;;) {
    if (opts.signal?.aborted) return;
    const socket = new deps.WebSocket(deps.liveUrl(runId, lastSeq), deps.protocols);
    const feed = new SocketFeed(socket, opts.signal);
    let progressed = false;
    let messages = 0;
    try {
      for (;;) {
        const item = await feed.next();
        if (item.kind === "aborted") return;
        if (item.kind !== "message") break;
        const message = parse(item.data);
        if (!message) continue;
        if (messages++ === 0) opts.onConnection?.("open");
        if (message.type === "snapshot") {
          // A reconnection's snapshot is not passed on: the events after `lastSeq` say what changed.
          if (snapshotSeen) continue;
          snapshotSeen = true;
          progressed = true;
          lastSeq ??= message.seq;
          yield message;
          if (isFinished(message.run.status) && lastSeq >= message.seq) return;
        } else if (message.type === "event") {
          const event = message.event;
          if (lastSeq !== null && event.seq <= lastSeq) continue; // already passed on
          if (lastSeq !== null && event.seq > lastSeq + 1) {
            for await (const missed of fetchEvents(event.seq)) {
              lastSeq = missed.seq;
              yield { type: "event", event: missed };
              if (isTerminalEvent(missed)) return;
            }
          }
          lastSeq = event.seq;
          progressed = true;
          yield message;
          if (isTerminalEvent(event)) return;
        } else {
          yield message;
        }
      }
    } finally {
      feed.dispose();
      // Closing is fire-and-forget; nothing waits for the close handshake.
      if (socket.readyState < 2) socket.close(1000, "done");
    }

    opts.onConnection?.("lost");
    failures = progressed ? 1 : failures + 1;
    if (failures > retries) {
      throw new CraneConnectionError(
        `The live stream of run '${runId}' closed ${failures} times in a row without progress`,
      );
    }
    if (messages === 0) {
      // The socket was refused or never opened, and WebSockets do not say why: HTTP does.
      // A 401 or 404 throws here; a run that is over is finished from the event log.
      const run = await deps.getRun(runId).catch((err: unknown) => {
        if (err instanceof CraneConnectionError) return null;
        throw err;
      });
      if (run && isFinished(run.status) && snapshotSeen) {
        for await (const event of fetchEvents(null)) {
          lastSeq = event.seq;
          yield { type: "event", event };
          if (isTerminalEvent(event)) return;
        }
      }
    }
    const wait = Math.min(MAX_BACKOFF_MS, backoff * 2 ** (failures - 1));
    await delay(wait / 2 + Math.random() * (wait / 2), opts.signal);
  }
}
