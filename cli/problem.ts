import type { CraneError } from "../src/client";
import { printable } from "./format";

/**
 * A refused request as the CLI prints it: `status title: detail`, then the problem's other
 * errors, each once. The detail already names the first error (the server's `summarize`), as
 * `path: message` or, when the message starts with its path or the path is empty, the message
 * alone, so an error the detail contains either way is not repeated. Server text, so printable.
 */
export function describeProblem(err: CraneError): string {
  const { title, detail } = err.problem;
  const lines = [`${err.status} ${title}: ${detail}`];
  const errors = Array.isArray(err.problem.errors) ? err.problem.errors : [];
  errors.forEach((e, i) => {
    if (typeof e !== "object" || e === null || typeof e.message !== "string") return;
    const path = typeof e.path === "string" ? e.path : "";
    const text = path && !e.message.startsWith(path) ? `${path}: ${e.message}` : e.message;
    // Only the first error is the one the detail names: a later one with the same message but
    // another path is a problem of its own.
    const named = detail.includes(text) || (i === 0 && detail.includes(e.message));
    if (!named) lines.push(`  ${text}`);
  });
  if (err.requestId && err.status >= 500) lines.push(`  (request id ${err.requestId})`);
  return printable(lines.join("\n"));
}
