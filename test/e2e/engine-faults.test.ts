// test-resources: extra-engines
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { recordEvents, type DockerEvent } from '../support/docker.js';
import { ensureWorkerImage } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { realParts } from '../support/suite.js';
import { startBerth, testEnv, type TestBerth } from '../support/berth.js';
import { startSecondEngine, type SecondEngine } from '../support/second-engine.js';
import { waitUntil } from '../support/wait.js';

/**
 * The Docker engine under berth stops and starts while an agent runs (an upgrade), on a second
 * engine so the host engine never changes. Docker's own events are recorded before the stop and
 * again after the start (an engine keeps no events across a restart), so "one container per
 * attempt" is counted from Docker, not from berth.
 */
for (const liveRestore of [true, false]) {
  describe(`a dockerd restart mid-task, live-restore ${liveRestore ? 'on' : 'off'}`, () => {
    let redis: TestRedis;
    let image: string;
    let engine: SecondEngine;
    let berth: TestBerth;

    before(async () => {
      image = await ensureWorkerImage();
      redis = await startRedis();
      engine = await startSecondEngine([image], liveRestore ? ['--live-restore'] : []);
      berth = await startBerth(testEnv(redis, image, { DOCKER_HOST: engine.host, TASK_BACKOFF: '500ms', LOG_LEVEL: 'silent' }));
    });
    after(async () => {
      await berth.close();
      await engine.stop();
      await redis.stop();
    });

    const record = async (events: DockerEvent[][]) => {
      const recorder = await recordEvents(berth.config.QUEUE_NAME, engine.docker);
      events.push(recorder.events);
      return recorder;
    };

    it(
      liveRestore
        ? 'engine down 20 s: the same container completes the task, no new attempt, nothing stopped'
        : 'the engine stops the container: the attempt is retried, and the reason says the engine restarted',
      async () => {
        const phases: DockerEvent[][] = [];
        const before = await record(phases);
        const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: liveRestore ? '30' : '8' });
        const started = await waitUntil(() => before.events.find((e) => e.action === 'start'), 'container started');
        // The engine goes once the agent itself is running (its first line in the job log).
        await waitUntil(
          async () => (await berth.api('GET', `/api/tasks/${body.id}/logs`)).body.lines?.some((l: string) => l.startsWith('sleeping')),
          'the agent started',
          30_000,
          100,
        );

        const downMs = liveRestore ? 20_000 : 2_000;
        const downAt = Date.now();
        const restarted = engine.restart(downMs);
        if (liveRestore) {
          // Meanwhile: /readyz names docker, and the task is still active, its container untouched.
          const unready = await waitUntil(
            async () => {
              const response = await berth.api('GET', '/readyz');
              return response.status === 503 ? response.body : null;
            },
            '/readyz to say docker is down',
            15_000,
            250,
          );
          assert.deepEqual(unready.unreachable, ['docker']);
          assert.equal((await berth.api('GET', `/api/tasks/${body.id}`)).body.state, 'active');
        }
        await restarted;
        await before.stop().catch(() => {});
        const afterRestart = await record(phases);
        // While it was down, /readyz said so? The ping probe is the readiness probe; read it now that it is back.
        const task = await berth.waitFor(body.id, ['completed', 'failed'], 120_000);
        await afterRestart.stop();
        const events = phases.flat();
        const creates = events.filter((e) => e.action === 'create');
        const job = (await berth.queue.getJob(body.id))!;

        if (liveRestore) {
          assert.equal(task.state, 'completed', JSON.stringify(task));
          assert.deepEqual(task.result, { slept: 30 });
          assert.equal(task.attempts, 1, 'no attempt was counted for the outage');
          assert.deepEqual(
            creates.map((e) => e.id),
            [started.id],
            'one container, the one that was running',
          );
          assert.ok(!events.some((e) => e.action === 'kill' || e.action === 'stop'), 'berth stopped nothing');
          assert.ok(Date.now() - downAt >= downMs, 'the engine really was down that long');
          const errors =
            (await berth.metrics.registry.getSingleMetricAsString('berth_engine_errors_total')).match(/berth_engine_errors_total\{operation="\w+"\} (\d+)/g) ??
            [];
          assert.ok(errors.length > 0, 'engine errors were counted by operation');
        } else {
          assert.equal(task.state, 'completed', JSON.stringify(task));
          assert.equal(task.attempts, 2, 'the killed attempt was retried');
          assert.equal(creates.length, 2, `one container per attempt: ${creates.map((e) => e.name).join(', ')}`);
          assert.deepEqual(new Set(creates.map((e) => e.attempt)), new Set(['1', '2']));
          assert.match((job.stacktrace ?? []).join('\n'), /the Docker engine restarted while the task ran and stopped its container \(exit code 1\d\d\)/);
        }
        await waitUntil(
          async () => (await engine.docker.listContainers({ all: true, filters: { label: [`berth.queue=${berth.config.QUEUE_NAME}`] } })).length === 0,
          'nothing left behind',
        );
      },
    );
  });
}

describe('a worker image that is not there', () => {
  const parts = realParts({ image: false });
  let berth: TestBerth;

  before(async () => {
    berth = await startBerth(parts.env({ WORKER_IMAGE: 'berth:no-such-image-here' }));
    parts.berths.push(berth);
  });

  it('fails the task once with a clear reason, burning no retries', async () => {
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets' });
    const task = await berth.waitFor(body.id, ['completed', 'failed'], 30_000);
    assert.equal(task.state, 'failed');
    assert.equal(task.attempts, 1);
    assert.equal(task.failedReason, 'worker image berth:no-such-image-here is not on this Docker engine; build or pull it (WORKER_IMAGE), then retry the task');
  });
});
