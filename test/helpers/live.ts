import type { LiveMessage, RunEvent } from "../../src/contracts/run";
import { api } from "./api";

export interface LiveSession {
  messages: LiveMessage[];
  /** Resolves with the close code once the server closes the socket. */
  closed: Promise<number>;
  /** Resolves once `n` messages have arrived. */
  received(n: number): Promise<void>;
  close(): void;
}

/** Opens `GET …/live` as a WebSocket client; every wait fails after `timeoutMs` instead of hanging. */
export async function watch(runId: string, opts: { after?: number; timeoutMs?: number; headers?: HeadersInit } = {}) {
  const query = opts.after === undefined ? "" : `?after=${opts.after}`;
  const headers = new Headers(opts.headers);
  headers.set("Upgrade", "websocket");
  const res = await api(`/api/v1/runs/${runId}/live${query}`, { headers });
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) throw new Error(`expected 101, got ${res.status}: ${await res.text()}`);
  ws.accept();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const messages: LiveMessage[] = [];
  const waiters: (() => void)[] = [];
  ws.addEventListener("message", (e) => {
    messages.push(JSON.parse(e.data as string) as LiveMessage);
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket not closed after ${timeoutMs} ms`)), timeoutMs);
    ws.addEventListener("close", (e) => {
      clearTimeout(timer);
      resolve(e.code);
    });
  });
  const received = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${messages.length} of ${n} messages`)), timeoutMs);
      const check = () => {
        if (messages.length >= n) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  const session: LiveSession = { messages, closed, received, close: () => ws.close(1000, "client done") };
  return { session, response: res };
}

export const eventsOf = (messages: LiveMessage[]): RunEvent[] =>
  messages.flatMap((m) => (m.type === "event" ? [m.event] : []));

/**
 * Runs an agent step behind an approval and watches it live until the run ends: the approval
 * holds the run until the watcher is in, so the model writes only then. Returns what the
 * watcher received.
 */
export async function watchAgentAfterApproval(key: string): Promise<LiveMessage[]> {
  const created = await api("/api/v1/runs", {
    method: "POST",
    key,
    json: {
      prompt: "stream",
      plan: {
        steps: [
          { step_number: 1, tool_name: "approval", tool_input: { message: "go?" } },
          { step_number: 2, tool_name: "agent", tool_input: { goal: "say it" }, depends_on: [1] },
        ],
      },
    },
  });
  const { run_id } = (await created.json()) as { run_id: string };
  const { session } = await watch(run_id, { headers: { Authorization: `Bearer ${key}` }, timeoutMs: 20_000 });
  await session.received(1); // the snapshot: the watcher is in
  const approved = await api(`/api/v1/runs/${run_id}/steps/1/approve`, { method: "POST", key, json: {} });
  if (approved.status !== 200) throw new Error(`approve answered ${approved.status}`);
  const code = await session.closed;
  if (code !== 1000) throw new Error(`the stream closed with ${code}`);
  return session.messages;
}
