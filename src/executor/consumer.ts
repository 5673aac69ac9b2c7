import { stepMessageSchema } from "../contracts/tool";
import type { Env } from "../env";
import { log } from "../observability/log";
import { runStub } from "../run/stub";
import { defaultRegistry } from "../tools/registry";
import { runTool } from "./run-tool";

/**
 * Handles one queue message: one attempt of one step. The coordinator decides whether the
 * attempt may run (a stale or duplicate delivery gets no grant and is acked); the outcome goes
 * back by RPC. A failure to reach the coordinator retries the message (at-least-once delivery);
 * the coordinator's attempt check keeps the outcome exactly-once.
 */
async function handleMessage(message: Message<unknown>, env: Env): Promise<void> {
  const parsed = stepMessageSchema.safeParse(message.body);
  if (!parsed.success) {
    log("error", "dropped malformed step message", { message_id: message.id, error: parsed.error.message });
    message.ack();
    return;
  }
  const { run_id, tenant, step_number, attempt, trace_id } = parsed.data;
  const fields = { run_id, tenant, step_number, attempt, trace_id };
  try {
    const stub = runStub(env, tenant, run_id);
    const grant = await stub.startAttempt(step_number, attempt);
    if (!grant) {
      log("info", "attempt not granted (stale, duplicate or cancelled)", fields);
      message.ack();
      return;
    }
    const started = Date.now();
    const outcome = await runTool(defaultRegistry, grant, {
      tenant,
      runId: run_id,
      stepNumber: step_number,
      attempt,
      env,
    });
    await stub.finishAttempt(step_number, attempt, outcome);
    log(outcome.ok ? "info" : "warn", outcome.ok ? "step attempt succeeded" : "step attempt failed", {
      ...fields,
      tool: grant.tool_name,
      duration_ms: Date.now() - started,
      ...(outcome.ok ? {} : { error: outcome.error }),
    });
    message.ack();
  } catch (err) {
    log("error", "step message failed; will be redelivered", { ...fields, error: String(err) });
    message.retry({ delaySeconds: 1 });
  }
}

/** The Worker's `queue()` handler: messages of a batch run concurrently. */
export async function handleStepBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await Promise.all(batch.messages.map((m) => handleMessage(m, env)));
}
