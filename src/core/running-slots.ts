import type { Redis } from 'ioredis';
import { berthKeys } from './keys.js';
import type { TaskQueue } from './queue.js';

/**
 * Takes a slot in every scope of a task at once, atomically across consumers, or none: KEYS are
 * the set of scope names, then one running set per scope; ARGV the task id, then cap and name per
 * scope. A task already holding its slots keeps them (a re-delivery, an adoption). Answers 0 when
 * taken, else the 1-based index of the first full scope and how many it runs.
 */
const CLAIM = `
local n = #KEYS - 1
local held = true
for i = 1, n do
  if redis.call('SISMEMBER', KEYS[i + 1], ARGV[1]) == 0 then
    held = false
    if redis.call('SCARD', KEYS[i + 1]) >= tonumber(ARGV[2 * i]) then return {i, redis.call('SCARD', KEYS[i + 1])} end
  end
end
if held then return {0, 0} end
for i = 1, n do
  redis.call('SADD', KEYS[i + 1], ARGV[1])
  redis.call('SADD', KEYS[1], ARGV[2 * i + 1])
end
return {0, 0}
`;

/** What a task runs under: its repository, and its GitHub App installation when it has one. */
export interface SlotHolder {
  repo: string;
  installationId?: number | undefined;
}

interface Scope {
  /** Its running set's name: a repository (`owner/name`, lower case) or `installation:<id>`; the two never collide (a repository name has no colon). */
  name: string;
  cap: number;
  /** What a waiting task says. */
  waiting: (running: number) => string;
}

/**
 * MAX_RUNNING_PER_REPO and MAX_RUNNING_PER_INSTALLATION: a set per repository and per installation
 * of the tasks that have a workload now. A task takes its slots before its workload is created
 * and keeps them while the workload runs, across a planned shutdown and a consumer's SIGKILL (the
 * next consumer adopts the workload, and the slots with it); it gives them back when BullMQ
 * records the attempt's outcome. A slot whose task is gone or finished (a crash between the two, a
 * job removed by hand) is swept by the reconciler, so none leaks.
 */
export class RunningSlots {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    queue: string,
    readonly caps: { perRepo: number; perInstallation: number },
  ) {
    this.keys = berthKeys(queue);
    if (!('berthClaimSlots' in redis)) redis.defineCommand('berthClaimSlots', { lua: CLAIM });
  }

  get enabled(): boolean {
    return this.caps.perRepo > 0 || this.caps.perInstallation > 0;
  }

  private scopes(holder: SlotHolder): Scope[] {
    const scopes: Scope[] = [];
    if (this.caps.perRepo > 0)
      scopes.push({ name: holder.repo.toLowerCase(), cap: this.caps.perRepo, waiting: (n) => repoCapMessage(holder.repo, n, this.caps.perRepo) });
    if (this.caps.perInstallation > 0 && holder.installationId !== undefined)
      scopes.push({
        name: `installation:${holder.installationId}`,
        cap: this.caps.perInstallation,
        waiting: (n) =>
          `installation ${holder.installationId} has ${n} running, its cap (MAX_RUNNING_PER_INSTALLATION=${this.caps.perInstallation}); this task starts when one of them ends`,
      });
    return scopes;
  }

  /** Null when the task holds a slot in each of its scopes now (taken, or already held); else why it waits. */
  async claim(holder: SlotHolder, taskId: string): Promise<string | null> {
    const scopes = this.scopes(holder);
    if (scopes.length === 0) return null;
    const keys = [this.keys.runningRepos, ...scopes.map((s) => this.keys.runningForRepo(s.name))];
    const args = [taskId, ...scopes.flatMap((s) => [s.cap, s.name])];
    const [full, running] = await (
      this.redis as unknown as { berthClaimSlots(n: number, ...args: Array<string | number>): Promise<[number, number]> }
    ).berthClaimSlots(keys.length, ...keys, ...args);
    return full === 0 ? null : scopes[full - 1]!.waiting(running);
  }

  async release(holder: SlotHolder, taskId: string): Promise<void> {
    const scopes = this.scopes(holder);
    if (scopes.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const scope of scopes) pipeline.srem(this.keys.runningForRepo(scope.name), taskId);
    await pipeline.exec();
  }

  /** How many tasks of `repo` run now. */
  async running(repo: string): Promise<number> {
    return this.redis.scard(this.keys.runningForRepo(repo));
  }

  /**
   * Gives back the slots of tasks that are gone or finished; returns how many. A task waiting again
   * keeps its slots: it was handed back by a shutdown while its workload runs on, for the next
   * consumer to adopt (the paths that leave no workload give theirs back themselves).
   */
  async sweep(queue: TaskQueue): Promise<number> {
    let swept = 0;
    for (const scope of await this.redis.smembers(this.keys.runningRepos)) {
      const key = this.keys.runningForRepo(scope);
      const ids = await this.redis.smembers(key);
      if (ids.length === 0) {
        await this.redis.srem(this.keys.runningRepos, scope);
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
