import { useState } from "react";
import type { Approval } from "../../../src/contracts/waiting";
import { ProblemView } from "../components/problem";
import { age, time } from "../format";
import { Link } from "../router";
import { useClient } from "../session";
import { useAsync, useInterval } from "../use-async";

const keyOf = (a: Approval) => `${a.run_id}:${a.step_number}`;

/**
 * The tenant's approval inbox, oldest first, decided in place. Refreshed every few seconds; a card
 * decided here stays, saying what was sent, until the page is left (the inbox itself drops it at
 * once, and a card vanishing under the pointer would leave the user guessing).
 */
export function ApprovalsPage() {
  const client = useClient();
  const [cursor, setCursor] = useState<string | undefined>();
  const inbox = useAsync(() => client.approvals({ limit: 50, cursor }), [client, cursor]);
  const [decided, setDecided] = useState<Record<string, { what: string; approval: Approval }>>({});
  useInterval(inbox.reload, 3000);
  const waiting = inbox.data?.items ?? [];
  const listed = new Set(waiting.map(keyOf));
  const items = [
    ...waiting,
    ...Object.values(decided).flatMap((d) => (listed.has(keyOf(d.approval)) ? [] : [d.approval])),
  ].sort((x, y) => x.since.localeCompare(y.since));
  return (
    <section aria-labelledby="approvals-title">
      <h1 id="approvals-title">Approvals</h1>
      <ProblemView error={inbox.error} />
      {inbox.loading && !inbox.data ? <p aria-busy="true">Loading approvals…</p> : null}
      {inbox.data && items.length === 0 ? <p className="empty">Nothing waits for approval.</p> : null}
      <ul className="cards">
        {items.map((a) => {
          const key = keyOf(a);
          return (
            <ApprovalCard
              key={key}
              approval={a}
              decided={decided[key]?.what}
              onDecided={(what) => {
                setDecided((d) => ({ ...d, [key]: { what, approval: a } }));
                inbox.reload();
              }}
            />
          );
        })}
      </ul>
      <nav className="pager" aria-label="Pages">
        {cursor ? (
          <button type="button" onClick={() => setCursor(undefined)}>
            ← First
          </button>
        ) : null}
        {inbox.data?.next ? (
          <button type="button" onClick={() => setCursor(inbox.data?.next ?? undefined)}>
            More →
          </button>
        ) : null}
      </nav>
    </section>
  );
}

function ApprovalCard({
  approval: a,
  decided,
  onDecided,
}: {
  approval: Approval;
  decided: string | undefined;
  onDecided: (what: string) => void;
}) {
  const client = useClient();
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const decide = async (approve: boolean) => {
    setBusy(true);
    setError(null);
    try {
      if (approve) await client.approve(a.run_id, a.step_number, text ? { comment: text } : {});
      else await client.reject(a.run_id, a.step_number, text ? { reason: text } : {});
      onDecided(approve ? "approved" : "rejected");
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const id = `note-${a.run_id}-${a.step_number}`;
  return (
    <li className="card approval" data-run-id={a.run_id} data-step={a.step_number}>
      <p className="message">{a.message}</p>
      <p className="meta">
        <Link to={`/runs/${a.run_id}`}>{a.prompt}</Link> · step {a.step_number} · waiting since{" "}
        <time dateTime={a.since} title={time(a.since)}>
          {age(a.since)}
        </time>
        {a.timeout_at ? ` · times out ${time(a.timeout_at)}` : ""}
      </p>
      {decided ? (
        <p role="status">Decision sent: {decided}.</p>
      ) : (
        <div className="row">
          <label htmlFor={id} className="visually-hidden">
            Comment or reason
          </label>
          <input
            id={id}
            placeholder="comment or reason (optional)"
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
          <button type="button" className="primary" disabled={busy} onClick={() => decide(true)}>
            Approve
          </button>
          <button type="button" className="danger" disabled={busy} onClick={() => decide(false)}>
            Reject
          </button>
        </div>
      )}
      <ProblemView error={error} />
    </li>
  );
}
