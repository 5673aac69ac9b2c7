import { env } from "cloudflare:workers";
import { sha256Hex } from "../../src/api/middleware/auth";

/** Creates an API key for `tenant` the way key management stores it (only the hash), returning the secret. */
export async function apiKeyFor(tenant: string): Promise<string> {
  const key = `test-${tenant}-${crypto.randomUUID()}`;
  await env.DB.prepare("INSERT INTO api_keys (key_id, tenant, name, key_hash, created_at) VALUES (?, ?, ?, ?, ?)")
    .bind(crypto.randomUUID(), tenant, "test", await sha256Hex(key), new Date().toISOString())
    .run();
  return key;
}
