import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { berthKeys } from './keys.js';
import type { TaskQueue } from './queue.js';

export type CapacityConfig = Pick<Config, 'MAX_QUEUED_TASKS' | 'MAX_QUEUED_PER_REPO' | 'QUEUE_NAME'>;

const NOT_STARTED = new Set(['waiting', 'prioritized', 'delayed', 'waiting-children']);

/**
 * Backpressure instead of unbounded growth. The global count comes from BullMQ's own O(1) counters;
 * the per-repository one from a set of the repository's not-yet-started task ids, added at submit
 * and removed when an attempt starts or the task is cancelled. A set that reaches the cap is pruned
 * of ids that started or vanished meanwhile (a crash between two steps), so drift never refuses work.
 */
export class Capacity {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    private readonly queue: TaskQueue,
    private readonly config: CapacityConfig,
  ) {
    this.keys = berthKeys(config.QUEUE_NAME);
  }

  /** Why a new task for `repo` cannot be queued now, or null. */
  async refusal(repo: string): Promise<string | null> {
    const key = this.keys.queuedForRepo(repo);
    // Both counts at once: one round trip on the hot path.
    const [counts, repoQueued] = await Promise.all([
      this.config.MAX_QUEUED_TASKS > 0 ? this.queue.getJobCounts('waiting', 'prioritized', 'delayed') : null,
      this.config.MAX_QUEUED_PER_REPO > 0 ? this.redis.scard(key) : 0,
    ]);
    if (counts) {
      const queued = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0);
      if (queued >= this.config.MAX_QUEUED_TASKS) return overAllMessage(queued, this.config.MAX_QUEUED_TASKS);
    }
    if (this.config.MAX_QUEUED_PER_REPO > 0) {
      let queued = repoQueued;
      if (queued >= this.config.MAX_QUEUED_PER_REPO) queued = await this.prune(key);
      if (queued >= this.config.MAX_QUEUED_PER_REPO) return overRepoMessage(repo, queued, this.config.MAX_QUEUED_PER_REPO);
    }
    return null;
  }

  async queued(repo: string, taskId: string): Promise<void> {
    if (this.config.MAX_QUEUED_PER_REPO > 0) await this.redis.sadd(this.keys.queuedForRepo(repo), taskId);
  }

  private async prune(key: string): Promise<number> {
    const members = await this.redis.smembers(key);
    const gone: string[] = [];
    for (const id of members) {
      const job = await this.queue.getJob(id);
      if (!job || !NOT_STARTED.has(await job.getState())) gone.push(id);
    }
    if (gone.length) await this.redis.srem(key, ...gone);
    return members.length - gone.length;
  }
}

export const overAllMessage = (queued: number, cap: number) => `berth has ${queued} tasks queued (MAX_QUEUED_TASKS=${cap}); try again when some have run`;
export const overRepoMessage = (repo: string, queued: number, cap: number) =>
  `${repo} has ${queued} tasks queued (MAX_QUEUED_PER_REPO=${cap}); try again when some have run`;

/** An attempt started or the task was cancelled: it no longer waits in its repository's count. */
export async function leftQueue(redis: Redis, queue: string, repo: string, taskId: string): Promise<void> {
  await redis.srem(berthKeys(queue).queuedForRepo(repo), taskId);
}
