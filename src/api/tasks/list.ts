import type { JobType } from 'bullmq';
import type { TaskQueue } from '../../core/queue.js';
import type { TaskState } from '../../core/task.js';
import { viewTask, type TaskView } from '../../core/task-view.js';

const BULLMQ_STATES: Record<TaskState, JobType[]> = {
  waiting: ['waiting', 'prioritized', 'waiting-children'],
  active: ['active'],
  delayed: ['delayed'],
  completed: ['completed'],
  failed: ['failed'],
  cancelled: ['failed'],
};

export interface ListQuery {
  state?: TaskState;
  repo?: string;
  kind?: string;
  limit: number;
  cursor: number;
}

/**
 * Newest first. BullMQ indexes jobs by state only, so repo/kind filters scan forward from the
 * cursor in batches (at most 5,000 jobs per request); `nextCursor` continues where the scan stopped.
 */
export async function listTasks(queue: TaskQueue, query: ListQuery): Promise<{ tasks: TaskView[]; nextCursor: number | null }> {
  const types = query.state ? BULLMQ_STATES[query.state] : (['active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed'] as JobType[]);
  const tasks: TaskView[] = [];
  let cursor = query.cursor;
  const scanLimit = cursor + 5_000;
  const batch = Math.max(query.limit, 100);
  while (tasks.length < query.limit && cursor < scanLimit) {
    const jobs = await queue.getJobs(types, cursor, cursor + batch - 1, false);
    if (jobs.length === 0) return { tasks, nextCursor: null };
    for (const [i, job] of jobs.entries()) {
      if (!job) continue;
      if (query.repo && job.data.repo !== query.repo) continue;
      if (query.kind && job.data.kind !== query.kind) continue;
      const view = await viewTask(job);
      if (query.state && view.state !== query.state) continue;
      tasks.push(view);
      if (tasks.length === query.limit) return { tasks, nextCursor: cursor + i + 1 };
    }
    cursor += jobs.length;
    if (jobs.length < batch) return { tasks, nextCursor: null };
  }
  return { tasks, nextCursor: cursor };
}
