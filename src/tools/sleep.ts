import { z } from "zod";
import { DEFAULT_RETRY, defineTool } from "./types";

export const sleepTool = defineTool({
  name: "sleep",
  description: "Waits for `ms` milliseconds (0–60000); for demos, tests and benchmarks.",
  inputSchema: z.object({ ms: z.number().int().min(0).max(60_000) }).strict(),
  effects: { resource: null, mode: "none" },
  sideEffectFree: true,
  retry: DEFAULT_RETRY,
  execute: async ({ ms }, { signal }) => {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });
    return { slept_ms: ms };
  },
});
