import { type FormEvent, useState } from "react";
import type { Json } from "../../../src/contracts/common";
import type { PlanStep } from "../../../src/contracts/plan";
import type { ExecutionLogEntry, Run, RunEvent } from "../../../src/contracts/run";
import { duration, FINISHED, json, time } from "../format";
import { navigate } from "../router";
import { useClient } from "../session";
import { ProblemView } from "./problem";
import { Status } from "./status";

/** The selected step: inputs, output, error, attempts, its events, and what can be done to it. */
export function StepPanel({
  run,
  step,
  entry,
  events,
  delta,
  onRun,
}: {
  run: Run;
  step: PlanStep;
  entry: ExecutionLogEntry | undefined;
  events: readonly RunEvent[];
  delta: string | undefined;
  onRun: (run: Run) => void;
}) {
  const n = step.step_number;
  const mine = events.filter((e) => e.step_number === n);
  return (
    <section className="panel step-panel" aria-labelledby="step-title" data-testid="step-panel">
      <h2 id="step-title">
        Step {n}: {step.tool_name} <Status status={entry?.status ?? "pending"} />
      </h2>
      {step.reasoning ? <p className="reasoning">{step.reasoning}</p> : null}
      <dl className="facts">
        <dt>Attempts</dt>
        <dd>{entry?.attempts ?? 0}</dd>
        <dt>Depends on</dt>
        <dd>{step.depends_on.length ? step.depends_on.map((d) => `#${d}`).join(", ") : "nothing"}</dd>
        <dt>Started</dt>
        <dd>{time(entry?.started_at)}</dd>
        <dt>Completed</dt>
        <dd>{time(entry?.completed_at)}</dd>
        <dt>Duration</dt>
        <dd>{duration(entry?.duration_ms)}</dd>
      </dl>
      {entry?.waiting ? <Waiting run={run} entry={entry} onRun={onRun} /> : null}
      {entry?.error ? (
        <div className="step-error">
          <h3>Error</h3>
          <pre>{entry.error}</pre>
        </div>
      ) : null}
      <h3>Input (resolved)</h3>
      <pre data-testid="step-input">{json(entry?.tool_input ?? step.tool_input)}</pre>
      {entry?.status === "succeeded" ? (
        <>
          <h3>Output</h3>
          <pre data-testid="step-output">{json(entry.output)}</pre>
        </>
      ) : null}
      {delta ? (
        <>
          <h3>Model output so far</h3>
          <pre aria-live="polite">{delta}</pre>
        </>
      ) : null}
      {entry?.calls?.length ? (
        <>
          <h3>Tool calls</h3>
          <table>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Turn</th>
                <th scope="col">Tool</th>
                <th scope="col">Status</th>
                <th scope="col">Output or error</th>
              </tr>
            </thead>
            <tbody>
              {entry.calls.map((c) => (
                <tr key={c.call}>
                  <td>{c.call}</td>
                  <td>{c.turn}</td>
                  <td>{c.tool_name}</td>
                  <td>
                    <Status status={c.status} />
                  </td>
                  <td>
                    <code>{c.error ?? JSON.stringify(c.output)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      <Rerun run={run} step={step} />
      <details>
        <summary>Events of this step ({mine.length})</summary>
        <EventList events={mine} />
      </details>
    </section>
  );
}

function Waiting({ run, entry, onRun }: { run: Run; entry: ExecutionLogEntry; onRun: (run: Run) => void }) {
  const client = useClient();
  const w = entry.waiting;
  const [text, setText] = useState("");
  const [data, setData] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (!w) return null;
  const act = async (fn: () => Promise<Run | unknown>) => {
    setBusy(true);
    setError(null);
    try {
      const out = await fn();
      if (out && typeof out === "object" && "execution_log" in out) onRun(out as Run);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const parsed = (): Json | undefined => {
    if (data.trim() === "") return undefined;
    try {
      return JSON.parse(data) as Json;
    } catch {
      throw new Error('The data must be JSON (for example {"ok": true}), or left empty');
    }
  };
  return (
    <div className="waiting" data-testid="waiting">
      <h3>Waiting for {w.kind === "timer" ? "a timer" : w.kind === "approval" ? "approval" : `signal '${w.name}'`}</h3>
      {w.message ? <p className="message">{w.message}</p> : null}
      <dl className="facts">
        <dt>Since</dt>
        <dd>{time(w.since)}</dd>
        <dt>Until</dt>
        <dd>{w.until ? time(w.until) : "no time-out"}</dd>
        {w.callback_url ? (
          <>
            <dt>Callback URL</dt>
            <dd>
              <code className="wrap">{w.callback_url}</code>
            </dd>
          </>
        ) : null}
      </dl>
      {w.kind === "approval" ? (
        <form
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            act(() => client.approve(run.run_id, entry.step_number, text ? { comment: text } : {}));
          }}
        >
          <label htmlFor="decision-text">Comment or reason (optional)</label>
          <input id="decision-text" value={text} maxLength={2000} onChange={(e) => setText(e.target.value)} />
          <div className="row">
            <button type="submit" className="primary" disabled={busy}>
              Approve
            </button>
            <button
              type="button"
              className="danger"
              disabled={busy}
              onClick={() => act(() => client.reject(run.run_id, entry.step_number, text ? { reason: text } : {}))}
            >
              Reject
            </button>
          </div>
        </form>
      ) : null}
      {w.kind === "signal" && w.name ? (
        <form
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            act(async () => client.signal(run.run_id, w.name ?? "", { data: parsed() }));
          }}
        >
          <label htmlFor="signal-data">Signal data (JSON, optional)</label>
          <textarea id="signal-data" rows={3} value={data} onChange={(e) => setData(e.target.value)} />
          <button type="submit" className="primary" disabled={busy}>
            Send signal '{w.name}'
          </button>
        </form>
      ) : null}
      <ProblemView error={error} />
    </div>
  );
}

/** Rerun from this step, optionally with its input edited: a new run; the original is never changed. */
function Rerun({ run, step }: { run: Run; step: PlanStep }) {
  const client = useClient();
  const original = JSON.stringify(step.tool_input, null, 2);
  const [open, setOpen] = useState(false);
  const [input, setInput] = useState(original);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const finished = FINISHED.has(run.status);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    let edited: Record<string, Json> | undefined;
    if (input.trim() !== original.trim()) {
      try {
        const value = JSON.parse(input) as Json;
        if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
        edited = value;
      } catch {
        setError(new Error(`The input of step ${step.step_number} must be a JSON object`));
        return;
      }
    }
    setBusy(true);
    try {
      const next = await client.rerun(run.run_id, {
        from_step: step.step_number,
        ...(edited ? { tool_inputs: { [String(step.step_number)]: edited } } : {}),
      });
      navigate(`/runs/${next.run_id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  if (!open) {
    return (
      <div className="row">
        <button type="button" onClick={() => setOpen(true)} disabled={!finished}>
          Rerun from this step…
        </button>
        {finished ? null : <span className="hint">A run can be rerun once it has finished.</span>}
      </div>
    );
  }
  return (
    <form className="rerun" onSubmit={submit} aria-label={`Rerun from step ${step.step_number}`}>
      <label htmlFor="rerun-input">Input of step {step.step_number} (references allowed)</label>
      <textarea
        id="rerun-input"
        rows={Math.min(12, original.split("\n").length + 1)}
        value={input}
        onChange={(e) => setInput(e.target.value)}
        spellCheck={false}
      />
      <div className="row">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Starting…" : `Rerun from step ${step.step_number}`}
        </button>
        <button type="button" onClick={() => setOpen(false)}>
          Close
        </button>
      </div>
      <ProblemView error={error} />
    </form>
  );
}

export function EventList({ events }: { events: readonly RunEvent[] }) {
  if (events.length === 0) return <p className="empty">No events yet.</p>;
  return (
    <div className="table-wrap">
      <table className="events">
        <thead>
          <tr>
            <th scope="col" className="num">
              Seq
            </th>
            <th scope="col">Type</th>
            <th scope="col">Step</th>
            <th scope="col">Attempt</th>
            <th scope="col">At</th>
            <th scope="col">Data</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.seq}>
              <td className="num">{e.seq}</td>
              <td>
                <code>{e.type}</code>
              </td>
              <td>{e.step_number ?? ""}</td>
              <td>{e.attempt ?? ""}</td>
              <td>
                <time dateTime={e.at}>{new Date(e.at).toLocaleTimeString()}</time>
              </td>
              <td>{e.data ? <code className="data">{JSON.stringify(e.data)}</code> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
