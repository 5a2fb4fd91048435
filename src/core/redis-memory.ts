import type { Redis } from 'ioredis';

/** Redis's memory as INFO reports it: what it holds, and the cap (0: none). */
export interface RedisMemory {
  usedBytes: number;
  maxBytes: number;
}

export async function readRedisMemory(redis: Pick<Redis, 'info'>): Promise<RedisMemory> {
  const info = await redis.info('memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { usedBytes: field('used_memory'), maxBytes: field('maxmemory') };
}

/**
 * Redis refused a write because it reached maxmemory (noeviction, as berth requires): nothing was
 * written. Redis's own words, `OOM command not allowed when used memory > 'maxmemory'`.
 */
export function isRedisFull(error: unknown): boolean {
  return /^OOM command not allowed/.test((error as { message?: string } | null)?.message ?? '');
}

/**
 * The most a finished task can keep in Redis: its job log (lines × bytes per line), its result, and
 * room for its data and BullMQ's own fields. What doctor weighs maxmemory against.
 */
export function worstCaseTaskBytes(logLines: number, lineBytes: number, resultBytes: number): number {
  return logLines * (lineBytes + 16) + resultBytes + 64 * 1024;
}
