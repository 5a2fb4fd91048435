// The swarm backend beside the Docker backend and bare dockerode, in one run:
//   latency     POST /api/tasks → Docker's `start` event of the task's container; samples alternate
//               berth on docker, berth on swarm (a single-node swarm on an engine of its own), and
//               dockerode create+start on the host engine, and a bare `service create` of the same
//               service spec on the swarm (swarm's own placement time, without berth)
//   throughput  short tasks end to end (container destroyed) at the same concurrency
import { parseConfig } from '../../src/core/config.js';
import { buildContainerSpec } from '../../src/consumer/launcher/docker.js';
import { buildWorkloadSpec } from '../../src/consumer/launcher/spec.js';
import { serviceSpec } from '../../src/consumer/launcher/swarm/service-spec.js';
import { docker, recordEvents, removeQueueContainers, type DockerEvent } from '../../test/support/docker.js';
import { startRedis } from '../../test/support/redis.js';
import { uniqueQueue } from '../../test/support/berth.js';
import { startSwarm } from '../../test/support/swarm.js';
import { waitUntil } from '../../test/support/wait.js';
import { startDispatcher, type Dispatcher } from '../support/dispatcher.js';
import { waitForEvents } from '../support/docker-events.js';
import { ratio, type ScenarioResult } from '../support/report.js';
import { pool, summarize } from '../support/stats.js';
import type { BenchContext } from './context.js';

const WARMUP = 3;

export async function swarmBackend(ctx: BenchContext): Promise<ScenarioResult> {
  const { swarmTasks: samples, concurrency } = ctx.options;
  const redis = await startRedis();
  const swarm = await startSwarm(1, [ctx.image], 'berth-bench', 96);
  const common = { WORKER_CONCURRENCY: String(concurrency), AGENT_COMMAND_NOOP: 'node -e 0', TASK_ATTEMPTS: '1' };
  const onDocker = await startDispatcher(redis, ctx.image, common);
  const onSwarm = await startDispatcher(redis, ctx.image, { ...common, ...swarm.env });
  const bare = parseConfig({ ...onDocker.env, QUEUE_NAME: uniqueQueue('bare') });
  const dockerEvents = await recordEvents(onDocker.config.QUEUE_NAME);
  const swarmEvents = await recordEvents(onSwarm.config.QUEUE_NAME, swarm.manager.docker);
  const bareEvents = await recordEvents(bare.QUEUE_NAME);
  const bareSwarm = parseConfig({ ...onSwarm.env, QUEUE_NAME: uniqueQueue('bares') });
  const bareSwarmEvents = await recordEvents(bareSwarm.QUEUE_NAME, swarm.manager.docker);
  const imageId = (await swarm.manager.docker.getImage(ctx.image).inspect()).Id;
  const eventFor = (events: DockerEvent[], action: string, jobId: string) =>
    waitUntil(() => events.find((e) => e.action === action && e.jobId === jobId), `${action} of ${jobId}`, 120_000, 1);
  const sample = async (berth: Dispatcher, events: DockerEvent[]) => {
    const sent = Date.now();
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'noop', repo: 'bench/swarm' });
    const started = await eventFor(events, 'start', body.id);
    // Removed only after the outcome is recorded: the task is fully done before the next sample.
    await eventFor(events, 'destroy', body.id);
    return started.time - sent;
  };
  const latency = { docker: [] as number[], swarm: [] as number[], dockerode: [] as number[], bareSwarm: [] as number[] };
  const throughputMs = { docker: 0, swarm: 0, dockerode: 0 };
  const count = samples * 2;
  try {
    for (let i = 0; i < samples + WARMUP; i++) {
      const dockerMs = await sample(onDocker, dockerEvents.events);
      const swarmMs = await sample(onSwarm, swarmEvents.events);
      const jobId = `b-${i}`;
      const sent = Date.now();
      const container = await docker.createContainer(
        buildContainerSpec(bare, { name: `bare-${bare.QUEUE_NAME}-${i}`, task: { id: jobId, attempt: 1, kind: 'noop', repo: 'bench/swarm' } }),
      );
      await container.start();
      const bareMs = (await eventFor(bareEvents.events, 'start', jobId)).time - sent;
      await container.wait();
      await container.remove({ force: true });
      const serviceJob = `s-${i}`;
      const spec = buildWorkloadSpec(bareSwarm, {
        name: `bare-${bareSwarm.QUEUE_NAME}-${i}`,
        task: { id: serviceJob, attempt: 1, kind: 'noop', repo: 'bench/swarm' },
      });
      const serviceSent = Date.now();
      const service = (await swarm.manager.docker.createService(serviceSpec({ ...spec, image: imageId }, { constraints: [] }))) as unknown as {
        remove(): Promise<unknown>;
      };
      const bareSwarmMs = (await eventFor(bareSwarmEvents.events, 'start', serviceJob)).time - serviceSent;
      await eventFor(bareSwarmEvents.events, 'die', serviceJob);
      await service.remove();
      if (i >= WARMUP) {
        latency.bareSwarm.push(bareSwarmMs);
        latency.docker.push(dockerMs);
        latency.swarm.push(swarmMs);
        latency.dockerode.push(bareMs);
      }
      ctx.progress(i + 1, samples + WARMUP, 'latency');
    }

    for (const [name, berth, events] of [
      ['docker', onDocker, dockerEvents.events],
      ['swarm', onSwarm, swarmEvents.events],
    ] as const) {
      const before = events.filter((e) => e.action === 'destroy').length;
      const started = Date.now();
      for (let i = 0; i < count; i++) await berth.api('POST', '/api/tasks', { kind: 'noop', repo: 'bench/swarm' });
      await waitForEvents(events, 'destroy', before + count, ctx, `${name} tasks done`, 30 * 60_000, 20);
      throughputMs[name] = Date.now() - started;
    }
    const started = Date.now();
    await pool(count, concurrency, async (i) => {
      const container = await docker.createContainer(
        buildContainerSpec(bare, { name: `bare-${bare.QUEUE_NAME}-t${i}`, task: { id: `t-${i}`, attempt: 1, kind: 'noop', repo: 'bench/swarm' } }),
      );
      await container.start();
      await container.wait();
      await container.logs({ stdout: true, stderr: true });
      await container.remove({ force: true });
    });
    throughputMs.dockerode = Date.now() - started;
  } finally {
    await Promise.all([dockerEvents.stop(), swarmEvents.stop(), bareEvents.stop(), bareSwarmEvents.stop()]);
    await onDocker.stop();
    await onSwarm.stop();
    await removeQueueContainers(onDocker.config.QUEUE_NAME);
    await removeQueueContainers(bare.QUEUE_NAME);
    await swarm.stop();
    await redis.stop();
  }
  const stats = {
    docker: summarize(latency.docker),
    swarm: summarize(latency.swarm),
    dockerode: summarize(latency.dockerode),
    bareSwarm: summarize(latency.bareSwarm),
  };
  const perMinute = (ms: number) => Math.round((count / ms) * 60_000);
  const rate = { docker: perMinute(throughputMs.docker), swarm: perMinute(throughputMs.swarm), dockerode: perMinute(throughputMs.dockerode) };
  const measure = `median, ${stats.swarm.n} tasks`;
  return {
    rows: [
      {
        scenario: 'swarm: dispatch latency',
        measure,
        berth: `${stats.swarm.median} ms (swarm)`,
        baseline: `${stats.docker.median} ms (berth on docker)`,
        ratio: ratio(stats.swarm.median, stats.docker.median),
        target: '',
        met: null,
      },
      {
        scenario: 'swarm: dispatch latency',
        measure,
        berth: `${stats.swarm.median} ms (swarm)`,
        baseline: `${stats.bareSwarm.median} ms (dockerode service create)`,
        ratio: `${ratio(stats.swarm.median, stats.bareSwarm.median)}, +${(stats.swarm.median - stats.bareSwarm.median).toFixed(0)} ms`,
        target: '',
        met: null,
      },
      {
        scenario: 'swarm: dispatch latency',
        measure,
        berth: `${stats.swarm.median} ms (swarm)`,
        baseline: `${stats.dockerode.median} ms (dockerode create+start)`,
        ratio: ratio(stats.swarm.median, stats.dockerode.median),
        target: '',
        met: null,
      },
      {
        scenario: 'swarm: dispatch latency',
        measure: 'p99',
        berth: `${stats.swarm.p99} ms (swarm)`,
        baseline: `${stats.docker.p99} ms (docker), ${stats.dockerode.p99} ms (dockerode)`,
        ratio: ratio(stats.swarm.p99, stats.docker.p99),
        target: '',
        met: null,
      },
      {
        scenario: 'swarm: short tasks per minute',
        measure: `${count} tasks, concurrency ${concurrency}`,
        berth: `${rate.swarm} (swarm)`,
        baseline: `${rate.docker} (berth on docker), ${rate.dockerode} (dockerode loop)`,
        ratio: ratio(rate.swarm, rate.docker),
        target: '',
        met: null,
      },
    ],
    raw: { latencyMs: latency, latency: stats, throughputMs, perMinute: rate, tasks: count, concurrency },
  };
}
