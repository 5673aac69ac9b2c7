import { z } from "zod";
import { timestampSchema } from "./common";

/**
 * Names a tenant may not take: what a missing value stringifies to (`undefined`, `null`, …), so that
 * a bug that loses a tenant can never address a real one, and names Crane keeps for itself.
 */
export const RESERVED_TENANTS: ReadonlySet<string> = new Set([
  "undefined",
  "null",
  "nan",
  "none",
  "admin",
  "system",
  "crane",
  "health",
]);

/** Tenant names appear in Durable Object names (`<tenant>:<run_id>`), so they are kept to a safe alphabet. */
export const tenantSchema = z
  .string({ error: (iss) => (iss.input === undefined ? "tenant is required" : "tenant must be a string") })
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "tenant must be 1–64 letters, digits, '-' or '_'")
  .refine((t) => !RESERVED_TENANTS.has(t.toLowerCase()), "tenant name is reserved");

export const createApiKeySchema = z
  .object({
    tenant: tenantSchema,
    name: z
      .string({ error: (iss) => (iss.input === undefined ? "name is required" : "name must be a string") })
      .trim()
      .min(1, "name must not be empty")
      .max(100, "name must be at most 100 characters"),
    rate_limit: z
      .object({
        requests: z.number().int().min(1).max(1_000_000),
        window_s: z.number().int().min(1).max(86_400),
      })
      .strict()
      .optional(),
    max_active_runs: z.number().int().min(1).max(100_000).optional(),
  })
  .strict()
  .meta({ id: "CreateApiKey" });

export const apiKeySchema = z
  .object({
    key_id: z.string(),
    tenant: z.string(),
    name: z.string(),
    created_at: timestampSchema,
    revoked_at: timestampSchema.nullable(),
    rate_limit: z.object({ requests: z.number().int(), window_s: z.number().int() }).nullable(),
    max_active_runs: z.number().int().nullable(),
  })
  .meta({ id: "ApiKey" });
export type ApiKeyView = z.infer<typeof apiKeySchema>;

export const createdApiKeySchema = apiKeySchema
  .extend({ api_key: z.string().meta({ description: "The secret; shown only in this response" }) })
  .meta({ id: "CreatedApiKey" });

export const listApiKeysQuerySchema = z.object({ tenant: tenantSchema });
/** `{key_id}` in a path: any value that names no key is a 404 (never a 400), whatever its length. */
export const keyIdParamSchema = z.object({
  key_id: z.string().meta({ param: { name: "key_id", in: "path" } }),
});
