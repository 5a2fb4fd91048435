import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordEvents } from '../support/docker.js';
import { BACKENDS } from '../support/backends.js';
import { startBerth } from '../support/berth.js';
import { realParts } from '../support/suite.js';
import { startConsumerProcess } from '../support/node-process.js';
import { jobEventCounts } from '../support/queue-events.js';
import { waitUntil } from '../support/wait.js';

for (const backendName of BACKENDS)
  describe(`cancel on ${backendName}`, () => {
    const parts = realParts({ backend: backendName });
    const { berths, env } = parts;
    const gone = (queue: string) => async () => (await parts.backend.leftovers(queue)) === 0;

    it('stops a running task’s container and marks it cancelled, not retried; idempotent', async () => {
      const berth = await startBerth(env({ TASK_ATTEMPTS: '3', WORKER_STOP_GRACE: '20s' }));
      berths.push(berth);
      const recorder = await recordEvents(berth.config.QUEUE_NAME, parts.backend.docker);
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '60' });
      await waitUntil(() => recorder.events.some((e) => e.action === 'start'), 'container started');
      const started = Date.now();
      const cancel = await berth.api('POST', `/api/tasks/${body.id}/cancel`);
      assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
      assert.equal(cancel.body.state, 'cancelled');
      assert.ok(Date.now() - started < 10_000, 'SIGTERM reached the agent; no wait for the 20 s grace');
      const again = await berth.api('POST', `/api/tasks/${body.id}/cancel`);
      assert.equal(again.status, 200);
      assert.equal(again.body.state, 'cancelled');
      const task = (await berth.api('GET', `/api/tasks/${body.id}`)).body;
      assert.equal(task.state, 'cancelled');
      assert.equal(task.failedReason, 'cancelled');
      assert.deepEqual(task.failure, { cause: 'cancelled' });
      assert.equal(task.attempts, 1);
      await waitUntil(gone(berth.config.QUEUE_NAME), 'workload removed');
      // A canary: a task submitted after the cancel completes, so a retry of the cancelled one would have run by now.
      const canary = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets' });
      assert.equal((await berth.waitFor(canary.body.id, ['completed', 'failed'], 60_000)).state, 'completed');
      await recorder.stop();
      assert.equal(recorder.events.filter((e) => e.action === 'create' && e.jobId === body.id).length, 1, 'no retry container');
    });

    it('removes a waiting task from the queue; it reads as cancelled and never runs', async () => {
      const waitingEnv = env();
      const berth = await startBerth(waitingEnv, { consumer: false });
      berths.push(berth);
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets' });
      const cancel = await berth.api('POST', `/api/tasks/${body.id}/cancel`);
      assert.equal(cancel.status, 200);
      assert.equal(cancel.body.state, 'cancelled');
      assert.equal((await berth.api('POST', `/api/tasks/${body.id}/cancel`)).body.state, 'cancelled', 'idempotent');
      assert.equal(await berth.queue.count(), 0, 'removed from the queue');
      const view = (await berth.api('GET', `/api/tasks/${body.id}`)).body;
      assert.equal(view.state, 'cancelled');
      assert.equal(view.repo, 'octo/widgets');
      const recorder = await recordEvents(berth.config.QUEUE_NAME, parts.backend.docker);
      const consumer = startConsumerProcess(waitingEnv);
      await consumer.ready;
      // A canary submitted after the cancelled task: once it has run, the consumer had its turn at the cancelled one.
      const canary = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets' });
      assert.equal((await berth.waitFor(canary.body.id, ['completed', 'failed'], 60_000)).state, 'completed');
      await consumer.kill('SIGTERM');
      await recorder.stop();
      assert.deepEqual([...new Set(recorder.events.map((e) => e.jobId))], [canary.body.id], 'no container for a cancelled task, only the canary');
    });

    it('a cancel sent while no consumer runs is honoured by the next one, which stops the container', async () => {
      const laterEnv = env({ CONSUMER_ID: 'cancel-later' });
      const berth = await startBerth(laterEnv, { consumer: false });
      berths.push(berth);
      const recorder = await recordEvents(berth.config.QUEUE_NAME, parts.backend.docker);
      const first = startConsumerProcess(laterEnv);
      await first.ready;
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '60' });
      await waitUntil(() => recorder.events.some((e) => e.action === 'start'), 'container started');
      await first.kill('SIGKILL');
      const cancel = await berth.api('POST', `/api/tasks/${body.id}/cancel`);
      assert.equal(cancel.status, 202, 'nobody can stop it right now: accepted, pending');
      const second = startConsumerProcess(laterEnv);
      try {
        const task = await berth.waitFor(body.id, ['cancelled', 'completed', 'failed'], 30_000);
        assert.equal(task.state, 'cancelled');
        await waitUntil(gone(berth.config.QUEUE_NAME), 'workload removed');
      } finally {
        await second.kill('SIGTERM');
      }
      await recorder.stop();
      assert.equal(recorder.events.filter((e) => e.action === 'create').length, 1);
    });

    it('refuses to cancel a finished task (409) and answers 404 for an unknown one', async () => {
      const berth = await startBerth(env());
      berths.push(berth);
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets' });
      await berth.waitFor(body.id, ['completed']);
      const cancel = await berth.api('POST', `/api/tasks/${body.id}/cancel`);
      assert.equal(cancel.status, 409);
      assert.match(cancel.body.message, /already completed/);
      assert.equal((await berth.api('POST', '/api/tasks/t-nope/cancel')).status, 404);
      const counts = await jobEventCounts(parts.redis.url, berth.config.QUEUE_NAME, body.id);
      assert.equal(counts.completed, 1);
    });
  });
