import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";

interface Env {
  DAG: Workflow<Params>;
}
interface Params {
  scenario: "calc-dag" | "sleep-dag";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The same DAGs as Crane's benchmark plans: parallel `step.do` calls, then a join. */
export class DagWorkflow extends WorkflowEntrypoint<Env, Params> {
  override async run(event: WorkflowEvent<Params>, step: WorkflowStep): Promise<number> {
    if (event.payload.scenario === "calc-dag") {
      const [a, b, c] = await Promise.all([
        step.do("a", async () => 12 * 7),
        step.do("b", async () => 100 / 4),
        step.do("c", async () => 2 ** 10),
      ]);
      return step.do("sum", async () => a + b + c);
    }
    const slept = await Promise.all(
      [1, 2, 3].map((i) =>
        step.do(`sleep-${i}`, async () => {
          await sleep(100);
          return 100;
        }),
      ),
    );
    return step.do("join", async () => slept.reduce((x, y) => x + y, 0));
  }
}

/**
 * `POST /run?scenario=calc-dag|sleep-dag`: starts an instance and answers when it completes,
 * with its output — submit → completed, as the driver measures Crane.
 */
export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    const scenario = url.searchParams.get("scenario") as Params["scenario"];
    const instance = await env.DAG.create({ params: { scenario } });
    for (;;) {
      const s = await instance.status();
      if (s.status === "complete") return Response.json({ status: "completed", result: s.output });
      if (s.status === "errored" || s.status === "terminated")
        return Response.json({ status: s.status, error: s.error }, { status: 500 });
      await sleep(2);
    }
  },
};
