import { EXIT, signalName } from '../core/exit-codes.js';
import { parseResultLine, type WorkerResultLine } from '../core/worker-protocol.js';
import type { SecretMask } from '../core/secret-mask.js';
import type { Failure } from '../core/failure.js';

export interface ExitFacts {
  exitCode: number;
  oomKilled: boolean;
  /** True when the container ran under a memory limit (then 137 without a flag is read as OOM: cgroup v2 does not always set it). */
  memoryLimited: boolean;
  timedOut: boolean;
  timeoutMs: number;
  /** The cancel (by a person, or superseded by a push); null when not cancelled. */
  cancelled: Failure | null;
  /** The container died by a signal while the engine was unreachable (it stopped its containers). */
  engineRestarted?: boolean;
  /** The platform ended the attempt (a swarm task rejected, unschedulable, its node lost): what happened. */
  platformFailure?: string;
  /** The egress proxy refused a model call because the task's budget was spent: why. */
  budgetExceeded?: string;
}

export type Outcome = { status: 'completed'; value: WorkerResultLine } | { status: 'failed'; failure: Failure; retry: boolean };

/** Turns how a container ended into what happens to its job. Pure, so every branch is unit-tested. */
export function interpretExit(facts: ExitFacts, output: string, options: { retryOnTimeout: boolean }): Outcome {
  const line = parseResultLine(output);
  const detail = line?.error ? { detail: line.error } : {};
  const failed = (failure: Failure, retry: boolean): Outcome => ({ status: 'failed', failure, retry });
  if (facts.cancelled) return failed(facts.cancelled, false);
  // Whatever the agent did after its model calls were refused, the task is over: another attempt draws on the same spent budget.
  if (facts.budgetExceeded) return failed({ cause: 'budget', detail: facts.budgetExceeded }, false);
  if (facts.timedOut) return failed({ cause: 'timeout', limitSeconds: Math.round(facts.timeoutMs / 1000) }, options.retryOnTimeout);
  // Another attempt may land where it can run (another node, a node back, an image pulled).
  if (facts.platformFailure) return failed({ cause: 'platform', detail: facts.platformFailure }, true);
  if (facts.engineRestarted) return failed({ cause: 'engine_restart', exitCode: facts.exitCode }, true);
  if (facts.oomKilled || line?.oomKilled === true || (facts.exitCode === 137 && facts.memoryLimited && !line)) return failed({ cause: 'oom' }, true);
  if (facts.exitCode === EXIT.ok) {
    return { status: 'completed', value: line ?? { exitCode: 0, durationMs: 0, result: null } };
  }
  // The worker's own checkout, before the agent ran: its error says what git met.
  if (line?.error?.startsWith('checkout') && (facts.exitCode === EXIT.noRetry || facts.exitCode === EXIT.tempFail)) {
    return failed({ cause: 'checkout', detail: line.error.replace(/^checkout:?\s*/, '') }, facts.exitCode === EXIT.tempFail);
  }
  if (facts.exitCode === EXIT.invalidTask) return failed({ cause: 'invalid_task', ...detail }, false);
  if (facts.exitCode === EXIT.noRetry) return failed({ cause: 'no_retry', exitCode: facts.exitCode, ...detail }, false);
  const signal = signalName(facts.exitCode);
  if (signal) return failed({ cause: 'signal', exitCode: facts.exitCode, signal, ...detail }, true);
  return failed({ cause: 'exit_code', exitCode: facts.exitCode, ...detail }, true);
}

/** The outcome with every string the agent could have written masked (result, error, failure detail). */
export function maskOutcome(mask: SecretMask, outcome: Outcome): Outcome {
  if (outcome.status === 'completed') return { ...outcome, value: mask.maskValue(outcome.value) };
  return outcome.failure.detail === undefined ? outcome : { ...outcome, failure: { ...outcome.failure, detail: mask.mask(outcome.failure.detail) } };
}

/** The parts of a result berth shows (check run title and summary), when a result is cut. */
const KEPT_TITLE_CHARS = 256;

/**
 * The outcome within `maxBytes`: what is stored in Redis (the job's return value, its failure
 * reason) must not grow with what an agent chooses to print. A result over the cap becomes its
 * title and the start of its summary, marked `truncated` with the size it had.
 */
export function capOutcome(outcome: Outcome, maxBytes: number): Outcome {
  if (outcome.status === 'failed') {
    const detail = outcome.failure.detail;
    // The reason BullMQ stores is the detail plus at most a line of berth's words.
    if (detail === undefined || Buffer.byteLength(detail) <= maxBytes - 256) return outcome;
    return { ...outcome, failure: { ...outcome.failure, detail: `${cutToBytes(detail, maxBytes - 300)} … [cut at ${maxBytes} bytes]` } };
  }
  const bytes = Buffer.byteLength(JSON.stringify(outcome.value.result ?? null));
  const errorBytes = Buffer.byteLength(outcome.value.error ?? '');
  if (bytes + errorBytes <= maxBytes) return outcome;
  const { result, error, ...rest } = outcome.value;
  const source = (result && typeof result === 'object' ? result : {}) as { title?: unknown; summary?: unknown };
  const title = typeof source.title === 'string' ? cutToBytes(source.title, KEPT_TITLE_CHARS) : undefined;
  const summary = typeof source.summary === 'string' ? cutToBytes(source.summary, Math.max(0, maxBytes - KEPT_TITLE_CHARS - 200)) : undefined;
  const kept = { truncated: true, bytes, ...(title !== undefined ? { title } : {}), ...(summary !== undefined ? { summary } : {}) };
  return { ...outcome, value: { ...rest, result: bytes > maxBytes ? kept : result, ...(error !== undefined ? { error: cutToBytes(error, 1_024) } : {}) } };
}

/** The start of `text`, at most `maxBytes` of UTF-8, never splitting a character. */
function cutToBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const bytes = Buffer.from(text).subarray(0, Math.max(0, maxBytes));
  return bytes.toString('utf8').replace(/\uFFFD$/, '');
}
