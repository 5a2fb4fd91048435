// Tasks whose command exits at once, end to end at the same concurrency:
//   berth      POST /api/tasks × N → container → result recorded → container removed
//   dockerode  create / start / wait / logs / remove loop, same image and hardened spec
//   docker CLI `docker run -d` / `wait` / `logs` / `rm -f` as child processes
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { parseConfig } from '../../src/core/config.js';
import { LABEL } from '../../src/core/labels.js';
import { buildContainerSpec } from '../../src/consumer/launcher/docker.js';
import { docker, recordEvents, removeQueueContainers } from '../../test/support/docker.js';
import { startRedis } from '../../test/support/redis.js';
import { uniqueQueue } from '../../test/support/berth.js';
import { startDispatcher } from '../support/dispatcher.js';
import { waitForEvents } from '../support/docker-events.js';
import { ratio, type ScenarioResult } from '../support/report.js';
import { pool } from '../support/stats.js';
import type { BenchContext } from './context.js';

const run = promisify(execFile);
const DOCKER_CLI = '/usr/bin/docker';

export async function shortTasks(ctx: BenchContext): Promise<ScenarioResult> {
  const { shortTasks: count, concurrency } = ctx.options;
  const perMinute = (ms: number) => Math.round((count / ms) * 60_000);
  const redis = await startRedis();
  const berth = await startDispatcher(redis, ctx.image, { WORKER_CONCURRENCY: String(concurrency), AGENT_COMMAND_NOOP: 'node -e 0', TASK_ATTEMPTS: '1' });
  const events = await recordEvents(berth.config.QUEUE_NAME);
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(berth.config.QUEUE_NAME, { connection });
  let berthMs: number;
  let failed: number;
  try {
    const started = Date.now();
    for (let i = 0; i < count; i++) await berth.api('POST', '/api/tasks', { kind: 'noop', repo: 'bench/throughput' });
    await waitForEvents(events.events, 'destroy', count, ctx, 'berth tasks done', 30 * 60_000, 20);
    berthMs = Date.now() - started;
    const counts = await queue.getJobCounts('completed', 'failed');
    failed = counts.failed ?? 0;
    if (counts.completed !== count) throw new Error(`berth completed ${counts.completed} of ${count} (failed: ${failed})`);
  } finally {
    await events.stop();
    await berth.stop();
    await queue.close();
    connection.disconnect();
    await removeQueueContainers(berth.config.QUEUE_NAME);
    await redis.stop();
  }

  const bare = parseConfig({ ...berth.env, QUEUE_NAME: uniqueQueue('bare') });
  let started = Date.now();
  await pool(count, concurrency, async (i) => {
    const spec = buildContainerSpec(bare, { name: `bare-${bare.QUEUE_NAME}-${i}`, task: { id: `b-${i}`, attempt: 1, kind: 'noop', repo: 'bench/throughput' } });
    const container = await docker.createContainer(spec);
    await container.start();
    await container.wait();
    await container.logs({ stdout: true, stderr: true });
    await container.remove({ force: true });
    ctx.progress(i + 1, count, 'dockerode');
  });
  const dockerodeMs = Date.now() - started;

  // The CLI baseline runs `node -e 0` directly (no worker entrypoint), so it does less than berth:
  // the ratio to it is conservative.
  started = Date.now();
  await pool(count, concurrency, async (i) => {
    const name = `cli-${bare.QUEUE_NAME}-${i}`;
    await run(DOCKER_CLI, [
      'run',
      '-d',
      '--name',
      name,
      '--label',
      `${LABEL.queue}=${bare.QUEUE_NAME}`,
      '--init',
      '--read-only',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--network',
      'none',
      '--memory',
      '256m',
      '--user',
      '10001:10001',
      '--entrypoint',
      'node',
      ctx.image,
      '-e',
      '0',
    ]);
    await run(DOCKER_CLI, ['wait', name]);
    await run(DOCKER_CLI, ['logs', name]);
    await run(DOCKER_CLI, ['rm', '-f', name]);
    ctx.progress(i + 1, count, 'docker CLI');
  });
  const cliMs = Date.now() - started;
  await removeQueueContainers(bare.QUEUE_NAME);

  const ours = perMinute(berthMs);
  const dockerode = perMinute(dockerodeMs);
  const cli = perMinute(cliMs);
  const measure = `${count} tasks, concurrency ${concurrency}`;
  return {
    rows: [
      {
        scenario: 'short tasks per minute',
        measure,
        berth: String(ours),
        baseline: `${dockerode} (dockerode loop)`,
        ratio: ratio(ours, dockerode),
        target: '≥ 0.9x',
        met: ours / dockerode >= 0.9,
      },
      {
        scenario: 'short tasks per minute',
        measure,
        berth: String(ours),
        baseline: `${cli} (docker CLI run/wait/logs/rm)`,
        ratio: ratio(ours, cli),
        target: '≥ 1.2x',
        met: ours / cli >= 1.2,
      },
    ],
    raw: { tasks: count, concurrency, berthMs, dockerodeMs, cliMs, perMinute: { berth: ours, dockerode, dockerCli: cli }, berthFailed: failed },
  };
}
