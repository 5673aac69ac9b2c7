import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Tests run inside workerd with the real bindings from wrangler.toml: Durable Objects, the
// queues (producers and consumers), D1, the rate limiter and WebSockets. Only variables are
// overridden, and the default placement (pure tools inside the coordinator) is what most run.
//
//   workers  test/unit, test/integration          the production defaults
//   queue    placement-sensitive suites again     INLINE_PURE_TOOLS=false: every step through the queue
//   tight    test/integration/tight               breaker and auth-failure limits at small values
//   llm      test/integration/llm                 an LLM provider faked at its HTTP boundary
//   llm-queue  the agent suite of llm again          INLINE_PURE_TOOLS=false: its tool calls through the queue
//   e2e      test/e2e                             `wrangler dev` driven from Node: HTTP, WebSocket, CLI, kill -9
//   browser  test/browser                         the console in a real headless Chromium
export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  const bindings = {
    ENVIRONMENT: "development",
    // The fault suites log every injected crash; LOG_LEVEL=info npm test shows them.
    LOG_LEVEL: process.env.LOG_LEVEL ?? "off",
    // A short watchdog so that lost messages are recovered within a test's time.
    WATCHDOG_DISPATCH_GRACE_MS: "1500",
    WATCHDOG_REPORT_GRACE_MS: "500",
    // Finished runs leave their Durable Object 3 s after archiving, so every suite also
    // exercises reads served from D1.
    RUN_RETENTION_MS: "3000",
    // Generous defaults: the soak test polls hard with the dev key. Quota tests use keys with their own limits.
    RATE_LIMIT_REQUESTS: "1000000",
    MAX_ACTIVE_RUNS: "10000",
    // The fault suites inject timeouts by the hundred; the `tight` project tests the breaker.
    BREAKER_THRESHOLD: "1000000",
    HTTP_GET_ALLOWLIST: "api.example.com,*.allowed.test",
    TEST_MIGRATIONS: migrations,
    // Replays a soak schedule: SOAK_SEED=123 npm test
    SOAK_SEED: process.env.SOAK_SEED ?? "",
  };
  // The hostile-input suites send thousands of unknown keys; the `tight` project keeps the real limit.
  const generousAuthLimiter = {
    AUTH_FAILURES: { namespace_id: "1001", simple: { limit: 1_000_000, period: 60 as const } },
  };
  const workersProject = (
    name: string,
    include: string[],
    exclude: string[] = [],
    extra: Record<string, string> = {},
    options: { ratelimits?: Record<string, { namespace_id: string; simple: { limit: number; period: 10 | 60 } }> } = {
      ratelimits: generousAuthLimiter,
    },
  ) => ({
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: { bindings: { ...bindings, ...extra }, ...options },
      }),
    ],
    test: {
      name,
      setupFiles: ["./test/setup.ts"],
      include,
      exclude,
      testTimeout: 30_000,
      hookTimeout: 30_000,
    },
  });
  const TIGHT = "test/integration/tight/**/*.test.ts";
  const LLM = "test/integration/llm/**/*.test.ts";
  // Suites whose behaviour depends on where a step runs: they run on the default placement in
  // `workers` and again with every step through the queue.
  const PLACEMENT = ["faults", "soak", "observability", "runs", "live", "waiting", "compensation"].map(
    (f) => `test/integration/${f}.test.ts`,
  );
  const workers = workersProject("workers", ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"], [TIGHT, LLM]);
  const queue = workersProject("queue", PLACEMENT, [], { INLINE_PURE_TOOLS: "false" });
  // The circuit breaker trips after 3 failures and cools down for 1 s, a tenant gets 2 steps in flight
  // per consumer and 2 waiting runs, and failed authentications keep wrangler.toml's limit.
  const tight = workersProject(
    "tight",
    [TIGHT],
    [],
    { BREAKER_THRESHOLD: "3", BREAKER_COOLDOWN_MS: "1000", TENANT_STEPS_PER_CONSUMER: "2", MAX_WAITING_RUNS: "2" },
    {},
  );
  // An OpenAI-compatible provider at https://llm.test/v1, faked at the HTTP boundary by the tests.
  const provider = {
    LLM_BASE_URL: "https://llm.test/v1",
    LLM_MODEL: "test-model",
    LLM_API_KEY: "sk-test",
    LLM_TIMEOUT_MS: "300",
    // Small enough for one test to spend a tenant's day; other tests use their own tenants.
    LLM_TOKENS_PER_DAY: "10000",
  };
  const llm = workersProject("llm", [LLM], [], provider);
  // Agent steps again with every tool call through the queue (a pure tool's call runs inline by default).
  const llmQueue = workersProject(
    "llm-queue",
    ["test/integration/llm/agent.test.ts", "test/integration/llm/agent-compensation.test.ts"],
    [],
    {
      ...provider,
      INLINE_PURE_TOOLS: "false",
    },
  );
  // Node-side suites start their own `wrangler dev`: after the in-runtime suites, one file at a time.
  const node = (name: string, include: string[], groupOrder: number) => ({
    test: {
      name,
      include,
      environment: "node",
      testTimeout: 180_000,
      hookTimeout: 120_000,
      fileParallelism: false,
      sequence: { groupOrder },
    },
  });
  const e2e = node("e2e", ["test/e2e/**/*.test.ts"], 1);
  const browser = node("browser", ["test/browser/**/*.test.ts"], 2);
  return { test: { projects: [workers, queue, tight, llm, llmQueue, e2e, browser] } };
});
