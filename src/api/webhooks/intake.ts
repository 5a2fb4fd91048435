import type { Redis } from 'ioredis';
import { berthKeys, GITHUB_REDELIVERY_WINDOW_MS } from '../../core/keys.js';

/**
 * berth's bookkeeping for one delivery that is about to become a task, in one server-side step (one
 * round trip on the ingest hot path instead of five): the body's digest (a signed body replayed
 * under a new delivery id is refused), the task's place in the repository and kind indexes (before
 * its job exists: a crash leaves an id without a job, never a job the filters miss), and its place in
 * the repository's queued count (refused over the cap, and taken back out).
 */
const INTAKE = `
local owner = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2], 'GET')
if owner and owner ~= ARGV[1] then return {'replay', owner} end
local first = owner and '0' or '1'
local all = tonumber(ARGV[6])
if all > 0 then
  local queued = redis.call('LLEN', KEYS[5]) + redis.call('LLEN', KEYS[6]) + redis.call('ZCARD', KEYS[7]) + redis.call('ZCARD', KEYS[8])
  if queued >= all then return {'over-all', tostring(queued)} end
end
redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[3])
local cap = tonumber(ARGV[5])
if cap > 0 then
  redis.call('SADD', KEYS[4], ARGV[3])
  local queued = redis.call('SCARD', KEYS[4])
  if queued > cap then
    redis.call('SREM', KEYS[4], ARGV[3])
    return {'over-cap', tostring(queued - 1)}
  end
end
return {'ok', first}
`;

/** `firstTime`: this delivery's body was never seen before (not a redelivery of it). */
export type IntakeAnswer =
  | { status: 'ok'; firstTime: boolean }
  | { status: 'replay'; original: string; firstTime: false }
  | { status: 'over-cap' | 'over-all'; queued: number; firstTime: false };

export class DeliveryIntake {
  private readonly keys;
  private readonly stateKeys: string[];

  /**
   * `queue`: the tasks' BullMQ queue. The global cap reads its waiting, paused, prioritized and
   * delayed sets by BullMQ's own key names (`queue.toKey`): what getJobCounts counts, in the same
   * step (test/e2e/bullmq-contract.test.ts checks they agree).
   */
  constructor(
    private readonly redis: Redis,
    queue: { name: string; toKey(type: string): string },
    private readonly keepMs: number,
  ) {
    this.keys = berthKeys(queue.name);
    this.stateKeys = ['wait', 'paused', 'prioritized', 'delayed'].map((type) => queue.toKey(type));
    if (!('berthIntake' in redis)) redis.defineCommand('berthIntake', { numberOfKeys: 8, lua: INTAKE });
  }

  async admit(delivery: { id: string; digest: string }, task: { id: string; repo: string; kind: string; at: number }, caps: { repo: number; all: number }): Promise<IntakeAnswer> {
    const keys = [this.keys.deliveryDigest(delivery.digest), this.keys.byRepo(task.repo), this.keys.byKind(task.kind), this.keys.queuedForRepo(task.repo), ...this.stateKeys];
    const [status, detail] = (await (this.redis as unknown as { berthIntake(...args: Array<string | number>): Promise<[string, string]> }).berthIntake(...keys, delivery.id, this.keepMs, task.id, task.at, caps.repo, caps.all)) as [string, string];
    if (status === 'replay') return { status, original: detail, firstTime: false };
    if (status === 'over-cap' || status === 'over-all') return { status, queued: Number(detail), firstTime: false };
    return { status: 'ok', firstTime: detail === '1' };
  }

  /**
   * The delivery got its final answer: the recovery will not ask GitHub for it again. Recorded only
   * now (after the task's add), so a crash before this point leaves it to be redelivered.
   */
  async answered(deliveryId: string, subject?: { key: string; taskId: string }): Promise<void> {
    const pipeline = this.redis.pipeline().set(this.keys.deliverySeen(deliveryId), '1', 'PX', GITHUB_REDELIVERY_WINDOW_MS);
    if (subject) pipeline.set(subject.key, subject.taskId, 'PX', this.keepMs);
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error)?.[0];
    if (failed) throw failed;
  }
}
