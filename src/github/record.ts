import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { berthKeys } from '../core/keys.js';
import type { Subject } from './pulls.js';

export interface GithubFacts {
  subject?: Subject;
  checkRunId?: number;
  commentId?: number;
  /** The check run (a pull request) or comment (an issue) that asked for approval. */
  approvalCheckRunId?: number;
  approvalCommentId?: number;
}

const NUMBER_FIELDS = ['checkRunId', 'commentId', 'approvalCheckRunId', 'approvalCommentId'] as const;

const UNLOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * What berth has done for a task on GitHub, in one Redis hash per task. The subject is pinned with
 * HSETNX: the first resolution wins, so the check run, the checkout and every retry agree on one
 * commit even when the pull request moves meanwhile. No token is ever stored here.
 */
export class GithubRecord {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    queue: string,
    private readonly keepMs: number,
  ) {
    this.keys = berthKeys(queue);
  }

  async read(taskId: string): Promise<GithubFacts> {
    const hash = await this.redis.hgetall(this.keys.github(taskId));
    const facts: GithubFacts = hash.subject ? { subject: JSON.parse(hash.subject) as Subject } : {};
    for (const field of NUMBER_FIELDS) if (hash[field]) facts[field] = Number(hash[field]);
    return facts;
  }

  /** The task's pinned subject; `resolve` runs only when none is pinned yet. */
  async pin(taskId: string, resolve: () => Promise<Subject>): Promise<Subject> {
    const key = this.keys.github(taskId);
    const existing = await this.redis.hget(key, 'subject');
    if (existing) return JSON.parse(existing) as Subject;
    const resolved = await resolve();
    await this.redis.multi().hsetnx(key, 'subject', JSON.stringify(resolved)).pexpire(key, this.keepMs).exec();
    return JSON.parse((await this.redis.hget(key, 'subject')) ?? JSON.stringify(resolved)) as Subject;
  }

  async remember(taskId: string, field: (typeof NUMBER_FIELDS)[number], value: number): Promise<void> {
    const key = this.keys.github(taskId);
    await this.redis.multi().hset(key, field, String(value)).pexpire(key, this.keepMs).exec();
  }

  /**
   * A per-task lock; null when another consumer holds it. Short-lived: a consumer killed while
   * holding it delays that task's reports by at most this long.
   */
  async lock(taskId: string, ttlMs = 10_000): Promise<(() => Promise<void>) | null> {
    const key = this.keys.githubLock(taskId);
    const token = randomUUID();
    if ((await this.redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return null;
    return async () => {
      await this.redis.eval(UNLOCK, 1, key, token);
    };
  }
}
