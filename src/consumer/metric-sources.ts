import type { Config } from '../core/config.js';
import type { MetricSources } from '../core/metrics.js';
import type { Redis } from 'ioredis';
import { readRedisMemory } from '../core/redis-memory.js';
import { oldestWaitingSeconds } from '../core/backpressure.js';
import type { TaskQueue } from '../core/queue.js';
import type { Launcher } from './launcher/launcher.js';

/** What the scrape-time gauges read: the queue (Redis) and the engine, for one queue. */
export function metricSources(
  queue: TaskQueue,
  launcher: Launcher,
  config: Pick<Config, 'QUEUE_NAME' | 'TASK_TIMEOUT'>,
  /** The client Redis's own gauges are read with (a fail-fast one, so a scrape answers during an outage). */
  redis: Redis,
): MetricSources {
  return {
    jobCounts: () => queue.getJobCounts(),
    runningContainers: async () => (await launcher.listManaged(config.QUEUE_NAME)).filter((c) => c.state === 'running').length,
    consumers: () => queue.getWorkersCount(),
    async oldestWaitingSeconds() {
      // The client is lazy (it connects on its first ping) and fails fast: connect it first.
      if (redis.status === 'wait') await redis.connect().catch(() => {});
      return oldestWaitingSeconds(redis, queue);
    },
    async overdue() {
      const limit = Date.now() - config.TASK_TIMEOUT - 60_000;
      return (await queue.getActive()).filter((job) => (job.processedOn ?? Date.now()) < limit).length;
    },
    redisUp: () =>
      redis.ping().then(
        () => true,
        () => false,
      ),
    redisMemory: () => readRedisMemory(redis),
  };
}
