/**
 * Default steps of one tenant in flight in one consumer isolate (TENANT_STEPS_PER_CONSUMER): one
 * full batch of `crane-steps` (its `max_batch_size` in wrangler.toml). A smaller share splits a
 * tenant's batch into rounds and frees nothing for others, since an invocation lasts until its
 * last message ends; the share binds across the batches an isolate runs at once.
 */
export const DEFAULT_TENANT_SHARE = 50;
/** Longest a step over its tenant's share waits in the consumer for a slot before its message is re-sent. */
export const FAIR_SHARE_WAIT_MS = 2_000;

/**
 * Steps in flight per tenant in one consumer isolate. A tenant at its share waits its turn, so one
 * tenant's flood of slow steps cannot occupy every slot of a consumer that other tenants' steps
 * need. A step over the share first waits here for a slot of its own tenant (a short queue,
 * first come first served, at most `share` long and `maxWaitMs` long): the common burst — a
 * fan-out a little wider than the share — runs as soon as its own earlier steps finish, without a
 * trip through the queue. A step that finds that queue full, or waits too long, is told no; the
 * consumer then re-sends its message with a delay. Per isolate: Cloudflare runs many consumer
 * invocations at once, each keeping its own count. Other tenants never wait on this queue.
 */
export class Fairness {
  private readonly inFlight = new Map<string, number>();
  private readonly waiting = new Map<string, Array<(slot: boolean) => void>>();

  /** Takes a slot for `tenant` now if it has fewer than `share` in flight here. */
  enter(tenant: string, share: number): boolean {
    const n = this.inFlight.get(tenant) ?? 0;
    if (n >= share) return false;
    this.inFlight.set(tenant, n + 1);
    return true;
  }

  /**
   * Takes a slot for `tenant`, waiting up to `maxWaitMs` behind at most `share` other waiting
   * steps of the same tenant. Resolves false when it got none: the caller must not run the step.
   */
  acquire(tenant: string, share: number, maxWaitMs: number): Promise<boolean> | boolean {
    if (this.enter(tenant, share)) return true;
    const queue = this.waiting.get(tenant) ?? [];
    if (queue.length >= share || maxWaitMs <= 0) return false;
    this.waiting.set(tenant, queue);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        const i = queue.indexOf(wake);
        if (i >= 0) queue.splice(i, 1);
        if (queue.length === 0 && this.waiting.get(tenant) === queue) this.waiting.delete(tenant);
        resolve(false);
      }, maxWaitMs);
      const wake = (slot: boolean) => {
        clearTimeout(timer);
        resolve(slot);
      };
      queue.push(wake);
    });
  }

  /** Gives the slot back: to the tenant's first waiting step if there is one, else to the pool. */
  leave(tenant: string): void {
    const queue = this.waiting.get(tenant);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.waiting.delete(tenant);
    if (next) {
      next(true); // the slot passes on; the count stays
      return;
    }
    const n = (this.inFlight.get(tenant) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(tenant);
    else this.inFlight.set(tenant, n);
  }

  count(tenant: string): number {
    return this.inFlight.get(tenant) ?? 0;
  }

  /** Steps of `tenant` waiting here for a slot. */
  queued(tenant: string): number {
    return this.waiting.get(tenant)?.length ?? 0;
  }
}
