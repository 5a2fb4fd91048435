import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { createTaskQueue, redisConnection, type TaskQueue } from '../../src/core/queue.js';
import { publicState, viewTask } from '../../src/core/task-view.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { uniqueQueue } from '../support/berth.js';
import { waitUntil } from '../support/wait.js';

// A reader loads the job hash, then the job finishes, then the reader asks for the state: the
// state says finished while the hash it holds has no outcome yet. Under load this made a cancelled
// task read as a plain failure. Real Redis, real BullMQ, the race forced by holding the stale job.
describe('task view reads a finished job with its outcome', () => {
  let redis: TestRedis;
  let queue: TaskQueue;
  before(async () => {
    redis = await startRedis();
    queue = createTaskQueue({ QUEUE_NAME: uniqueQueue('view'), REDIS_URL: redis.url });
  });
  after(async () => {
    await queue.close();
    await redis.stop();
  });

  async function finishWhileHeld(outcome: (job: Job) => Promise<unknown>) {
    const added = await queue.add('echo', { kind: 'echo', repo: 'octo/widgets', source: 'api', submittedAt: Date.now(), submissionId: 's' });
    const stale = (await queue.getJob(added.id!))!;
    const worker = new Worker(queue.name, outcome, { connection: redisConnection(redis.url) });
    await waitUntil(async () => ['completed', 'failed'].includes(await queue.getJobState(added.id!)), 'job finished');
    await worker.close();
    assert.equal(stale.finishedOn, undefined, 'the held job is stale');
    return stale;
  }

  it('a cancel that lands after the hash was read still reads as cancelled, with its reason', async () => {
    // As the consumer does: the cause in the progress first, then BullMQ's failure.
    const stale = await finishWhileHeld(async (job) => {
      await job.updateProgress({ attempt: 1, failure: { cause: 'cancelled' } });
      throw new UnrecoverableError('cancelled');
    });
    assert.equal(await publicState(stale), 'cancelled');
    const view = await viewTask(stale);
    assert.equal(view.state, 'cancelled');
    assert.equal(view.failedReason, 'cancelled');
    assert.deepEqual(view.failure, { cause: 'cancelled' });
    assert.ok(view.finishedAt);
  });

  it('a completion that lands after the hash was read comes with its result', async () => {
    const stale = await finishWhileHeld(async () => ({ result: { ok: true } }));
    const view = await viewTask(stale);
    assert.equal(view.state, 'completed');
    assert.deepEqual(view.result, { ok: true });
  });
});
