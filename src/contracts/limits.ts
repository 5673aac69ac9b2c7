/**
 * Size limits that protect a run's Durable Object and the queue. Queue messages are capped
 * at 128 KB by Cloudflare, and a Durable Object's SQLite row at 2 MB, so inputs and stored
 * outputs stay well below both.
 */
export const LIMITS = {
  maxBodyBytes: 256 * 1024,
  maxPromptChars: 2000,
  maxSteps: 50,
  maxStepNumber: 10_000,
  maxReasoningChars: 1000,
  maxToolInputBytes: 16 * 1024,
  /** A step's input once its references are resolved (a 16 KiB input can name a 64 KiB output). */
  maxResolvedInputBytes: 64 * 1024,
  /** `{{steps.N.output}}` references in one step's input. */
  maxReferencesPerStep: 64,
  /** Nesting of JSON values in a request body (arrays and objects). */
  maxJsonDepth: 32,
  maxOutputBytes: 64 * 1024,
  maxParallel: 50,
  maxStepTimeoutMs: 300_000,
  minStepTimeoutMs: 100,
  maxAttempts: 10,
  maxBackoffMs: 3_600_000,
  maxIdempotencyKeyChars: 255,
  maxEventsPage: 1000,
  /** Longest durable wait (`wait`, approval and signal timeouts): 365 days. */
  maxWaitMs: 365 * 24 * 60 * 60 * 1000,
  /** Data carried by a signal, an approval or a callback. */
  maxSignalDataBytes: 64 * 1024,
  maxMessageChars: 2000,
  /** Offset pagination stops here; deeper pages use the cursor. */
  maxListOffset: 10_000,
} as const;
