/** What a live socket produced, in arrival order. */
export type FeedItem =
  | { kind: "message"; data: string }
  | { kind: "closed"; code: number; reason: string }
  | { kind: "failed" }
  | { kind: "aborted" };

/** The part of a WebSocket the feed uses; the DOM, Node and Workers WebSockets all have it. */
export interface LiveSocket {
  readonly readyState: number;
  close(code?: number, reason?: string): void;
  addEventListener(type: "message", listener: (ev: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (ev: { code: number; reason: string }) => void): void;
  addEventListener(type: "error", listener: (ev: unknown) => void): void;
}

const decoder = new TextDecoder();

function text(data: unknown): string | null {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return decoder.decode(data);
  if (ArrayBuffer.isView(data)) return decoder.decode(data);
  return null;
}

/**
 * Turns a WebSocket's callbacks into a pull queue (`await feed.next()`), so an async generator
 * can read it in order. The socket ends with its first `close` or `error`; nothing after counts.
 */
export class SocketFeed {
  private readonly items: FeedItem[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  /** Stops listening to the abort signal. */
  readonly dispose: () => void;

  constructor(socket: LiveSocket, signal?: AbortSignal) {
    socket.addEventListener("message", (ev) => {
      const data = text(ev.data);
      if (data !== null) this.push({ kind: "message", data });
    });
    socket.addEventListener("close", (ev) => this.push({ kind: "closed", code: ev.code, reason: ev.reason }, true));
    socket.addEventListener("error", () => this.push({ kind: "failed" }, true));
    if (signal?.aborted) this.push({ kind: "aborted" }, true);
    const onAbort = () => this.push({ kind: "aborted" }, true);
    signal?.addEventListener("abort", onAbort, { once: true });
    // One signal may outlive many sockets (reconnections): each feed takes its listener away.
    this.dispose = () => signal?.removeEventListener("abort", onAbort);
  }

  private push(item: FeedItem, last = false): void {
    if (this.ended) return;
    if (last) this.ended = true;
    // An abort jumps the queue: the caller wants to stop, not to read what is still buffered.
    if (item.kind === "aborted") this.items.unshift(item);
    else this.items.push(item);
    this.wake?.();
    this.wake = null;
  }

  async next(): Promise<FeedItem> {
    for (;;) {
      const item = this.items.shift();
      if (item) return item;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }
}
