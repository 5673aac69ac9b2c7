import type { PlanStep } from "../../../src/contracts/plan";
import type { RunEvent } from "../../../src/contracts/run";
import { duration } from "../format";
import { type SegmentKind, timeline } from "../run-model";

const LABEL: Record<SegmentKind, string> = {
  blocked: "waiting for dependencies",
  queued: "queued",
  running: "running",
  backoff: "backing off before a retry",
  waiting: "waiting (timer, approval or signal)",
};

/** One row per step: when it waited, sat in the queue, ran, backed off and retried. */
export function Timeline({
  steps,
  events,
  now,
  selected,
  onSelect,
}: {
  steps: readonly PlanStep[];
  events: readonly RunEvent[];
  now: number;
  selected: number | null;
  onSelect: (step: number) => void;
}) {
  const { start, end, rows } = timeline(events, now);
  const span = end - start;
  const pct = (t: number) => `${(((t - start) / span) * 100).toFixed(3)}%`;
  return (
    <div className="timeline">
      <div className="timeline-scale" aria-hidden="true">
        <span>0</span>
        {/* A midpoint that reads the same as the end (a run of a millisecond or two) says nothing. */}
        {duration(span / 2) !== duration(span) && <span>{duration(span / 2)}</span>}
        <span>{duration(span)}</span>
      </div>
      <ol aria-label="Attempts timeline">
        {steps.map((s) => {
          const segs = rows.get(s.step_number) ?? [];
          const summary = segs
            .filter((g) => g.kind !== "blocked")
            .map((g) => `${LABEL[g.kind]}${g.attempt ? ` (attempt ${g.attempt})` : ""} ${duration(g.end - g.start)}`)
            .join(", ");
          return (
            <li key={s.step_number} className={selected === s.step_number ? "selected" : undefined}>
              <button
                type="button"
                className="timeline-label"
                onClick={() => onSelect(s.step_number)}
                aria-label={`Step ${s.step_number} ${s.tool_name}: ${summary || "not started"}`}
              >
                #{s.step_number} {s.tool_name}
              </button>
              <div className="timeline-track">
                {segs.map((g) => (
                  <span
                    key={`${g.kind}-${g.start}`}
                    className={`seg seg-${g.kind}${g.open ? " open" : ""}`}
                    style={{ left: pct(g.start), width: `max(3px, calc(${pct(g.end)} - ${pct(g.start)}))` }}
                    title={`${LABEL[g.kind]}${g.attempt ? `, attempt ${g.attempt}` : ""}: ${duration(g.end - g.start)}`}
                  />
                ))}
              </div>
            </li>
          );
        })}
      </ol>
      <ul className="legend" aria-label="Timeline legend">
        {(Object.keys(LABEL) as SegmentKind[]).map((k) => (
          <li key={k}>
            <span className={`swatch seg-${k}`} aria-hidden="true" /> {LABEL[k]}
          </li>
        ))}
      </ul>
    </div>
  );
}
