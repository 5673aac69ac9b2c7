import { describe, expect, it } from "vitest";
import { nestsDeeperThan, valueNestsDeeperThan } from "../../src/contracts/json-depth";
import { checkArguments, parseArguments } from "../../src/llm/arguments";
import { MAX_PROMPT_TOKENS, tokenCount, tokensOf, usageOf } from "../../src/llm/types";

const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
/** `depth` arrays nested inside one another, built without recursion. */
function nestedValue(depth: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < depth; i++) v = [v];
  return v;
}

describe("what a model writes is checked before anything walks it", () => {
  it("counts nesting of text and of parsed values alike, in loops that no depth can overflow", () => {
    expect(nestsDeeperThan(`{"a":${nested(31)}}`, 32)).toBe(false);
    expect(nestsDeeperThan(`{"a":${nested(32)}}`, 32)).toBe(true);
    expect(nestsDeeperThan(`{"a":"${"[".repeat(100)}"}`, 32)).toBe(false); // brackets inside a string
    expect(valueNestsDeeperThan(nestedValue(32), 32)).toBe(false);
    expect(valueNestsDeeperThan(nestedValue(33), 32)).toBe(true);
    expect(valueNestsDeeperThan({ a: [1, { b: nestedValue(30) }] }, 32)).toBe(true);
    expect(nestsDeeperThan(nested(60_000), 32)).toBe(true);
    expect(valueNestsDeeperThan(nestedValue(60_000), 32)).toBe(true);
  });

  it("refuses tool-call arguments nested too deep, too large or not JSON, keeping none of them", () => {
    expect(parseArguments('{"expression":"1+1"}')).toEqual({ arguments: { expression: "1+1" } });
    expect(parseArguments("")).toEqual({ arguments: {} });
    // 60,000 levels are 120 KB: refused for their size before their depth is counted.
    expect(parseArguments(`{"x":${nested(60_000)}}`)).toEqual({ arguments: {}, invalid: "exceed 16384 bytes" });
    for (const depth of [33, 3000]) {
      expect(parseArguments(`{"x":${nested(depth - 1)}}`)).toEqual({
        arguments: {},
        invalid: "nest arrays or objects deeper than 32 levels",
      });
    }
    expect(parseArguments(`{"x":${nested(31)}}`).invalid).toBeUndefined();
    expect(parseArguments(JSON.stringify({ text: "é".repeat(9000) }))).toEqual({
      arguments: {},
      invalid: "exceed 16384 bytes",
    });
    const notJson = parseArguments("{expression: 1 + 1}");
    expect(notJson.arguments).toEqual({});
    expect(notJson.invalid).toMatch(/^are not valid JSON \(.+\)$/);
    // Workers AI hands arguments over parsed (or as text).
    expect(checkArguments(nestedValue(3000))).toEqual({
      arguments: {},
      invalid: "nest arrays or objects deeper than 32 levels",
    });
    expect(checkArguments({ text: "x".repeat(20_000) }).invalid).toBe("exceed 16384 bytes");
    expect(checkArguments('{"a":1}')).toEqual({ arguments: { a: 1 } });
    expect(checkArguments({ a: 1 })).toEqual({ arguments: { a: 1 } });
  });

  it("charges token counts as non-negative integers no larger than the call could have cost", () => {
    const limits = { prompt: 5000, completion: 100 };
    expect(usageOf({ prompt_tokens: 1e308, completion_tokens: Number.POSITIVE_INFINITY }, limits)).toEqual({
      prompt_tokens: 5000,
      completion_tokens: 100,
    });
    expect(usageOf({ prompt_tokens: -1e6, completion_tokens: Number.NEGATIVE_INFINITY }, limits)).toEqual({
      prompt_tokens: 0,
      completion_tokens: 0,
    });
    expect(usageOf({ prompt_tokens: 12.2, completion_tokens: "40" }, limits)).toEqual({
      prompt_tokens: 13,
      completion_tokens: null,
    });
    expect(usageOf({ prompt_tokens: 1e9 }, { prompt: 1e12, completion: 1 })?.prompt_tokens).toBe(MAX_PROMPT_TOKENS);
    expect(usageOf("lots", limits)).toBeNull();
    expect(tokenCount(Number.NaN, 10)).toBeNull();
    expect(tokensOf({ usage: { prompt_tokens: -5, completion_tokens: 1e308 } })).toBe(MAX_PROMPT_TOKENS);
    expect(Number.isFinite(tokensOf({ usage: { prompt_tokens: 1e308, completion_tokens: 1e308 } }))).toBe(true);
  });
});
