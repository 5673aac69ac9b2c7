import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatDuration } from "../../src/client/duration";

describe("formatDuration (console and CLI)", () => {
  it("rounds once, to what it shows: no unit overflows", () => {
    const cases: [number, string][] = [
      [0, "0 ms"],
      [999.4, "999 ms"],
      [999.6, "1.0 s"],
      [4_240, "4.2 s"],
      [9_960, "10 s"],
      [42_400, "42 s"],
      [59_600, "1 min 0 s"],
      [119_600, "2 min 0 s"],
      [185_000, "3 min 5 s"],
      [3_599_600, "1 h 0 min"],
      [7_800_000, "2 h 10 min"],
      [49 * 3_600_000, "2 d 1 h"],
    ];
    for (const [ms, text] of cases) expect(formatDuration(ms), String(ms)).toBe(text);
  });

  it("never shows 60 of a unit that rolls over at 60", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e10, noNaN: true }), (ms) => {
        expect(formatDuration(ms)).not.toMatch(/(^|\D)60 (s|min)|1000 ms/);
      }),
    );
  });
});
