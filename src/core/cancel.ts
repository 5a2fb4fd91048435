import type { Redis } from 'ioredis';
import { berthKeys } from './keys.js';
import type { Failure } from './failure.js';

/** What a cancel says: by a person, or superseded by a push; `detail` says who or which push. */
export type CancelFailure = Failure & { cause: 'cancelled' | 'superseded' };

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
  async request(jobId: string, attemptsMade: number, cancel: CancelFailure = { cause: 'cancelled' }): Promise<void> {
    await this.redis.set(this.keys.cancel(jobId), JSON.stringify({ attemptsMade, ...cancel }), 'PX', this.keepMs);
    await this.redis.publish(this.keys.cancelChannel, jobId);
  }

  async isRequested(jobId: string, attemptsMade: number): Promise<boolean> {
    return (await this.reason(jobId, attemptsMade)) !== null;
  }

  /** The cancel requested for this attempt, as the failure it ends the task with; null when none was. */
  async reason(jobId: string, attemptsMade: number): Promise<CancelFailure | null> {
    const value = await this.redis.get(this.keys.cancel(jobId));
    if (value === null) return null;
    const { attemptsMade: forAttempt, cause, detail } = JSON.parse(value) as { attemptsMade: number } & CancelFailure;
    if (forAttempt !== attemptsMade) return null;
    return { cause, ...(detail ? { detail } : {}) };
  }

  async clear(jobId: string): Promise<void> {
    await this.redis.del(this.keys.cancel(jobId));
  }

  async writeTombstone(jobId: string, view: unknown): Promise<void> {
    await this.redis.set(this.keys.cancelledTombstone(jobId), JSON.stringify(view), 'PX', this.keepMs);
  }

  async dropTombstone(jobId: string): Promise<void> {
    await this.redis.del(this.keys.cancelledTombstone(jobId));
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
