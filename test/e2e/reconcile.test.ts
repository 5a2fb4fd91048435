import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { LABEL } from '../../src/core/labels.js';
import { docker, queueContainers, recordEvents } from '../support/docker.js';
import { realParts } from '../support/suite.js';
import { startBerth, uniqueQueue } from '../support/berth.js';
import { jobEventCounts } from '../support/queue-events.js';
import { waitUntil } from '../support/wait.js';

describe('reconciler and repeated restarts', () => {
  const parts = realParts({ aof: true });
  const strangers: string[] = [];

  after(async () => {
    for (const id of strangers)
      await docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => {});
  });

  const sleeper = async (name: string, labels: Record<string, string>) => {
    const container = await docker.createContainer({
      name,
      Image: parts.image,
      Entrypoint: ['node', '-e', 'setTimeout(() => {}, 600000)'],
      Labels: labels,
      HostConfig: { NetworkMode: 'none', Init: true },
    });
    await container.start();
    return container.id;
  };

  it('removes containers whose job is gone, finished or of an older attempt; touches nothing else on the host', async () => {
    const berth = await startBerth(parts.env(), { consumer: false });
    parts.berths.push(berth);
    const queue = berth.config.QUEUE_NAME;
    const labels = (jobId: string, attempt: number, q = queue) => ({
      [LABEL.managed]: 'true',
      [LABEL.queue]: q,
      [LABEL.jobId]: jobId,
      [LABEL.attempt]: String(attempt),
    });

    const completed = (await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/a' })).body.id;
    const waiting = (await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/b', prompt: '30' })).body.id;

    const gone = await sleeper(`${queue}-gone`, labels('t-no-such-job', 1));
    const older = await sleeper(`${queue}-older`, labels(waiting, 0));
    const current = await sleeper(`berth-${queue}-${waiting}-a1`, labels(waiting, 1));
    const otherQueue = await sleeper(`${queue}-other-queue`, labels('t-no-such-job', 1, uniqueQueue('other')));
    const unlabelled = await sleeper(`${queue}-stranger`, {});
    strangers.push(otherQueue, unlabelled);

    // A consumer process runs the reconciler at start.
    const consumer = parts.consumer({ ...parts.env(), QUEUE_NAME: queue, CONSUMER_ID: 'reconciler' });
    try {
      await consumer.ready;
      await berth.waitFor(completed, ['completed']);
      // A container left behind by a finished job (as after a crash between record and remove).
      const finished = await sleeper(`${queue}-finished`, labels(completed, 1));
      const exists = async (id: string) =>
        docker
          .getContainer(id)
          .inspect()
          .then(
            () => true,
            () => false,
          );
      await waitUntil(async () => !(await exists(gone)) && !(await exists(older)) && !(await exists(finished)), 'gone, older and finished removed', 30_000);
      assert.equal(await exists(otherQueue), true, 'another queue’s container is not ours');
      assert.equal(await exists(unlabelled), true, 'an unlabelled container is never touched');
      // The current attempt's container is adopted, never removed.
      assert.equal(await exists(current), true, 'the current attempt is left alone');
      const retired = consumer.lines.filter((l) => l.msg === 'removed container').map((l) => `${l.container}: ${l.reason}`);
      assert.ok(
        retired.some((r) => r.includes('-gone: job gone')),
        retired.join('\n'),
      );
      assert.ok(
        retired.some((r) => r.includes('-older: older attempt')),
        retired.join('\n'),
      );
      assert.ok(
        retired.some((r) => r.includes('-finished: job completed')),
        retired.join('\n'),
      );
    } finally {
      await consumer.kill('SIGKILL');
    }
  });

  it('a task survives its dispatcher being SIGKILLed 10 times while it runs', async () => {
    const env = parts.env({ CONSUMER_ID: 'ten-kills' });
    const berth = await startBerth(env, { consumer: false });
    parts.berths.push(berth);
    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    let consumer = parts.consumer(env);
    await consumer.ready;
    // Long enough that all ten restarts land while it runs, on a loaded machine too (a restart is a
    // process start, 1-3 s here): a container that exited in between is collected, not adopted.
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '45' });
    await waitUntil(() => recorder.events.some((e) => e.action === 'start'), 'running');
    const recoveries: number[] = [];
    for (let kill = 0; kill < 10; kill++) {
      await consumer.kill('SIGKILL');
      consumer = parts.consumer(env);
      const ready = await consumer.ready;
      await waitUntil(() => consumer.count('adopted container') > 0, 'adopted', 20_000, 20).catch((error: Error) => {
        throw new Error(
          `${error.message} (restart ${kill + 1}); the consumer said: ${consumer.lines
            .slice(-8)
            .map((l) => l.msg)
            .join(' | ')}`,
        );
      });
      recoveries.push(Date.now() - ready);
    }
    console.log(`10 SIGKILL restarts: adopted ${recoveries.join(', ')} ms after each new consumer was ready`);
    // A job handed back wakes the consumers blocked on the queue: adoption does not wait out
    // BullMQ's 5 s fetch block (it did, for prioritized jobs, before wakeConsumers).
    assert.ok(Math.max(...recoveries) < 4_000, `each adoption within moments of the consumer being ready: ${recoveries.join(', ')} ms`);
    const task = await berth.waitFor(body.id, ['completed', 'failed'], 90_000);
    await consumer.kill('SIGTERM');
    assert.equal(task.state, 'completed', JSON.stringify(task));
    assert.equal(task.attempts, 1);
    await recorder.stop();
    assert.equal(recorder.events.filter((e) => e.action === 'create').length, 1);
    const counts = await jobEventCounts(parts.redis.url, berth.config.QUEUE_NAME, body.id);
    assert.equal(counts.completed, 1);
    await waitUntil(async () => (await queueContainers(berth.config.QUEUE_NAME)).length === 0, 'nothing left');
  });
});
