/**
 * `wrangler dev` runs two development tools inside the runtime unless told not to: the local
 * explorer, which wraps every SQLite-backed Durable Object class and writes each named object's
 * name into its storage when the object starts, and local observability, which streams the trace
 * of every invocation (each SQL statement, RPC and fetch a span) to a collector worker. Neither
 * runs when deployed, and together they cost Crane about a quarter of the runtime's CPU on calc-dag
 * and the floor a sixth to a quarter (`node bench/cpu.ts --dev-tooling` against `node bench/cpu.ts`):
 * the more calls and statements a run makes, the more they cost. So the benchmarks
 * start every engine (Crane, the floor, Workflows) with both off, the platform and nothing else;
 * `--dev-tooling` leaves them on, as `npm run dev` has them.
 *
 * Each benchmark entry point imports this; `wrangler dev` is started with the environment as it
 * is then (scripts/local-wrangler.ts reads it at each start).
 */
export const DEV_TOOLING = process.argv.includes("--dev-tooling");

if (!DEV_TOOLING) {
  process.env.X_LOCAL_EXPLORER = "false";
  process.env.X_LOCAL_OBSERVABILITY = "false";
}
