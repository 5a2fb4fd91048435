import type { Redis } from 'ioredis';
import { berthKeys } from '../core/keys.js';

/**
 * The container name makes "one container per attempt" true on one engine (Docker refuses a
 * second name). Across engines only Redis can decide: the first engine to SET NX an attempt's
 * fence owns it; any other engine must leave that attempt alone.
 */
export class AttemptFence {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    queue: string,
    private readonly keepMs: number,
  ) {
    this.keys = berthKeys(queue);
  }

  /**
   * Claims the attempt for `engineId`. `owner` is the engine that owns it (maybe another one);
   * `fresh` says this call made the claim, so no consumer anywhere has launched this attempt yet
   * (unless Redis lost the key, which the create's 409 still catches).
   */
  async claim(jobId: string, attempt: number, engineId: string): Promise<{ owner: string; fresh: boolean }> {
    const key = this.keys.fence(jobId, attempt);
    const set = await this.redis.set(key, engineId, 'PX', this.keepMs, 'NX');
    if (set === 'OK') return { owner: engineId, fresh: true };
    return { owner: (await this.redis.get(key)) ?? engineId, fresh: false };
  }
}
