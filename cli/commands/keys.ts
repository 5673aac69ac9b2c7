import type { CreateApiKeyBody } from "../../src/client";
import { asCreatedKey, asKeys } from "../answers";
import { type CommandSpec, integer, str, UsageError } from "../args";
import { compact, printable, table, when } from "../format";

const tenantOption = { type: "string", value: "<tenant>", help: "the tenant (letters, digits, - or _)" } as const;

const createCommand: CommandSpec = {
  name: "keys create",
  args: "",
  summary: "Create an API key for a tenant (admin); the secret is shown once",
  positionals: { min: 0, max: 0 },
  options: {
    tenant: tenantOption,
    name: { type: "string", value: "<name>", help: "what the key is for" },
    "rate-limit": { type: "string", value: "<requests>/<seconds>", help: "the key's own rate limit, e.g. 120/60" },
    "max-active-runs": { type: "string", value: "<n>", help: "the tenant's active-run quota for this key" },
  },
  async action(ctx, _positionals, values) {
    const tenant = str(values.tenant);
    const name = str(values.name);
    if (!tenant || !name) throw new UsageError("keys create needs --tenant and --name", createCommand);
    const body: CreateApiKeyBody = { tenant, name };
    const rate = str(values["rate-limit"]);
    if (rate !== undefined) {
      const m = /^(\d+)\/(\d+)$/.exec(rate);
      if (!m) throw new UsageError("--rate-limit takes <requests>/<seconds>, e.g. 120/60", createCommand);
      body.rate_limit = { requests: Number(m[1]), window_s: Number(m[2]) };
    }
    if (values["max-active-runs"] !== undefined) {
      body.max_active_runs = integer(str(values["max-active-runs"]), "--max-active-runs", createCommand);
    }
    const key = asCreatedKey(await ctx.client.admin.createKey(body));
    if (ctx.json) ctx.out.json(key);
    else {
      ctx.out.line(`created key ${printable(key.key_id)} for tenant ${printable(key.tenant)} (${compact(key.name)})`);
      ctx.out.line(`api key: ${printable(key.api_key)}`);
      ctx.out.line(ctx.out.colour.dim("the secret is shown only now; Crane keeps only its hash"));
    }
    return 0;
  },
};

const listCommand: CommandSpec = {
  name: "keys list",
  args: "",
  summary: "A tenant's API keys, without secrets (admin)",
  positionals: { min: 0, max: 0 },
  options: { tenant: tenantOption },
  async action(ctx, _positionals, values) {
    const tenant = str(values.tenant);
    if (!tenant) throw new UsageError("keys list needs --tenant", listCommand);
    const keys = asKeys(await ctx.client.admin.listKeys(tenant));
    if (ctx.json) {
      ctx.out.json(keys);
      return 0;
    }
    const c = ctx.out.colour;
    if (keys.length === 0) {
      ctx.out.line(c.dim(`no keys for tenant '${tenant}'`));
      return 0;
    }
    const rows = keys.map((k) => [
      printable(k.key_id),
      compact(k.name),
      when(k.created_at),
      k.revoked_at ? c.red(`revoked ${when(k.revoked_at)}`) : c.green("active"),
      k.rate_limit ? compact(`${k.rate_limit.requests}/${k.rate_limit.window_s}s`) : "default",
      k.max_active_runs === null ? "default" : compact(k.max_active_runs),
    ]);
    for (const line of table(["KEY", "NAME", "CREATED (UTC)", "STATE", "RATE LIMIT", "ACTIVE RUNS"], rows)) {
      ctx.out.line(line);
    }
    return 0;
  },
};

const revokeCommand: CommandSpec = {
  name: "keys revoke",
  args: "<key_id>",
  summary: "Revoke an API key (admin); it stops working at once",
  positionals: { min: 1, max: 1 },
  options: {},
  async action(ctx, [keyId]) {
    await ctx.client.admin.revokeKey(keyId as string);
    if (ctx.json) ctx.out.json({ key_id: keyId, revoked: true });
    else ctx.out.line(`revoked key ${keyId}`);
    return 0;
  },
};

export const keyCommands = [createCommand, listCommand, revokeCommand];
