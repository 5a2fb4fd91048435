import { Queue, type ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { TaskData } from './task.js';
import type { WorkerResultLine } from './worker-protocol.js';

export type TaskQueue = Queue<TaskData, WorkerResultLine | null, string>;

/** Redis options BullMQ needs for blocking consumers: never give up on a command while Redis restarts. */
export function redisConnection(url: string): ConnectionOptions {
  return { url, maxRetriesPerRequest: null, enableOfflineQueue: true } as ConnectionOptions;
}

/**
 * Redis options for request handlers: while Redis is unreachable a command fails at once (no
 * offline queue) or within `commandTimeout`, and is never sent later (no resend on reconnect). So
 * a request answered 503 during an outage can never turn into a task after it.
 */
export function failFastRedisOptions(): { enableOfflineQueue: false; maxRetriesPerRequest: number; autoResendUnfulfilledCommands: false; commandTimeout: number; enableAutoPipelining: true } {
  // Auto-pipelining: commands issued in the same tick (several requests' and one request's
  // concurrent ones) leave in one socket write; each write is a syscall on the ingest hot path.
  return { enableOfflineQueue: false, maxRetriesPerRequest: 1, autoResendUnfulfilledCommands: false, commandTimeout: 2_000, enableAutoPipelining: true };
}

/** `client`: an ioredis instance to share (the API's fail-fast one), else a connection of its own. */
export function createTaskQueue(config: Pick<Config, 'QUEUE_NAME' | 'REDIS_URL'>, options: { client?: Redis } = {}): TaskQueue {
  return new Queue(config.QUEUE_NAME, { connection: options.client ?? redisConnection(config.REDIS_URL) });
}

/** Errors that mean "Redis is unreachable right now" (the API answers them with 503, not 500). */
export function isRedisUnavailable(error: unknown): boolean {
  const e = error as { name?: string; code?: string; message?: string } | null;
  if (!e) return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(e.code)) return true;
  return /Stream isn't writeable|enableOfflineQueue|Connection is closed|Command timed out|Reached the max retries|connect ECONNREFUSED/i.test(e.message ?? '');
}
