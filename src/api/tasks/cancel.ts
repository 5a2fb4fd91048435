import { setTimeout as delay } from 'node:timers/promises';
import type { CancelBook, CancelFailure } from '../../core/cancel.js';
import { failureReason } from '../../core/failure.js';
import type { TaskQueue } from '../../core/queue.js';
import type { TaskState } from '../../core/task.js';
import { publicState, viewTask, type TaskView } from '../../core/task-view.js';

export type CancelResult =
  | { status: 'cancelled' | 'cancelling'; id: string; state: TaskState }
  | { status: 'finished'; id: string; state: TaskState }
  | { status: 'not-found' };

/**
 * Idempotent. The request is written to Redis first, so whichever consumer holds the job (or takes
 * it next, even after a restart) sees it; running containers are stopped by that consumer (SIGTERM,
 * grace, SIGKILL) and the task fails as `cancelled`, never retried. A task that has not started is
 * removed from the queue and leaves a tombstone, so it still reads as cancelled.
 */
export async function cancelTask(
  queue: TaskQueue,
  cancels: CancelBook,
  id: string,
  waitMs: number,
  cancel: CancelFailure = { cause: 'cancelled' },
): Promise<CancelResult> {
  const job = await queue.getJob(id);
  if (!job) {
    const tombstone = await cancels.tombstone<TaskView>(id);
    return tombstone ? { status: 'cancelled', id, state: 'cancelled' } : { status: 'not-found' };
  }
  const state = await publicState(job);
  if (state === 'cancelled') return { status: 'cancelled', id, state };
  if (state === 'completed' || state === 'failed') return { status: 'finished', id, state };

  await cancels.request(id, job.attemptsMade, cancel);
  if (state === 'waiting' || state === 'delayed') {
    const view = await viewTask(job);
    // The tombstone first: whoever reads the removal (GitHub reporting, from the events stream) finds it.
    await cancels.writeTombstone(id, {
      ...view,
      state: 'cancelled',
      failedReason: failureReason(cancel),
      failure: cancel,
      finishedAt: new Date().toISOString(),
    });
    try {
      await job.remove();
      return { status: 'cancelled', id, state: 'cancelled' };
    } catch {
      // A consumer took it in the meantime (a locked job cannot be removed): it sees the request,
      // and the task is not cancelled yet.
      await cancels.dropTombstone(id);
    }
  }
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const current = await queue.getJob(id);
    if (!current) break;
    const now = await publicState(current);
    if (now === 'cancelled') return { status: 'cancelled', id, state: now };
    if (now === 'completed' || now === 'failed') return { status: 'finished', id, state: now };
    await delay(100);
  }
  return { status: 'cancelling', id, state: 'active' };
}
