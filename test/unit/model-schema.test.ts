import { describe, expect, it } from "vitest";
import { z } from "zod";
import { modelParameters } from "../../src/tools/model-schema";
import { defaultRegistry } from "../../src/tools/registry";
import { DEFAULT_RETRY, defineTool } from "../../src/tools/types";

const TOP_LEVEL_REFUSED = ["oneOf", "anyOf", "allOf", "not", "enum", "$schema"];

describe("tool parameters as model providers accept them", () => {
  it("are a plain object schema for every tool, with nothing at the top that Anthropic or Gemini refuse", () => {
    for (const tool of defaultRegistry.values()) {
      const p = modelParameters(tool);
      expect(p.type, tool.name).toBe("object");
      for (const k of TOP_LEVEL_REFUSED) expect(k in p, `${tool.name}: ${k}`).toBe(false);
      expect(typeof p.properties, tool.name).toBe("object");
    }
  });

  it("merge todo_store's per-action objects: every key, action as an enum, the alternatives described", () => {
    const p = modelParameters(defaultRegistry.get("todo_store") as never);
    const properties = p.properties as Record<string, Record<string, unknown>>;
    expect(Object.keys(properties).sort()).toEqual(["action", "missing_ok", "text", "todo_id"]);
    expect(properties.action).toEqual({
      type: "string",
      enum: ["add", "list", "get", "complete", "reopen", "delete"],
    });
    expect(properties.todo_id).toEqual({ type: "string", minLength: 1, maxLength: 64 });
    // Only what every action requires is required; the rest is told in the description.
    expect(p.required).toEqual(["action"]);
    expect(p.additionalProperties).toBe(false);
    expect(p.description).toContain('{action: "add", text}');
    expect(p.description).toContain('{action: "delete", todo_id, missing_ok?}');
  });

  it("give wait as one object with ms and until, neither required, the rule in its description", () => {
    const p = modelParameters(defaultRegistry.get("wait") as never);
    expect(Object.keys(p.properties as object).sort()).toEqual(["ms", "until"]);
    expect("required" in p).toBe(false);
    expect(p.description).toBe("Exactly one of ms or until.");
  });

  it("leave a plain object schema as it is, but for $schema", () => {
    const p = modelParameters(defaultRegistry.get("sleep") as never);
    expect(p).toEqual({
      type: "object",
      properties: { ms: { type: "integer", minimum: 0, maximum: 60000 } },
      required: ["ms"],
      additionalProperties: false,
    });
  });

  it("keep a key whose branches disagree on more than a const as anyOf beneath the top", () => {
    const tool = defineTool({
      name: "mixed",
      description: "x",
      inputSchema: z.union([
        z.object({ v: z.string() }).strict(),
        z.object({ v: z.number(), w: z.boolean() }).strict(),
      ]),
      effects: { resource: null, mode: "none" },
      retry: DEFAULT_RETRY,
      execute: async () => null,
    });
    const p = modelParameters(tool as never);
    expect((p.properties as Record<string, unknown>).v).toEqual({ anyOf: [{ type: "string" }, { type: "number" }] });
    expect(p.required).toEqual(["v"]);
  });
});
