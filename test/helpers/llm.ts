import { vi } from "vitest";

/**
 * An OpenAI-compatible provider at https://llm.test/v1, faked at the HTTP boundary: global fetch
 * answers for llm.test, and Crane's own client (request building, streaming, parsing) runs as in
 * production. Each turn of the script answers one request, in order; the last repeats.
 */
export type Turn =
  | {
      /** `raw` is the arguments' text as the provider sends it (when it is not `arguments` as JSON). */
      tool_calls: ({ name: string; arguments: unknown } | { name: string; raw: string })[];
      tokens?: number;
      /** null: the answer reports no usage at all. */
      usage?: Usage | null;
    }
  | { answer: string; tokens?: number; chunks?: string[]; usage?: Usage | null }
  | { status: number; headers?: Record<string, string> }
  /** Any answer at all, as the provider sends it (a body of `null`, a stream of odd chunks). */
  | { respond: (init?: RequestInit) => Response }
  | "hang";

export interface SeenRequest {
  tenantHint: string;
  body: {
    model: string;
    stream?: boolean;
    max_tokens: number;
    tools?: { type: string; function: { name: string; parameters: unknown } }[];
    messages: { role: string; content: string | null; tool_call_id?: string; tool_calls?: unknown[] }[];
  };
}

/** The usage a provider reports; a scripted turn may report any numbers (negative, 1e308). */
type Usage = { prompt_tokens: number; completion_tokens: number };
const usageOf = (turn: { tokens?: number; usage?: Usage | null }): Usage | undefined => {
  if (turn.usage === null) return undefined;
  const tokens = turn.tokens ?? 50;
  return turn.usage ?? { prompt_tokens: Math.ceil(tokens / 2), completion_tokens: Math.floor(tokens / 2) };
};

function sse(events: unknown[]): Response {
  const text = `${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("")}data: [DONE]\n\n`;
  return new Response(text, { headers: { "Content-Type": "text/event-stream" } });
}

function reply(turn: Exclude<Turn, "hang">, stream: boolean, init?: RequestInit): Response {
  if ("respond" in turn) return turn.respond(init);
  if ("status" in turn) return new Response("upstream says no", { status: turn.status, headers: turn.headers ?? {} });
  const usage = usageOf(turn);
  if ("answer" in turn) {
    if (!stream) {
      return Response.json({
        model: "test-model",
        choices: [{ message: { role: "assistant", content: turn.answer } }],
        usage,
      });
    }
    const chunks = turn.chunks ?? [turn.answer];
    return sse([
      ...chunks.map((c) => ({ model: "test-model", choices: [{ delta: { content: c } }] })),
      { model: "test-model", choices: [], usage },
    ]);
  }
  const calls = turn.tool_calls.map((c, i) => ({
    id: `fake_${i}`,
    type: "function",
    function: { name: c.name, arguments: "raw" in c ? c.raw : JSON.stringify(c.arguments) },
  }));
  if (!stream) {
    return Response.json({
      model: "test-model",
      choices: [{ message: { role: "assistant", content: null, tool_calls: calls } }],
      usage,
    });
  }
  // Streamed tool calls arrive in pieces, assembled by index.
  return sse([
    ...calls.flatMap((c, index) => [
      {
        choices: [{ delta: { tool_calls: [{ index, id: c.id, function: { name: c.function.name, arguments: "" } }] } }],
      },
      { choices: [{ delta: { tool_calls: [{ index, function: { arguments: c.function.arguments } }] } }] },
    ]),
    { model: "test-model", choices: [], usage },
  ]);
}

/** Installs the fake; returns what each request asked for. Restore with `vi.restoreAllMocks()`. */
export function scriptedProvider(...script: Turn[]): SeenRequest[] {
  const seen: SeenRequest[] = [];
  const real = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (!url.startsWith("https://llm.test/")) return real(input, init);
    const body = JSON.parse(String(init?.body)) as SeenRequest["body"];
    seen.push({ tenantHint: "", body });
    const turn = script[Math.min(seen.length - 1, script.length - 1)] as Turn;
    if (turn === "hang") {
      return new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    }
    return reply(turn, body.stream === true, init);
  });
  return seen;
}
