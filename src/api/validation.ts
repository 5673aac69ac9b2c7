import type { Hook } from "@hono/zod-openapi";
import type { z } from "zod";
import { ApiError } from "../http/problem";
import { formatPath } from "../plan/path";
import type { AppEnv } from "./types";

export function issuesOf(error: z.ZodError, prefix: PropertyKey[] = []) {
  return error.issues.map((i) => ({ path: formatPath([...prefix, ...i.path]), message: i.message }));
}

/** One sentence naming the first problem, and how many more there are. */
export function summarize(what: string, errors: { path: string; message: string }[]): string {
  const [first] = errors;
  if (!first) return `Invalid ${what}`;
  const named = first.path && !first.message.startsWith(first.path) ? `${first.path}: ${first.message}` : first.message;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more problem${errors.length > 2 ? "s" : ""})` : "";
  return `Invalid ${what}: ${named}${more}`;
}

/** Turns a failed zod validation into problem+json: 422 for a body, 400 for query, path or headers. */
export const validationHook: Hook<unknown, AppEnv, string, undefined> = (result) => {
  if (result.success) return;
  const errors = issuesOf(result.error);
  if (result.target === "json") throw new ApiError(422, summarize("request body", errors), { errors });
  const first = errors[0];
  const detail = first
    ? first.message.startsWith(first.path)
      ? first.message
      : `${first.path}: ${first.message}`
    : "Invalid parameter";
  throw new ApiError(400, detail, { errors });
};
