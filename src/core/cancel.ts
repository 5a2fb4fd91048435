import type { Redis } from 'ioredis';
import { berthKeys } from './keys.js';
import { CANCELLED_REASON } from './task.js';

/** Cancel requests live in Redis so they reach a consumer that is down right now, once it is back. */
export class CancelBook {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    queue: string,
    private readonly keepMs: number,
  ) {
    this.keys = berthKeys(queue);
  }

  /**
   * Records which attempt the cancel was for (`attemptsMade` at the time), so a later retry of the
   * cancelled task (from the API or Bull Board) runs instead of being cancelled again.
   */
  async request(jobId: string, attemptsMade: number, why?: string): Promise<void> {
    await this.redis.set(this.keys.cancel(jobId), why ? `${attemptsMade} ${why}` : String(attemptsMade), 'PX', this.keepMs);
    await this.redis.publish(this.keys.cancelChannel, jobId);
  }

  async isRequested(jobId: string, attemptsMade: number): Promise<boolean> {
    return (await this.reason(jobId, attemptsMade)) !== null;
  }

  /** The failure reason of a cancel requested for this attempt (`cancelled` or `cancelled: why`), or null. */
  async reason(jobId: string, attemptsMade: number): Promise<string | null> {
    const value = await this.redis.get(this.keys.cancel(jobId));
    if (value === null) return null;
    const space = value.indexOf(' ');
    if ((space < 0 ? value : value.slice(0, space)) !== String(attemptsMade)) return null;
    return space < 0 ? CANCELLED_REASON : `${CANCELLED_REASON}: ${value.slice(space + 1)}`;
  }

  async clear(jobId: string): Promise<void> {
    await this.redis.del(this.keys.cancel(jobId));
  }

  async writeTombstone(jobId: string, view: unknown): Promise<void> {
    await this.redis.set(this.keys.cancelledTombstone(jobId), JSON.stringify(view), 'PX', this.keepMs);
  }

  async tombstone<T>(jobId: string): Promise<T | null> {
    const text = await this.redis.get(this.keys.cancelledTombstone(jobId));
    return text ? (JSON.parse(text) as T) : null;
  }

  /** Calls `onCancel(jobId)` for every cancel request published from now on. Returns an unsubscribe. */
  async subscribe(subscriber: Redis, onCancel: (jobId: string) => void): Promise<() => Promise<void>> {
    const channel = this.keys.cancelChannel;
    const listener = (from: string, jobId: string) => {
      if (from === channel) onCancel(jobId);
    };
    subscriber.on('message', listener);
    await subscriber.subscribe(channel);
    return async () => {
      subscriber.off('message', listener);
      await subscriber.unsubscribe(channel).catch(() => {});
    };
  }
}
