// test-resources: extra-engines
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { recordEvents, type DockerEvent } from '../support/docker.js';
import { ensureWorkerImage } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startBerth, testEnv, type TestBerth } from '../support/berth.js';
import { startConsumerProcess, type NodeProcess } from '../support/node-process.js';
import { jobEventCounts } from '../support/queue-events.js';
import { startSecondEngine, type SecondEngine } from '../support/second-engine.js';
import { sleep, waitUntil } from '../support/wait.js';

/**
 * Everything under berth fails during one run: the consumer is SIGKILLed twice, the Docker engine
 * (live-restore on, a second engine) restarts, and Redis restarts. 20 tasks; each completes exactly
 * once, one container per attempt, nothing left behind. Docker's events are recorded per engine
 * lifetime (an engine keeps none across a restart) and counted together.
 */
describe('chaos below berth: consumer SIGKILLs, a dockerd restart and a Redis restart in one run', () => {
  let redis: TestRedis;
  let engine: SecondEngine;
  let berth: TestBerth;
  let env: Record<string, string>;
  const processes: NodeProcess[] = [];

  before(async () => {
    const image = await ensureWorkerImage();
    redis = await startRedis({ aof: true });
    engine = await startSecondEngine([image], ['--live-restore']);
    env = testEnv(redis, image, { DOCKER_HOST: engine.host, CONSUMER_ID: 'chaos-below', WORKER_CONCURRENCY: '6', TASK_ATTEMPTS: '3' });
    berth = await startBerth(env, { consumer: false });
  });
  after(async () => {
    for (const p of processes) await p.kill('SIGKILL');
    await berth.close().catch(() => {});
    await engine.stop();
    await redis.stop();
  });

  it('20 tasks of 3–12 s: each completes once, one container per attempt, nothing left', async () => {
    const consumer = () => {
      const p = startConsumerProcess(env);
      processes.push(p);
      return p;
    };
    const phases: DockerEvent[][] = [];
    let recorder = await recordEvents(berth.config.QUEUE_NAME, engine.docker);
    phases.push(recorder.events);
    let current = consumer();
    await current.ready;
    const ids: string[] = [];
    for (let i = 0; i < 20; i++)
      ids.push((await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: String(3 + ((i * 7) % 10)) })).body.id);

    // The run: each fault fires on something that happened, not on the clock.
    const completed = async () => (await berth.queue.getJobCounts('completed')).completed ?? 0;
    await waitUntil(() => phases.flat().filter((e) => e.action === 'start').length >= 6, 'six agents running', 60_000);
    await current.kill('SIGKILL');
    current = consumer();
    await current.ready;
    await waitUntil(() => current.count('adopted container') >= 1, 'the new consumer adopted the running agents', 30_000);
    await engine.restart(3_000);
    await recorder.stop().catch(() => {});
    recorder = await recordEvents(berth.config.QUEUE_NAME, engine.docker);
    phases.push(recorder.events);
    const beforeRedis = await completed();
    await waitUntil(async () => (await completed()) >= beforeRedis + 2, 'tasks completing after the engine restart', 60_000);
    await redis.stop();
    await sleep(5_000); // the outage itself: Redis stays down this long
    await redis.start();
    const afterRedis = await completed();
    await waitUntil(async () => (await completed()) > afterRedis, 'a task completed after Redis came back', 60_000);
    await current.kill('SIGKILL');
    current = consumer();

    for (const id of ids) assert.equal((await berth.waitFor(id, ['completed', 'failed'], 180_000)).state, 'completed', id);
    await waitUntil(
      async () => (await engine.docker.listContainers({ all: true, filters: { label: [`berth.queue=${berth.config.QUEUE_NAME}`] } })).length === 0,
      'nothing left on the engine',
      60_000,
    );
    await recorder.stop();
    const creates = phases.flat().filter((e) => e.action === 'create');
    const perAttempt = new Map<string, number>();
    for (const e of creates) perAttempt.set(`${e.jobId}#${e.attempt}`, (perAttempt.get(`${e.jobId}#${e.attempt}`) ?? 0) + 1);
    for (const [attempt, count] of perAttempt) assert.equal(count, 1, `${attempt}: ${count} containers`);
    for (const id of ids) {
      const counts = await jobEventCounts(redis.url, berth.config.QUEUE_NAME, id);
      assert.equal(counts.completed, 1, `${id} completed ${counts.completed} times`);
    }
    console.log(
      `chaos below: ${creates.length} containers for ${ids.length} tasks (${[...perAttempt.keys()].filter((k) => !k.endsWith('#1')).length} retried attempts)`,
    );
    await current.kill('SIGTERM');
  });
});
