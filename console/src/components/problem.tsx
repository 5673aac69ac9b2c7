import { CraneError } from "../client";

/** An API error as its problem's `detail` (and field errors), never a blank page. */
export function ProblemView({ error, title }: { error: unknown; title?: string }) {
  if (error === null || error === undefined) return null;
  const problem = error instanceof CraneError ? error.problem : null;
  const detail = problem?.detail ?? (error instanceof Error ? error.message : String(error));
  // A field error the detail already states word for word is not listed again.
  const errors = (problem?.errors ?? []).filter((e) => !detail.includes(e.message));
  return (
    <div className="problem" role="alert">
      {title ? <strong>{title}: </strong> : null}
      <span className="detail">{detail}</span>
      {problem && problem.status > 0 ? <span className="status-code"> ({problem.status})</span> : null}
      {errors.length ? (
        <ul>
          {errors.map((e) => (
            <li key={`${e.path}:${e.message}`}>
              <code>{e.path}</code>: {e.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
