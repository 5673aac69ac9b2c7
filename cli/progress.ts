import type { LiveMessage, Plan, Run, RunEvent, WaitingInfo } from "../src/client/types";
import { between, compact, duration, pad, pretty, printable, when } from "./format";
import type { Output } from "./output";

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

type Data = Record<string, unknown>;
// Every string of an event is the server's (or a third party's: a reject reason, a model's text): printable only.
const str = (v: unknown): string | null => (typeof v === "string" ? printable(v) : null);
const num = (v: unknown): number | null => (typeof v === "number" ? v : null);

/**
 * Follows a run's live messages and writes one line per step state change — running, waiting
 * (for what, with the commands and callback URL that end the wait), retried, succeeded with its
 * duration, failed, skipped — then how the run ended. On a terminal a status line under the
 * lines counts steps and time while the run goes on.
 */
export class RunProgress {
  private readonly tools = new Map<number, string>();
  private readonly startedAt = new Map<number, string>();
  private readonly state = new Map<number, "running" | "waiting" | "done">();
  private toolWidth = 4;
  private stepWidth = 1;
  private createdAt: string | null = null;
  private lastDelta = "";
  private frame = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  private readonly runId: string;

  constructor(
    private readonly out: Output,
    runId: string,
  ) {
    this.runId = printable(runId);
  }

  start(): void {
    if (!this.out.tty) return;
    this.timer = setInterval(() => this.drawStatus(), 120);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.out.status("");
  }

  private setPlan(plan: Plan | null): void {
    if (!plan || !Array.isArray(plan.steps)) return;
    for (const s of plan.steps) this.tools.set(s.step_number, str(s.tool_name) ?? "?");
    this.toolWidth = Math.max(4, ...[...this.tools.values()].map((t) => t.length));
    this.stepWidth = Math.max(1, ...plan.steps.map((s) => String(s.step_number).length));
  }

  private label(step: number | undefined, prefix = "step"): string {
    const n = num(step) ?? 0;
    return `${prefix} ${String(n).padEnd(this.stepWidth)} ${pad(this.tools.get(n) ?? "?", this.toolWidth)}`;
  }

  /** A compensation's label: the step it undoes, and the agent's tool call when it undoes one. */
  private undoLabel(step: number | undefined, d: Data): string {
    const call = num(d.call);
    return `${this.label(step, "undo step")}${call === null ? "" : ` call ${call}`}`;
  }

  handle(message: LiveMessage): void {
    if (message.type === "snapshot") {
      this.setPlan(message.run.plan);
      this.createdAt = message.run.created_at;
    } else if (message.type === "event") {
      this.onEvent(message.event);
    } else {
      this.lastDelta = ((message.reset === true ? "" : this.lastDelta) + (str(message.text) ?? "")).slice(-200);
    }
    this.drawStatus();
  }

  private onEvent(e: RunEvent): void {
    const c = this.out.colour;
    const d: Data = (e.data as Data | undefined) ?? {};
    const step = num(e.step_number) ?? undefined;
    const attempt = num(e.attempt);
    const attemptNote = attempt && attempt > 1 ? ` (attempt ${attempt})` : "";
    switch (e.type) {
      case "run.created":
        this.createdAt ??= e.at;
        return;
      case "run.planned": {
        const plan = typeof d.plan === "object" && d.plan !== null ? (d.plan as Plan) : null;
        this.setPlan(plan);
        const n = Array.isArray(plan?.steps) ? plan.steps.length : 0;
        const steps = `${n} step${n === 1 ? "" : "s"}`;
        const planner = str(plan?.planner) ?? "?";
        this.out.line(c.dim(planner === "explicit" ? `plan given: ${steps}` : `planned by ${planner}: ${steps}`));
        return;
      }
      case "plan.fallback":
        this.out.line(c.yellow(`planner fell back to ${str(d.to) ?? "rules"}: ${str(d.reason) ?? ""}`));
        return;
      case "step.started":
        this.startedAt.set(step ?? 0, e.at);
        this.state.set(step ?? 0, "running");
        this.out.line(`${this.label(step)}  ${c.cyan("running")}${attemptNote}`);
        return;
      case "step.succeeded": {
        this.state.set(step ?? 0, "done");
        const took = between(this.startedAt.get(step ?? 0), e.at);
        const attempts = attempt && attempt > 1 ? `, ${attempt} attempts` : "";
        const output = "output" in d ? c.dim(`  → ${compact(d.output, 60)}`) : "";
        this.out.line(`${this.label(step)}  ${c.green("succeeded")} in ${duration(took)}${attempts}${output}`);
        return;
      }
      case "step.failed": {
        this.state.set(step ?? 0, "done");
        const took = between(this.startedAt.get(step ?? 0), e.at);
        const attempts = attempt ? ` after ${attempt} attempt${attempt === 1 ? "" : "s"}` : "";
        this.out.line(
          `${this.label(step)}  ${c.red("failed")} in ${duration(took)}${attempts}: ${str(d.error) ?? "unknown error"}`,
        );
        return;
      }
      case "step.retry_scheduled":
        this.state.set(step ?? 0, "running");
        this.out.line(
          `${this.label(step)}  ${c.yellow("retrying")}: attempt ${attempt ?? "?"} failed (${str(d.error) ?? str(d.reason) ?? "error"}); next in ${duration(num(d.delay_ms))}`,
        );
        return;
      case "step.skipped":
        this.state.set(step ?? 0, "done");
        this.out.line(`${this.label(step)}  ${c.dim("skipped")}: ${str(d.reason) ?? ""}`);
        return;
      case "step.cancelled":
        this.state.set(step ?? 0, "done");
        this.out.line(`${this.label(step)}  ${c.yellow("cancelled")}${attemptNote}`);
        return;
      case "step.dead_lettered":
        this.out.line(`${this.label(step)}  ${c.yellow("dead-lettered")}: ${str(d.reason) ?? ""}`);
        return;
      case "step.reused":
        this.state.set(step ?? 0, "done");
        this.out.line(`${this.label(step)}  ${c.green("reused")} from run ${str(d.from_run) ?? "?"}`);
        return;
      case "step.waiting":
        this.state.set(step ?? 0, "waiting");
        // Control steps (wait, approval, signal) start by waiting: their duration counts from here.
        if (!this.startedAt.has(step ?? 0)) this.startedAt.set(step ?? 0, e.at);
        // API.md: `data` is the waiting object; a server that nests it under `waiting` is read too.
        this.onWaiting(step ?? 0, (typeof d.waiting === "object" && d.waiting !== null ? d.waiting : d) as WaitingInfo);
        return;
      case "signal.received": {
        const to = num(d.delivered_to);
        this.out.line(
          `signal '${str(d.name) ?? "?"}' received${to === null ? ", kept until a step waits for it" : ` by step ${to}`}`,
        );
        return;
      }
      case "compensation.started":
        this.out.line(c.yellow("compensating: undoing succeeded steps"));
        return;
      case "compensation.step_started":
        this.out.line(`${this.undoLabel(step, d)}  ${c.cyan("running")}${attemptNote}`);
        return;
      case "compensation.step_succeeded":
        this.out.line(`${this.undoLabel(step, d)}  ${c.green("succeeded")}`);
        return;
      case "compensation.step_failed":
        this.out.line(`${this.undoLabel(step, d)}  ${c.red("failed")}: ${str(d.error) ?? ""}`);
        return;
      case "compensation.step_skipped":
        this.out.line(`${this.undoLabel(step, d)}  ${c.dim("skipped")}: ${str(d.reason) ?? "nothing to undo"}`);
        return;
      case "compensation.completed":
        this.out.line(c.green("compensation completed"));
        return;
      case "compensation.failed":
        this.out.line(c.red(`compensation failed${str(d.error) ? `: ${str(d.error)}` : ""}`));
        return;
      case "agent.turn": {
        const calls = Array.isArray(d.tool_calls) ? d.tool_calls.length : null;
        const what = calls === null ? "answered" : `${calls} tool call${calls === 1 ? "" : "s"}`;
        this.lastDelta = "";
        this.out.line(`${this.label(step)}  turn ${num(d.turn) ?? "?"}: ${what}`);
        return;
      }
      case "agent.call_started":
      case "agent.call_succeeded":
      case "agent.call_failed": {
        const verb = e.type.slice("agent.call_".length);
        const paint = verb === "failed" ? c.red : verb === "succeeded" ? c.green : c.cyan;
        const error = verb === "failed" && str(d.error) ? `: ${str(d.error)}` : "";
        this.out.line(
          `${this.label(step)}  call ${num(d.call) ?? "?"} ${str(d.tool_name) ?? ""} ${paint(verb === "started" ? "running" : verb)}${error}`,
        );
        return;
      }
      case "run.completed":
        this.out.line(c.green(c.bold(`completed in ${duration(between(this.createdAt, e.at))}`)));
        return;
      case "run.failed":
        this.out.line(c.red(c.bold(`failed after ${duration(between(this.createdAt, e.at))}`)));
        return;
      case "run.cancelled":
        this.out.line(c.yellow(c.bold(`cancelled after ${duration(between(this.createdAt, e.at))}`)));
        return;
      default:
        return; // dispatches, ignored results, llm calls: not state changes of a step
    }
  }

  private onWaiting(step: number, w: WaitingInfo): void {
    const c = this.out.colour;
    const until = str(w.until) ? ` (until ${when(w.until)} UTC)` : "";
    const name = str(w.name);
    if (w.kind === "timer") {
      this.out.line(`${this.label(step)}  ${c.yellow("waiting")} for a timer${until}`);
      return;
    }
    if (w.kind === "approval") {
      this.out.line(`${this.label(step)}  ${c.yellow("waiting for approval")}: ${str(w.message) ?? ""}${until}`);
      this.out.line(c.dim(`    crane approve ${this.runId} ${step}   |   crane reject ${this.runId} ${step}`));
    } else {
      this.out.line(`${this.label(step)}  ${c.yellow(`waiting for signal '${name ?? "?"}'`)}${until}`);
      this.out.line(c.dim(`    crane signal ${this.runId} ${name ?? "<name>"} --data '<json>'`));
    }
    if (str(w.callback_url)) this.out.line(c.dim(`    callback: ${str(w.callback_url)}`));
  }

  private drawStatus(): void {
    if (!this.out.tty || !this.timer) return;
    let running = 0;
    let waiting = 0;
    let done = 0;
    for (const s of this.state.values()) {
      if (s === "running") running++;
      else if (s === "waiting") waiting++;
      else done++;
    }
    const total = this.tools.size;
    const elapsed = this.createdAt ? duration(Date.now() - Date.parse(this.createdAt)) : "";
    const parts = [`${done}/${total} steps done`];
    if (running) parts.push(`${running} running`);
    if (waiting) parts.push(`${waiting} waiting`);
    parts.push(elapsed);
    if (this.lastDelta) parts.push(`“${this.lastDelta.replace(/\s+/g, " ").slice(-60)}”`);
    this.frame = (this.frame + 1) % SPINNER.length;
    this.out.status(`${SPINNER[this.frame]} ${parts.join(" · ")}`);
  }

  /** The final lines: the result of a completed run, or the error. */
  finish(run: Run): void {
    this.stop();
    const c = this.out.colour;
    if (run.status === "completed") {
      this.out.line(`${c.bold("result:")} ${pretty(run.result)}`);
    } else if (run.error) {
      this.out.line(`${c.bold("error:")} ${printable(run.error)}`);
    }
  }
}
