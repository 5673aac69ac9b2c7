import { ProblemView } from "../components/problem";
import { Status } from "../components/status";
import { duration, json, time } from "../format";
import { useClient } from "../session";
import { useAsync, useInterval } from "../use-async";

/** The tool catalog: what each tool takes (its JSON Schema), its retry policy and breaker state. */
export function ToolsPage() {
  const client = useClient();
  const tools = useAsync(() => client.tools(), [client]);
  useInterval(tools.reload, 5000);
  return (
    <section aria-labelledby="tools-title">
      <h1 id="tools-title">Tools</h1>
      <ProblemView error={tools.error} />
      {tools.loading && !tools.data ? <p aria-busy="true">Loading tools…</p> : null}
      <ul className="cards tools">
        {(tools.data ?? []).map((t) => (
          <li key={t.name} className="card" data-tool={t.name}>
            <h2>
              <code>{t.name}</code>{" "}
              <Status
                status={t.breaker.state}
                label={`breaker ${t.breaker.state.replace("_", "-")}${t.breaker.failures ? ` · ${t.breaker.failures} failures` : ""}`}
              />
            </h2>
            <p>{withCode(t.description)}</p>
            {/* Label and value side by side in two columns: a long retry policy wraps in its own. */}
            <dl className="facts">
              <dt>Effects</dt>
              <dd>{t.effects.resource ? `${t.effects.mode} ${t.effects.resource}` : t.effects.mode}</dd>
              <dt>Retry</dt>
              <dd>
                up to {t.retry.max_attempts} attempts, {duration(t.retry.base_delay_ms)} × {t.retry.factor}ⁿ (≤{" "}
                {duration(t.retry.max_delay_ms)})
              </dd>
              {t.breaker.opened_at ? (
                <>
                  <dt>Opened</dt>
                  <dd>{time(t.breaker.opened_at)}</dd>
                </>
              ) : null}
            </dl>
            <details>
              <summary>Input schema</summary>
              <pre>{json(t.input_schema)}</pre>
            </details>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** A description's `backticked` words as code, the rest as text (never as HTML). */
function withCode(text: string) {
  return text.split(/(`[^`]+`)/).map((part, i) =>
    part.length > 2 && part.startsWith("`") && part.endsWith("`") ? (
      // biome-ignore lint/suspicious/noArrayIndexKey: the parts of one fixed string
      <code key={i}>{part.slice(1, -1)}</code>
    ) : (
      part
    ),
  );
}
