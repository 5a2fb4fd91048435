// Resident memory of the dispatcher (dist/api/main.js: API and consumer in one process, the
// default deployment), idle and while it watches N running workers, against a plain dockerode
// process holding the same N containers the way berth does (a wait() and a following log stream
// each: bench/baselines/hold-containers.mjs). RSS is read from /proc: median of 5 samples, 1 s apart.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/core/config.js';
import { buildContainerSpec } from '../../src/consumer/launcher/docker.js';
import { startNodeProcess, type NodeProcess } from '../../test/support/node-process.js';
import { recordEvents, removeQueueContainers } from '../../test/support/docker.js';
import { startRedis } from '../../test/support/redis.js';
import { uniqueQueue } from '../../test/support/berth.js';
import { sleep } from '../../test/support/wait.js';
import { startDispatcher } from '../support/dispatcher.js';
import { waitForEvents } from '../support/docker-events.js';
import { ratio, type ScenarioResult } from '../support/report.js';
import { summarize } from '../support/stats.js';
import type { BenchContext } from './context.js';

async function rss(process: NodeProcess, settleMs: number): Promise<number> {
  await sleep(settleMs);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(process.rssMiB());
    await sleep(1000);
  }
  return summarize(samples).median;
}

export async function footprint(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.options.footprintWorkers;
  const redis = await startRedis();
  const berth = await startDispatcher(redis, ctx.image, { WORKER_CONCURRENCY: String(count) });
  const events = await recordEvents(berth.config.QUEUE_NAME);
  let berthIdle: number;
  let berthBusy: number;
  try {
    berthIdle = await rss(berth.process, 10_000);
    for (let i = 0; i < count; i++) await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'bench/footprint', prompt: '900' });
    await waitForEvents(events.events, 'start', count, ctx, 'berth workers running', 15 * 60_000, 200);
    berthBusy = await rss(berth.process, 10_000);
  } finally {
    await events.stop();
    await berth.stop();
    await removeQueueContainers(berth.config.QUEUE_NAME);
    await redis.stop();
  }

  const bare = parseConfig({ ...berth.env, QUEUE_NAME: uniqueQueue('bare') });
  const specFile = join(mkdtempSync(join(tmpdir(), 'berth-bench-')), 'spec.json');
  writeFileSync(
    specFile,
    JSON.stringify(
      buildContainerSpec(bare, { name: `bare-${bare.QUEUE_NAME}`, task: { id: 'b', attempt: 1, kind: 'sleep', repo: 'bench/footprint', prompt: '900' } }),
    ),
  );
  const hold = (n: number) =>
    startNodeProcess({}, { entry: 'bench/baselines/hold-containers.mjs', readyMsg: 'running', captureLogs: false }, [specFile, String(n)]);
  let bareIdle: number;
  let bareBusy: number;
  const idle = hold(0);
  try {
    await idle.ready;
    bareIdle = await rss(idle, 10_000);
  } finally {
    await idle.kill('SIGTERM');
  }
  const busy = hold(count);
  try {
    await busy.ready;
    bareBusy = await rss(busy, 10_000);
  } finally {
    await busy.kill('SIGTERM');
    await removeQueueContainers(bare.QUEUE_NAME);
  }
  return {
    rows: [
      {
        scenario: 'footprint',
        measure: 'dispatcher RSS, idle',
        berth: `${berthIdle} MiB`,
        baseline: `${bareIdle} MiB (node + dockerode)`,
        ratio: ratio(berthIdle, bareIdle),
        target: '< 200 MB',
        met: berthIdle * 1.048576 < 200,
      },
      {
        scenario: 'footprint',
        measure: `dispatcher RSS, ${count} running workers`,
        berth: `${berthBusy} MiB`,
        baseline: `${bareBusy} MiB (dockerode holding ${count})`,
        ratio: ratio(berthBusy, bareBusy),
        target: '< 200 MB',
        met: berthBusy * 1.048576 < 200,
      },
    ],
    raw: { workers: count, rssMiB: { berthIdle, berthBusy, dockerodeIdle: bareIdle, dockerodeBusy: bareBusy } },
  };
}
