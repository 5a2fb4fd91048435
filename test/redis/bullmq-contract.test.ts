import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DelayedError, Queue, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { redisConnection } from '../../src/core/queue.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { uniqueQueue } from '../support/berth.js';
import { waitUntil } from '../support/wait.js';

/**
 * What berth's crash recovery relies on in BullMQ, each named, against a real Redis. bullmq is pinned
 * to an exact version; a new one must pass this file before it is taken. Where a line reads a
 * BullMQ internal (a key name, a token's shape), the comment names the berth code that depends on it.
 */
describe(`BullMQ contract (bullmq ${JSON.parse(readFileSync(new URL('../../node_modules/bullmq/package.json', import.meta.url), 'utf8')).version})`, () => {
  let redis: TestRedis;
  let client: Redis;
  const closers: Array<() => Promise<unknown>> = [];

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
    client.disconnect();
    await redis.stop();
  });

  const queueOf = () => {
    const queue = new Queue(uniqueQueue('contract'), { connection: redisConnection(redis.url) });
    closers.push(() => queue.close());
    return queue;
  };
  const workerOf = (queue: Queue, processor: (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>, options: Record<string, unknown> = {}) => {
    const worker = new Worker(queue.name, processor, { connection: redisConnection(redis.url), ...options });
    worker.on('error', () => {});
    closers.push(() => worker.close(true));
    return worker;
  };

  it('package.json pins bullmq exactly', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    assert.match(pkg.dependencies.bullmq, /^\d+\.\d+\.\d+$/);
  });

  it('the lock key is `<job key>:lock` and its token is `<worker id>:<n>` (reconcile.ts reads it; liveness.ts splits it)', async () => {
    const queue = queueOf();
    let seenToken = '';
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    // The processor holds its job (and so its lock) until the test has read the lock.
    const worker = workerOf(queue, async (_job, token) => {
      seenToken = token ?? '';
      await held;
    });
    const job = await queue.add('x', {});
    await waitUntil(() => seenToken, 'processing');
    const lock = await client.get(`${queue.toKey(job.id!)}:lock`);
    release();
    assert.equal(lock, seenToken, 'the lock value is the processor token');
    assert.match(lock!, new RegExp(`^${worker.id}:\\d+$`));
  });

  it("moveToWait with the dead holder's token, or '0' once the lock is gone, puts an active job back to wait without counting a stall (reconcile.ts)", async () => {
    const queue = queueOf();
    let started = 0;
    const worker = workerOf(
      queue,
      () => {
        started++;
        return new Promise(() => {}); // never finishes: a consumer that died mid-attempt
      },
      { lockDuration: 60_000 },
    );
    const job = await queue.add('x', {});
    await waitUntil(() => started === 1, 'active');
    await worker.close(true);
    const lock = await client.get(`${queue.toKey(job.id!)}:lock`);
    assert.ok(lock);
    const active = (await queue.getJob(job.id!))!;
    await active.moveToWait(lock!);
    assert.equal(await active.getState(), 'waiting');
    const fresh = (await queue.getJob(job.id!))!;
    assert.equal(fresh.attemptsMade, 0);
    assert.equal(fresh.stalledCounter, 0, 'no stall counted');
    // With the lock gone (expired), '0' skips the lock check.
    const again = workerOf(queue, () => new Promise(() => {}), { lockDuration: 60_000 });
    await waitUntil(async () => (await queue.getJob(job.id!))!.getState().then((s) => s === 'active'), 'active again');
    await again.close(true);
    await client.del(`${queue.toKey(job.id!)}:lock`);
    await (await queue.getJob(job.id!))!.moveToWait('0');
    assert.equal(await (await queue.getJob(job.id!))!.getState(), 'waiting');
  });

  it('attemptsMade stays across a stall re-delivery and moves on a failure (the attempt number, run-attempt.ts attemptOf)', async () => {
    const queue = queueOf();
    const seen: number[] = [];
    let fail = true;
    workerOf(queue, async (job) => {
      seen.push(job.attemptsMade);
      if (fail) {
        fail = false;
        throw new Error('first attempt fails');
      }
    });
    await queue.add('x', {}, { attempts: 3, backoff: { type: 'fixed', delay: 10 } });
    await waitUntil(() => seen.length === 2, 'two attempts');
    assert.deepEqual(seen, [0, 1]);

    // A stall: the worker holding the job dies (force-closed, its lock expires); another takes it.
    const stalling = queueOf();
    const dead = workerOf(stalling, () => new Promise(() => {}), { lockDuration: 500, stalledInterval: 300 });
    const job = await stalling.add('x', {}, { attempts: 3 });
    await waitUntil(async () => (await stalling.getJob(job.id!))!.getState().then((s) => s === 'active'), 'active');
    await dead.close(true);
    let redelivered: [number, number] | null = null;
    workerOf(stalling, async (j) => void (redelivered = [j.attemptsMade, j.stalledCounter]), { lockDuration: 500, stalledInterval: 300 });
    await waitUntil(() => redelivered, 'redelivered after the stall', 10_000);
    assert.deepEqual(redelivered, [0, 1], 'same attempt number; the stall is counted apart');
  });

  it('moveToWait + WaitingError and moveToDelayed + DelayedError hand a job back without counting an attempt (shutdown, foreign engine, GitHub or engine down)', async () => {
    const queue = queueOf();
    const seen: Array<[number, number]> = [];
    workerOf(queue, async (job, token) => {
      seen.push([job.attemptsMade, job.stalledCounter]);
      if (seen.length === 1) {
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (seen.length === 2) {
        await job.moveToDelayed(Date.now() + 50, token);
        throw new DelayedError();
      }
    });
    const job = await queue.add('x', {}, { attempts: 1 });
    await waitUntil(async () => (await queue.getJob(job.id!))!.getState().then((s) => s === 'completed'), 'completed');
    assert.deepEqual(seen, [
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
  });

  it('UnrecoverableError fails at once whatever attempts remain (do-not-retry, refused, missing image)', async () => {
    const queue = queueOf();
    let runs = 0;
    workerOf(queue, async () => {
      runs++;
      throw new UnrecoverableError('no');
    });
    const job = await queue.add('x', {}, { attempts: 5 });
    await waitUntil(async () => (await queue.getJob(job.id!))!.getState().then((s) => s === 'failed'), 'failed');
    assert.equal(runs, 1);
  });

  it('a custom job id that exists is not added twice; a deduplication id answers with the queued job (submit.ts, webhook dedupe)', async () => {
    const queue = queueOf();
    const first = await queue.add('x', { n: 1 }, { jobId: 'k-same' });
    const second = await queue.add('x', { n: 2 }, { jobId: 'k-same' });
    assert.equal(second.id, first.id);
    assert.deepEqual((await queue.getJob('k-same'))!.data, { n: 1 }, 'the stored data is the first');
    assert.equal(JSON.parse((await client.hget(queue.toKey('k-same'), 'data'))!).n, 1, "the job hash's data field (submit.ts reads it raw)");
    const a = await queue.add('x', {}, { jobId: 'd-1', deduplication: { id: 'repo#1/review' } });
    const b = await queue.add('x', {}, { jobId: 'd-2', deduplication: { id: 'repo#1/review' } });
    assert.equal(b.id, a.id);
    assert.equal(
      await client.get(`${queue.toKey('de')}:repo#1/review`),
      await queue.getDeduplicationJobId('repo#1/review'),
      'the deduplication key is `toKey(de):<id>` (the webhook intake reads it)',
    );
    await queue.removeDeduplicationKey('repo#1/review');
    assert.equal((await queue.add('x', {}, { jobId: 'd-3', deduplication: { id: 'repo#1/review' } })).id, 'd-3');
  });

  it('cancelJob aborts the processor with the reason given (cancel and shutdown in consumer.ts)', async () => {
    const queue = queueOf();
    let reason: unknown = null;
    const worker = workerOf(
      queue,
      (_job, _token, signal) =>
        new Promise((_, reject) =>
          signal!.addEventListener('abort', () => {
            reason = signal!.reason;
            reject(new UnrecoverableError('cancelled'));
          }),
        ),
    );
    const job = await queue.add('x', {});
    await waitUntil(async () => (await queue.getJob(job.id!))!.getState().then((s) => s === 'active'), 'active');
    assert.equal(worker.cancelJob(job.id!, 'cancel'), true);
    await waitUntil(() => reason, 'aborted');
    assert.equal(reason, 'cancel');
  });

  it('the tasks waiting to start are the wait and paused lists and the prioritized and delayed sets, by queue.toKey (the webhook intake counts them itself)', async () => {
    const queue = queueOf();
    await queue.add('x', {});
    await queue.add('x', {}, { priority: 5 });
    await queue.add('x', {}, { delay: 60_000 });
    await queue.pause();
    await queue.add('x', {});
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed');
    const direct =
      (await client.llen(queue.toKey('wait'))) +
      (await client.llen(queue.toKey('paused'))) +
      (await client.zcard(queue.toKey('prioritized'))) +
      (await client.zcard(queue.toKey('delayed')));
    assert.equal(direct, (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0));
    assert.equal(direct, 4);
  });
});
