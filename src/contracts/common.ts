import { z } from "zod";

/** ISO-8601 UTC timestamp, as every timestamp on the wire. */
export const timestampSchema = z.iso.datetime().meta({ example: "2026-11-26T12:00:00.000Z" });

/** Any JSON value: tool inputs and outputs are arbitrary JSON. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
/**
 * Any JSON value. Declared as `unknown` because the OpenAPI generator cannot walk zod's
 * recursive `z.json()` (it overflows the stack); the values come from `JSON.parse`, so they
 * are JSON by construction.
 */
export const jsonSchema = z.unknown().meta({ description: "Any JSON value" }) as unknown as z.ZodType<Json>;
/**
 * Any JSON value, in a field that is always present (`null` when there is none yet): the OpenAPI
 * document lists it under `required`, which it cannot do for `jsonSchema`, whose `unknown` also
 * admits a missing field.
 */
export const presentJsonSchema = (z.unknown() as unknown as z.ZodType<Json>)
  .refine((v) => v !== undefined, "required")
  .meta({ description: "Any JSON value" });
/** A JSON object, as tool inputs and event data are. */
export const jsonObjectSchema = z.record(z.string(), jsonSchema);

/** RFC 9457 problem details, the body of every error response. */
export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: "Problem", description: "RFC 9457 problem details" });
export type Problem = z.infer<typeof problemSchema>;

/** The `Idempotency-Key` request header (POST /runs, rerun, signals): 1–255 printable ASCII characters. */
export const IDEMPOTENCY_KEY_MESSAGE = "Idempotency-Key must be 1–255 printable ASCII characters";
export const idempotencyKeySchema = z.string().regex(/^[ -~]{1,255}$/, IDEMPOTENCY_KEY_MESSAGE);

/**
 * An integer query parameter: digits only (`1e1`, ` 10`, `0x10` and `10.0` are refused), within
 * [min, max], with one message for every way it can be wrong.
 */
export function queryInt(message: string, min: number, max: number) {
  return (
    z
      .string({ error: message })
      .regex(/^\d{1,16}$/, message) // 16 digits reach Number.MAX_SAFE_INTEGER; the range check refuses the rest
      .transform(Number)
      .pipe(z.number().int(message).min(min, message).max(max, message))
      // Described as what it means, an integer in [min, max], not as the digits the query string carries.
      .meta({ type: "integer", minimum: min, maximum: max, pattern: undefined })
  );
}

/** `queryInt` with the value taken when the parameter is absent (the document names it: the type above hides it). */
export function queryIntOr(message: string, min: number, max: number, fallback: number) {
  return queryInt(message, min, max).default(fallback).meta({ default: fallback });
}
