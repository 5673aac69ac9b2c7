import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { AUTH_FAILURE_LIMIT } from "../../../src/api/middleware/auth-throttle";
import { api, DEV_KEY } from "../../helpers/api";
import { apiKeyFor } from "../../helpers/tenants";

// This project keeps wrangler.toml's limiter: 100 failed authentications per 60 s per address and key prefix.
const LIMIT = 100;

it("the limit the 429's headers name is wrangler.toml's", () => {
  expect(AUTH_FAILURE_LIMIT).toBe(LIMIT);
});

const from = (ip: string, key: string) => api("/api/v1/runs", { key, headers: { "CF-Connecting-IP": ip } });

it("throttles failed authentication per client address: 429 + Retry-After, before any key lookup", async () => {
  const ip = "198.51.100.10";
  // A key that authenticated before the failures, and one that has not been used yet.
  const known = await apiKeyFor("t-throttle-known");
  const fresh = await apiKeyFor("t-throttle-fresh");
  const revoked = await apiKeyFor("t-throttle-revoked");
  expect((await from(ip, known)).status).toBe(200);
  expect((await from(ip, revoked)).status).toBe(200);
  for (let i = 0; i < LIMIT; i++) {
    expect((await from(ip, `bad-${crypto.randomUUID()}`)).status, `attempt ${i + 1}`).toBe(401);
  }
  const throttled = await from(ip, `bad-${crypto.randomUUID()}`);
  expect(throttled.status).toBe(429);
  const retry = Number(throttled.headers.get("Retry-After"));
  expect(retry).toBeGreaterThanOrEqual(1);
  expect(retry).toBeLessThanOrEqual(60);
  expect(throttled.headers.get("RateLimit-Policy")).toBe(`"auth-failures";q=${LIMIT};w=60`);
  expect(throttled.headers.get("RateLimit")).toBe(`"auth-failures";r=0;t=${retry}`);
  expect(((await throttled.json()) as { detail: string }).detail).toMatch(
    /^Too many failed authentications; retry in \d+ s$/,
  );
  // The address is refused before a key it has not proved is looked at, valid or not; other
  // addresses are not. A key that authenticated lately is no guess: another client's failures
  // from the same address (one NAT, one CI machine) do not lock it out — and it is still looked
  // up, so a revoked one stops at once. The development key costs no lookup and is never refused.
  expect((await from(ip, fresh)).status).toBe(429);
  expect((await from("198.51.100.11", fresh)).status).toBe(200);
  expect((await from(ip, known)).status).toBe(200);
  await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE tenant = ?")
    .bind(new Date().toISOString(), "t-throttle-revoked")
    .run();
  expect((await from(ip, revoked)).status).toBe(429);
  expect((await from("198.51.100.12", revoked)).status).toBe(401);
  expect((await from(ip, DEV_KEY)).status).toBe(200);
});

it("throttles failed authentication per key prefix, across addresses", async () => {
  const prefix = `crane_sk_${crypto.randomUUID().replaceAll("-", "").slice(0, 7)}`;
  const statuses: number[] = [];
  for (let i = 0; i <= LIMIT; i++) {
    statuses.push((await from(`203.0.113.${i + 1}`, `${prefix}${crypto.randomUUID()}`)).status);
  }
  expect(statuses.slice(0, LIMIT).every((s) => s === 401)).toBe(true);
  expect(statuses[LIMIT]).toBe(429);
});

it("a wrong admin token counts as a failed authentication too", async () => {
  const ip = "198.51.100.20";
  const statuses: number[] = [];
  for (let i = 0; i <= LIMIT; i++) {
    const res = await api("/api/v1/admin/api-keys?tenant=x", {
      key: `admin-guess-${crypto.randomUUID()}`,
      headers: { "CF-Connecting-IP": ip },
    });
    statuses.push(res.status);
  }
  expect(statuses.slice(0, LIMIT).every((s) => s === 401)).toBe(true);
  expect(statuses[LIMIT]).toBe(429);
});
