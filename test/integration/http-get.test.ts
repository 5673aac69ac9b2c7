import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ToolError } from "../../src/tools/errors";
import { httpGetTool, MAX_BODY_BYTES } from "../../src/tools/http-get";
import { checkUrl } from "../../src/tools/http-get/url-policy";
import type { ToolContext } from "../../src/tools/types";

// The test config allows api.example.com and *.allowed.test. The upstream is faked at the HTTP
// boundary (global fetch); the tool's own code runs unchanged.
const ALLOW = ["api.example.com", "*.allowed.test"];
const ctx = (): ToolContext => ({
  signal: new AbortController().signal,
  idempotencyKey: "r:1",
  tenant: "t",
  runId: "r",
  stepNumber: 1,
  attempt: 1,
  env,
});

afterEach(() => vi.restoreAllMocks());

function rejects(url: string, message: RegExp) {
  let caught: unknown;
  try {
    checkUrl(url, ALLOW);
  } catch (err) {
    caught = err;
  }
  expect(caught, url).toBeInstanceOf(ToolError);
  expect((caught as ToolError).retryable).toBe(false);
  expect((caught as Error).message).toMatch(message);
}

describe("http_get URL policy (SSRF)", () => {
  it.each([
    ["http://api.example.com/", /Only https/],
    ["ftp://api.example.com/", /Only https/],
    ["file:///etc/passwd", /Only https/],
    ["javascript:alert(1)", /Only https/],
    ["https://user:pw@api.example.com/", /credentials/],
    ["https://api.example.com@evil.test/", /credentials/],
    ["https://api.example.com:8443/", /default https port/],
    ["https://127.0.0.1/", /IP address literals/],
    ["https://[::1]/", /IP address literals/],
    ["https://2130706433/", /IP address literals/],
    ["https://0x7f.0.0.1/", /IP address literals/],
    ["https://0177.0.0.1/", /IP address literals/],
    ["https://169.254.169.254/latest/meta-data/", /IP address literals/],
    ["https://localhost/", /not on the http_get allowlist/],
    ["https://evil.test/", /not on the http_get allowlist/],
    ["https://api.example.com.evil.test/", /not on the http_get allowlist/],
    ["https://allowed.test/", /not on the http_get allowlist/],
    ["not a url", /not a valid URL/],
  ])("refuses %s", (url, message) => rejects(url, message));

  it("accepts allowlisted hosts, including subdomains of a wildcard", () => {
    expect(checkUrl("https://api.example.com/v1?q=1", ALLOW).hostname).toBe("api.example.com");
    expect(checkUrl("https://a.b.allowed.test/", ALLOW).hostname).toBe("a.b.allowed.test");
    expect(checkUrl("https://API.EXAMPLE.COM./x", ALLOW).pathname).toBe("/x");
  });
});

describe("http_get against a faked upstream", () => {
  it("returns status, kept headers and body, and forwards none of the caller's headers", async () => {
    const fetchSpy = vi
      .spyOn(globalThis, "fetch")
      .mockResolvedValue(
        new Response("hello", { status: 200, headers: { "Content-Type": "text/plain", "Set-Cookie": "s=1" } }),
      );
    const out = await httpGetTool.execute({ url: "https://api.example.com/x" }, ctx());
    expect(out).toEqual({
      status: 200,
      url: "https://api.example.com/x",
      headers: { "content-type": "text/plain" },
      body: "hello",
      truncated: false,
    });
    const init = fetchSpy.mock.calls[0]?.[1] as RequestInit;
    expect(init.redirect).toBe("manual");
    expect(Object.keys(init.headers as Record<string, string>).sort()).toEqual(["Accept", "User-Agent"]);
  });

  it("re-checks every redirect and refuses one that leaves the allowlist", async () => {
    vi.spyOn(globalThis, "fetch").mockResolvedValue(
      new Response(null, { status: 302, headers: { Location: "https://169.254.169.254/latest" } }),
    );
    await expect(httpGetTool.execute({ url: "https://api.example.com/" }, ctx())).rejects.toThrow(
      /IP address literals/,
    );
  });

  it("follows an allowed redirect, and gives up after 3", async () => {
    const fetchSpy = vi
      .spyOn(globalThis, "fetch")
      .mockResolvedValueOnce(new Response(null, { status: 301, headers: { Location: "/next" } }))
      .mockResolvedValueOnce(new Response("done", { status: 200 }));
    const out = (await httpGetTool.execute({ url: "https://api.example.com/start" }, ctx())) as {
      url: string;
      body: string;
    };
    expect(out).toMatchObject({ url: "https://api.example.com/next", body: "done" });
    fetchSpy.mockResolvedValue(new Response(null, { status: 302, headers: { Location: "/again" } }));
    await expect(httpGetTool.execute({ url: "https://api.example.com/loop" }, ctx())).rejects.toThrow(
      /More than 3 redirects/,
    );
  });

  it("caps the body and marks it truncated", async () => {
    vi.spyOn(globalThis, "fetch").mockResolvedValue(new Response("x".repeat(MAX_BODY_BYTES * 3), { status: 200 }));
    const out = (await httpGetTool.execute({ url: "https://api.example.com/big" }, ctx())) as {
      body: string;
      truncated: boolean;
    };
    expect(out.body.length).toBe(MAX_BODY_BYTES);
    expect(out.truncated).toBe(true);
  });

  it("treats 5xx and 429 as retryable, 4xx as an answer", async () => {
    const spy = vi.spyOn(globalThis, "fetch").mockResolvedValue(new Response("down", { status: 503 }));
    const err = await httpGetTool.execute({ url: "https://api.example.com/" }, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).retryable).toBe(true);
    spy.mockResolvedValue(new Response("nope", { status: 404 }));
    expect(await httpGetTool.execute({ url: "https://api.example.com/" }, ctx())).toMatchObject({
      status: 404,
      body: "nope",
    });
  });
});
