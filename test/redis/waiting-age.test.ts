import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Capacity, leftQueue, oldestWaitingSeconds } from '../../src/core/backpressure.js';
import { startPriority } from '../../src/core/start-priority.js';
import { createTaskQueue, type TaskQueue } from '../../src/core/queue.js';
import type { TaskData } from '../../src/core/task.js';
import { uniqueQueue } from '../support/berth.js';
import { startRedis, type TestRedis } from '../support/redis.js';

/** berth_oldest_waiting_seconds against a real Redis and BullMQ's own priorities (FAIR_START). */
describe('the oldest waiting task, when the start order is not the age order', () => {
  let redis: TestRedis;
  let client: Redis;
  let queue: TaskQueue;
  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  after(async () => {
    await queue?.close();
    client.disconnect();
    await redis.stop();
  });

  it('is the oldest task not yet started, wherever priorities put it in BullMQ’s waiting set', async () => {
    const name = uniqueQueue();
    queue = createTaskQueue({ QUEUE_NAME: name, REDIS_URL: redis.url });
    const capacity = new Capacity(client, queue, { QUEUE_NAME: name, MAX_QUEUED_TASKS: 0, MAX_QUEUED_PER_REPO: 100, FAIR_START: true });
    // Three tasks of octo/a, then four of octo/b, one second apart, with the priorities FAIR_START gives them.
    const submitted: Array<{ id: string; repo: string; at: number }> = [];
    for (const [repo, count] of [
      ['octo/a', 3],
      ['octo/b', 4],
    ] as const) {
      for (let i = 0; i < count; i++) {
        const at = 1_000 * (submitted.length + 1);
        const id = `${repo.slice(5)}${i + 1}`;
        const { rank } = await capacity.admit(repo);
        await queue.add('echo', { kind: 'echo', repo, source: 'api', submittedAt: at, submissionId: id } as TaskData, {
          jobId: id,
          priority: startPriority(0, rank),
        });
        await capacity.queued(repo, id, rank, at);
        submitted.push({ id, repo, at });
      }
    }
    // The first three in start order (a1, b1, a2) start.
    for (const id of ['a1', 'b1', 'a2']) {
      await leftQueue(client, name, id.startsWith('a') ? 'octo/a' : 'octo/b', id);
      await (await queue.getJob(id))!.remove();
    }
    const ends = [...(await queue.getJobs(['prioritized'], 0, 0, true)), ...(await queue.getJobs(['prioritized'], 0, 0, false))].map((job) => job.id);
    assert.ok(!ends.includes('a3'), `the oldest waiting one (a3) is at neither end of BullMQ's set: ${ends.join(', ')}`);
    assert.equal(await oldestWaitingSeconds(client, queue, 10_000), 7, 'a3, submitted at 3 s, has waited 7 s at 10 s');

    // One that vanished without passing through leftQueue (a crash between two steps) is dropped, not reported.
    await (await queue.getJob('a3'))!.remove();
    assert.equal(await oldestWaitingSeconds(client, queue, 10_000), 5, 'b2, submitted at 5 s');
    assert.equal(await client.zscore(`berth:${name}:waiting-since`, 'a3'), null);
  });
});
