import { createHash, randomUUID } from 'node:crypto';

/** BullMQ forbids ':' in queue names and all-digit or ':'-containing custom job ids. */
export const QUEUE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function newTaskId(): string {
  return `t-${randomUUID()}`;
}

export function idempotentTaskId(key: string): string {
  return `k-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/**
 * One name per (queue, job, attempt). Docker refuses a second container with the same name, so
 * the name itself is the per-engine guarantee of "at most one container per attempt".
 */
export function containerName(queue: string, jobId: string, attempt: number): string {
  const safe = `${queue}-${jobId}`.replace(/[^a-zA-Z0-9_.-]/g, '_');
  // Docker names are limited only by practicality; keep them readable and bounded.
  const bounded = safe.length > 180 ? `${safe.slice(0, 140)}-${createHash('sha256').update(safe).digest('hex').slice(0, 16)}` : safe;
  return `berth-${bounded}-a${attempt}`;
}
