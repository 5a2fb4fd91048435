import type { Config } from '../core/config.js';
import type { MetricSources } from '../core/metrics.js';
import type { Redis } from 'ioredis';
import { readRedisMemory } from '../core/redis-memory.js';
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
      // Both ends of the waiting list: whichever order BullMQ keeps it in, the oldest is at one of them.
      const ends = [...(await queue.getJobs(['waiting', 'prioritized'], 0, 0, true)), ...(await queue.getJobs(['waiting', 'prioritized'], 0, 0, false))];
      const oldest = Math.min(...ends.filter(Boolean).map((job) => job.timestamp));
      return Number.isFinite(oldest) ? Math.max(0, (Date.now() - oldest) / 1000) : 0;
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
