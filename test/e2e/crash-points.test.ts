import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordEvents } from '../support/docker.js';
import { BACKENDS } from '../support/backends.js';
import { startBerth } from '../support/berth.js';
import { realParts } from '../support/suite.js';
import { startConsumerProcess } from '../support/node-process.js';
import { jobEventCounts } from '../support/queue-events.js';
import { waitUntil } from '../support/wait.js';

/**
 * The consumer is SIGKILLed at each step of a launch, then started again. Whatever the step, the
 * task completes exactly once, Docker saw exactly one container for the attempt (on either backend),
 * nothing is left.
 */
for (const backendName of BACKENDS)
  describe(`crash points on ${backendName}: SIGKILL at every step of a launch, then restart`, () => {
    const parts = realParts({ backend: backendName, aof: true });
    const { berths } = parts;

    for (const point of ['after-dequeue', 'after-create', 'after-start', 'while-running', 'after-exit', 'after-record'] as const) {
      it(`recovers from a crash ${point.replace('-', ' ')}`, async () => {
        const env = parts.env({ CONSUMER_ID: `crash-${point}` });
        const berth = await startBerth(env, { consumer: false });
        berths.push(berth);
        const recorder = await recordEvents(berth.config.QUEUE_NAME, parts.backend.docker);

        const first = startConsumerProcess(point === 'while-running' ? env : { ...env, BERTH_TEST_CRASH_AT: point });
        await first.ready;
        const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '3' });
        if (point === 'while-running') {
          await waitUntil(() => recorder.events.some((e) => e.action === 'start'), 'container started');
          await new Promise((r) => setTimeout(r, 1000)); // a fixed wait on purpose: the kill lands a second into the 3 s run, mid-run
          await first.kill('SIGKILL');
        }
        const died = await first.exited;
        assert.equal(died.signal, 'SIGKILL');

        const second = startConsumerProcess(env);
        try {
          const task = await berth.waitFor(body.id, ['completed', 'failed'], 60_000);
          assert.equal(task.state, 'completed', JSON.stringify(task));
          assert.deepEqual(task.result, { slept: 3 });
          assert.equal(task.attempts, 1);
          await waitUntil(async () => (await parts.backend.leftovers(berth.config.QUEUE_NAME)) === 0, 'no berth workload left', 30_000);
          await recorder.stop();
          const creates = recorder.events.filter((e) => e.action === 'create');
          assert.equal(creates.length, 1, `containers created: ${creates.map((e) => e.name).join(', ')}`);
          const counts = await jobEventCounts(parts.redis.url, berth.config.QUEUE_NAME, body.id);
          assert.equal(counts.completed, 1, JSON.stringify(counts));
          assert.equal(counts.failed ?? 0, 0);
        } finally {
          await second.kill('SIGTERM');
        }
      });
    }
  });
