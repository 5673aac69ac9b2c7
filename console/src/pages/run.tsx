import { useEffect, useMemo, useState } from "react";
import type { Run, RunEvent } from "../../../src/contracts/run";
import type { CraneClient } from "../client";
import { Dag } from "../components/dag";
import { ProblemView } from "../components/problem";
import { Status } from "../components/status";
import { EventList, StepPanel } from "../components/step-panel";
import { Timeline } from "../components/timeline";
import { duration, FINISHED, json, time } from "../format";
import { Link, navigate } from "../router";
import { applyEvent, planEdges } from "../run-model";
import { useClient } from "../session";
import { useAsync, useInterval } from "../use-async";

/** A prompt longer than this shows its first lines as the heading, all of it on demand. */
const LONG_PROMPT = 240;

type Live = "connecting" | "live" | "reconnecting" | "ended";
const LIVE_LABEL: Record<Live, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "connection lost, reconnecting…",
  ended: "not live",
};

/**
 * A run, live: the snapshot and every event over the WebSocket (the client reconnects with
 * `?after=`), each event applied at once and the run re-read shortly after, so the server's fold
 * stays the truth. Reads of an archived run come from D1 through the same endpoints.
 */
function useLiveRun(client: CraneClient, runId: string) {
  const [run, setRun] = useState<Run | null>(null);
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [deltas, setDeltas] = useState<Record<number, string>>({});
  const [live, setLive] = useState<Live>("connecting");
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reread = (delay: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        client.getRun(runId).then(
          (r) => abort.signal.aborted || setRun(r),
          () => {},
        );
      }, delay);
    };
    client.getRun(runId).then(
      (r) => abort.signal.aborted || setRun((prev) => prev ?? r),
      (err: unknown) => abort.signal.aborted || setError(err),
    );
    (async () => {
      let lastSeq = 0;
      let snapshotSeq = 0;
      try {
        const onConnection = (state: "open" | "lost") => {
          if (!abort.signal.aborted) setLive(state === "open" ? "live" : "reconnecting");
        };
        for await (const msg of client.watch(runId, { after: 0, signal: abort.signal, onConnection })) {
          if (msg.type === "snapshot") {
            snapshotSeq = msg.seq;
            setRun(msg.run);
            setError(null);
            setLive("live");
          } else if (msg.type === "event") {
            const e = msg.event;
            if (e.seq <= lastSeq) continue;
            lastSeq = e.seq;
            setEvents((list) => [...list, e]);
            // Events the snapshot already holds are history, not news.
            if (e.seq > snapshotSeq) {
              setRun((r) => (r ? applyEvent(r, e) : r));
              reread(300);
            }
          } else if (msg.type === "delta") {
            // A new try of the model's answer replaces what a failed try wrote.
            setDeltas((d) => ({ ...d, [msg.step_number]: (msg.reset ? "" : (d[msg.step_number] ?? "")) + msg.text }));
          }
        }
        if (!abort.signal.aborted) {
          setLive("ended");
          reread(0);
        }
      } catch (err) {
        if (!abort.signal.aborted) {
          setError(err);
          setLive("ended");
        }
      }
    })();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [client, runId]);

  return { run, setRun, events, deltas, live, error };
}

export function RunPage({ runId }: { runId: string }) {
  const client = useClient();
  const { run, setRun, events, deltas, live, error } = useLiveRun(client, runId);
  const tools = useAsync(() => client.tools(), [client]);
  const [selected, setSelected] = useState<number | null>(null);
  const [now, setNow] = useState(Date.now());
  const finished = run ? FINISHED.has(run.status) : false;
  useInterval(() => setNow(Date.now()), finished ? null : 500);

  // Every re-read brings a new but equal plan: keyed by its content, the graph keeps its layout
  // (and the visitor's pan and zoom).
  const planKey = JSON.stringify(run?.plan?.steps ?? []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the plan's content is the key
  const steps = useMemo(() => run?.plan?.steps ?? [], [planKey]);
  const edges = useMemo(() => planEdges(steps, tools.data), [steps, tools.data]);

  // The first waiting step (or else the first failed one) is what a visitor came for.
  useEffect(() => {
    if (selected !== null || !run) return;
    const pick =
      run.waiting_for[0]?.step_number ??
      run.execution_log.find((e) => e.status === "failed")?.step_number ??
      run.plan?.steps[0]?.step_number;
    if (pick !== undefined) setSelected(pick);
  }, [run, selected]);

  if (!run) {
    return error ? (
      <section>
        <h1>Run {runId}</h1>
        <ProblemView error={error} />
        <p>
          <Link to="/">Back to the runs</Link>
        </p>
      </section>
    ) : (
      <p aria-busy="true">Loading run…</p>
    );
  }
  const step = steps.find((s) => s.step_number === selected);
  const entry = run.execution_log.find((e) => e.step_number === selected);
  const longPrompt = run.prompt.length > LONG_PROMPT;
  const elapsed = (run.completed_at ? Date.parse(run.completed_at) : now) - Date.parse(run.created_at);

  return (
    <section className="run-page" aria-labelledby="run-title" data-run-status={run.status}>
      <div className="page-head">
        <div>
          <p className="crumbs">
            <Link to="/">Runs</Link> / <code>{run.run_id}</code>
          </p>
          <h1 id="run-title" className={longPrompt ? "clamped" : undefined}>
            {run.prompt}
          </h1>
          {longPrompt && (
            <details className="full-prompt">
              <summary>Full prompt ({run.prompt.length} characters)</summary>
              <p>{run.prompt}</p>
            </details>
          )}
        </div>
        <div className="run-state">
          <Status status={run.status} />
          <span className={`live live-${live}`} aria-live="polite">
            {LIVE_LABEL[live]}
          </span>
        </div>
      </div>
      <ProblemView error={error} />
      <dl className="facts inline">
        <dt>Planner</dt>
        <dd>{run.plan?.planner ?? "—"}</dd>
        <dt>Steps</dt>
        <dd>{steps.length}</dd>
        <dt>Created</dt>
        <dd>{time(run.created_at)}</dd>
        <dt>Duration</dt>
        <dd>{duration(elapsed)}</dd>
        {run.rerun_of ? (
          <>
            <dt>Rerun of</dt>
            <dd>
              <Link to={`/runs/${run.rerun_of.run_id}`}>{run.rerun_of.run_id}</Link>
              {run.rerun_of.from_step ? ` from step ${run.rerun_of.from_step}` : ""}
            </dd>
          </>
        ) : null}
      </dl>
      {run.status === "completed" ? (
        <div className="result">
          <h2>Result</h2>
          <pre data-testid="run-result">{json(run.result)}</pre>
        </div>
      ) : null}
      {run.error ? (
        <div className="step-error" role="status">
          <strong>{run.status === "cancelled" ? "Cancelled" : "Failed"}:</strong> {run.error}
        </div>
      ) : null}
      <RunActions run={run} onRun={setRun} />
      {run.waiting_for.length > 0 ? (
        <div className="waiting-banner" role="status">
          Waiting:{" "}
          {run.waiting_for.map((w) => (
            <button key={w.step_number} type="button" className="link" onClick={() => setSelected(w.step_number)}>
              step {w.step_number} ({w.kind === "signal" ? `signal ${w.name}` : w.kind})
            </button>
          ))}
        </div>
      ) : null}
      {steps.length > 0 ? (
        <div className="run-grid">
          <div className="run-main">
            <h2>Plan</h2>
            <Dag steps={steps} edges={edges} log={run.execution_log} selected={selected} onSelect={setSelected} />
            <StepList run={run} selected={selected} onSelect={setSelected} />
            <h2>Timeline</h2>
            <Timeline steps={steps} events={events} now={now} selected={selected} onSelect={setSelected} />
          </div>
          {step ? (
            <StepPanel
              key={step.step_number}
              run={run}
              step={step}
              entry={entry}
              events={events}
              delta={selected === null ? undefined : deltas[selected]}
              onRun={setRun}
            />
          ) : null}
        </div>
      ) : (
        <p className="empty">
          {/* A run that failed before it had a plan says why once, above. */}
          {run.error && run.status === "failed"
            ? "No plan."
            : `No plan: ${run.error ?? "the run has not been planned yet."}`}
        </p>
      )}
      {run.compensation ? <CompensationView run={run} /> : null}
      <details className="all-events">
        <summary>All events ({events.length})</summary>
        <EventList events={events} />
      </details>
    </section>
  );
}

/** The steps as a list: the graph's keyboard- and screen-reader-friendly twin. */
function StepList({ run, selected, onSelect }: { run: Run; selected: number | null; onSelect: (n: number) => void }) {
  return (
    <ol className="step-list" aria-label="Steps">
      {run.execution_log.map((e) => (
        <li key={e.step_number}>
          <button
            type="button"
            aria-pressed={selected === e.step_number}
            onClick={() => onSelect(e.step_number)}
            data-testid={`step-button-${e.step_number}`}
          >
            #{e.step_number} {e.tool_name} <Status status={e.status} />
          </button>
        </li>
      ))}
    </ol>
  );
}

function RunActions({ run, onRun }: { run: Run; onRun: (run: Run) => void }) {
  const client = useClient();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const finished = FINISHED.has(run.status);
  // Nothing to rerun without a step to start from (the step panel offers "rerun from here").
  const allSucceeded = run.status === "completed" && run.execution_log.every((e) => e.status === "succeeded");
  const act = async (fn: () => Promise<Run>, go = false) => {
    setBusy(true);
    setError(null);
    try {
      const out = await fn();
      if (go) navigate(`/runs/${out.run_id}`);
      else onRun(out);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  return (
    <div className="actions">
      <div className="row">
        {finished ? (
          allSucceeded ? null : (
            <button type="button" disabled={busy} onClick={() => act(() => client.rerun(run.run_id, {}), true)}>
              Rerun what did not succeed
            </button>
          )
        ) : (
          <>
            <button
              type="button"
              className="danger"
              disabled={busy}
              onClick={() => act(() => client.cancel(run.run_id))}
            >
              Cancel
            </button>
            <button
              type="button"
              className="danger"
              disabled={busy}
              onClick={() => act(() => client.cancel(run.run_id, { compensate: true }))}
            >
              Cancel and compensate
            </button>
          </>
        )}
      </div>
      <ProblemView error={error} />
    </div>
  );
}

function CompensationView({ run }: { run: Run }) {
  const c = run.compensation;
  if (!c) return null;
  return (
    <section className="panel" aria-labelledby="compensation-title">
      <h2 id="compensation-title">
        Compensation <Status status={c.status} />
      </h2>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Undoes step</th>
              <th scope="col">Tool</th>
              <th scope="col">Input</th>
              <th scope="col">Status</th>
              <th scope="col">Attempts</th>
              <th scope="col">Output or error</th>
            </tr>
          </thead>
          <tbody>
            {c.steps.map((s) => (
              <tr key={`${s.step_number}:${s.call ?? 0}`}>
                <td>
                  #{s.step_number}
                  {s.call ? ` · call ${s.call}` : ""}
                </td>
                <td>{s.tool_name}</td>
                <td>
                  <code className="data">{JSON.stringify(s.tool_input)}</code>
                </td>
                <td>
                  <Status status={s.status} />
                </td>
                <td>{s.attempts}</td>
                <td>
                  <code className="data">{s.error ?? JSON.stringify(s.output)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
