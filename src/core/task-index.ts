import type { Redis } from 'ioredis';
import { berthKeys } from './keys.js';

/**
 * BullMQ indexes jobs by state only; operators and the CLI filter by repository and kind most. This
 * keeps a sorted set of task ids per repository and per kind, scored by creation time, so a filtered
 * list reads one page of ids instead of scanning the queue.
 *
 * Kept right without coordinating with BullMQ: an id is added *before* its job, so a crash in
 * between leaves an id without a job (never a job missing from the index); such ids, deduplicated
 * adds, and jobs BullMQ removed by age (KEEP_COMPLETED) are dropped when a read finds no job.
 * Retries and stalls keep the job id, so they need nothing here; a replay is a new task.
 */
export class TaskIndex {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    queue: string,
  ) {
    this.keys = berthKeys(queue);
  }

  async add(taskId: string, repo: string, kind: string, at = Date.now()): Promise<void> {
    // NX: an id that exists keeps its first score (an idempotent resubmit is not a newer task).
    await this.redis.pipeline().zadd(this.keys.byRepo(repo), 'NX', at, taskId).zadd(this.keys.byKind(kind), 'NX', at, taskId).exec();
  }

  /** Ids newest first from `offset`, for a repository (if given) else a kind. */
  async ids(filter: { repo?: string; kind?: string }, offset: number, count: number): Promise<string[]> {
    return this.redis.zrevrange(this.key(filter), offset, offset + count - 1);
  }

  /** Ids whose job is gone: removed by age, deduplicated, or never added (a crash before the add). */
  async drop(filter: { repo?: string; kind?: string }, taskIds: string[]): Promise<void> {
    if (taskIds.length > 0) await this.redis.zrem(this.key(filter), ...taskIds);
  }

  private key(filter: { repo?: string; kind?: string }): string {
    if (filter.repo) return this.keys.byRepo(filter.repo);
    if (filter.kind) return this.keys.byKind(filter.kind);
    throw new Error('an index read needs a repository or a kind');
  }
}
