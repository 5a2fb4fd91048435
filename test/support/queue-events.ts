import { Redis } from 'ioredis';

/**
 * Counts BullMQ's own events for a job from the queue's event stream in Redis: the record of
 * how many times it really completed or failed, independent of berth's API.
 */
export async function jobEventCounts(redisUrl: string, queue: string, jobId: string): Promise<Record<string, number>> {
  const redis = new Redis(redisUrl);
  try {
    const entries = (await redis.xrange(`bull:${queue}:events`, '-', '+')) as Array<[string, string[]]>;
    const counts: Record<string, number> = {};
    for (const [, fields] of entries) {
      const event: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) event[fields[i]!] = fields[i + 1]!;
      if (event.jobId === jobId && event.event) counts[event.event] = (counts[event.event] ?? 0) + 1;
    }
    return counts;
  } finally {
    redis.disconnect();
  }
}
