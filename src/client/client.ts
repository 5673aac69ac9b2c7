import { type Answer, nextCursor, type QueryValue, Transport } from "./http";
import type {
  ApiKey,
  Approval,
  ApproveBody,
  CallbackAnswer,
  CallbackBody,
  CancelBody,
  CreateApiKeyBody,
  CreatedApiKey,
  CreateRunBody,
  EventsParams,
  Health,
  ListRunsParams,
  LiveMessage,
  Metrics,
  MetricsParams,
  Page,
  PageParams,
  RejectBody,
  RerunBody,
  Run,
  RunEvent,
  RunSummary,
  SignalAnswer,
  SignalBody,
  ToolDescriptor,
} from "./types";
import { type LiveSocketConstructor, type WatchOptions, watchRun } from "./watch";

export const DEFAULT_BASE_URL = "http://localhost:8787";
/** The local development key; works only while the server's ENVIRONMENT is `development`. */
export const DEV_API_KEY = "crane-dev-key";
export const DEV_ADMIN_TOKEN = "crane-dev-admin";
/** The live stream's subprotocol; the key travels as a second one (`bearer.<key>`), as browsers cannot set headers. */
export const LIVE_SUBPROTOCOL = "crane.v1";

export interface CraneClientOptions {
  /** The server's origin (default `http://localhost:8787`); a trailing `/api/v1` is accepted too. */
  baseUrl?: string;
  /** Default `crane-dev-key`. */
  apiKey?: string;
  /** For `admin.*`; default `crane-dev-admin`. */
  adminToken?: string;
  /** Default the global `fetch`. */
  fetch?: typeof fetch;
  /** Default the global `WebSocket`. */
  WebSocket?: typeof WebSocket;
  /** Per request (default 60000): a request that takes longer fails with `CraneConnectionError`. */
  timeoutMs?: number;
}

export interface IdempotencyOptions {
  /** Same key and body within 24 h → the same answer (`Idempotency-Key`). */
  idempotencyKey?: string;
}

const API = "/api/v1";
const seg = encodeURIComponent;
const idempotency = (opts?: IdempotencyOptions): Record<string, string> =>
  opts?.idempotencyKey === undefined ? {} : { "Idempotency-Key": opts.idempotencyKey };

/**
 * A typed client of the Crane API v1 (fetch and WebSocket only: Node ≥ 22, browsers, Workers).
 * Types come from the server's own contracts; every error answer throws a `CraneError` with the
 * problem details, and an unreachable server a `CraneConnectionError` (status 0).
 *
 * @example
 * const crane = new CraneClient({ baseUrl: "http://localhost:8787", apiKey: "crane-dev-key" });
 * const run = await crane.createRun({ prompt: "sleep 200 ms then calculate 6*7" });
 * for await (const msg of crane.watch(run.run_id, { after: 0 })) {
 *   if (msg.type === "event") console.log(msg.event.seq, msg.event.type);
 * }
 * console.log((await crane.getRun(run.run_id)).result); // 42
 */
export class CraneClient {
  readonly baseUrl: string;
  private readonly http: Transport;
  private readonly WebSocketImpl: typeof WebSocket | undefined;

  constructor(opts: CraneClientOptions = {}) {
    const f = opts.fetch ?? globalThis.fetch;
    this.http = new Transport({
      baseUrl: (opts.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "").replace(/\/api\/v1$/, ""),
      apiKey: opts.apiKey ?? DEV_API_KEY,
      adminToken: opts.adminToken ?? DEV_ADMIN_TOKEN,
      // Called unbound, the browser's fetch throws "Illegal invocation".
      fetch: (input, init) => f(input, init),
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
    this.baseUrl = this.http.baseUrl;
    this.WebSocketImpl = opts.WebSocket;
  }

  private async call<T>(method: string, path: string, init: Parameters<Transport["request"]>[2] = { auth: "key" }) {
    return (await this.http.request<T>(method, `${API}${path}`, init)).data;
  }

  private async page<T>(path: string, query: Record<string, QueryValue>): Promise<Page<T>> {
    const { data, response }: Answer<T[]> = await this.http.request<T[]>("GET", `${API}${path}`, {
      auth: "key",
      query,
    });
    return { items: data, next: nextCursor(response.headers.get("Link"), this.baseUrl) };
  }

  private async *pages<T>(fetchPage: (cursor: string | undefined) => Promise<Page<T>>): AsyncGenerator<T> {
    let cursor: string | undefined;
    for (;;) {
      const { items, next } = await fetchPage(cursor);
      yield* items;
      if (next === null) return;
      cursor = next;
    }
  }

  /** `POST /runs`: plans the prompt (or takes `plan`) and starts the run. Answers once planning is done. */
  createRun(body: CreateRunBody, opts?: IdempotencyOptions): Promise<Run> {
    return this.call("POST", "/runs", { auth: "key", body, headers: idempotency(opts) });
  }

  /** `GET /runs/{run_id}`. */
  getRun(runId: string): Promise<Run> {
    return this.call("GET", `/runs/${seg(runId)}`);
  }

  /** One page of `GET /runs`, newest first; `next` is the cursor of the following page, or null. */
  listRuns(query: ListRunsParams = {}): Promise<Page<RunSummary>> {
    return this.page("/runs", query);
  }

  /**
   * Every run matching the filters, newest first, page after page (keyset cursor: each run once).
   *
   * @example for await (const r of crane.runs({ status: "failed" })) console.log(r.run_id, r.error);
   */
  runs(query: ListRunsParams = {}): AsyncIterable<RunSummary> {
    // Later pages follow the cursor of the Link header, which replaces any offset.
    const { offset, cursor, ...filters } = query;
    return this.pages((next) => this.listRuns(next === undefined ? query : { ...filters, cursor: next }));
  }

  /** One page of the run's event log: events with `seq > after` (default 0), at most `limit` (default 1000). */
  events(runId: string, opts: EventsParams = {}): Promise<RunEvent[]> {
    return this.call("GET", `/runs/${seg(runId)}/events`, { auth: "key", query: { ...opts } });
  }

  /** The whole event log after `after`, paged. */
  async *allEvents(runId: string, opts: { after?: number } = {}): AsyncIterable<RunEvent> {
    let after = opts.after ?? 0;
    for (;;) {
      const page = await this.events(runId, { after, limit: 1000 });
      yield* page;
      const last = page.at(-1);
      if (!last || page.length < 1000) return;
      after = last.seq;
    }
  }

  /** `POST /runs/{run_id}/cancel`; with `{ compensate: true }` succeeded steps are undone (v1.1). */
  cancel(runId: string, body?: CancelBody): Promise<Run> {
    return this.call("POST", `/runs/${seg(runId)}/cancel`, { auth: "key", body });
  }

  /** `POST /runs/{run_id}/rerun` (v1.1): a new run of the finished run's plan. */
  rerun(runId: string, body: RerunBody = {}, opts?: IdempotencyOptions): Promise<Run> {
    return this.call("POST", `/runs/${seg(runId)}/rerun`, { auth: "key", body, headers: idempotency(opts) });
  }

  /** `POST /runs/{run_id}/steps/{step}/approve` (v1.1). */
  approve(runId: string, step: number, body: ApproveBody = {}): Promise<Run> {
    return this.call("POST", `/runs/${seg(runId)}/steps/${step}/approve`, { auth: "key", body });
  }

  /** `POST /runs/{run_id}/steps/{step}/reject` (v1.1). */
  reject(runId: string, step: number, body: RejectBody = {}): Promise<Run> {
    return this.call("POST", `/runs/${seg(runId)}/steps/${step}/reject`, { auth: "key", body });
  }

  /** `POST /runs/{run_id}/signals/{name}` (v1.1): delivered to the step waiting for it, or kept for it. */
  signal(runId: string, name: string, body: SignalBody = {}, opts?: IdempotencyOptions): Promise<SignalAnswer> {
    return this.call("POST", `/runs/${seg(runId)}/signals/${seg(name)}`, {
      auth: "key",
      body,
      headers: idempotency(opts),
    });
  }

  /**
   * `POST /callbacks/{token}` (v1.1), without the API key, as a third party would: takes a waiting
   * step's whole `callback_url` or just its token.
   */
  async callback(urlOrToken: string, body: CallbackBody): Promise<CallbackAnswer> {
    const target = /^https?:\/\//.test(urlOrToken)
      ? new URL(urlOrToken)
      : this.http.url(`${API}/callbacks/${seg(urlOrToken)}`);
    return (await this.http.request<CallbackAnswer>("POST", target, { auth: "none", body })).data;
  }

  /** One page of the approval inbox (v1.1), oldest first. */
  approvals(query: PageParams = {}): Promise<Page<Approval>> {
    return this.page("/approvals", { ...query });
  }

  /** Every approval waiting now, page after page. */
  allApprovals(query: { limit?: number } = {}): AsyncIterable<Approval> {
    return this.pages((cursor) => this.approvals({ ...query, cursor }));
  }

  /** `GET /tools`: the catalog with each tool's JSON Schema. */
  tools(): Promise<ToolDescriptor[]> {
    return this.call("GET", "/tools");
  }

  /** `GET /health` (no key). Answers the body also when the server says `unhealthy` (503). */
  health(): Promise<Health> {
    return this.call("GET", "/health", { auth: "none", accept: [503] });
  }

  /** `GET /metrics` over `[since, until)` (default the last 24 h). */
  metrics(query: MetricsParams = {}): Promise<Metrics> {
    return this.call("GET", "/metrics", { auth: "key", query });
  }

  /**
   * The run's live messages: the snapshot, then each event in order exactly once, reconnecting
   * with `?after=<last seq>` when the socket drops; it ends right after the run's terminal event.
   * With `after` (e.g. `0`) the events after it are replayed first. Aborting `signal` ends it quietly.
   *
   * @example
   * for await (const m of crane.watch(id, { after: 0 }))
   *   if (m.type === "event") console.log(m.event.type, m.event.step_number ?? "");
   */
  watch(runId: string, opts: WatchOptions = {}): AsyncIterable<LiveMessage> {
    const WS = this.WebSocketImpl ?? globalThis.WebSocket;
    if (typeof WS !== "function") throw new TypeError("No WebSocket implementation: pass one as the WebSocket option");
    return watchRun(
      {
        liveUrl: (id, after) => {
          const url = this.http.url(`${API}/runs/${seg(id)}/live`);
          url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
          if (after !== null) url.searchParams.set("after", String(after));
          return url.toString();
        },
        protocols: [LIVE_SUBPROTOCOL, `bearer.${this.http.secret("key")}`],
        WebSocket: WS as unknown as LiveSocketConstructor,
        getRun: (id) => this.getRun(id),
        events: (id, query) => this.events(id, query),
      },
      runId,
      opts,
    );
  }

  /** Key management with the admin token. */
  readonly admin = {
    /** `POST /admin/api-keys`: the answer holds the secret `api_key`, shown this once. */
    createKey: (body: CreateApiKeyBody): Promise<CreatedApiKey> =>
      this.call("POST", "/admin/api-keys", { auth: "admin", body }),
    /** `GET /admin/api-keys?tenant=`: the tenant's keys, newest first, without secrets. */
    listKeys: (tenant: string): Promise<ApiKey[]> =>
      this.call("GET", "/admin/api-keys", { auth: "admin", query: { tenant } }),
    /** `DELETE /admin/api-keys/{key_id}`: the key stops working at once. */
    revokeKey: async (keyId: string): Promise<void> => {
      await this.call("DELETE", `/admin/api-keys/${seg(keyId)}`, { auth: "admin" });
    },
  };
}
