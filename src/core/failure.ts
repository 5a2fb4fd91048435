import { secondsInWords } from './duration.js';

/**
 * Why an attempt or a task failed, as data. Built where the failure is known (the outcome of an
 * exit, a refusal before launch, a cancel), stored with the job's progress, and read, never parsed
 * back, by the task view, the metrics, the check run and the docs. BullMQ's `failedReason` gets
 * `failureReason(failure)`, a one-line text for the board and logs.
 */
export const FAILURE_CAUSES = {
  timeout: 'ran longer than its timeout and was stopped',
  oom: 'hit its memory limit and was killed',
  cancelled: 'cancelled by a person (API, CLI, board or Cancel button)',
  superseded: 'cancelled because a newer push superseded it',
  unapproved: "asked for by someone below the rule's permission, and not approved in time (trust.approval.expireAfterHours); it never ran",
  invalid_task: 'the task data failed validation (in the consumer or the container)',
  no_retry: 'the agent exited 78: it asked not to be retried',
  signal: 'the agent was killed by a signal berth did not send',
  exit_code: 'the agent exited with a non-zero code',
  engine_restart: 'the Docker engine restarted and stopped the container (live-restore off)',
  checkout: "the worker's checkout failed before the agent ran",
  refused: 'refused before launch by trust or policy; no container, no token',
  github: 'no GitHub token could be minted for the repository',
  image: 'the worker image is not where the workload would run',
  platform: 'the platform ended the attempt (a swarm task rejected, unschedulable, or its node lost)',
  budget: "the task's model budget was spent (TASK_BUDGET_TOKENS, TASK_BUDGET_USD); not retried",
  stalled: 'BullMQ gave the job up after it stalled too often (no consumer renewed its lock)',
  other: 'any other reason; its text says what',
} as const;

export type FailureCause = keyof typeof FAILURE_CAUSES;

export interface Failure {
  cause: FailureCause;
  /** What the agent, git, GitHub, the platform or a person said; masked and capped before storing. */
  detail?: string;
  /** exit_code, no_retry, signal, engine_restart: the container's exit code. */
  exitCode?: number;
  /** signal: the signal's name (SIGKILL, SIGTERM). */
  signal?: string;
  /** timeout: the limit it ran into, in seconds. */
  limitSeconds?: number;
}

/** The one-line technical reason: BullMQ's failedReason, shown on the board and in logs. */
export function failureReason(failure: Failure): string {
  const { cause, detail, exitCode } = failure;
  const tail = detail ? `: ${detail}` : '';
  switch (cause) {
    case 'timeout':
      return `timeout: ran longer than ${failure.limitSeconds ?? '?'}s and was stopped`;
    case 'oom':
      return 'out of memory: the container hit its memory limit and was killed';
    case 'cancelled':
    case 'superseded':
      return `cancelled${tail}`;
    case 'invalid_task':
      return `invalid task data${tail}`;
    case 'no_retry':
      return `exit code ${exitCode} (do not retry)${tail}`;
    case 'signal':
      return `killed by ${failure.signal ?? 'a signal'} (exit code ${exitCode})${tail}`;
    case 'exit_code':
      return `exit code ${exitCode}${tail}`;
    case 'engine_restart':
      return `the Docker engine restarted while the task ran and stopped its container (exit code ${exitCode}); enable live-restore to keep containers running across engine restarts`;
    case 'checkout':
      return `checkout failed${tail}`;
    case 'budget':
      return `budget exceeded${tail}`;
    default:
      return detail ?? cause;
  }
}

/** The failure in plain words, for people on GitHub (a check run, a comment). */
export function failureInWords(failure: Failure): string {
  switch (failure.cause) {
    case 'timeout':
      return `timed out after ${secondsInWords(failure.limitSeconds ?? 0)}`;
    case 'oom':
      return 'ran out of memory (the container hit its memory limit)';
    case 'cancelled':
      return 'cancelled';
    case 'superseded':
      return failure.detail ?? 'superseded';
    case 'unapproved':
      return failure.detail ?? 'not approved in time';
    case 'budget':
      return `the task's model budget is spent (${failure.detail ?? 'budget reached'})`;
    case 'exit_code':
    case 'no_retry':
      return `the agent exited with code ${failure.exitCode}${failure.detail ? `: ${failure.detail}` : ''}`;
    default:
      return failureReason(failure);
  }
}

/** Whether the task ended by someone's decision (cancel, supersede), not by failing. */
export function isCancel(failure: Failure | null | undefined): boolean {
  return failure?.cause === 'cancelled' || failure?.cause === 'superseded' || failure?.cause === 'unapproved';
}

/**
 * A failure berth did not type: BullMQ's own (a job that stalled too often), or a job written by
 * an older berth. The only place a reason text is read, and only to tell BullMQ's stall apart.
 */
export function untypedFailure(reason: string): Failure {
  return { cause: /stalled/i.test(reason) ? 'stalled' : 'other', detail: reason };
}

/** A thrown error carrying its failure: the attempt runner records the cause before BullMQ fails the job. */
export class FailureError extends Error {
  constructor(readonly failure: Failure) {
    super(failureReason(failure));
  }
}
