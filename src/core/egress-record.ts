/**
 * What berth's egress proxy records of an attempt, in the shapes both sides use: the proxy writes
 * them (src/egress), the consumer puts them on the task, the task view and the check run read them.
 */

/** Model tokens as the provider reported them; input excludes cached tokens for every provider. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  requests: number;
}

export type EgressDecision = 'allowed' | 'refused';

/** One connection or request through the proxy, as the task's egress log shows it. */
export interface EgressEntry {
  at: number;
  /** `connect` (a tunnel), `http` (a plain request), `model` (a provider call with berth's key). */
  via: 'connect' | 'http' | 'model';
  host: string;
  port: number;
  decision: EgressDecision;
  reason?: string;
  bytesIn: number;
  bytesOut: number;
}

/** What the task keeps of an attempt's record. */
export interface EgressSummary {
  allowed: number;
  refused: number;
  /** Refusals by host: the check run's "blocked: 3 requests to evil.example". */
  refusedHosts: Record<string, number>;
  usage: Usage;
  /** The same usage per model (`unknown` when a response named none). */
  byModel?: Record<string, Usage>;
  /** Set when the proxy refused a model call because the task's budget was spent: why. */
  budgetExceeded?: string;
  /** The latest entries, oldest first. */
  log: EgressEntry[];
}
