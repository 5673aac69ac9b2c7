/**
 * The time a run's coordinator decides by. A module of its own so that tests can move it: a
 * three-day timer is tested by moving the clock three days on and running the object's alarm,
 * instead of waiting three days. Like `faults.ts`, only code inside the Worker's isolate can set
 * the offset — no binding, variable or request reaches it.
 */
let offsetMs = 0;

export const now = (): number => Date.now() + offsetMs;

/** Test only: moves the clock by `ms` (0 puts it back). */
export function setClockOffset(ms: number): void {
  offsetMs = ms;
}
