import type { ToolEffects } from "../contracts/tool";

export interface StepEffect {
  step: number;
  resource: string | null;
  mode: ToolEffects["mode"];
}

/**
 * A topological order of the steps (Kahn's algorithm), ties broken by the smaller step number,
 * so that a plan without explicit dependencies runs its conflicting steps in numeric order.
 */
export function topologicalOrder(deps: ReadonlyMap<number, ReadonlySet<number>>): number[] {
  const remaining = new Map<number, number>();
  const dependants = new Map<number, number[]>();
  for (const [step, ds] of deps) {
    remaining.set(step, ds.size);
    for (const d of ds) dependants.set(d, [...(dependants.get(d) ?? []), step]);
  }
  const ready = [...remaining].filter(([, n]) => n === 0).map(([s]) => s);
  const order: number[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => a - b);
    const next = ready.shift() as number;
    order.push(next);
    for (const dep of dependants.get(next) ?? []) {
      const left = (remaining.get(dep) ?? 0) - 1;
      remaining.set(dep, left);
      if (left === 0) ready.push(dep);
    }
  }
  return order;
}

/**
 * Pairs `[later, earlier]` of steps that touch one resource with at least one write, so the
 * later waits for the earlier. "Earlier" follows the explicit DAG's topological order, which
 * keeps the added edges consistent with it (no cycle can appear).
 */
export function orderConflictingSteps(
  effects: readonly StepEffect[],
  deps: ReadonlyMap<number, ReadonlySet<number>>,
): [number, number][] {
  const position = new Map(topologicalOrder(deps).map((s, i) => [s, i]));
  const touching = effects
    .filter((e) => e.resource !== null && e.mode !== "none")
    .sort((a, b) => (position.get(a.step) ?? 0) - (position.get(b.step) ?? 0));
  const edges: [number, number][] = [];
  for (let i = 0; i < touching.length; i++) {
    const later = touching[i] as StepEffect;
    for (let j = 0; j < i; j++) {
      const earlier = touching[j] as StepEffect;
      if (earlier.resource === later.resource && (earlier.mode === "write" || later.mode === "write")) {
        edges.push([later.step, earlier.step]);
      }
    }
  }
  return edges;
}
