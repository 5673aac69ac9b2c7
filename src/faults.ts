import type { StepMessage } from "./contracts/tool";

/** What to do to one delivery of a step message. Every field is off by default. */
export interface MessageFault {
  /** Ack the message without doing anything: a lost message. */
  drop?: boolean;
  /** Send the same message to the queue again before handling it: a duplicate delivery. */
  duplicate?: boolean;
  /** Throw before asking the coordinator to start the attempt: a consumer that dies on arrival. */
  throwBeforeStart?: boolean;
  /** Throw after the attempt was granted, before the tool runs: a consumer crash. */
  throwBeforeTool?: boolean;
  /** Throw after the tool ran, before its outcome is reported: a crash after the side effect. */
  throwAfterTool?: boolean;
  /** Fail the attempt with a transient error instead of running the tool: a broken upstream. */
  failTool?: boolean;
  /** Make the tool take this much longer (still subject to its timeout): a hung tool. */
  hangMs?: number;
  /** Wait this long before reporting the outcome: a slow or partitioned consumer. */
  delayReportMs?: number;
  /** Wait for this before reporting the outcome: a report held back until the test lets it go. */
  holdReport?: Promise<void>;
  /** Wait for this before asking the coordinator to start the attempt: a slow start. */
  holdStart?: Promise<void>;
  /** Called once the tool has run, before its outcome is reported. */
  afterTool?: () => void;
}

/**
 * Fault injection for the durability tests. There is deliberately no binding, variable, header
 * or request that reaches it: only code in the Worker's own isolate can install an injector,
 * which the Vitest integration does (tests share the Worker's isolate) and a deployment cannot.
 */
export interface FaultInjector {
  /** Called for every delivery of a step message; `delivery` is the queue's attempt count. */
  onMessage?(message: StepMessage, delivery: number): MessageFault | undefined;
  /** Called before the coordinator sends a batch to the queue; throw to make the send fail. */
  beforeEnqueue?(messages: readonly StepMessage[]): void;
  /** Called as a coordinator asks the tenant's gate to open its new run; true makes the call fail. */
  failGateOpen?(runId: string): boolean;
  /** Called before a coordinator sends its run to the archive queue; throw to make the send fail. */
  beforeArchiveSend?(runId: string): void;
  /** Called before the archive consumer or a tenant's gate writes a batch to D1; throw to make the write fail. */
  beforeArchiveWrite?(runIds: readonly string[]): void;
  /**
   * Called for each archive message, and each archive a tenant's gate is about to write; true loses
   * it (acked, or dropped by the gate; nothing written): a message the queue lost, a gate that forgot.
   */
  loseArchiveMessage?(runId: string): boolean;
}

let injector: FaultInjector | null = null;

/** Installs (or with null removes) the fault injector. Test code only. */
export function setFaultInjector(next: FaultInjector | null): void {
  injector = next;
}

export function faultInjector(): FaultInjector | null {
  return injector;
}
