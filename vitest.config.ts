import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Tests run inside workerd with the real bindings from wrangler.toml: Durable Objects, the
// queue (producer and consumer), D1 and WebSockets. Only ENVIRONMENT is overridden.
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
    // The fault suites inject timeouts by the hundred; the breaker has its own project below.
    BREAKER_THRESHOLD: "1000000",
    HTTP_GET_ALLOWLIST: "api.example.com,*.allowed.test",
    // The fault suites aim at calculator steps on the queue; the "inline" project below runs
    // the end-to-end suites with pure tools inside the coordinator, the production default.
    INLINE_PURE_TOOLS: "false",
    TEST_MIGRATIONS: migrations,
    // Replays a soak schedule: SOAK_SEED=123 npm test
    SOAK_SEED: process.env.SOAK_SEED ?? "",
  };
  const workersProject = (name: string, include: string[], exclude: string[], extra: Record<string, string> = {}) => ({
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: { bindings: { ...bindings, ...extra } },
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
  const BREAKER = "test/integration/breaker.test.ts";
  const LLM = "test/integration/llm-planner.test.ts";
  const INLINE = ["runs", "live", "hostile", "history"].map((f) => `test/integration/${f}.test.ts`);
  const workers = workersProject(
    "workers",
    ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
    [BREAKER, LLM],
  );
  // An OpenAI-compatible provider at https://llm.test/v1, faked at the HTTP boundary by the tests.
  const llm = workersProject("llm", [LLM], [], {
    LLM_BASE_URL: "https://llm.test/v1",
    LLM_MODEL: "test-model",
    LLM_API_KEY: "sk-test",
    LLM_TIMEOUT_MS: "300",
    INLINE_PURE_TOOLS: "true",
  });
  // The circuit breaker trips after 3 failures and cools down for 1 s here.
  const breaker = workersProject("breaker", [BREAKER], [], { BREAKER_THRESHOLD: "3", BREAKER_COOLDOWN_MS: "1000" });
  // End-to-end tests drive `wrangler dev` from Node, as a user would, and kill it.
  const e2e = {
    test: {
      name: "e2e",
      include: ["test/e2e/**/*.test.ts"],
      environment: "node",
      testTimeout: 180_000,
      hookTimeout: 60_000,
    },
  };
  const inline = workersProject("inline", INLINE, [], { INLINE_PURE_TOOLS: "true" });
  return { test: { projects: [workers, inline, breaker, llm, e2e] } };
});
