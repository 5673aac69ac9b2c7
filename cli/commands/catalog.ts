import { asHealth, asTools } from "../answers";
import type { CommandSpec } from "../args";
import { compact, printable, table } from "../format";

/** The property names of an input JSON Schema, also those of its `anyOf` / `oneOf` / `allOf` branches. */
function inputFields(schema: Record<string, unknown>): string[] {
  const names = new Set(Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {}));
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    const branches = schema[key];
    if (!Array.isArray(branches)) continue;
    for (const b of branches) if (typeof b === "object" && b !== null) for (const n of inputFields(b)) names.add(n);
  }
  return [...names];
}

const toolsCommand: CommandSpec = {
  name: "tools",
  args: "",
  summary: "The tool catalog",
  positionals: { min: 0, max: 0 },
  options: {},
  async action(ctx) {
    const tools = asTools(await ctx.client.tools());
    if (ctx.json) {
      ctx.out.json(tools);
      return 0;
    }
    const c = ctx.out.colour;
    const rows = tools.map((t) => {
      const fields = inputFields(t.input_schema).map(printable);
      const breaker = t.breaker.state === "closed" ? c.green("closed") : c.red(compact(t.breaker.state));
      const effects =
        t.effects.mode === "none" ? "none" : compact(`${t.effects.mode} ${t.effects.resource ?? ""}`.trim());
      return [
        printable(t.name),
        effects,
        compact(t.retry.max_attempts ?? "-"),
        breaker,
        fields.join(", "),
        compact(t.description, 60),
      ];
    });
    for (const line of table(["TOOL", "EFFECTS", "ATTEMPTS", "BREAKER", "INPUT", "DESCRIPTION"], rows))
      ctx.out.line(line);
    return 0;
  },
};

const healthCommand: CommandSpec = {
  name: "health",
  args: "",
  summary: "The server's health checks (exit 1 when unhealthy)",
  positionals: { min: 0, max: 0 },
  options: {},
  async action(ctx) {
    const health = asHealth(await ctx.client.health());
    if (ctx.json) ctx.out.json(health);
    else {
      const c = ctx.out.colour;
      ctx.out.line(`${ctx.url}: ${health.status === "healthy" ? c.green("healthy") : c.red(printable(health.status))}`);
      for (const [name, check] of Object.entries(health.checks)) {
        const status = check?.status === "ok" ? c.green("ok") : c.red(compact(check?.status ?? "?"));
        ctx.out.line(`  ${printable(name)}: ${status}${check?.detail ? ` ${compact(check.detail, 1000)}` : ""}`);
      }
    }
    return health.status === "healthy" ? 0 : 1;
  },
};

export const catalogCommands = [toolsCommand, healthCommand];
