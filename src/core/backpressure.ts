import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { berthKeys } from './keys.js';
import { NO_SPEND_BUDGETS, SpendBudgets, type SpendBudgetSettings, type Spender } from './spend-budgets.js';
import type { TaskQueue } from './queue.js';

export type CapacityConfig = Pick<Config, 'MAX_QUEUED_TASKS' | 'MAX_QUEUED_PER_REPO' | 'QUEUE_NAME'> &
  Partial<Pick<Config, 'FAIR_START'>> &
  Partial<SpendBudgetSettings>;

/** BullMQ's largest priority. */
const MAX_PRIORITY = 2_097_152;

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
    this.spend = new SpendBudgets(redis, { ...NO_SPEND_BUDGETS, ...config });
  }

  private readonly spend: SpendBudgets;

  /** Why a new task for this repository (and installation) is refused because a budget of theirs is spent, or null. */
  spendRefusal(spender: Spender): Promise<string | null> {
    return this.spend.refusal(spender);
  }

  /**
   * Whether a new task for `repo` may be queued, and its fair rank (FAIR_START): 1 + the
   * repository's tasks waiting before it, never below the last one it gave that repository while
   * it still has tasks waiting (so a repository's own tasks keep their order). BullMQ starts lower
   * numbers first, and equal ones in the order they came: 40 tasks of one repository and then 4 of
   * another interleave, and the 4 start within the next 8. The rank orders tasks within their
   * priority level (startPriority).
   */
  async admit(repo: string, installationId?: number): Promise<{ refusal: string | null; rank?: number }> {
    const key = this.keys.queuedForRepo(repo);
    const fair = this.config.FAIR_START === true && this.config.MAX_QUEUED_PER_REPO > 0;
    // Every count at once: one round trip on the hot path.
    const [counts, repoQueued, last, spent] = await Promise.all([
      this.config.MAX_QUEUED_TASKS > 0 ? this.queue.getJobCounts('waiting', 'prioritized', 'delayed') : null,
      this.config.MAX_QUEUED_PER_REPO > 0 ? this.redis.scard(key) : 0,
      fair ? this.redis.hget(this.keys.fairPriority, repo.toLowerCase()) : null,
      this.spend.refusal({ repo, installationId }),
    ]);
    const refusal = spent ?? (await this.refusalFrom(repo, counts, repoQueued));
    if (!fair || refusal) return { refusal };
    return { refusal, rank: fairRank(repoQueued, Number(last) || 1) };
  }

  private async refusalFrom(repo: string, counts: Record<string, number> | null, repoQueued: number): Promise<string | null> {
    const key = this.keys.queuedForRepo(repo);
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

  async queued(repo: string, taskId: string, rank?: number, at = Date.now()): Promise<void> {
    const pipeline = this.redis.pipeline().zadd(this.keys.waitingSince, 'NX', at, taskId);
    if (this.config.MAX_QUEUED_PER_REPO > 0) pipeline.sadd(this.keys.queuedForRepo(repo), taskId);
    if (rank !== undefined) pipeline.hset(this.keys.fairPriority, repo.toLowerCase(), rank);
    await pipeline.exec();
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

/**
 * The fair rank of a repository's next task (FAIR_START): after its `waiting` tasks, never before
 * the `last` one it was given while some still wait. The webhook intake's script computes the
 * same in Redis (api/webhooks/intake.ts).
 */
export function fairRank(waiting: number, last: number): number {
  return Math.min(MAX_PRIORITY, waiting === 0 ? 1 : Math.max(waiting + 1, last));
}

export const overAllMessage = (queued: number, cap: number) => `berth has ${queued} tasks queued (MAX_QUEUED_TASKS=${cap}); try again when some have run`;
export const overRepoMessage = (repo: string, queued: number, cap: number) =>
  `${repo} has ${queued} tasks queued (MAX_QUEUED_PER_REPO=${cap}); try again when some have run`;

/** An attempt started or the task was cancelled: it no longer waits in its repository's count. */
export async function leftQueue(redis: Redis, queue: string, repo: string, taskId: string): Promise<void> {
  const keys = berthKeys(queue);
  await redis.pipeline().srem(keys.queuedForRepo(repo), taskId).zrem(keys.waitingSince, taskId).exec();
}

/**
 * Seconds the oldest task not yet started has waited. BullMQ cannot say: with priorities (FAIR_START)
 * its waiting set is in start order, not age order. Ids of tasks that started, were cancelled or
 * vanished without passing through leftQueue (a crash between two steps) are dropped as they are met.
 */
export async function oldestWaitingSeconds(redis: Redis, queue: TaskQueue, now = Date.now()): Promise<number> {
  const key = berthKeys(queue.name).waitingSince;
  for (let looked = 0; looked < 20; looked++) {
    const [id, score] = await redis.zrange(key, '0', '0', 'WITHSCORES');
    if (!id) return 0;
    const job = await queue.getJob(id);
    if (job && NOT_STARTED.has(await job.getState()) && job.attemptsMade === 0) return Math.max(0, (now - Number(score)) / 1000);
    await redis.zrem(key, id);
  }
  return 0;
}
