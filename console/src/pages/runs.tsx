import { type FormEvent, useEffect, useRef, useState } from "react";
import type { RunSummary } from "../../../src/contracts/history";
import { ProblemView } from "../components/problem";
import { Status } from "../components/status";
import { age, duration } from "../format";
import { Link, navigate } from "../router";
import { useClient } from "../session";
import { useAsync, useInterval } from "../use-async";

const STATUSES = ["pending", "running", "completed", "failed", "cancelled"] as const;
const WINDOWS: Record<string, { label: string; ms: number }> = {
  "15m": { label: "last 15 min", ms: 15 * 60_000 },
  "1h": { label: "last hour", ms: 3_600_000 },
  "24h": { label: "last 24 h", ms: 86_400_000 },
  "7d": { label: "last 7 days", ms: 7 * 86_400_000 },
};
const PAGE = 20;
/** The first page is polled: the API has no list stream, and a run is listed once its POST answered. */
const POLL_MS = 2000;

export function RunsPage({ search }: { search: URLSearchParams }) {
  const client = useClient();
  const status = search.get("status") ?? "";
  const tool = search.get("tool") ?? "";
  const q = search.get("q") ?? "";
  const window = search.get("since") ?? "";
  const cursor = search.get("cursor") ?? "";
  const [text, setText] = useState(q);
  // The box shows the filter applied: the URL changes under a mounted page (the nav's Runs link,
  // Back and Forward), and the box follows it.
  useEffect(() => setText(q), [q]);
  const [now, setNow] = useState(Date.now());
  const seen = useRef<Set<string> | null>(null);
  const [fresh, setFresh] = useState<Set<string>>(new Set());

  const tools = useAsync(() => client.tools(), [client]);
  const page = useAsync(async () => {
    const since = WINDOWS[window] ? new Date(Date.now() - (WINDOWS[window]?.ms ?? 0)).toISOString() : undefined;
    return client.listRuns({
      limit: PAGE,
      status: STATUSES.find((s) => s === status),
      tool: tool || undefined,
      q: q || undefined,
      since,
      cursor: cursor || undefined,
    });
  }, [client, status, tool, q, window, cursor]);

  useInterval(
    () => {
      setNow(Date.now());
      page.reload();
    },
    cursor ? null : POLL_MS,
  );

  // Runs that appeared since the page was opened are marked, not just slipped in; another filter
  // or page is a new listing, whose first rows are not news.
  // biome-ignore lint/correctness/useExhaustiveDependencies: the listing's identity is the trigger
  useEffect(() => {
    seen.current = null;
    setFresh(new Set());
  }, [status, tool, q, window, cursor]);
  useEffect(() => {
    const ids = page.data?.items.map((r) => r.run_id) ?? [];
    if (!page.data) return;
    if (seen.current === null) seen.current = new Set(ids);
    const added = ids.filter((id) => !seen.current?.has(id));
    if (added.length > 0) {
      for (const id of added) seen.current.add(id);
      setFresh((f) => new Set([...f, ...added]));
    }
  }, [page.data]);

  const set = (changes: Record<string, string>) => {
    const next = new URLSearchParams(search);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    if (!("cursor" in changes)) next.delete("cursor");
    const qs = next.toString();
    navigate(qs ? `/?${qs}` : "/", { replace: !("cursor" in changes) });
  };

  const submitText = (e: FormEvent) => {
    e.preventDefault();
    set({ q: text.trim() });
  };

  return (
    <section aria-labelledby="runs-title">
      <div className="page-head">
        <h1 id="runs-title">Runs</h1>
        <NewRun />
      </div>
      <form className="filters" onSubmit={submitText} aria-label="Filter runs">
        <label>
          Status
          <select value={status} onChange={(e) => set({ status: e.target.value })}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Tool
          <select value={tool} onChange={(e) => set({ tool: e.target.value })}>
            <option value="">any</option>
            {/* A filter from the address that names no tool of the catalog still shows what filters. */}
            {tool && tools.data && !tools.data.some((t) => t.name === tool) && (
              <option value={tool}>{tool} (not a tool)</option>
            )}
            {(tools.data ?? []).map((t) => (
              <option key={t.name} value={t.name}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Time
          <select value={window} onChange={(e) => set({ since: e.target.value })}>
            <option value="">any time</option>
            {Object.entries(WINDOWS).map(([k, w]) => (
              <option key={k} value={k}>
                {w.label}
              </option>
            ))}
          </select>
        </label>
        <label className="grow">
          Prompt contains
          <input
            type="search"
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder="text in the prompt"
          />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ProblemView error={page.error} />
      <RunTable runs={page.data?.items} fresh={fresh} now={now} loading={page.loading && !page.data} />
      <nav className="pager" aria-label="Pages">
        {cursor ? (
          <button type="button" onClick={() => set({ cursor: "" })}>
            ← Newest
          </button>
        ) : (
          <span className="hint">New runs appear here as they start.</span>
        )}
        {page.data?.next ? (
          <button type="button" onClick={() => set({ cursor: page.data?.next ?? "" })}>
            Older →
          </button>
        ) : null}
      </nav>
    </section>
  );
}

function RunTable({
  runs,
  fresh,
  now,
  loading,
}: {
  runs: RunSummary[] | undefined;
  fresh: Set<string>;
  now: number;
  loading: boolean;
}) {
  if (loading) return <p aria-busy="true">Loading runs…</p>;
  if (!runs) return null;
  if (runs.length === 0) return <p className="empty">No runs match.</p>;
  return (
    <div className="table-wrap">
      <table className="runs">
        <thead>
          <tr>
            <th scope="col">Status</th>
            <th scope="col">Prompt</th>
            <th scope="col">Planner</th>
            <th scope="col" className="num">
              Steps
            </th>
            <th scope="col" className="num">
              Duration
            </th>
            <th scope="col">Age</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr key={r.run_id} data-run-id={r.run_id} className={fresh.has(r.run_id) ? "fresh" : undefined}>
              <td>
                <Status status={r.status} />
              </td>
              <td className="prompt">
                <Link to={`/runs/${r.run_id}`} title={r.prompt}>
                  {r.prompt}
                </Link>
                {r.rerun_of ? <span className="tag">rerun</span> : null}
                {r.compensation ? <span className="tag">compensation {r.compensation.status}</span> : null}
                {r.error ? <div className="error-line">{r.error}</div> : null}
              </td>
              <td>{r.planner ?? "—"}</td>
              <td className="num">{r.step_count}</td>
              <td className="num">{duration(r.duration_ms)}</td>
              <td>
                <time dateTime={r.created_at} title={new Date(r.created_at).toLocaleString()}>
                  {age(r.created_at, now)}
                </time>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Starts a run from a prompt (the rules planner understands the README's phrases). */
function NewRun() {
  const client = useClient();
  const [open, setOpen] = useState(false);
  const [prompt, setPrompt] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const run = await client.createRun({ prompt });
      navigate(`/runs/${run.run_id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  if (!open) {
    return (
      <button type="button" className="primary" onClick={() => setOpen(true)}>
        New run
      </button>
    );
  }
  return (
    <form className="new-run" onSubmit={submit} aria-label="New run">
      <label htmlFor="new-prompt">Prompt</label>
      <textarea
        id="new-prompt"
        rows={2}
        value={prompt}
        maxLength={2000}
        onChange={(e) => setPrompt(e.target.value)}
        placeholder="calculate (41*7)+13 then add todo ship it"
        // biome-ignore lint/a11y/noAutofocus: the form opens on the user's request
        autoFocus
      />
      <div className="row">
        <button type="submit" className="primary" disabled={busy || prompt.trim() === ""}>
          {busy ? "Starting…" : "Start run"}
        </button>
        <button type="button" onClick={() => setOpen(false)}>
          Close
        </button>
      </div>
      <ProblemView error={error} />
    </form>
  );
}
