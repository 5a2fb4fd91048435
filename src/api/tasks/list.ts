import type { JobType } from 'bullmq';
import type { TaskQueue } from '../../core/queue.js';
import type { TaskState } from '../../core/task.js';
import { viewTask, type TaskView } from '../../core/task-view.js';
import type { TaskIndex } from '../../core/task-index.js';

const BULLMQ_STATES: Record<TaskState, JobType[]> = {
  'awaiting-approval': ['delayed'],
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
 * Newest first. A repository or kind filter reads berth's index (one page of ids, O(page)); without
 * one, BullMQ's state lists are read in batches. A state filter on top skips what does not match,
 * at most 5,000 entries per request; `nextCursor` continues where the read stopped.
 */
export async function listTasks(queue: TaskQueue, query: ListQuery, index?: TaskIndex): Promise<{ tasks: TaskView[]; nextCursor: number | null }> {
  if (index && (query.repo || query.kind)) return listFromIndex(queue, index, query);
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

async function listFromIndex(queue: TaskQueue, index: TaskIndex, query: ListQuery): Promise<{ tasks: TaskView[]; nextCursor: number | null }> {
  const filter = { ...(query.repo ? { repo: query.repo } : {}), ...(query.kind ? { kind: query.kind } : {}) };
  const tasks: TaskView[] = [];
  let cursor = query.cursor;
  const scanLimit = cursor + 5_000;
  const batch = query.state ? Math.max(query.limit, 100) : query.limit;
  while (tasks.length < query.limit && cursor < scanLimit) {
    const ids = await index.ids(filter, cursor, batch);
    if (ids.length === 0) return { tasks, nextCursor: null };
    const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
    const gone = ids.filter((_, i) => !jobs[i]);
    // Exact matches only (the index key is case-folded), with each view read at once.
    const views = await Promise.all(
      jobs.map((job) => (job && (!query.repo || job.data.repo === query.repo) && (!query.kind || job.data.kind === query.kind) ? viewTask(job) : null)),
    );
    let kept = 0;
    for (const [i, view] of views.entries()) {
      if (jobs[i]) kept++;
      if (!view || (query.state && view.state !== query.state)) continue;
      tasks.push(view);
      if (tasks.length === query.limit) {
        await index.drop(filter, gone);
        // Ids dropped before this one no longer take a place: the next page starts right after it.
        return { tasks, nextCursor: cursor + kept };
      }
    }
    await index.drop(filter, gone);
    cursor += ids.length - gone.length;
    if (ids.length < batch) return { tasks, nextCursor: null };
  }
  return { tasks, nextCursor: cursor };
}
