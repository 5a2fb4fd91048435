import type { CancelBook } from '../../core/cancel.js';
import type { TaskQueue } from '../../core/queue.js';
import { taskRequestSchema, type TaskState } from '../../core/task.js';
import { publicState } from '../../core/task-view.js';
import { submitTask, type SubmitConfig, type SubmitDeps, type SubmitResult } from './submit.js';

export type RetryResult =
  | { status: 'retried' | 'unchanged'; id: string; state: TaskState }
  | { status: 'not-retryable'; id: string; state: TaskState | 'removed' }
  | { status: 'not-found' };

/**
 * Runs a failed or cancelled task again as its next attempt, in a new container (attemptsMade is
 * kept, so the attempt number moves on). Idempotent: a task already queued or running is left alone.
 */
export async function retryTask(queue: TaskQueue, cancels: CancelBook, id: string): Promise<RetryResult> {
  const job = await queue.getJob(id);
  if (!job) return (await cancels.tombstone(id)) ? { status: 'not-retryable', id, state: 'removed' } : { status: 'not-found' };
  const state = await publicState(job);
  if (state === 'waiting' || state === 'active' || state === 'delayed') return { status: 'unchanged', id, state };
  if (state === 'completed') return { status: 'not-retryable', id, state };
  await cancels.clear(id);
  try {
    await job.retry('failed');
  } catch {
    // Someone else retried it between our read and now.
  }
  return { status: 'retried', id, state: await publicState(job) };
}

/** Retries every failed (not cancelled) task that finished at or after `since`. */
export async function retryFailedSince(queue: TaskQueue, cancels: CancelBook, since: number, limit = 1000): Promise<string[]> {
  const retried: string[] = [];
  for (let start = 0; retried.length < limit; start += 200) {
    const jobs = await queue.getJobs(['failed'], start, start + 199, false);
    if (jobs.length === 0) break;
    for (const job of jobs) {
      if (!job?.id || (job.finishedOn ?? 0) < since || (await publicState(job)) !== 'failed') continue;
      const result = await retryTask(queue, cancels, job.id);
      if (result.status === 'retried') retried.push(job.id);
    }
  }
  return retried;
}

/**
 * Queues a new task with the same input, linked to the original (`replayOf`). Idempotent per key:
 * the default key is the original's id, so replaying twice gives the same replay unless the client
 * sends a new `idempotencyKey`.
 */
export async function replayTask(
  queue: TaskQueue,
  config: SubmitConfig,
  id: string,
  idempotencyKey?: string,
  deps: SubmitDeps = {},
  pin: { ref?: string } = {},
): Promise<SubmitResult | { status: 'not-found' }> {
  const job = await queue.getJob(id);
  if (!job) return { status: 'not-found' };
  const input = taskRequestSchema.parse({
    kind: job.data.kind,
    repo: job.data.repo,
    // A Re-run replays the commit its check run was on (`pin.ref`), not wherever the branch is now.
    ...(pin.ref ? { ref: pin.ref } : job.data.ref ? { ref: job.data.ref } : {}),
    ...(job.data.number ? { number: job.data.number } : {}),
    ...(job.data.prompt ? { prompt: job.data.prompt } : {}),
    idempotencyKey: `replay:${id}:${idempotencyKey ?? ''}`,
  });
  return submitTask(
    queue,
    config,
    input,
    {
      source: job.data.source,
      replayOf: id,
      installationId: job.data.installationId,
      ...(job.data.untrusted ? { untrusted: job.data.untrusted } : {}),
      // The replay starts at the priority its task was given, whatever set it.
      ...(job.data.priority !== undefined ? { level: job.data.priority } : {}),
    },
    deps,
  );
}
