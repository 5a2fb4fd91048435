// test-resources: extra-engines
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { queueContainers, recordEvents } from '../support/docker.js';
import { startBerth } from '../support/berth.js';
import { realParts } from '../support/suite.js';
import { jobEventCounts } from '../support/queue-events.js';
import { startSecondEngine, type SecondEngine } from '../support/second-engine.js';
import { sleep, waitUntil } from '../support/wait.js';

describe('scale-out and Redis restarts', () => {
  const parts = realParts({ aof: true });
  const { berths, consumer } = parts;

  it('two consumers on one engine, one of them SIGKILLed mid-run: every attempt runs once', async () => {
    const base = parts.env({ WORKER_CONCURRENCY: '4' });
    const berth = await startBerth(base, { consumer: false });
    berths.push(berth);
    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    const a = consumer({ ...base, CONSUMER_ID: 'a' });
    const b = consumer({ ...base, CONSUMER_ID: 'b' });
    await Promise.all([a.ready, b.ready]);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++)
      ids.push((await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: String(3 + (i % 4)) })).body.id);
    await waitUntil(() => a.count('started container') > 0, 'consumer a running something');
    await sleep(1500);
    await a.kill('SIGKILL');
    for (const id of ids) assert.equal((await berth.waitFor(id, ['completed', 'failed'], 120_000)).state, 'completed');
    await waitUntil(async () => (await queueContainers(berth.config.QUEUE_NAME)).length === 0, 'nothing left');
    await recorder.stop();
    assert.equal(recorder.events.filter((e) => e.action === 'create').length, 12);
    assert.ok(b.count('adopted container') >= 1, 'b adopted what a left running');
    for (const id of ids) assert.equal((await jobEventCounts(parts.redis.url, berth.config.QUEUE_NAME, id)).completed, 1);
    await b.kill('SIGTERM');
  });

  it('two consumers on two Docker engines: the fence keeps each attempt on one engine', async () => {
    const second: SecondEngine = await startSecondEngine([parts.image]);
    try {
      const base = parts.env({ WORKER_CONCURRENCY: '3' });
      const berth = await startBerth(base, { consumer: false });
      berths.push(berth);
      const recorder1 = await recordEvents(berth.config.QUEUE_NAME);
      const recorder2 = await recordEvents(berth.config.QUEUE_NAME, second.docker);
      const a = consumer({ ...base, CONSUMER_ID: 'engine-1' });
      const b = consumer({ ...base, CONSUMER_ID: 'engine-2', DOCKER_HOST: second.host });
      await Promise.all([a.ready, b.ready]);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '4' })).body.id);
      await waitUntil(() => a.count('started container') > 0 && b.count('started container') > 0, 'both engines running tasks');
      await sleep(1000);
      // a's containers keep running on engine 1; b takes a's jobs over but must not start them on engine 2.
      await a.kill('SIGKILL');
      await waitUntil(() => b.count('attempt belongs to another Docker engine; handing it back') > 0, 'b saw a foreign attempt', 20_000);
      const a2 = consumer({ ...base, CONSUMER_ID: 'engine-1' });
      for (const id of ids) assert.equal((await berth.waitFor(id, ['completed', 'failed'], 120_000)).state, 'completed');
      await waitUntil(
        async () => (await queueContainers(berth.config.QUEUE_NAME)).length + (await queueContainers(berth.config.QUEUE_NAME, second.docker)).length === 0,
        'nothing left on either engine',
      );
      await recorder1.stop();
      await recorder2.stop();
      const creates = [...recorder1.events, ...recorder2.events].filter((e) => e.action === 'create');
      assert.equal(creates.length, 10, creates.map((e) => `${e.jobId}#${e.attempt}`).join(' '));
      assert.equal(new Set(creates.map((e) => e.jobId)).size, 10);
      for (const id of ids) assert.equal((await jobEventCounts(parts.redis.url, berth.config.QUEUE_NAME, id)).completed, 1);
      await a2.kill('SIGTERM');
      await b.kill('SIGTERM');
    } finally {
      await second.stop();
    }
  });

  it('Redis killed and restarted mid-flight (AOF): no task lost, the consumer reconnects and resumes', async () => {
    const env = parts.env({ CONSUMER_ID: 'redis-restart' });
    const berth = await startBerth(env, { consumer: false });
    berths.push(berth);
    const c = consumer(env);
    await c.ready;
    const running = (await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '6' })).body.id;
    const queued: string[] = [];
    for (let i = 0; i < 3; i++) queued.push((await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets', prompt: `q${i}` })).body.id);
    await waitUntil(() => c.count('started container') > 0, 'task running');
    await parts.redis.kill();
    await sleep(2000);
    await parts.redis.start();
    const after = (await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets', prompt: 'after' })).body.id;
    for (const id of [running, ...queued, after]) assert.equal((await berth.waitFor(id, ['completed', 'failed'], 60_000)).state, 'completed', id);
    assert.equal(c.child.exitCode, null, 'the consumer process stayed up');
    await waitUntil(async () => (await queueContainers(berth.config.QUEUE_NAME)).length === 0, 'nothing left');
    await c.kill('SIGTERM');
  });
});
