import type { Redis } from 'ioredis';
import { berthKeys } from './keys.js';
import type { TaskQueue } from './queue.js';

/** Takes a slot of `repo` for a task, atomically across consumers: a task that holds one keeps it (a re-delivery, an adoption). */
const CLAIM = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[3])
return 1
`;

/**
 * MAX_RUNNING_PER_REPO: a set per repository of the tasks that have a workload now. A task takes a
 * slot before its workload is created and keeps it while the workload runs, across a planned
 * shutdown and a consumer's SIGKILL (the next consumer adopts the workload, and the slot with it);
 * it gives it back when BullMQ records the attempt's outcome. A slot whose task is gone or finished
 * (a crash between the two, a job removed by hand) is swept by the reconciler, so none leaks.
 */
export class RepoSlots {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    queue: string,
    readonly cap: number,
  ) {
    this.keys = berthKeys(queue);
    if (!('berthClaimSlot' in redis)) redis.defineCommand('berthClaimSlot', { numberOfKeys: 2, lua: CLAIM });
  }

  /** True when the task holds a slot of its repository now (taken, or already held). */
  async claim(repo: string, taskId: string): Promise<boolean> {
    const claimed = await (this.redis as unknown as { berthClaimSlot(...args: Array<string | number>): Promise<number> }).berthClaimSlot(
      this.keys.runningForRepo(repo),
      this.keys.runningRepos,
      taskId,
      this.cap,
      repo.toLowerCase(),
    );
    return claimed === 1;
  }

  async release(repo: string, taskId: string): Promise<void> {
    await this.redis.srem(this.keys.runningForRepo(repo), taskId);
  }

  async running(repo: string): Promise<number> {
    return this.redis.scard(this.keys.runningForRepo(repo));
  }

  /**
   * Gives back the slots of tasks that are gone or finished; returns how many. A task waiting again
   * keeps its slot: it was handed back by a shutdown while its workload runs on, for the next
   * consumer to adopt (the paths that leave no workload give theirs back themselves).
   */
  async sweep(queue: TaskQueue): Promise<number> {
    let swept = 0;
    for (const repo of await this.redis.smembers(this.keys.runningRepos)) {
      const key = this.keys.runningForRepo(repo);
      const ids = await this.redis.smembers(key);
      if (ids.length === 0) {
        await this.redis.srem(this.keys.runningRepos, repo);
        continue;
      }
      for (const id of ids) {
        const job = await queue.getJob(id);
        const state = job ? await job.getState() : 'unknown';
        if (state !== 'unknown' && state !== 'completed' && state !== 'failed') continue;
        swept += await this.redis.srem(key, id);
      }
    }
    return swept;
  }
}

/** What a task waiting for its repository's slot shows (task API, check run). */
export function repoCapMessage(repo: string, running: number, cap: number): string {
  return `${repo} has ${running} running, its cap (MAX_RUNNING_PER_REPO=${cap}); this task starts when one of them ends`;
}
