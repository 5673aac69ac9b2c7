import { useMemo, useState } from "react";
import type { Metrics } from "../../../src/contracts/history";
import { ProblemView } from "../components/problem";
import { type Series, TimeChart } from "../components/time-chart";
import { duration, percent } from "../format";
import { useClient } from "../session";
import { useAsync, useInterval } from "../use-async";

const WINDOWS: Record<string, { label: string; ms: number }> = {
  "15m": { label: "15 minutes", ms: 15 * 60_000 },
  "1h": { label: "1 hour", ms: 3_600_000 },
  "24h": { label: "24 hours", ms: 86_400_000 },
  "7d": { label: "7 days", ms: 7 * 86_400_000 },
};
/** The window is cut into this many buckets, one /metrics read each, for the charts over time. */
const BUCKETS = 12;

/** Success rate and p50/p95/p99 per tool over a chosen window: a table, bars, and charts over time. */
export function MetricsPage() {
  const client = useClient();
  const [windowKey, setWindowKey] = useState("1h");
  const [tool, setTool] = useState("");
  const span = WINDOWS[windowKey]?.ms ?? 3_600_000;
  const data = useAsync(async () => {
    const until = Date.now();
    const since = until - span;
    const step = span / BUCKETS;
    const [whole, ...buckets] = await Promise.all([
      client.metrics({ since: new Date(since).toISOString(), until: new Date(until).toISOString() }),
      ...Array.from({ length: BUCKETS }, (_, i) =>
        client.metrics({
          since: new Date(since + i * step).toISOString(),
          until: new Date(since + (i + 1) * step).toISOString(),
        }),
      ),
    ]);
    return { whole: whole as Metrics, buckets, since, step };
  }, [client, span]);
  useInterval(data.reload, 15_000);
  const m = data.data?.whole;

  return (
    <section aria-labelledby="metrics-title">
      <div className="page-head">
        <h1 id="metrics-title">Metrics</h1>
        <div className="filters">
          <label>
            Window
            <select value={windowKey} onChange={(e) => setWindowKey(e.target.value)}>
              {Object.entries(WINDOWS).map(([k, w]) => (
                <option key={k} value={k}>
                  last {w.label}
                </option>
              ))}
            </select>
          </label>
        </div>
      </div>
      <ProblemView error={data.error} />
      {data.loading && !m ? <p aria-busy="true">Loading metrics…</p> : null}
      {m ? (
        <>
          <dl className="facts inline summary">
            <dt>Runs</dt>
            <dd>{m.runs.total}</dd>
            <dt>Run success rate</dt>
            <dd>{percent(m.runs.success_rate)}</dd>
            <dt>Run duration p50 / p95 / p99</dt>
            <dd>
              {duration(m.runs.duration_ms.p50)} / {duration(m.runs.duration_ms.p95)} /{" "}
              {duration(m.runs.duration_ms.p99)}
            </dd>
            <dt>Steps</dt>
            <dd>{m.steps.total}</dd>
          </dl>
          <ToolTable metrics={m} />
          <OverTime
            buckets={data.data?.buckets ?? []}
            since={data.data?.since ?? 0}
            step={data.data?.step ?? 0}
            tool={tool}
            setTool={setTool}
            tools={m.tools.map((t) => t.tool)}
          />
        </>
      ) : null}
    </section>
  );
}

function ToolTable({ metrics }: { metrics: Metrics }) {
  const slowest = Math.max(1, ...metrics.tools.map((t) => t.duration_ms.p99 ?? 0));
  if (metrics.tools.length === 0) return <p className="empty">No steps ran in this window.</p>;
  return (
    <div className="table-wrap">
      <table className="metrics">
        <caption>Per tool over the window</caption>
        <thead>
          <tr>
            <th scope="col">Tool</th>
            <th scope="col" className="num">
              Steps
            </th>
            <th scope="col">Success rate</th>
            <th scope="col">p50 / p95 / p99</th>
          </tr>
        </thead>
        <tbody>
          {metrics.tools.map((t) => (
            <tr key={t.tool} data-tool={t.tool}>
              <th scope="row">
                <code>{t.tool}</code>
              </th>
              <td className="num">
                {t.steps} ({t.failed} failed)
              </td>
              <td>
                <div className="bar-cell">
                  <span className="bar ok" style={{ width: `${(t.success_rate ?? 0) * 100}%` }} />
                  <span className="bar-value">{percent(t.success_rate)}</span>
                </div>
              </td>
              <td>
                <div className="bars-latency">
                  {(["p50", "p95", "p99"] as const).map((p) => (
                    <div key={p} className="bar-cell">
                      <span
                        className={`bar lat-${p}`}
                        style={{ width: `${((t.duration_ms[p] ?? 0) / slowest) * 100}%` }}
                      />
                      <span className="bar-value">
                        {p} {duration(t.duration_ms[p])}
                      </span>
                    </div>
                  ))}
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function OverTime({
  buckets,
  since,
  step,
  tool,
  setTool,
  tools,
}: {
  buckets: Metrics[];
  since: number;
  step: number;
  tool: string;
  setTool: (t: string) => void;
  tools: string[];
}) {
  const { x, latency, success } = useMemo(() => {
    const x = buckets.map((_, i) => Math.round((since + (i + 1) * step) / 1000));
    const pick = (b: Metrics) => {
      if (!tool) return { rate: b.runs.success_rate, d: b.runs.duration_ms };
      const t = b.tools.find((t) => t.tool === tool);
      return { rate: t?.success_rate ?? null, d: t?.duration_ms ?? { p50: null, p95: null, p99: null } };
    };
    const rows = buckets.map(pick);
    const latency: Series[] = [
      { label: "p50", values: rows.map((r) => r.d.p50), stroke: "#1f6feb" },
      { label: "p95", values: rows.map((r) => r.d.p95), stroke: "#9a6700", dash: [6, 3] },
      { label: "p99", values: rows.map((r) => r.d.p99), stroke: "#cf222e", dash: [2, 3] },
    ];
    const success: Series[] = [
      {
        label: "success rate",
        values: rows.map((r) => (r.rate === null ? null : r.rate * 100)),
        stroke: "#1a7f37",
        scale: "%",
      },
    ];
    return { x, latency, success };
  }, [buckets, since, step, tool]);
  return (
    <section aria-labelledby="over-time">
      <div className="page-head">
        <h2 id="over-time">Over time</h2>
        <label>
          Of{" "}
          <select value={tool} onChange={(e) => setTool(e.target.value)}>
            <option value="">whole runs</option>
            {tools.map((t) => (
              <option key={t} value={t}>
                tool {t}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div className="charts">
        <TimeChart title={`Latency of ${tool ? `tool ${tool}` : "runs"} (ms)`} x={x} series={latency} />
        <TimeChart title={`Success rate of ${tool ? `tool ${tool}` : "runs"} (%)`} x={x} series={success} />
      </div>
    </section>
  );
}
