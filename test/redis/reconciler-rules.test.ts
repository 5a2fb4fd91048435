import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import { reconcileOnce } from '../../src/consumer/reconcile.js';
import { CancelBook } from '../../src/core/cancel.js';
import { LABEL } from '../../src/core/labels.js';
import { createTaskQueue, type TaskQueue } from '../../src/core/queue.js';
import { RunningSlots } from '../../src/core/running-slots.js';
import type { TaskData } from '../../src/core/task.js';
import { uniqueQueue } from '../support/berth.js';
import { MemoryLauncher } from '../support/memory-launcher.js';
import { startRedis, type TestRedis } from '../support/redis.js';

/**
 * The reconciler's rules, each branch, against a real Redis (BullMQ's own states) and an in-memory
 * engine (a workload is a record): which workloads it retires and which it leaves alone. Docker's
 * and a swarm's side of the same passes run in reconcile.test.ts and the chaos tests.
 */
describe('reconciler rules (real Redis, in-memory engine)', () => {
  let redis: TestRedis;
  let client: Redis;
  let queue: TaskQueue;
  const data: TaskData = { kind: 'echo', repo: 'octo/widgets', source: 'api', submittedAt: Date.now(), submissionId: 's' } as TaskData;
  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  after(async () => {
    await queue?.close();
    client.disconnect();
    await redis.stop();
  });

  it('retires workloads whose job is gone, cancelled while waiting, or of an older attempt, and unlabelled ones; leaves a waiting job’s workload for adoption', async () => {
    const name = uniqueQueue();
    queue = createTaskQueue({ QUEUE_NAME: name, REDIS_URL: redis.url });
    const launcher = new MemoryLauncher();
    const labels = (jobId: string, attempt = 1) => ({ [LABEL.managed]: 'true', [LABEL.queue]: name, [LABEL.jobId]: jobId, [LABEL.attempt]: String(attempt) });
    const cancels = new CancelBook(client, name, 60_000);

    const waiting = await queue.add('echo', data, { jobId: 'waiting' });
    const cancelled = await queue.add('echo', data, { jobId: 'cancelled' });
    await cancels.request(cancelled.id!, 0);
    const retried = await queue.add('echo', data, { jobId: 'retried' });
    await client.hset(queue.toKey('retried'), 'atm', '1');

    const keep = launcher.leave({ name: 'w-waiting', labels: labels(waiting.id!) });
    const gone = launcher.leave({ name: 'w-gone', labels: labels('no-such-job') });
    const cancelledWorkload = launcher.leave({ name: 'w-cancelled', labels: labels(cancelled.id!) });
    const older = launcher.leave({ name: 'w-older', labels: labels(retried.id!, 1) });
    const unlabelled = launcher.leave({ name: 'w-unlabelled', labels: { [LABEL.managed]: 'true', [LABEL.queue]: name } });
    const liveness = { holderAlive: async () => true } as never;

    const report = await reconcileOnce({ queue, redis: client, launcher, liveness, cancels, logger: pino({ level: 'silent' }), stopGraceMs: 1_000 });
    const retired = Object.fromEntries(report.retired.map((r) => [r.name, r.reason]));
    assert.deepEqual(retired, {
      'w-gone': 'job gone',
      'w-cancelled': 'cancelled',
      'w-older': 'older attempt (1 < 2)',
      'w-unlabelled': 'no job id label',
    });
    for (const facts of [gone, cancelledWorkload, older, unlabelled]) assert.equal(launcher.facts(facts.id), undefined, `${facts.name} removed`);
    assert.equal(launcher.facts(keep.id)?.state, 'running', 'a waiting job’s workload stays, for the next consumer to adopt');
    assert.ok(launcher.calls.includes('stop'), 'running ones are stopped before they are removed');
  });

  it("gives back the repository and installation slots of tasks gone or finished, never a waiting one's (handed back while its workload runs)", async () => {
    const name = uniqueQueue();
    const tasks = createTaskQueue({ QUEUE_NAME: name, REDIS_URL: redis.url });
    try {
      const slots = new RunningSlots(client, name, { perRepo: 2, perInstallation: 3 });
      const widgets = { repo: 'octo/widgets', installationId: 7 };
      const waiting = await tasks.add('echo', data, { jobId: 'handed-back' });
      assert.equal(await slots.claim(widgets, waiting.id!), null);
      assert.equal(await slots.claim(widgets, 'removed-job'), null);
      assert.equal(
        await slots.claim(widgets, 'third'),
        'octo/widgets has 2 running, its cap (MAX_RUNNING_PER_REPO=2); this task starts when one of them ends',
        'at its cap',
      );
      assert.equal(await slots.claim(widgets, waiting.id!), null, 'a task that holds a slot keeps it (re-delivery, adoption)');
      // The installation's third slot, from another repository; a fourth waits for the installation, not its repository.
      assert.equal(await slots.claim({ repo: 'octo/gadgets', installationId: 7 }, 'gadget-1'), null);
      assert.equal(
        await slots.claim({ repo: 'octo/gadgets', installationId: 7 }, 'gadget-2'),
        'installation 7 has 3 running, its cap (MAX_RUNNING_PER_INSTALLATION=3); this task starts when one of them ends',
      );
      assert.equal(await slots.running('octo/gadgets'), 1, 'a refused claim took no slot anywhere (all scopes or none)');
      assert.equal(await slots.claim({ repo: 'octo/gadgets' }, 'no-installation'), null, 'a task without an installation counts only for its repository');
      assert.equal(await slots.sweep(tasks), 5, 'the slots of the gone tasks, in both scopes (three of the repositories, two of the installation)');
      assert.equal(await slots.running('octo/widgets'), 1, 'only the gone tasks’ slots were given back');
      assert.equal(await slots.claim(widgets, 'third'), null);
    } finally {
      await tasks.close();
    }
  });
});
