import { z } from "zod";
import { jsonSchema, timestampSchema } from "./common";
import { LIMITS } from "./limits";

/** What a waiting step waits for (docs/api.md, "Waiting"). */
export const waitKindSchema = z.enum(["timer", "approval", "signal"]);
export type WaitKind = z.infer<typeof waitKindSchema>;

/** Signal names: safe in a URL path segment and a log line. */
export const signalNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, "signal name must be 1–64 letters, digits, '_', '.' or '-'");

export const waitingInfoSchema = z
  .object({
    kind: waitKindSchema,
    since: timestampSchema,
    until: timestampSchema.nullable().meta({ description: "When the timer fires or the wait times out" }),
    message: z.string().optional().meta({ description: "approval: what is asked" }),
    name: z.string().optional().meta({ description: "signal: the name it waits for" }),
    callback_url: z
      .string()
      .optional()
      .meta({ description: "approval and signal: a single-use URL a third party may POST to without an API key" }),
  })
  .meta({ id: "Waiting" });
export type WaitingInfo = z.infer<typeof waitingInfoSchema>;

export const waitingForSchema = waitingInfoSchema.extend({ step_number: z.number().int() }).meta({ id: "WaitingFor" });
export type WaitingFor = z.infer<typeof waitingForSchema>;

/** Any JSON value of at most `LIMITS.maxSignalDataBytes` when serialised. */
export const signalDataSchema = jsonSchema.refine(
  (v) => new TextEncoder().encode(JSON.stringify(v ?? null)).length <= LIMITS.maxSignalDataBytes,
  `data must be at most ${LIMITS.maxSignalDataBytes} bytes as JSON`,
);

const text = (name: string) =>
  z
    .string({ error: `${name} must be a string` })
    .max(LIMITS.maxMessageChars, `${name} must be at most ${LIMITS.maxMessageChars} characters`);

export const approveBodySchema = z
  .object({ comment: text("comment").optional(), data: signalDataSchema.optional() })
  .strict()
  .meta({ id: "Approve" });
export type ApproveBody = z.infer<typeof approveBodySchema>;

export const rejectBodySchema = z
  .object({ reason: text("reason").optional() })
  .strict()
  .meta({ id: "Reject" });
export type RejectBody = z.infer<typeof rejectBodySchema>;

export const signalBodySchema = z.object({ data: signalDataSchema.optional() }).strict().meta({ id: "Signal" });
export type SignalBody = z.infer<typeof signalBodySchema>;

export const signalAnswerSchema = z
  .object({
    run_id: z.string(),
    name: z.string(),
    delivered_to: z.number().int().nullable().meta({ description: "The step it completed, or null when buffered" }),
    buffered: z.boolean(),
  })
  .meta({ id: "SignalAccepted" });
export type SignalAnswer = z.infer<typeof signalAnswerSchema>;

/** A callback URL's body: a signal step takes `data`; an approval step needs `approve`. */
export const callbackBodySchema = z
  .object({
    approve: z.boolean().optional(),
    comment: text("comment").optional(),
    reason: text("reason").optional(),
    data: signalDataSchema.optional(),
  })
  .strict()
  .meta({ id: "Callback" });
export type CallbackBody = z.infer<typeof callbackBodySchema>;

export const callbackAnswerSchema = z
  .object({ run_id: z.string(), step_number: z.number().int(), accepted: z.literal(true) })
  .meta({ id: "CallbackAccepted" });
export type CallbackAnswer = z.infer<typeof callbackAnswerSchema>;

export const approvalSchema = z
  .object({
    run_id: z.string(),
    step_number: z.number().int(),
    message: z.string(),
    since: timestampSchema,
    timeout_at: timestampSchema.nullable(),
    prompt: z.string(),
  })
  .meta({ id: "Approval" });
export type Approval = z.infer<typeof approvalSchema>;

/** `{{token}}` of a callback URL: opaque, URL-safe. Any other string is an unknown token (404), however long. */
export const callbackTokenParamSchema = z.object({
  token: z.string().meta({ param: { name: "token", in: "path" } }),
});
/** Longer than any token a coordinator hands out: not looked up. */
export const MAX_CALLBACK_TOKEN = 200;
/** `{name}` of a signal in a path: the pattern of a signal step's name; anything else is a 400 naming it. */
export const signalNameParamSchema = z.object({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "name must be a signal name: 1–64 letters, digits, '_', '.' or '-'")
    .meta({ param: { name: "name", in: "path" }, example: "payment_received", minLength: 1, maxLength: 64 }),
});
