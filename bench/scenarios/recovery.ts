// N running tasks, the consumer SIGKILLed and started again: time from the new process's ready
// line until every task is adopted (both from the process's own log clock), and how many
// containers Docker created (must equal N). Baseline: plain BullMQ workers with the same lock
// settings (bench/baselines/bullmq-worker.mjs), where a dead worker's jobs come back only when
// their locks expire and a stalled check runs.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startNodeProcess, type NodeProcess } from '../../test/support/node-process.js';
import { recordEvents, removeQueueContainers } from '../../test/support/docker.js';
import { startRedis } from '../../test/support/redis.js';
import { startBerth, testEnv, uniqueQueue } from '../../test/support/berth.js';
import { waitUntil } from '../../test/support/wait.js';
import type { ScenarioResult } from '../support/report.js';
import { waitForEvents } from '../support/docker-events.js';
import type { BenchContext } from './context.js';

const timeOf = (line: Record<string, unknown> | undefined) => Number(line?.time);

export async function recovery(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.options.recoveryTasks;
  const redis = await startRedis();
  const env = testEnv(redis, ctx.image, { CONSUMER_ID: 'bench-recovery', WORKER_CONCURRENCY: String(count) });
  const api = await startBerth(env, { consumer: false });
  const events = await recordEvents(api.config.QUEUE_NAME);
  const processes: NodeProcess[] = [];
  const consumer = () => {
    const p = startNodeProcess(env, { entry: 'dist/consumer/main.js', readyMsg: 'consumer started' });
    processes.push(p);
    return p;
  };
  let berthMs: number;
  let berthFromSpawnMs: number;
  let containers: number;
  let adoptedLines: number;
  try {
    const first = consumer();
    await first.ready;
    for (let i = 0; i < count; i++) await api.api('POST', '/api/tasks', { kind: 'sleep', repo: 'bench/recovery', prompt: '600' });
    await waitForEvents(events.events, 'start', count, ctx, 'running', 10 * 60_000, 100);
    await first.kill('SIGKILL');
    const spawned = Date.now();
    const second = consumer();
    const ready = timeOf(await second.readyLine);
    await waitUntil(() => second.count('adopted container') >= count, `${count} adopted`, 120_000, 20);
    const adopted = second.lines.filter((l) => l.msg === 'adopted container');
    adoptedLines = adopted.length;
    const lastAdopted = Math.max(...adopted.map(timeOf));
    // The ready line comes after the worker starts fetching, so adoption can precede it (0 ms).
    berthMs = Math.max(0, lastAdopted - ready);
    berthFromSpawnMs = lastAdopted - spawned;
    containers = events.events.filter((e) => e.action === 'create').length;
  } finally {
    for (const p of processes) await p.kill('SIGKILL');
    await events.stop();
    await api.close();
    await removeQueueContainers(api.config.QUEUE_NAME);
  }

  // Baseline: the same kill and restart with BullMQ alone.
  const queueName = uniqueQueue('bare');
  const baseEnv = {
    REDIS_URL: redis.url,
    QUEUE_NAME: queueName,
    CONCURRENCY: String(count),
    LOCK_DURATION_MS: String(api.config.LOCK_DURATION),
    STALLED_INTERVAL_MS: String(api.config.STALLED_INTERVAL),
    MAX_STALLED_COUNT: String(api.config.MAX_STALLED_COUNT),
  };
  const worker = (readyMsg: string) => startNodeProcess(baseEnv, { entry: 'bench/baselines/bullmq-worker.mjs', readyMsg });
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection });
  let baselineMs: number;
  try {
    const first = worker('ready');
    processes.push(first);
    await first.ready;
    await queue.addBulk(Array.from({ length: count }, (_, i) => ({ name: 'task', data: { i } })));
    await waitUntil(() => first.count('took') >= count, `baseline took ${count}`, 60_000);
    await first.kill('SIGKILL');
    const spawned = Date.now();
    const second = worker('ready');
    processes.push(second);
    await second.ready;
    await waitUntil(
      () => {
        ctx.progress(second.count('took'), count, 'BullMQ stall recovery');
        return second.count('took') >= count;
      },
      `baseline re-took ${count}`,
      5 * 60_000,
      100,
    );
    baselineMs = Math.max(...second.lines.filter((l) => l.msg === 'took').map(timeOf)) - spawned;
  } finally {
    for (const p of processes) await p.kill('SIGKILL');
    await queue.close();
    connection.disconnect();
    await redis.stop();
  }
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return {
    rows: [
      {
        scenario: 'recovery after SIGKILL',
        measure: `all ${count} running tasks adopted, after the new process is ready`,
        berth: seconds(berthMs),
        baseline: '',
        ratio: '',
        target: '< 5 s',
        met: berthMs < 5000,
      },
      {
        scenario: 'recovery after SIGKILL',
        measure: `all ${count} running tasks back in hand, after restart (spawn)`,
        berth: seconds(berthFromSpawnMs),
        baseline: `${seconds(baselineMs)} (BullMQ alone: lock expiry + stalled check, same settings)`,
        ratio: `${(baselineMs / berthFromSpawnMs).toFixed(1)}x faster`,
        target: '',
        met: null,
      },
      {
        scenario: 'recovery after SIGKILL',
        measure: 'duplicate containers',
        berth: String(containers - count),
        baseline: '',
        ratio: '',
        target: '0',
        met: containers === count,
      },
    ],
    raw: {
      tasks: count,
      berthAfterReadyMs: berthMs,
      berthAfterSpawnMs: berthFromSpawnMs,
      baselineAfterSpawnMs: baselineMs,
      containersCreated: containers,
      adoptedLines,
    },
  };
}
