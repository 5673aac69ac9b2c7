import { z } from "zod";
import { jsonObjectSchema, presentJsonSchema, timestampSchema } from "./common";

export const agentCallStatusSchema = z.enum(["pending", "running", "succeeded", "failed"]);

/** One tool call an `agent` step's model asked for (docs/api.md, "Agent steps"). */
export const agentCallSchema = z
  .object({
    call: z.number().int().meta({ description: "1, 2, … in the order the model asked" }),
    turn: z.number().int(),
    tool_name: z.string(),
    tool_input: jsonObjectSchema,
    status: agentCallStatusSchema,
    output: presentJsonSchema.nullable(),
    error: z.string().nullable(),
    attempts: z.number().int(),
    started_at: timestampSchema.nullable(),
    completed_at: timestampSchema.nullable(),
  })
  .meta({ id: "AgentCall" });
export type AgentCall = z.infer<typeof agentCallSchema>;
