// A plain BullMQ worker whose jobs never finish, as the recovery baseline: what a consumer gets
// from BullMQ alone (lock expiry + stalled check) after its predecessor is SIGKILLed.
// Env: REDIS_URL, QUEUE_NAME, CONCURRENCY, LOCK_DURATION_MS, STALLED_INTERVAL_MS, MAX_STALLED_COUNT.
// Prints {"msg":"ready"} once connected and {"msg":"took","jobId":...} for every job it is given.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const worker = new Worker(
  process.env.QUEUE_NAME,
  async (job) => {
    console.log(JSON.stringify({ msg: 'took', jobId: job.id, time: Date.now() }));
    await new Promise(() => {});
  },
  {
    connection: new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null }),
    concurrency: Number(process.env.CONCURRENCY),
    lockDuration: Number(process.env.LOCK_DURATION_MS),
    stalledInterval: Number(process.env.STALLED_INTERVAL_MS),
    maxStalledCount: Number(process.env.MAX_STALLED_COUNT),
  },
);
await worker.waitUntilReady();
console.log(JSON.stringify({ msg: 'ready', time: Date.now() }));
