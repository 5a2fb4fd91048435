import { Queue, type ConnectionOptions } from 'bullmq';
import type { Config } from './config.js';
import type { TaskData } from './task.js';
import type { WorkerResultLine } from './worker-protocol.js';

export type TaskQueue = Queue<TaskData, WorkerResultLine | null, string>;

/** Redis options BullMQ needs for blocking consumers: never give up on a command while Redis restarts. */
export function redisConnection(url: string): ConnectionOptions {
  return { url, maxRetriesPerRequest: null, enableOfflineQueue: true } as ConnectionOptions;
}

export function createTaskQueue(config: Pick<Config, 'QUEUE_NAME' | 'REDIS_URL'>): TaskQueue {
  return new Queue(config.QUEUE_NAME, { connection: redisConnection(config.REDIS_URL) });
}
