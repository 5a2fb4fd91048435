import { Job } from 'bullmq';
import type { TaskData, TaskState } from './task.js';
import { awaitsApproval, type Approval } from './approval.js';
import { isCancel, untypedFailure, type Failure } from './failure.js';
import type { WorkerResultLine } from './worker-protocol.js';
import type { EgressSummary } from './egress-record.js';
import { mergeModelUsage, NOTHING_SPENT, selfReportedSpend, spendOf, type ModelUsage, type PriceTable, type SelfReported, type Spend } from './spend.js';

/** What the consumer writes as a job's progress: which container runs (or ran) the current attempt. */
export interface ContainerProgress {
  attempt: number;
  container: {
    name: string;
    id: string;
    state: string;
    exitCode?: number;
    startedAt?: number | null;
    finishedAt?: number | null;
    node?: string;
    failure?: string;
  };
  /** EGRESS=proxy: the attempt's egress record, once it has ended. */
  egress?: EgressSummary;
  /** Why the attempt failed, written before BullMQ records the failure. */
  failure?: Failure;
  /** Model usage per model of the task's earlier attempts: retries draw on one budget. */
  spentBefore?: ModelUsage;
  /** The task's spend so far (earlier attempts, and this one once it ended), priced when written. */
  spend?: TaskSpend;
  /** Why a task that could start waits (its repository at MAX_RUNNING_PER_REPO). */
  waitingFor?: string;
}

export interface TaskView {
  id: string;
  kind: string;
  repo: string;
  ref: string | null;
  number: number | null;
  source: string;
  state: TaskState;
  attempts: number;
  maxAttempts: number;
  container: { name: string; id: string; state: string; exitCode?: number } | null;
  result: unknown;
  failedReason: string | null;
  /** Why it failed (or the last attempt failed, while a retry waits), as data; null otherwise. */
  failure: Failure | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  replayOf: string | null;
  /** The last attempt's egress (EGRESS=proxy), once it ended; null otherwise. */
  egress: EgressSummary | null;
  /** What the task's model calls used and cost, over all its attempts (EGRESS=proxy); null before any was metered. */
  spend: TaskSpend | null;
  /** Why it waits though a consumer could take it (its repository at its running cap); null otherwise. */
  waitingFor: string | null;
  /** Its start priority level (higher first; 0 unless a rule, its kind or the request set one). */
  priority: number;
  /** Held for a person's approval, or approved (who, when, at which commit); null when it never needed one. */
  approval: Approval | null;
}

export interface TaskSpend extends Spend {
  byModel: ModelUsage;
  /** What the agent itself said it used in its finished result (its word, not the proxy's meter). */
  selfReported?: SelfReported;
}

/**
 * Model usage of the attempts before `attempt`: what the progress carried, plus the attempt it
 * last recorded when that was an earlier one (the same attempt, re-delivered, counts once).
 */
export function priorSpend(progress: unknown, attempt: number): ModelUsage {
  if (!progress || typeof progress !== 'object') return {};
  const p = progress as Partial<ContainerProgress>;
  if (p.attempt === attempt) return p.spentBefore ?? {};
  return mergeModelUsage(p.spentBefore, p.egress?.byModel);
}

/** The metered spend, with what the finished agent's result said it used beside it (its word only). */
function withSelfReported(spend: TaskSpend | null, result: unknown): TaskSpend | null {
  const said = selfReportedSpend(result);
  if (!said) return spend;
  return { ...(spend ?? { ...NOTHING_SPENT, byModel: {} }), selfReported: said };
}

/** The task's spend from `byModel`, priced by `prices`. */
export function taskSpend(byModel: ModelUsage, prices: PriceTable): TaskSpend {
  return { ...spendOf(byModel, prices), byModel };
}

export async function publicState(job: Job): Promise<TaskState> {
  return (await settled(job)).state;
}

/**
 * The job hash and its state are two reads: a job that finished between them reads as finished
 * without its result or reason (a cancel would read as a plain failure). A finished state re-reads
 * the hash, so it always comes with its outcome.
 */
async function settled<J extends Job>(loaded: J): Promise<{ state: TaskState; job: J }> {
  let job = loaded;
  const raw = await job.getState();
  if ((raw === 'completed' || raw === 'failed') && !job.finishedOn) {
    const queue = (job as unknown as { queue: Parameters<typeof Job.fromId>[0] }).queue;
    job = ((await Job.fromId(queue, job.id!)) as J | undefined) ?? job;
  }
  return { state: toPublicState(raw, job), job };
}

/** BullMQ's state in berth's words; a cancel is a failure whose reason says so. */
function toPublicState(state: Awaited<ReturnType<Job['getState']>>, job: Job): TaskState {
  switch (state) {
    case 'delayed':
      return awaitsApproval(job.data as TaskData) ? 'awaiting-approval' : 'delayed';
    case 'active':
    case 'completed':
      return state;
    case 'failed':
      return isCancel(failureOf(job)) ? 'cancelled' : 'failed';
    default:
      return 'waiting';
  }
}

/** The failure the consumer recorded; one BullMQ wrote itself (a stall) is read from its reason. */
function failureOf(job: Job): Failure | null {
  const progress = job.progress as Partial<ContainerProgress> | number | undefined;
  if (progress && typeof progress === 'object' && progress.failure) return progress.failure;
  return job.failedReason ? untypedFailure(job.failedReason) : null;
}

const iso = (ms: number | undefined | null) => (ms ? new Date(ms).toISOString() : null);

export function containerOf(job: Job): ContainerProgress['container'] | null {
  const progress = job.progress as Partial<ContainerProgress> | number | undefined;
  if (!progress || typeof progress !== 'object' || !progress.container) return null;
  return progress.container;
}

export async function viewTask(loaded: Job<TaskData, WorkerResultLine | null>): Promise<TaskView> {
  const { state, job } = await settled(loaded);
  const progress = job.progress as Partial<ContainerProgress> | undefined;
  const container = containerOf(job);
  return {
    id: job.id!,
    kind: job.data.kind,
    repo: job.data.repo,
    ref: job.data.ref ?? null,
    number: job.data.number ?? null,
    source: job.data.source,
    state,
    attempts: Math.max(job.attemptsMade, typeof progress === 'object' && progress?.attempt ? progress.attempt : 0),
    // A task retried by hand runs past its configured attempts: the view never reads 3 of 2.
    maxAttempts: Math.max(job.opts.attempts ?? 1, job.attemptsMade, typeof progress === 'object' && progress?.attempt ? progress.attempt : 0),
    container: container
      ? { name: container.name, id: container.id, state: container.state, ...(container.exitCode !== undefined ? { exitCode: container.exitCode } : {}) }
      : null,
    result: job.returnvalue?.result ?? null,
    failedReason: job.failedReason || null,
    failure: state === 'failed' || state === 'cancelled' || (job.attemptsMade > 0 && (state === 'delayed' || state === 'waiting')) ? failureOf(job) : null,
    createdAt: new Date(job.timestamp).toISOString(),
    startedAt: iso(job.processedOn),
    finishedAt: iso(job.finishedOn),
    replayOf: job.data.replayOf ?? null,
    priority: job.data.priority ?? 0,
    approval: job.data.approval ?? null,
    egress: (typeof progress === 'object' && progress?.egress) || null,
    spend: withSelfReported((typeof progress === 'object' && progress?.spend) || null, job.returnvalue?.result),
    waitingFor: (state === 'waiting' || state === 'delayed') && typeof progress === 'object' ? (progress?.waitingFor ?? null) : null,
  };
}
