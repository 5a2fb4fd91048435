import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DelayedError, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { cancelTask } from '../../src/api/tasks/cancel.js';
import { CancelBook } from '../../src/core/cancel.js';
import { createTaskQueue, type TaskQueue } from '../../src/core/queue.js';
import type { TaskData } from '../../src/core/task.js';
import { GithubReports } from '../../src/github/report-queue.js';
import { REPORT_GROUP, ReportTrigger } from '../../src/github/report-trigger.js';
import { uniqueQueue } from '../support/berth.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { waitUntil } from '../support/wait.js';

/**
 * GitHub reports follow the task queue's own events (real Redis, real BullMQ): every change of a
 * task with a GitHub subject becomes a sync report, whoever made the change, and an event a dead
 * reader took but never acknowledged is reported by another.
 */
describe('reports triggered from task state changes', () => {
  let redis: TestRedis;
  let client: Redis;
  let queue: TaskQueue;
  let reports: GithubReports;
  let cancels: CancelBook;
  let reportEvents: QueueEvents;
  const triggers: ReportTrigger[] = [];
  /** Report job ids as the report queue saw them added, in order. */
  const added: string[] = [];
  const waiters: Array<{ test: (id: string) => boolean; resolve: () => void }> = [];

  const trigger = (consumer: string, claimIdleMs?: number) => {
    const made = new ReportTrigger({
      redis: new Redis(redis.url, { maxRetriesPerRequest: null }),
      queue,
      reports,
      cancels,
      consumer,
      logger: pino({ level: 'silent' }),
      ...(claimIdleMs ? { claimIdleMs } : {}),
    });
    triggers.push(made);
    made.start();
    return made;
  };
  /** Resolves when a report for `taskId` is added (one already added after `from` counts). */
  const reportFor = (taskId: string, from: number) =>
    new Promise<void>((resolve, reject) => {
      const test = (id: string) => id.startsWith(`sync.${taskId}.`);
      if (added.slice(from).some(test)) return resolve();
      const timer = setTimeout(() => reject(new Error(`no report for ${taskId}; reports: ${added.join(', ')}`)), 15_000);
      waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  const task = (repo: string, number?: number) =>
    ({ kind: 'review', repo, source: 'api', submittedAt: Date.now(), submissionId: 'x', ...(number !== undefined ? { number } : {}) }) as TaskData;

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    const name = uniqueQueue();
    queue = createTaskQueue({ QUEUE_NAME: name, REDIS_URL: redis.url });
    reports = GithubReports.create(name, redis.url);
    cancels = new CancelBook(client, name, 3_600_000);
    reportEvents = new QueueEvents(reports.queue.name, { connection: { url: redis.url } });
    await reportEvents.waitUntilReady();
    reportEvents.on('added', ({ jobId }) => {
      added.push(jobId);
      for (const waiter of waiters.filter((w) => w.test(jobId))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    });
    // As the API does at its start: the group exists before the first task is added.
    await ReportTrigger.ensureGroup(client, queue);
  });
  after(async () => {
    for (const made of triggers) await made.close();
    await reportEvents.close();
    await reports.close();
    await queue.close();
    client.disconnect();
    await redis.stop();
  });

  it('a task added, its progress, and its cancel are each reported; a task without an issue or pull request is not', async () => {
    trigger('a');
    let from = added.length;
    await queue.add('review', task('octo/app'), { jobId: 'api-only' });
    await queue.add('review', task('octo/app', 7), { jobId: 'pr-7' });
    await reportFor('pr-7', from);
    // The stream is read in order: once pr-7's report is in, api-only's event was read before it.
    assert.equal(added.filter((id) => id.startsWith('sync.api-only.')).length, 0, `no report for a task without a subject: ${added.join(', ')}`);

    from = added.length;
    await (await queue.getJob('pr-7'))!.updateProgress({ attempt: 1, container: { state: 'running' } });
    await reportFor('pr-7', from);

    from = added.length;
    const cancelled = await cancelTask(queue, cancels, 'pr-7', 0);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(await queue.getJob('pr-7'), undefined, 'the waiting task was removed');
    // Its job is gone: the report is decided on its tombstone.
    await reportFor('pr-7', from);
  });

  it('a task waiting for its repository slot is reported when the wait is said, not on every look', async () => {
    {
      const slotQueue = queue.name;
      let looks = 0;
      const worker = new Worker<TaskData>(
        slotQueue,
        async (job, token) => {
          if (job.id !== 'pr-8') return null;
          looks++;
          if (looks === 1) await job.updateProgress({ attempt: 0, waitingFor: 'octo/app has 1 running, its cap' });
          if (looks > 3) return null;
          await job.moveToDelayed(Date.now() + 50, token);
          throw new DelayedError();
        },
        { connection: { url: redis.url } },
      );
      const start = added.length;
      const finished = new Promise<void>((resolve) => worker.on('completed', (job) => job.id === 'pr-8' && resolve()));
      await queue.add('review', task('octo/app', 8), { jobId: 'pr-8' });
      await finished;
      assert.equal(looks, 4, 'three looks waited for the slot, the fourth ran');
      await worker.close();
      // A canary added after the run: its report comes after every report of pr-8's events.
      await queue.add('review', task('octo/app', 99), { jobId: 'canary' });
      await reportFor('canary', start);
      const pr8 = added.slice(start).filter((id) => id.startsWith('sync.pr-8.'));
      // Added, the wait said (progress), completed: three looks delayed it three times, none reported alone.
      const stream = (await client.xrange(queue.keys.events!, '-', '+')).filter(([, f]) => f[3] === 'pr-8').map(([id, f]) => `${id}:${f[1]}`);
      assert.ok(pr8.length >= 2 && pr8.length <= 3, `pr-8's reports: ${pr8.join(', ')}; events ${stream.join(' ')}`);
    }
  });

  it('an event a dead reader took and never acknowledged is reported by another reader', async () => {
    for (const made of triggers.splice(0)) await made.close();
    const from = added.length;
    await queue.add('review', task('octo/app', 9), { jobId: 'pr-9' });
    // A reader that takes the events and dies before it acknowledges them.
    const taken = (await client.xreadgroup('GROUP', REPORT_GROUP, 'dead', 'COUNT', 100, 'STREAMS', queue.keys.events!, '>')) as Array<
      [string, Array<[string, string[]]>]
    > | null;
    const ids = taken?.[0]?.[1].map(([id]) => id) ?? [];
    assert.ok(ids.length > 0, 'the dead reader took the events');
    assert.equal(added.slice(from).filter((id) => id.startsWith('sync.pr-9.')).length, 0, 'nothing reported while only the dead reader holds them');
    trigger('b', 300);
    await reportFor('pr-9', from);
    // Acknowledged after the batch's reports are added: nothing is left pending.
    await waitUntil(
      async () => ((await client.xpending(queue.keys.events!, REPORT_GROUP)) as [number])[0] === 0,
      'every event acknowledged once reported',
      5_000,
    );
  });
});
