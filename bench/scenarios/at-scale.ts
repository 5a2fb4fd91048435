// 100k queued tasks: how long enqueueing them takes through POST /api/tasks (autocannon), what
// each costs in Redis, then how fast the first page of GET /api/tasks and the board's queue view
// answer with all of them in Redis. Baselines from the same run: a bare Fastify route doing
// BullMQ Queue.add with berth's job options (bench/baselines/bare-server.mjs) for the enqueue
// and memory, and BullMQ's own getJobCounts + getJobs called in-process for the reads.
import autocannon from 'autocannon';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startNodeProcess } from '../../test/support/node-process.js';
import { freePort, startRedis } from '../../test/support/redis.js';
import { TEST_TOKEN, uniqueQueue } from '../../test/support/berth.js';
import { startDispatcher } from '../support/dispatcher.js';
import { ratio, type Row, type ScenarioResult } from '../support/report.js';
import { summarize } from '../support/stats.js';
import type { BenchContext } from './context.js';

const CONNECTIONS = 32;
const READ_SAMPLES = 30;

async function enqueue(url: string, path: string, count: number, headers: Record<string, string>, onProgress: (done: number) => void) {
  let n = 0;
  let done = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: CONNECTIONS,
        amount: count,
        requests: [
          {
            method: 'POST',
            path,
            setupRequest: (request) => {
              request.headers = { 'content-type': 'application/json', ...headers };
              request.body = JSON.stringify({ kind: 'echo', repo: `bench/scale-${n % 100}`, prompt: `task ${++n}: summarise the open issues` });
              return request;
            },
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', () => ++done % 1000 === 0 && onProgress(done));
  });
  return { seconds: result.duration, perSecond: Math.round(result.requests.average), non2xx: result.non2xx, errors: result.errors };
}

async function timeReads(read: () => Promise<unknown>): Promise<ReturnType<typeof summarize>> {
  await read(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < READ_SAMPLES; i++) {
    const started = performance.now();
    await read();
    samples.push(performance.now() - started);
  }
  return summarize(samples);
}

const usedMemory = async (redis: Redis) => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);

export async function atScale(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.options.queuedTasks;
  const redis = await startRedis();
  const client = new Redis(redis.url, { maxRetriesPerRequest: null });
  const rows: Row[] = [];
  const raw: Record<string, unknown> = { tasks: count, connections: CONNECTIONS };
  try {
    // Baseline first, into its own queue, then flushed so berth starts from the same empty Redis.
    const port = await freePort();
    const bare = startNodeProcess(
      { REDIS_URL: redis.url, PORT: String(port), WEBHOOK_SECRET: 'unused', QUEUE_NAME: uniqueQueue('bare') },
      { entry: 'bench/baselines/bare-server.mjs', readyMsg: 'listening', captureLogs: false },
    );
    await bare.ready;
    let before = await usedMemory(client);
    const baseEnqueue = await enqueue(`http://127.0.0.1:${port}`, '/tasks', count, {}, (done) => ctx.progress(done, count, 'baseline enqueue'));
    const baseBytes = Math.round((await usedMemory(client)) - before) / count;
    await bare.kill('SIGTERM');
    await client.flushall();

    const berth = await startDispatcher(redis, 'berth:unused', { CONSUMER_IN_PROCESS: 'false' }, false);
    try {
      before = await usedMemory(client);
      const ours = await enqueue(berth.url, '/api/tasks', count, { authorization: `Bearer ${TEST_TOKEN}` }, (done) =>
        ctx.progress(done, count, 'berth enqueue'),
      );
      const berthBytes = Math.round((await usedMemory(client)) - before) / count;
      raw.enqueue = { berth: ours, baseline: baseEnqueue };
      raw.redisBytesPerTask = { berth: berthBytes, baseline: baseBytes };
      rows.push(
        {
          scenario: `${count / 1000}k queued`,
          measure: `time to enqueue, ${CONNECTIONS} connections`,
          berth: `${ours.seconds.toFixed(1)} s (${ours.perSecond}/s)`,
          baseline: `${baseEnqueue.seconds.toFixed(1)} s (Fastify + Queue.add)`,
          ratio: ratio(ours.seconds, baseEnqueue.seconds),
          target: 'every answer 2xx',
          met: ours.non2xx + ours.errors === 0,
        },
        {
          scenario: `${count / 1000}k queued`,
          measure: 'Redis memory per task',
          berth: `${Math.round(berthBytes)} B`,
          baseline: `${Math.round(baseBytes)} B (Queue.add)`,
          ratio: ratio(berthBytes, baseBytes),
          target: '',
          met: null,
        },
      );

      const queue = new Queue(berth.config.QUEUE_NAME, { connection: client });
      const counts = await queue.getJobCounts();
      // Waiting, or prioritized by the fair start order (FAIR_START): not started either way.
      if ((counts.waiting ?? 0) + (counts.prioritized ?? 0) < count) throw new Error(`expected ${count} waiting, found ${JSON.stringify(counts)}`);
      const get = (path: string) => async () => {
        const response = await fetch(`${berth.url}${path}`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
        if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
        return response.arrayBuffer();
      };
      const all = ['active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed'] as const;
      const reads = {
        listFirstPage: await timeReads(get('/api/tasks')),
        listWaiting: await timeReads(get('/api/tasks?state=waiting')),
        listRepo: await timeReads(get('/api/tasks?repo=bench/scale-7')),
        listRepoNone: await timeReads(get('/api/tasks?repo=nobody/nothing')),
        board: await timeReads(get(`/admin/queues/api/queues?activeQueue=${berth.config.QUEUE_NAME}&status=latest&page=1&jobsPerPage=10`)),
        bullmqFirstPage: await timeReads(() => queue.getJobs([...all], 0, 49)),
        bullmqBoard: await timeReads(() => Promise.all([queue.getJobCounts(), queue.getJobs([...all], 0, 9)])),
      };
      raw.readsMs = reads;
      await queue.close();
      const ms = (s: ReturnType<typeof summarize>) => `${s.median} / ${s.p99} ms`;
      rows.push(
        {
          scenario: `${count / 1000}k queued`,
          measure: 'GET /api/tasks first page (50), median / p99',
          berth: ms(reads.listFirstPage),
          baseline: `${ms(reads.bullmqFirstPage)} (getJobs in-process)`,
          ratio: ratio(reads.listFirstPage.median, reads.bullmqFirstPage.median),
          target: '< 500 ms',
          met: reads.listFirstPage.p99 < 500,
        },
        {
          scenario: `${count / 1000}k queued`,
          measure: 'GET /api/tasks?state=waiting',
          berth: ms(reads.listWaiting),
          baseline: '',
          ratio: '',
          target: '< 500 ms',
          met: reads.listWaiting.p99 < 500,
        },
        {
          scenario: `${count / 1000}k queued`,
          measure: 'GET /api/tasks?repo= (1% of the tasks; the index)',
          berth: ms(reads.listRepo),
          baseline: `${ms(reads.listFirstPage)} (the unfiltered first page)`,
          ratio: ratio(reads.listRepo.median, reads.listFirstPage.median),
          target: '≤ 2x the unfiltered page',
          met: reads.listRepo.median <= 2 * reads.listFirstPage.median,
        },
        {
          scenario: `${count / 1000}k queued`,
          measure: 'GET /api/tasks?repo= matching nothing',
          berth: ms(reads.listRepoNone),
          baseline: '',
          ratio: '',
          target: '< 10 ms',
          met: reads.listRepoNone.median < 10,
        },
        {
          scenario: `${count / 1000}k queued`,
          measure: 'board queue view (api/queues)',
          berth: ms(reads.board),
          baseline: `${ms(reads.bullmqBoard)} (getJobCounts + getJobs in-process)`,
          ratio: ratio(reads.board.median, reads.bullmqBoard.median),
          target: '< 500 ms',
          met: reads.board.p99 < 500,
        },
      );
    } finally {
      await berth.stop();
    }
  } finally {
    client.disconnect();
    await redis.stop();
  }
  return { rows, raw };
}
