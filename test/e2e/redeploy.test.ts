import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { queueContainers, recordEvents } from '../support/docker.js';
import { BACKENDS } from '../support/backends.js';
import { startBerth } from '../support/berth.js';
import { realParts } from '../support/suite.js';
import { jobEventCounts } from '../support/queue-events.js';
import { sleep, waitUntil } from '../support/wait.js';

describe('redeploys with real consumer processes', () => {
  const parts = realParts({ aof: true });
  const { berths, consumer } = parts;

  it('redeploy: 10 tasks of 20 s survive 3 SIGTERM restarts; 10 containers in all; recovery under 5 s', async () => {
    const env = parts.env({ CONSUMER_ID: 'redeploy', WORKER_CONCURRENCY: '10' });
    const berth = await startBerth(env, { consumer: false });
    berths.push(berth);
    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    let current = consumer(env);
    await current.ready;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '20' })).body.id);
    await waitUntil(() => recorder.events.filter((e) => e.action === 'start').length === 10, 'all 10 running', 60_000);

    const recoveries: number[] = [];
    for (let restart = 1; restart <= 3; restart++) {
      await sleep(2500);
      const stopping = Date.now();
      await current.kill('SIGTERM');
      const stopMs = Date.now() - stopping;
      assert.ok(stopMs < 5000, `shutdown took ${stopMs}ms`);
      assert.equal((await current.exited).code, 0);
      const running = (await queueContainers(berth.config.QUEUE_NAME)).filter((c) => c.State === 'running').length;
      assert.equal(running, 10, 'shutdown never stops a worker container');
      const spawnedAt = Date.now();
      current = consumer(env);
      const readyAt = await current.ready;
      await waitUntil(() => current.count('adopted container') >= 10, 'all 10 adopted', 30_000, 20);
      const adoptedAt = Date.now();
      recoveries.push(Math.max(0, adoptedAt - readyAt));
      console.log(
        `restart ${restart}: shutdown ${stopMs} ms; new process ready ${readyAt - spawnedAt} ms after spawn; all 10 adopted ${adoptedAt - spawnedAt} ms after spawn (${Math.max(0, adoptedAt - readyAt)} ms after ready)`,
      );
    }
    for (const id of ids) assert.equal((await berth.waitFor(id, ['completed', 'failed'], 90_000)).state, 'completed');
    await waitUntil(async () => (await queueContainers(berth.config.QUEUE_NAME)).length === 0, 'no berth container left');
    await recorder.stop();
    assert.equal(recorder.events.filter((e) => e.action === 'create').length, 10);
    for (const ms of recoveries) assert.ok(ms < 5000, `recovery ${ms}ms`);
    for (const id of ids) {
      const counts = await jobEventCounts(parts.redis.url, berth.config.QUEUE_NAME, id);
      assert.equal(counts.completed, 1);
      assert.equal(counts.stalled ?? 0, 0, 'a planned shutdown hands jobs back without a stall');
    }
    await current.kill('SIGTERM');
  });
});

for (const backendName of BACKENDS)
  describe(`chaos on ${backendName} with real consumer processes`, () => {
    const parts = realParts({ backend: backendName, aof: true });
    const { berths, consumer } = parts;

    it('chaos: 30 tasks of 2–15 s, consumer SIGKILLed 8 times at random; each completes once, one container per attempt', async () => {
      const env = parts.env({ CONSUMER_ID: 'chaos', WORKER_CONCURRENCY: '8' });
      const berth = await startBerth(env, { consumer: false });
      berths.push(berth);
      const recorder = await recordEvents(berth.config.QUEUE_NAME, parts.backend.docker);
      let current = consumer(env);
      await current.ready;
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const seconds = 2 + Math.floor(Math.random() * 14);
        ids.push((await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: String(seconds) })).body.id);
      }
      for (let kill = 1; kill <= 8; kill++) {
        await sleep(1000 + Math.random() * 4000); // the chaos itself: a kill at a random moment, not a wait for something
        await current.kill('SIGKILL');
        current = consumer(env);
        await current.ready;
      }
      for (const id of ids) assert.equal((await berth.waitFor(id, ['completed', 'failed'], 180_000)).state, 'completed', id);
      await waitUntil(async () => (await parts.backend.leftovers(berth.config.QUEUE_NAME)) === 0, 'no berth workload left', 60_000);
      await recorder.stop();
      const creates = recorder.events.filter((e) => e.action === 'create');
      const attempts = new Set(creates.map((e) => `${e.jobId}#${e.attempt}`));
      assert.equal(creates.length, attempts.size, 'never two containers for one attempt');
      let attemptCount = 0;
      for (const id of ids) {
        const job = await berth.queue.getJob(id);
        // BullMQ counts the successful attempt too once a job completes.
        attemptCount += job!.attemptsMade;
        const counts = await jobEventCounts(parts.redis.url, berth.config.QUEUE_NAME, id);
        assert.equal(counts.completed, 1, `${id}: ${JSON.stringify(counts)}`);
      }
      assert.equal(creates.length, attemptCount, 'container count equals attempt count');
      await current.kill('SIGTERM');
    });
  });
