import type { Redis } from 'ioredis';
import { berthKeys, GITHUB_REDELIVERY_WINDOW_MS } from '../../core/keys.js';

/**
 * berth's bookkeeping for one delivery that is about to become a task, in one server-side step (one
 * round trip on the ingest hot path instead of six): the body's digest (a signed body replayed
 * under a new delivery id is refused), both queue caps, the task's place in the repository and kind
 * indexes (before its job exists: a crash leaves an id without a job, never a job the filters miss),
 * the repository's queued count, the supersede pointer, and the delivery's record (`task`: its job
 * is the proof it was received, which the recovery checks).
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
local rank = ''
if cap > 0 then
  redis.call('SADD', KEYS[4], ARGV[3])
  local queued = redis.call('SCARD', KEYS[4])
  if queued > cap then
    redis.call('SREM', KEYS[4], ARGV[3])
    return {'over-cap', tostring(queued - 1)}
  end
  -- FAIR_START: after the repository's tasks already waiting, never before its last one (Capacity.admit).
  if ARGV[10] == '1' then
    local p = 1
    if queued > 1 then p = math.max(queued, tonumber(redis.call('HGET', KEYS[12], ARGV[9]) or '1')) end
    p = math.min(p, 2097152)
    redis.call('HSET', KEYS[12], ARGV[9], p)
    rank = tostring(p)
  end
end
-- Not started yet, since now: the oldest-waiting gauge reads its age (BullMQ's priorities order by start).
redis.call('ZADD', KEYS[13], 'NX', ARGV[4], ARGV[3])
-- Received, and about to be a task: the task's own job will prove it (the recovery looks for it).
redis.call('SET', KEYS[11], 'task', 'PX', ARGV[8])
-- The supersede pointer: a superseding task always replaces the one it cancels; any other only when
-- no task of its subject is queued (then BullMQ's deduplication folds this one into that one).
-- The previous pointer is returned: a superseding delivery cancels the task it names.
local previous = ''
if ARGV[7] == '1' or redis.call('EXISTS', KEYS[9]) == 0 then previous = redis.call('SET', KEYS[10], ARGV[3], 'PX', ARGV[2], 'GET') or '' end
return {'ok', first, previous, rank}
`;

/**
 * `firstTime`: this delivery's body was never seen before (not a redelivery of it). `previous`: the
 * task the supersede pointer named before this one took its place (a superseding delivery cancels it).
 */
export type IntakeAnswer =
  | { status: 'ok'; firstTime: boolean; previous: string | null; rank?: number }
  | { status: 'replay'; original: string; firstTime: false }
  | { status: 'over-cap' | 'over-all'; queued: number; firstTime: false };

export class DeliveryIntake {
  private readonly keys;
  private readonly stateKeys: string[];
  /** BullMQ's deduplication key prefix (`getDeduplicationJobId` reads the same key; the contract test checks). */
  private readonly dedupePrefix: string;

  /**
   * `queue`: the tasks' BullMQ queue. The global cap reads its waiting, paused, prioritized and
   * delayed sets by BullMQ's own key names (`queue.toKey`): what getJobCounts counts, in the same
   * step (test/redis/bullmq-contract.test.ts checks they agree).
   */
  constructor(
    private readonly redis: Redis,
    queue: { name: string; toKey(type: string): string },
    private readonly keepMs: number,
  ) {
    this.keys = berthKeys(queue.name);
    this.stateKeys = ['wait', 'paused', 'prioritized', 'delayed'].map((type) => queue.toKey(type));
    this.dedupePrefix = `${queue.toKey('de')}:`;
    if (!('berthIntake' in redis)) redis.defineCommand('berthIntake', { numberOfKeys: 13, lua: INTAKE });
  }

  async admit(
    delivery: { id: string; digest: string },
    task: { id: string; repo: string; kind: string; at: number; dedupeId: string; subjectKey: string; supersede: boolean },
    caps: { repo: number; all: number; fair?: boolean },
  ): Promise<IntakeAnswer> {
    const keys = [
      this.keys.deliveryDigest(delivery.digest),
      this.keys.byRepo(task.repo),
      this.keys.byKind(task.kind),
      this.keys.queuedForRepo(task.repo),
      ...this.stateKeys,
      `${this.dedupePrefix}${task.dedupeId}`,
      task.subjectKey,
      this.keys.deliverySeen(delivery.id),
      this.keys.fairPriority,
      this.keys.waitingSince,
    ];
    const args = [
      delivery.id,
      this.keepMs,
      task.id,
      task.at,
      caps.repo,
      caps.all,
      task.supersede ? '1' : '0',
      GITHUB_REDELIVERY_WINDOW_MS,
      task.repo.toLowerCase(),
      caps.fair ? '1' : '0',
    ];
    const [status, detail, previous, rank] = (await (
      this.redis as unknown as { berthIntake(...args: Array<string | number>): Promise<[string, string, string?, string?]> }
    ).berthIntake(...keys, ...args)) as [string, string, string?, string?];
    if (status === 'replay') return { status, original: detail, firstTime: false };
    if (status === 'over-cap' || status === 'over-all') return { status, queued: Number(detail), firstTime: false };
    return {
      status: 'ok',
      firstTime: detail === '1',
      previous: previous && previous !== task.id ? previous : null,
      ...(rank ? { rank: Number(rank) } : {}),
    };
  }

  /**
   * The replay guard alone, for deliveries that act without becoming a task through `admit`
   * (check run buttons): the id of the delivery this body was first seen under, or null when it is
   * new (or is that same delivery again, as GitHub's own redelivery).
   */
  async firstSeenAs(delivery: { id: string; digest: string }): Promise<string | null> {
    const owner = await this.redis.set(this.keys.deliveryDigest(delivery.digest), delivery.id, 'PX', this.keepMs, 'NX', 'GET');
    return owner && owner !== delivery.id ? owner : null;
  }

  /**
   * A delivery that got a final answer without becoming a task of its own (ignored, refused,
   * deduplicated into a queued task): the recovery will not ask GitHub for it again.
   */
  async answered(deliveryId: string): Promise<void> {
    await this.redis.set(this.keys.deliverySeen(deliveryId), 'answered', 'PX', GITHUB_REDELIVERY_WINDOW_MS);
  }
}
