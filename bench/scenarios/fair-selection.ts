// What the fair start order costs a dispatch: the time from a submit to the job a consumer takes
// next, with 10k other tasks already queued. berth: the fair rank (Capacity.admit: the caps, the
// repository's count and last rank, in one round trip) and a prioritized add (startPriority), the
// job taken from BullMQ's prioritized set with those 10k in it. Baseline, same run: Queue.add
// without a priority into an empty queue, taken from BullMQ's wait list. Both taken by the same
// manual fetch (Worker.getNextJob), so the backlog is never run: only the selection is measured.
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Capacity } from '../../src/core/backpressure.js';
import { createTaskQueue, redisConnection } from '../../src/core/queue.js';
import { PRIORITY_MIN, startPriority } from '../../src/core/start-priority.js';
import type { TaskData } from '../../src/core/task.js';
import { uniqueQueue } from '../../test/support/berth.js';
import { startRedis } from '../../test/support/redis.js';
import type { ScenarioResult } from '../support/report.js';
import { summarize } from '../support/stats.js';
import type { BenchContext } from './context.js';

const SAMPLES = 300;
const task = (repo: string): TaskData => ({ kind: 'echo', repo, source: 'api', submittedAt: Date.now(), submissionId: 'bench' });

export async function fairSelection(ctx: BenchContext): Promise<ScenarioResult> {
  const backlog = Math.min(ctx.options.queuedTasks, 10_000);
  const redis = await startRedis();
  const client = new Redis(redis.url);
  try {
    // The backlog: one busy repository's tasks at the lowest level, queued as berth queues them.
    const name = uniqueQueue('fair');
    const queue = createTaskQueue({ QUEUE_NAME: name, REDIS_URL: redis.url });
    const capacity = new Capacity(client, queue, { QUEUE_NAME: name, MAX_QUEUED_TASKS: 0, MAX_QUEUED_PER_REPO: 1_000_000, FAIR_START: true });
    for (let i = 0; i < backlog; i += 500) {
      const batch = Array.from({ length: Math.min(500, backlog - i) }, (_, j) => ({
        name: 'echo',
        data: task('octo/busy'),
        opts: { jobId: `b${i + j}`, priority: startPriority(PRIORITY_MIN, i + j + 1) },
      }));
      await queue.addBulk(batch);
      await Promise.all(batch.map((b, j) => capacity.queued('octo/busy', b.opts.jobId, i + j + 1)));
      ctx.progress(i, backlog + 2 * SAMPLES, 'backlog');
    }
    const berthWorker = new Worker(name, null, { connection: redisConnection(redis.url), autorun: false });
    const berthMs: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const started = performance.now();
      const repo = `octo/r${i}`;
      const { rank } = await capacity.admit(repo);
      await queue.add('echo', task(repo), { jobId: `m${i}`, priority: startPriority(0, rank) });
      await capacity.queued(repo, `m${i}`, rank);
      const job = await berthWorker.getNextJob(`t${i}`);
      berthMs.push(performance.now() - started);
      if (job?.id !== `m${i}`) throw new Error(`the fair order took ${job?.id}, not m${i}`);
      await job.moveToCompleted(null, `t${i}`, false);
      ctx.progress(backlog + i, backlog + 2 * SAMPLES, 'berth');
    }
    await berthWorker.close();
    await queue.close();

    const plain = new Queue(uniqueQueue('plain'), { connection: redisConnection(redis.url) });
    const plainWorker = new Worker(plain.name, null, { connection: redisConnection(redis.url), autorun: false });
    const plainMs: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const started = performance.now();
      await plain.add('echo', task(`octo/r${i}`), { jobId: `m${i}` });
      const job = await plainWorker.getNextJob(`t${i}`);
      plainMs.push(performance.now() - started);
      await job!.moveToCompleted(null, `t${i}`, false);
      ctx.progress(backlog + SAMPLES + i, backlog + 2 * SAMPLES, 'baseline');
    }
    await plainWorker.close();
    await plain.close();

    const b = summarize(berthMs);
    const p = summarize(plainMs);
    const added = Math.round((b.median - p.median) * 10) / 10;
    return {
      rows: [
        {
          scenario: 'fair selection',
          measure: `submit → taken by a consumer, ${backlog.toLocaleString('en')} queued: median (p99) ms`,
          berth: `${b.median} (${b.p99})`,
          baseline: `${p.median} (${p.p99}) BullMQ add + take, empty queue, no priority`,
          ratio: `+${added} ms`,
          target: 'added < 2 ms',
          met: added < 2,
        },
      ],
      raw: { backlog, samples: SAMPLES, berthMs: b, plainMs: p },
    };
  } finally {
    client.disconnect();
    await redis.stop();
  }
}
