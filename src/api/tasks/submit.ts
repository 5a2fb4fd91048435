import { randomUUID } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import { agentCommandFor, kindPriority, type Config } from '../../core/config.js';
import { startPriority } from '../../core/start-priority.js';
import { idempotentTaskId, newTaskId } from '../../core/names.js';
import type { TaskQueue } from '../../core/queue.js';
import type { TaskData, TaskRequest } from '../../core/task.js';
import type { Approval } from '../../core/approval.js';
import type { AuditTrail } from '../../core/audit.js';
import { publicState } from '../../core/task-view.js';
import type { Capacity } from '../../core/backpressure.js';
import type { TaskIndex } from '../../core/task-index.js';
import type { TaskState } from '../../core/task.js';

export type SubmitConfig = Pick<Config, 'TASK_ATTEMPTS' | 'TASK_BACKOFF' | 'KEEP_COMPLETED' | 'agentCommands'> &
  Partial<Pick<Config, 'priorities' | 'API_PRIORITY_MIN' | 'API_PRIORITY_MAX'>>;

export type SubmitResult =
  | { status: 'created'; id: string; state: TaskState }
  | { status: 'existing'; id: string; state: TaskState; deduplicated: boolean }
  | { status: 'unknown-kind'; knownKinds: string[] }
  | { status: 'conflict'; id: string }
  | { status: 'over-capacity'; message: string }
  | { status: 'priority-refused'; message: string };

export interface SubmitExtra {
  source: TaskData['source'];
  jobId?: string;
  installationId?: number;
  deliveryId?: string;
  replayOf?: string;
  deduplicationId?: string;
  commentId?: number;
  untrusted?: TaskData['untrusted'];
  /** The supplied job id cannot exist unless this call makes it (a delivery id never seen before). */
  fresh?: boolean;
  /** Its fair rank, when the caller already worked it out (the webhook intake does, in its one step). */
  rank?: number;
  /** The schedule whose tick makes it. */
  schedule?: string;
  /** Its priority level as operator config set it (a webhook rule's, a replayed task's); a request's own is checked against the API range. */
  level?: number;
  /** Held for approval: added delayed until the approval expires (core/approval.ts). */
  approval?: Approval;
  /** Who asked (a webhook's actor), and the role GitHub reported for them: for the audit trail. */
  actor?: string;
  permission?: string;
}

/** Retry, backoff and retention come from operator config; a request cannot choose them. */
export function jobOptions(config: SubmitConfig, jobId: string): JobsOptions {
  const keepSeconds = Math.ceil(config.KEEP_COMPLETED / 1000);
  return {
    jobId,
    attempts: config.TASK_ATTEMPTS,
    backoff: { type: 'exponential', delay: config.TASK_BACKOFF },
    removeOnComplete: { age: keepSeconds },
    removeOnFail: { age: keepSeconds },
  };
}

const SAME_TASK_FIELDS = ['kind', 'repo', 'ref', 'number', 'prompt'] as const;

/**
 * Adds a task. With an idempotency key (or a webhook delivery) the job id is derived from it, so
 * BullMQ itself refuses a second job; the random submissionId tells whether this call made the job
 * or found it. A created task is reported as `waiting`: its state when this call made it.
 */
/** What a submit writes beside the job: the queue caps and the repository/kind index. */
export interface SubmitDeps {
  capacity?: Capacity | undefined;
  index?: TaskIndex | undefined;
  /** Who asked for each task it creates. */
  audit?: AuditTrail | undefined;
}

export async function submitTask(
  queue: TaskQueue,
  config: SubmitConfig,
  request: TaskRequest,
  extra: SubmitExtra,
  deps: SubmitDeps = {},
): Promise<SubmitResult> {
  const { capacity, index } = deps;
  const created = async (taskId: string, state: TaskState): Promise<SubmitResult> => {
    await deps.audit?.record(taskId, {
      type: 'requested',
      source: extra.source,
      kind: request.kind,
      repo: request.repo,
      ...(request.number !== undefined ? { number: request.number } : {}),
      ...(extra.actor ? { actor: extra.actor } : {}),
      ...(extra.permission ? { permission: extra.permission } : {}),
      ...(extra.deliveryId ? { delivery: extra.deliveryId } : {}),
      ...(extra.replayOf ? { replayOf: extra.replayOf } : {}),
    });
    if (extra.approval) {
      const { requestedBy, reason, minimum, expiresAt } = extra.approval;
      await deps.audit?.record(taskId, { type: 'approval-requested', requestedBy, reason, minimum, expiresAt });
    }
    return { status: 'created', id: taskId, state };
  };
  if (!agentCommandFor(config, request.kind)) return { status: 'unknown-kind', knownKinds: Object.keys(config.agentCommands).sort() };
  const refused = priorityRefusal(config, request.priority);
  if (refused) return { status: 'priority-refused', message: refused };
  const level = extra.level ?? request.priority ?? kindPriority(config.priorities ?? {}, request.kind);
  const id = extra.jobId ?? (request.idempotencyKey ? idempotentTaskId(request.idempotencyKey) : newTaskId());
  const submittedAt = Date.now();
  // Indexed before it exists (a crash in between leaves an id without a job, never a job the filters
  // miss), alongside the cap check: an id indexed for a refused task is dropped on the next read.
  const [admitted] = await Promise.all([
    capacity ? capacity.admit(request.repo, extra.installationId) : null,
    index?.add(id, request.repo, request.kind, submittedAt),
  ]);
  if (admitted?.refusal) return { status: 'over-capacity', message: admitted.refusal };
  const rank = extra.rank ?? admitted?.rank;
  const data: TaskData = {
    kind: request.kind,
    repo: request.repo,
    ...(request.ref !== undefined ? { ref: request.ref } : {}),
    ...(request.number !== undefined ? { number: request.number } : {}),
    ...(request.prompt !== undefined ? { prompt: request.prompt } : {}),
    source: extra.source,
    submittedAt,
    submissionId: randomUUID(),
    ...(extra.installationId !== undefined ? { installationId: extra.installationId } : {}),
    ...(extra.deliveryId !== undefined ? { deliveryId: extra.deliveryId } : {}),
    ...(extra.replayOf !== undefined ? { replayOf: extra.replayOf } : {}),
    ...(extra.commentId !== undefined ? { commentId: extra.commentId } : {}),
    ...(extra.untrusted !== undefined ? { untrusted: extra.untrusted } : {}),
    ...(extra.schedule !== undefined ? { schedule: extra.schedule } : {}),
    ...(level !== 0 ? { priority: level } : {}),
    ...(extra.approval ? { approval: extra.approval } : {}),
  };
  const options = jobOptions(config, id);
  if (extra.approval) options.delay = Math.max(1, extra.approval.expiresAt - submittedAt);
  if (extra.deduplicationId) options.deduplication = { id: extra.deduplicationId };
  options.priority = startPriority(level, rank);
  const added = await queue.add(request.kind, data, options);
  const addedId = added.id ?? id;
  if (addedId === id) await capacity?.queued(request.repo, id, admitted?.rank, submittedAt);
  // A fresh random id (or a delivery id never seen) cannot collide: the add created the job.
  const fresh: TaskState = extra.approval ? 'awaiting-approval' : 'waiting';
  if (addedId === id && ((!extra.jobId && !request.idempotencyKey) || extra.fresh)) return created(id, fresh);
  // BullMQ answers a deduplicated add with the id of the job already queued; a supplied id that
  // exists comes back unchanged, with the stored job's data untouched.
  if (addedId === id && (await storedSubmissionId(queue, id)) === data.submissionId) return created(id, fresh);
  const stored = await queue.getJob(addedId);
  if (!stored) return created(addedId, fresh);
  const deduplicated = addedId !== id;
  // An idempotency key promises the same task; the same key for a different one is a client bug.
  if (!deduplicated && request.idempotencyKey && SAME_TASK_FIELDS.some((field) => stored.data[field] !== data[field]))
    return { status: 'conflict', id: stored.id! };
  return { status: 'existing', id: stored.id!, state: await publicState(stored), deduplicated };
}

/** One field of the job hash rather than the whole job: the common answer is "it is ours". */
async function storedSubmissionId(queue: TaskQueue, id: string): Promise<string | undefined> {
  const data = await (await queue.getBackend().client).hget(queue.toKey(id), 'data');
  return data ? (JSON.parse(data) as Partial<TaskData>).submissionId : undefined;
}

/** Why a request's own priority is refused: API tasks choose only within API_PRIORITY_MIN..API_PRIORITY_MAX. */
function priorityRefusal(config: SubmitConfig, priority: number | undefined): string | null {
  if (priority === undefined) return null;
  const min = config.API_PRIORITY_MIN ?? 0;
  const max = config.API_PRIORITY_MAX ?? 0;
  if (priority >= min && priority <= max) return null;
  if (min === 0 && max === 0)
    return `priority ${priority}: API tasks cannot choose their priority here (API_PRIORITY_MIN and API_PRIORITY_MAX are both 0); leave it out to get the kind's`;
  return `priority ${priority} is outside ${min}..${max} (API_PRIORITY_MIN..API_PRIORITY_MAX)`;
}
