import { expect, it } from "vitest";
import { api, DEV_KEY } from "../../helpers/api";

// This project keeps wrangler.toml's limiter: 20 failed authentications per 60 s per address and key prefix.
const LIMIT = 20;

const from = (ip: string, key: string) => api("/api/v1/runs", { key, headers: { "CF-Connecting-IP": ip } });

it("throttles failed authentication per client address: 429 + Retry-After, before any key lookup", async () => {
  const ip = "198.51.100.10";
  for (let i = 0; i < LIMIT; i++) {
    expect((await from(ip, `bad-${crypto.randomUUID()}`)).status, `attempt ${i + 1}`).toBe(401);
  }
  const throttled = await from(ip, `bad-${crypto.randomUUID()}`);
  expect(throttled.status).toBe(429);
  const retry = Number(throttled.headers.get("Retry-After"));
  expect(retry).toBeGreaterThanOrEqual(1);
  expect(retry).toBeLessThanOrEqual(60);
  expect(((await throttled.json()) as { detail: string }).detail).toMatch(
    /^Too many failed authentications; retry in \d+ s$/,
  );
  // The address is refused before its key is looked at, valid or not; other addresses are not.
  expect((await from(ip, DEV_KEY)).status).toBe(429);
  expect((await from("198.51.100.11", DEV_KEY)).status).toBe(200);
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
