/**
 * Steps in flight per tenant in one consumer isolate. A tenant at its share waits its turn (the
 * consumer re-sends its message with a short delay), so one tenant's flood of slow steps cannot
 * occupy every slot of a consumer that other tenants' steps need. Per isolate: Cloudflare runs
 * many consumer invocations at once, each keeping its own count.
 */
export class Fairness {
  private readonly inFlight = new Map<string, number>();

  /** Takes a slot for `tenant` unless it already has `share` in flight here. */
  enter(tenant: string, share: number): boolean {
    const n = this.inFlight.get(tenant) ?? 0;
    if (n >= share) return false;
    this.inFlight.set(tenant, n + 1);
    return true;
  }

  leave(tenant: string): void {
    const n = (this.inFlight.get(tenant) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(tenant);
    else this.inFlight.set(tenant, n);
  }

  count(tenant: string): number {
    return this.inFlight.get(tenant) ?? 0;
  }
}
