import { z } from "zod";

/** ISO-8601 UTC timestamp, as every timestamp on the wire. */
export const timestampSchema = z.iso.datetime().meta({ example: "2026-11-26T12:00:00.000Z" });

/** Any JSON value: tool inputs and outputs are arbitrary JSON. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export const jsonSchema: z.ZodType<Json> = z.json();

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
