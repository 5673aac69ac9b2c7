import { z } from "zod";
import { nonRetryable, ToolError } from "../errors";
import { DEFAULT_RETRY, defineTool } from "../types";
import { checkUrl, parseAllowlist } from "./url-policy";

/** Largest body kept; the rest is cut and `truncated` is set (a step's output is capped at 64 KiB). */
export const MAX_BODY_BYTES = 32 * 1024;
export const MAX_REDIRECTS = 3;
/** Response headers passed back; everything else (cookies included) is dropped. */
const KEPT_HEADERS = ["content-type", "content-length", "etag", "last-modified", "cache-control"];

async function readCapped(res: Response): Promise<{ body: string; truncated: boolean }> {
  if (!res.body) return { body: "", truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const room = MAX_BODY_BYTES - size;
    if (value.byteLength > room) {
      chunks.push(value.subarray(0, room));
      size += room;
      truncated = true;
      await reader.cancel();
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return { body: new TextDecoder().decode(bytes), truncated };
}

export const httpGetTool = defineTool({
  name: "http_get",
  description:
    "Fetches an https URL on the deployment's allowlist (HTTP_GET_ALLOWLIST): status, a few headers, " +
    `and up to ${MAX_BODY_BYTES} bytes of body. No IP literals, credentials or non-default ports; redirects are re-checked.`,
  inputSchema: z.object({ url: z.string().min(1).max(2048) }).strict(),
  effects: { resource: null, mode: "none" },
  retry: DEFAULT_RETRY,
  execute: async ({ url }, { env, signal }) => {
    const allowlist = parseAllowlist(env.HTTP_GET_ALLOWLIST);
    let target = checkUrl(url, allowlist);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      // Nothing of the caller's request is forwarded: fixed headers only.
      const res = await fetch(target.toString(), {
        method: "GET",
        redirect: "manual",
        signal,
        headers: { "User-Agent": "crane-http-get/1", Accept: "*/*" },
      });
      const location = res.headers.get("Location");
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        target = checkUrl(new URL(location, target).toString(), allowlist);
        continue;
      }
      if (res.status >= 500 || res.status === 429) {
        await res.body?.cancel();
        throw new ToolError(`Upstream answered ${res.status}`, { retryable: true, code: "upstream_unavailable" });
      }
      const { body, truncated } = await readCapped(res);
      const headers: Record<string, string> = {};
      for (const name of KEPT_HEADERS) {
        const value = res.headers.get(name);
        if (value !== null) headers[name] = value;
      }
      return { status: res.status, url: target.toString(), headers, body, truncated };
    }
    throw nonRetryable(`More than ${MAX_REDIRECTS} redirects`, "too_many_redirects");
  },
});
