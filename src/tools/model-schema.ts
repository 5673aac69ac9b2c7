import type { Json } from "../contracts/common";
import { inputJsonSchema } from "./registry";
import type { Tool } from "./types";

type Schema = Record<string, Json>;
const COMBINATORS = ["oneOf", "anyOf", "allOf", "not"] as const;

const isObjectSchema = (s: Json): s is Schema =>
  typeof s === "object" && s !== null && !Array.isArray(s) && (s as Schema).type === "object";

/** One property's schemas across the branches that have it: one schema, an enum of consts, or anyOf. */
function mergeProperty(schemas: Schema[]): Schema {
  const distinct = [...new Map(schemas.map((s) => [JSON.stringify(s), s])).values()];
  if (distinct.length === 1) return distinct[0] as Schema;
  const consts = distinct.filter(
    (s) => s.type === "string" && typeof s.const === "string" && Object.keys(s).length === 2,
  );
  if (consts.length === distinct.length) return { type: "string", enum: consts.map((s) => s.const as string) };
  return { anyOf: distinct };
}

/** How one branch reads in the description: its required keys, a const shown with its value. */
function branchText(branch: Schema): string {
  const properties = (branch.properties ?? {}) as Record<string, Schema>;
  const required = new Set((branch.required ?? []) as string[]);
  const keys = Object.keys(properties).map((k) => {
    const c = properties[k]?.const;
    const shown = c === undefined ? k : `${k}: ${JSON.stringify(c)}`;
    return required.has(k) ? shown : `${shown}?`;
  });
  return `{${keys.join(", ")}}`;
}

/**
 * A tool's parameters as model providers accept them: a plain object schema, with no `oneOf`,
 * `anyOf`, `allOf` or `not` at the top and no `$schema` (Anthropic's and Gemini's tool schemas
 * refuse those, and OpenAI-compatible gateways pass requests on to them). A union of per-action
 * objects (todo_store) becomes one object: every property any branch has, required only
 * where every branch requires it, and the exact alternatives in its description. The tool still
 * checks its input against its own schema, and an input that fits no branch gets the tool's
 * error back, which names what is wrong.
 */
export function modelParameters(tool: Tool): Schema {
  let done = converted.get(tool);
  if (!done) {
    done = convert(tool);
    converted.set(tool, done);
  }
  return done;
}

/** Tools' model-facing schemas, made once per tool (a schema never changes). */
const converted = new WeakMap<Tool, Schema>();

function convert(tool: Tool): Schema {
  const { $schema: _, ...schema } = inputJsonSchema(tool);
  const key = COMBINATORS.find((k) => k in schema);
  if (!key) return schema;
  const branches = schema[key];
  const { [key]: __, ...rest } = schema;
  if ((key !== "oneOf" && key !== "anyOf") || !Array.isArray(branches) || !branches.every(isObjectSchema)) {
    // No shape to merge: any object, checked by the tool.
    return { ...rest, type: "object", description: "Any object the tool's description allows." };
  }
  const objects = branches as Schema[];
  const byKey = new Map<string, Schema[]>();
  for (const b of objects)
    for (const [k, s] of Object.entries((b.properties ?? {}) as Record<string, Schema>))
      byKey.set(k, [...(byKey.get(k) ?? []), s]);
  const requiredBy = (b: Schema) => new Set((b.required ?? []) as string[]);
  const required = [...byKey.keys()].filter((k) => objects.every((b) => requiredBy(b).has(k)));
  const closed = objects.every((b) => b.additionalProperties === false);
  return {
    ...rest,
    type: "object",
    description: `Exactly one of: ${objects.map(branchText).join(" | ")} (? marks an optional key).`,
    properties: Object.fromEntries([...byKey].map(([k, schemas]) => [k, mergeProperty(schemas)])),
    ...(required.length > 0 ? { required } : {}),
    ...(closed ? { additionalProperties: false } : {}),
  };
}
