import type { ArchiveMessage, StepMessage } from "./contracts/tool";

/** The Worker's bindings and variables (wrangler.toml). */
export interface Env {
  /** `development` enables the local default API key and admin token; anything else refuses them. */
  ENVIRONMENT: string;
  DB: D1Database;
  /** The console and /docs (dist/public), served through the Worker so every answer has its X-Request-Id. */
  ASSETS: Fetcher;
  /** One RunCoordinator per run; reach it through `runStub`, which types its RPC methods. */
  RUNS: DurableObjectNamespace;
  /** One TenantGate per tenant: rate limits and the active-run quota. */
  GATES: DurableObjectNamespace;
  /** One ToolBreaker per tool: the circuit breakers shared by all runs. */
  BREAKERS: DurableObjectNamespace;
  STEPS: Queue<StepMessage>;
  /** Sync requests for the D1 archive, batched by its consumer. */
  ARCHIVE: Queue<ArchiveMessage | { health: true }>;
  /** How long a finished, archived run keeps its Durable Object storage (ms); default 7 days. */
  RUN_RETENTION_MS?: string;
  /** Watchdog slack (ms) for a dispatched attempt to be picked up; default 30000. */
  WATCHDOG_DISPATCH_GRACE_MS?: string;
  /** Watchdog slack (ms) past a step's timeout for its report to arrive; default 5000. */
  WATCHDOG_REPORT_GRACE_MS?: string;
  /** Workers Analytics Engine dataset for step and run metrics; optional (absent locally and in tests). */
  METRICS?: AnalyticsEngineDataset;
  /** "false" sends pure tools (calculator, text) through the queue too; default: they run in the coordinator. */
  INLINE_PURE_TOOLS?: string;
  /** Lowest log level written: debug, info (default), warn, error, off. */
  LOG_LEVEL?: string;
  /** Default requests per window per API key (default 600). */
  RATE_LIMIT_REQUESTS?: string;
  /** Default rate-limit window in seconds (default 60). */
  RATE_LIMIT_WINDOW_S?: string;
  /** Default most runs a tenant may have running at once (default 50). */
  MAX_ACTIVE_RUNS?: string;
  /** Most runs of a tenant parked on waits (timers, approvals, signals) at once (default 10000). */
  MAX_WAITING_RUNS?: string;
  /** LLM tokens a tenant may use per UTC day, planner, `llm` and `agent` together (default 1000000). */
  LLM_TOKENS_PER_DAY?: string;
  /** A tenant's steps in flight in one consumer isolate before the rest wait their turn (default 32). */
  TENANT_STEPS_PER_CONSUMER?: string;
  /** Hosts the http_get tool may fetch, comma-separated (exact names or `*.example.com`). */
  HTTP_GET_ALLOWLIST?: string;
  /** Circuit breaker: failures in the window that open it (default 5), window (30000 ms), cooldown (10000 ms), probe lease (30000 ms). */
  BREAKER_THRESHOLD?: string;
  BREAKER_WINDOW_MS?: string;
  BREAKER_COOLDOWN_MS?: string;
  BREAKER_PROBE_LEASE_MS?: string;
  /** OpenAI-compatible chat completions base URL (e.g. https://api.openai.com/v1, an AI Gateway URL). */
  LLM_BASE_URL?: string;
  /** Its API key (a secret: `wrangler secret put LLM_API_KEY`). */
  LLM_API_KEY?: string;
  /** The model, for either provider (e.g. gpt-4o-mini, @cf/meta/llama-3.3-70b-instruct-fp8-fast). */
  LLM_MODEL?: string;
  /** Per-try timeout of a provider call (ms, default 20000). */
  LLM_TIMEOUT_MS?: string;
  /** Workers AI binding, the provider when LLM_BASE_URL is not set. */
  AI?: Ai;
  /** Admin token for key management (a secret in production). */
  ADMIN_TOKEN?: string;
  /** Failed authentications per client address and key prefix (`[[ratelimits]]`); absent: no throttle. */
  AUTH_FAILURES?: RateLimit;
  /** "true" counts billable operations for the benchmark (GET /api/v1/admin/counters); off by default. */
  BENCH_COUNTERS?: string;
  /** Callback URL requests per client address (`[[ratelimits]]`); absent: not limited. */
  CALLBACKS?: RateLimit;
}
