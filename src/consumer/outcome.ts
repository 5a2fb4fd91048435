import { EXIT, signalName } from '../core/exit-codes.js';
import { parseResultLine, type WorkerResultLine } from '../core/worker-protocol.js';
import type { SecretMask } from '../core/secret-mask.js';

export interface ExitFacts {
  exitCode: number;
  oomKilled: boolean;
  /** True when the container ran under a memory limit (then 137 without a flag is read as OOM: cgroup v2 does not always set it). */
  memoryLimited: boolean;
  timedOut: boolean;
  timeoutMs: number;
  /** The cancel's failure reason (`cancelled`, or `cancelled: why`); null when not cancelled. */
  cancelled: string | null;
  /** The container died by a signal while the engine was unreachable (it stopped its containers). */
  engineRestarted?: boolean;
  /** The platform ended the attempt (a swarm task rejected, unschedulable, its node lost): what happened. */
  platformFailure?: string;
}

export type Outcome =
  | { status: 'completed'; value: WorkerResultLine }
  | { status: 'failed'; reason: string; retry: boolean };

/** Turns how a container ended into what happens to its job. Pure, so every branch is unit-tested. */
export function interpretExit(facts: ExitFacts, output: string, options: { retryOnTimeout: boolean }): Outcome {
  const line = parseResultLine(output);
  const detail = line?.error ? `: ${line.error}` : '';
  if (facts.cancelled) return { status: 'failed', reason: facts.cancelled, retry: false };
  if (facts.timedOut) {
    return { status: 'failed', reason: `timeout: ran longer than ${Math.round(facts.timeoutMs / 1000)}s and was stopped`, retry: options.retryOnTimeout };
  }
  // Another attempt may land where it can run (another node, a node back, an image pulled).
  if (facts.platformFailure) return { status: 'failed', reason: facts.platformFailure, retry: true };
  if (facts.engineRestarted) {
    return { status: 'failed', reason: `the Docker engine restarted while the task ran and stopped its container (exit code ${facts.exitCode}); enable live-restore to keep containers running across engine restarts`, retry: true };
  }
  if (facts.oomKilled || line?.oomKilled === true || (facts.exitCode === 137 && facts.memoryLimited && !line)) {
    return { status: 'failed', reason: 'out of memory: the container hit its memory limit and was killed', retry: true };
  }
  if (facts.exitCode === EXIT.ok) {
    return { status: 'completed', value: line ?? { exitCode: 0, durationMs: 0, result: null } };
  }
  // The worker's own checkout, before the agent ran: its error says what git met.
  if (line?.error?.startsWith('checkout') && (facts.exitCode === EXIT.noRetry || facts.exitCode === EXIT.tempFail)) {
    return { status: 'failed', reason: `checkout failed: ${line.error.replace(/^checkout:?\s*/, '')}`, retry: facts.exitCode === EXIT.tempFail };
  }
  if (facts.exitCode === EXIT.invalidTask) return { status: 'failed', reason: `invalid task data${detail}`, retry: false };
  if (facts.exitCode === EXIT.noRetry) return { status: 'failed', reason: `exit code ${EXIT.noRetry} (do not retry)${detail}`, retry: false };
  const signal = signalName(facts.exitCode);
  if (signal) return { status: 'failed', reason: `killed by ${signal} (exit code ${facts.exitCode})${detail}`, retry: true };
  return { status: 'failed', reason: `exit code ${facts.exitCode}${detail}`, retry: true };
}

/** The outcome with every string the agent could have written masked (result, error, reason). */
export function maskOutcome(mask: SecretMask, outcome: Outcome): Outcome {
  return outcome.status === 'completed' ? { ...outcome, value: mask.maskValue(outcome.value) } : { ...outcome, reason: mask.mask(outcome.reason) };
}
