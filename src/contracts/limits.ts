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
  maxOutputBytes: 64 * 1024,
  maxParallel: 50,
  maxStepTimeoutMs: 300_000,
  minStepTimeoutMs: 100,
  maxAttempts: 10,
  maxBackoffMs: 3_600_000,
  maxIdempotencyKeyChars: 255,
  maxEventsPage: 1000,
} as const;
