import { env } from "cloudflare:workers";
import { afterEach, expect, it } from "vitest";
import type { Json } from "../../src/contracts/common";
import type { StepInput } from "../../src/contracts/plan";
import type { Run } from "../../src/contracts/run";
import { type MessageFault, setFaultInjector } from "../../src/faults";
import { createRun, getEvents, waitForRun } from "../helpers/api";
import { messageKey, seeded, terminalEventsPerStep, todoCount } from "../helpers/faults";
import { compensationOutcomes } from "../helpers/recovery";

const RUNS = 200;
const CONCURRENCY = 40;
// `SOAK_SEED=123 npm test` replays a schedule; otherwise a fresh seed each run, printed on failure.
const SEED = Number(env.SOAK_SEED) || Math.floor(Math.random() * 2 ** 31);

afterEach(() => setFaultInjector(null));

interface Case {
  steps: StepInput[];
  check: (result: Json) => boolean;
  todo?: string;
  expected: string;
  /** A saga: the run fails at its last step and compensates; these todos must be gone again. */
  undone?: string[];
}

const calc = (n: number, expression: string, depends_on?: number[]): StepInput => ({
  step_number: n,
  tool_name: "calculator",
  tool_input: { expression },
  ...(depends_on ? { depends_on } : {}),
});

function makeCase(i: number, rand: () => number): Case {
  const int = (max: number) => 1 + Math.floor(rand() * max);
  switch (i % 5) {
    case 0: {
      const [a, b, c] = [int(50), int(50), int(50)];
      return {
        steps: [
          calc(1, `${a} * 2`),
          calc(2, `${b} + 1`),
          calc(3, `${c} - 3`),
          calc(4, "{{steps.1.output}} + {{steps.2.output}} + {{steps.3.output}}"),
        ],
        check: (r) => r === a * 2 + b + 1 + c - 3,
        expected: String(a * 2 + b + 1 + c - 3),
      };
    }
    case 1: {
      const [x, k, m] = [int(100), int(10), int(5)];
      return {
        steps: [calc(1, `${x}`), calc(2, `{{steps.1.output}} + ${k}`), calc(3, `{{steps.2.output}} * ${m}`)],
        check: (r) => r === (x + k) * m,
        expected: String((x + k) * m),
      };
    }
    case 2: {
      const todo = `soak ${SEED} #${i}`;
      return {
        steps: [
          { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text: todo } },
          {
            step_number: 2,
            tool_name: "todo_store",
            tool_input: { action: "get", todo_id: "{{steps.1.output.todo.id}}" },
          },
        ],
        check: (r) => (r as { todo?: { text?: string } })?.todo?.text === todo,
        todo,
        expected: `the todo "${todo}"`,
      };
    }
    case 4: {
      // The compensate mix: two todo adds, then a step that fails for good; both adds are undone.
      const todos = [`soak saga ${SEED} #${i} a`, `soak saga ${SEED} #${i} b`];
      return {
        steps: [
          { step_number: 1, tool_name: "todo_store", tool_input: { action: "add", text: todos[0] as string } },
          { step_number: 2, tool_name: "todo_store", tool_input: { action: "add", text: todos[1] as string } },
          calc(3, `${int(9)} / 0`, [2]),
        ],
        check: () => true,
        expected: "failed, both todos deleted once by the compensation",
        undone: todos,
      };
    }
    default: {
      const n = int(20);
      return {
        steps: [
          { step_number: 1, tool_name: "sleep", tool_input: { ms: 20 } },
          { step_number: 2, tool_name: "text", tool_input: { operation: "reverse", text: `abc${n}` } },
          {
            step_number: 3,
            tool_name: "text",
            tool_input: { operation: "char_count", text: "{{steps.2.output}}" },
            depends_on: [1],
          },
        ],
        check: (r) => r === `abc${n}`.length,
        expected: String(`abc${n}`.length),
      };
    }
  }
}

/** What a compensated run must show: failed at step 3, each add undone by exactly one successful compensation. */
async function checkSaga(i: number, run: Run, todos: string[]): Promise<string[]> {
  const problems: string[] = [];
  if (run.status !== "failed" || run.compensation?.status !== "completed") {
    problems.push(
      `saga run ${i} (${run.run_id}): ${run.status}, compensation ${JSON.stringify(run.compensation)}, error ${run.error}`,
    );
  }
  const events = await getEvents(run.run_id);
  const outcomes = terminalEventsPerStep(events);
  const expected = [
    [1, ["step.succeeded"]],
    [2, ["step.succeeded"]],
    [3, ["step.failed"]],
  ];
  if (JSON.stringify([...outcomes].sort()) !== JSON.stringify(expected)) {
    problems.push(`saga run ${i}: step outcomes ${JSON.stringify([...outcomes])}`);
  }
  const undone = [...compensationOutcomes(events)].sort();
  if (
    JSON.stringify(undone) !==
    JSON.stringify([
      [1, ["compensation.step_succeeded"]],
      [2, ["compensation.step_succeeded"]],
    ])
  ) {
    problems.push(`saga run ${i}: compensation outcomes ${JSON.stringify(undone)}`);
  }
  for (const text of todos) {
    const n = await todoCount(text);
    if (n !== 0) problems.push(`saga run ${i}: todo "${text}" count ${n} after compensation`);
  }
  return problems;
}

/** The fault for the n-th delivery of one (run, step, attempt): a pure function of the seed. */
function faultFor(key: string, delivery: number): MessageFault | undefined {
  let h = SEED;
  for (const ch of `${key}#${delivery}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  const r = seeded(h)();
  if (r < 0.05) return { drop: true };
  if (r < 0.13) return delivery === 1 ? { duplicate: true } : undefined;
  if (r < 0.17) return { throwBeforeTool: true };
  if (r < 0.21) return { throwAfterTool: true };
  if (r < 0.25) return { delayReportMs: 100 + Math.floor(r * 1000) };
  if (r < 0.28) return { hangMs: 1000 };
  return undefined;
}

it(`soak: ${RUNS} runs with random faults all finish correctly, each effect applied once (and undone once by a saga)`, {
  timeout: 240_000,
}, async () => {
  const deliveries = new Map<string, number>();
  const faultsInjected = new Map<string, number>();
  let compensationFaults = 0;
  setFaultInjector({
    onMessage(m) {
      // A compensation's messages are keyed apart from its step's (a step's key is unchanged, so old seeds replay).
      const key = m.task ? `${messageKey(m)}:${m.task}` : messageKey(m);
      const n = (deliveries.get(key) ?? 0) + 1;
      deliveries.set(key, n);
      const fault = faultFor(key, n);
      if (fault) {
        const kind = Object.keys(fault)[0] as string;
        faultsInjected.set(kind, (faultsInjected.get(kind) ?? 0) + 1);
        if (m.task === "compensate") compensationFaults++;
      }
      return fault;
    },
  });
  const rand = seeded(SEED);
  const cases = Array.from({ length: RUNS }, (_, i) => makeCase(i, rand));
  const failures: string[] = [];

  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i] as Case;
      const created = await createRun({
        prompt: `soak ${i}`,
        options: { step_timeout_ms: 500, max_attempts: 10, ...(c.undone ? { on_failure: "compensate" } : {}) },
        plan: { steps: c.steps },
      });
      let run: Run;
      try {
        run = await waitForRun(created.run_id, 60_000, 50);
      } catch (err) {
        failures.push(`run ${i} (${created.run_id}): ${err}`);
        continue;
      }
      if (c.undone) {
        failures.push(...(await checkSaga(i, run, c.undone)));
        continue;
      }
      if (run.status !== "completed" || !c.check(run.result)) {
        failures.push(
          `run ${i} (${run.run_id}): ${run.status}, result ${JSON.stringify(run.result)}, expected ${c.expected}, error ${run.error}`,
        );
        continue;
      }
      const outcomes = terminalEventsPerStep(await getEvents(run.run_id));
      if (
        outcomes.size !== c.steps.length ||
        [...outcomes.values()].some((o) => o.length !== 1 || o[0] !== "step.succeeded")
      ) {
        failures.push(`run ${i}: step outcomes ${JSON.stringify([...outcomes])}`);
      }
      if (c.todo && (await todoCount(c.todo)) !== 1)
        failures.push(`run ${i}: todo "${c.todo}" count ${await todoCount(c.todo)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  const injected = [...faultsInjected].map(([k, n]) => `${k}=${n}`).join(" ");
  expect(failures, `seed ${SEED} (faults: ${injected})`).toEqual([]);
  // The sagas' compensations were hit by faults too.
  expect(compensationFaults, `seed ${SEED}`).toBeGreaterThan(0);
  // The schedule really did inject each kind of fault.
  expect([...faultsInjected.keys()].sort(), `seed ${SEED}`).toEqual(
    ["delayReportMs", "drop", "duplicate", "hangMs", "throwAfterTool", "throwBeforeTool"].sort(),
  );
});
