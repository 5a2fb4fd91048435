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
 * offline queue) and is never sent later (no resend on reconnect). So a request answered 503
 * during an outage can never turn into a task after it.
 */
export function failFastRedisOptions(): { enableOfflineQueue: false; maxRetriesPerRequest: number; autoResendUnfulfilledCommands: false } {
  // No commandTimeout: a timer per command cost ~28 µs of CPU each (measured, docs/benchmarks.md);
  // the API puts one deadline on each request instead (HANDLER_TIMEOUT_MS), so a hung Redis still
  // gets a 503, never a hang. No auto-pipelining: with the webhook intake down to a few commands,
  // its batching machinery cost more than the writes it saved.
  return { enableOfflineQueue: false, maxRetriesPerRequest: 1, autoResendUnfulfilledCommands: false };
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

/**
 * Wakes the consumers blocked on the queue's marker. BullMQ's moveToWait adds the marker only for
 * a job without a priority (moveJobFromActiveToWait-9.lua: pushBackJobWithPriority writes none),
 * and every berth task has one, so a job handed back waited until each blocked worker's fetch
 * timed out: 5 s on every adoption after a restart. The same write BullMQ's own adds make.
 */
export async function wakeConsumers(redis: Redis, queue: Pick<TaskQueue, 'toKey'>): Promise<void> {
  await redis.zadd(queue.toKey('marker'), 0, '0');
}
