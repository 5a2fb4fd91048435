import type { Redis } from 'ioredis';
import { berthKeys } from '../core/keys.js';

export const HEARTBEAT_MS = 2_000;
export const HEARTBEAT_TTL_MS = 10_000;

/**
 * Tells live consumers from dead ones, so a job held by a dead consumer is taken over at once
 * instead of after BullMQ's lock expiry and stall check. A BullMQ lock token is
 * `<workerId>:<n>`; each worker heartbeats a key named after its id whose value is CONSUMER_ID.
 * A worker is dead when its key expired, or when it carries *our* CONSUMER_ID under another
 * worker id: that is our predecessor, killed before we started (CONSUMER_ID is stable per slot).
 */
export class Liveness {
  private timer: NodeJS.Timeout | null = null;
  private readonly keys;

  constructor(
    private readonly redis: Redis,
    queue: string,
    private readonly consumerId: string,
    private readonly workerId: string,
  ) {
    this.keys = berthKeys(queue);
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch(() => {}), HEARTBEAT_MS);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    await this.redis.set(this.keys.consumer(this.workerId), this.consumerId, 'PX', HEARTBEAT_TTL_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.del(this.keys.consumer(this.workerId)).catch(() => {});
  }

  /** Is the BullMQ worker that holds `lockToken` alive? */
  async holderAlive(lockToken: string): Promise<boolean> {
    const holder = lockToken.split(':')[0] ?? '';
    if (holder === this.workerId) return true;
    const consumerId = await this.redis.get(this.keys.consumer(holder));
    if (consumerId === null) return false;
    return consumerId !== this.consumerId;
  }
}
