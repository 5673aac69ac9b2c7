/**
 * Counters of the operations Cloudflare bills a run by, for the benchmark's cost table: Worker
 * invocations, Durable Object requests and the rows their SQLite storage reads and writes, D1
 * rows read and written, queue messages written, read and deleted. They live in the isolate
 * (incrementing one is a map update) and are read through `GET /api/v1/admin/counters`, which
 * exists only when `BENCH_COUNTERS=true`. Under `wrangler dev` the Worker and its Durable Objects
 * share one isolate, so one read sees everything.
 */
export type Counter =
  | "worker_invocations"
  | "do_requests"
  | "do_rows_read"
  | "do_rows_written"
  | "d1_queries"
  | "d1_rows_read"
  | "d1_rows_written"
  | "queue_messages_written"
  | "queue_messages_read"
  | "queue_messages_deleted"
  | "queue_messages_retried";

const counts = new Map<Counter, number>();

export function count(name: Counter, n = 1): void {
  if (n > 0) counts.set(name, (counts.get(name) ?? 0) + n);
}

/** Every counter (zeros included), and with `reset` starts them all again. */
export function readCounters(reset = false): Record<Counter, number> {
  const names: Counter[] = [
    "worker_invocations",
    "do_requests",
    "do_rows_read",
    "do_rows_written",
    "d1_queries",
    "d1_rows_read",
    "d1_rows_written",
    "queue_messages_written",
    "queue_messages_read",
    "queue_messages_deleted",
    "queue_messages_retried",
  ];
  const out = Object.fromEntries(names.map((n) => [n, counts.get(n) ?? 0])) as Record<Counter, number>;
  if (reset) counts.clear();
  return out;
}

/** A Durable Object stub whose every call (RPC method or fetch) counts as a request. */
export function countedStub<T extends object>(stub: T): T {
  return new Proxy(stub, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function" || prop === "then") return value;
      return (...args: unknown[]) => {
        count("do_requests");
        // Reflect.apply: an RPC stub's method would take `.apply` for a remote method's name.
        return Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
      };
    },
  });
}

/** A Durable Object's SQLite handle that counts the rows its statements read and write. */
export function countedSql(sql: SqlStorage): SqlStorage {
  return new Proxy(sql, {
    get(target, prop, receiver) {
      if (prop !== "exec") return Reflect.get(target, prop, receiver);
      return (query: string, ...bindings: SqlStorageValue[]) => {
        const cursor = target.exec(query, ...bindings);
        // Writes happen at exec; reads as the cursor is consumed (counted when it is).
        count("do_rows_written", cursor.rowsWritten);
        return new Proxy(cursor, {
          get(c, p, r) {
            const v = Reflect.get(c, p, r);
            if (p !== "toArray" && p !== "one" && p !== Symbol.iterator && p !== "raw")
              return typeof v === "function" ? v.bind(c) : v;
            return (...a: unknown[]) => {
              const result = (v as (...x: unknown[]) => unknown).apply(c, a);
              if (p === Symbol.iterator || p === "raw") return result;
              count("do_rows_read", c.rowsRead);
              return result;
            };
          },
        });
      };
    },
  });
}

type Meta = { meta?: { rows_read?: number; rows_written?: number } };
const fromMeta = (r: unknown) => {
  const m = (r as Meta | null)?.meta;
  count("d1_queries");
  count("d1_rows_read", m?.rows_read ?? 0);
  count("d1_rows_written", m?.rows_written ?? 0);
};

function countedStatement(stmt: D1PreparedStatement): D1PreparedStatement {
  return new Proxy(stmt, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop === "bind") return (...args: unknown[]) => countedStatement(value.apply(target, args));
      if (prop === "all" || prop === "run") {
        return async (...args: unknown[]) => {
          const r = await value.apply(target, args);
          fromMeta(r);
          return r;
        };
      }
      if (prop === "first" || prop === "raw") {
        // No metadata comes back: count the rows returned as read (a lower bound).
        return async (...args: unknown[]) => {
          const r = await value.apply(target, args);
          count("d1_queries");
          count("d1_rows_read", Array.isArray(r) ? r.length : r === null ? 0 : 1);
          return r;
        };
      }
      return value.bind(target);
    },
  });
}

/** A D1 binding that counts queries and the rows D1 reports reading and writing. */
export function countedD1(db: D1Database): D1Database {
  return new Proxy(db, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === "prepare") return (query: string) => countedStatement(target.prepare(query));
      if (prop === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements);
          for (const r of results) fromMeta(r);
          return results;
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A queue producer that counts the messages it writes. */
export function countedQueue<T>(queue: Queue<T>): Queue<T> {
  return new Proxy(queue, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === "send") {
        return (...args: Parameters<Queue<T>["send"]>) => {
          count("queue_messages_written");
          return target.send(...args);
        };
      }
      if (prop === "sendBatch") {
        return (messages: Iterable<MessageSendRequest<T>>, options?: QueueSendBatchOptions) => {
          const list = [...messages];
          count("queue_messages_written", list.length);
          return target.sendBatch(list, options);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Whether this deployment counts (the benchmark starts Crane with `BENCH_COUNTERS=true`). */
export const counting = (env: { BENCH_COUNTERS?: string }): boolean => env.BENCH_COUNTERS === "true";

const wrapped = new WeakMap<object, object>();

/** `env` with its D1 binding and queue producers counted, when counting; else `env` itself. */
export function countedEnv<
  E extends { BENCH_COUNTERS?: string; DB: D1Database; STEPS: Queue<never>; ARCHIVE: Queue<never> },
>(env: E): E {
  if (!counting(env)) return env;
  const cached = wrapped.get(env);
  if (cached) return cached as E;
  const out = { ...env, DB: countedD1(env.DB), STEPS: countedQueue(env.STEPS), ARCHIVE: countedQueue(env.ARCHIVE) };
  wrapped.set(env, out);
  return out;
}

/** A delivered batch whose messages count as read, and as deleted (acked) or retried. */
export function countedBatch<T>(batch: MessageBatch<T>): MessageBatch<T> {
  count("queue_messages_read", batch.messages.length);
  const messages = batch.messages.map(
    (m) =>
      new Proxy(m, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (prop === "ack") {
            return () => {
              count("queue_messages_deleted");
              target.ack();
            };
          }
          if (prop === "retry") {
            return (options?: QueueRetryOptions) => {
              count("queue_messages_retried");
              target.retry(options);
            };
          }
          return typeof value === "function" ? value.bind(target) : value;
        },
      }),
  );
  return new Proxy(batch, {
    get(target, prop, receiver) {
      if (prop === "messages") return messages;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
