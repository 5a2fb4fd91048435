// POST /api/tasks → Docker's `start` event for the task's container, against dockerode
// create+start of the same image with the same hardened spec (call → `start` event). Samples
// alternate berth / baseline, one at a time, so machine noise lands on both alike.
import { parseConfig } from '../../src/core/config.js';
import { buildContainerSpec } from '../../src/consumer/launcher/docker.js';
import { docker, recordEvents, removeQueueContainers, type DockerEvent } from '../../test/support/docker.js';
import { startRedis } from '../../test/support/redis.js';
import { uniqueQueue } from '../../test/support/berth.js';
import { waitUntil } from '../../test/support/wait.js';
import { startDispatcher } from '../support/dispatcher.js';
import { ratio, type ScenarioResult } from '../support/report.js';
import { summarize } from '../support/stats.js';
import type { BenchContext } from './context.js';

const WARMUP = 5;

export async function dispatchLatency(ctx: BenchContext): Promise<ScenarioResult> {
  const redis = await startRedis();
  const berth = await startDispatcher(redis, ctx.image, { WORKER_CONCURRENCY: '8', AGENT_COMMAND_NOOP: 'node -e 0', TASK_ATTEMPTS: '1' });
  const bare = parseConfig({ ...berth.env, QUEUE_NAME: uniqueQueue('bare') });
  const berthEvents = await recordEvents(berth.config.QUEUE_NAME);
  const bareEvents = await recordEvents(bare.QUEUE_NAME);
  const eventFor = (events: DockerEvent[], action: string, jobId: string) =>
    waitUntil(() => events.find((e) => e.action === action && e.jobId === jobId), `${action} of ${jobId}`, 60_000, 1);
  const berthMs: number[] = [];
  const bareMs: number[] = [];
  try {
    for (let i = 0; i < ctx.options.latencyTasks + WARMUP; i++) {
      let sent = Date.now();
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'noop', repo: 'bench/latency' });
      const started = await eventFor(berthEvents.events, 'start', body.id);
      // The container is removed only after the outcome is recorded: the task is fully done.
      await eventFor(berthEvents.events, 'destroy', body.id);
      if (i >= WARMUP) berthMs.push(started.time - sent);

      const jobId = `b-${i}`;
      const spec = buildContainerSpec(bare, { name: `bare-${bare.QUEUE_NAME}-${i}`, task: { id: jobId, attempt: 1, kind: 'noop', repo: 'bench/latency' } });
      sent = Date.now();
      const container = await docker.createContainer(spec);
      await container.start();
      const bareStarted = await eventFor(bareEvents.events, 'start', jobId);
      await container.wait();
      await container.remove({ force: true });
      if (i >= WARMUP) bareMs.push(bareStarted.time - sent);
      ctx.progress(i + 1, ctx.options.latencyTasks + WARMUP);
    }
  } finally {
    await berthEvents.stop();
    await bareEvents.stop();
    await berth.stop();
    await removeQueueContainers(berth.config.QUEUE_NAME);
    await removeQueueContainers(bare.QUEUE_NAME);
    await redis.stop();
  }
  const ours = summarize(berthMs);
  const base = summarize(bareMs);
  const added = ours.median - base.median;
  return {
    rows: [
      {
        scenario: 'dispatch latency',
        measure: `median, ${ours.n} tasks`,
        berth: `${ours.median} ms`,
        baseline: `${base.median} ms (dockerode create+start)`,
        ratio: `${ratio(ours.median, base.median)}, +${added.toFixed(1)} ms`,
        target: '< 1.15x and < +30 ms',
        met: ours.median / base.median < 1.15 && added < 30,
      },
      {
        scenario: 'dispatch latency',
        measure: 'p99',
        berth: `${ours.p99} ms`,
        baseline: `${base.p99} ms`,
        ratio: ratio(ours.p99, base.p99),
        target: '',
        met: null,
      },
    ],
    raw: { berthMs, dockerodeMs: bareMs, berth: ours, dockerode: base },
  };
}
