import type { z } from "zod";
import { problemSchema } from "../contracts/common";

/** An OpenAPI response entry for a problem+json error. */
export const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: problemSchema } },
});

/** An OpenAPI response entry for a JSON body. */
export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
