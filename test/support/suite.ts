import { after, before } from 'node:test';
import { startBackend, type BackendName, type TestBackend } from './backends.js';
import { testEnv, type TestBerth } from './berth.js';
import { ensureWorkerImage } from './image.js';
import { consumerProcesses, type NodeProcess } from './node-process.js';
import { startRedis, type TestRedis } from './redis.js';

/** The real parts a describe's tests share. `redis`, `image` and `backend` are set once its before hook ran. */
export interface RealParts {
  redis: TestRedis;
  image: string;
  backend: TestBackend;
  /** Every berth a test starts goes here: closed, and its queue's workloads removed, afterwards. */
  berths: TestBerth[];
  /** Starts a consumer process; every one is SIGKILLed afterwards. */
  consumer(env: Record<string, string>): NodeProcess;
  /** berth's test env on this Redis, image and backend. */
  env(overrides?: Record<string, string>): Record<string, string>;
}

/**
 * Registers the describe's before hook (the worker image, a real redis-server, the backend) and
 * its after hook (consumer processes, berths, what their queues left on the backend, the backend,
 * Redis), in that order. Call it first in the describe: its after hook then runs before the
 * describe's own, so a berth a test starts belongs in `berths` (closed while Redis still runs).
 */
export function realParts(
  options: { backend?: BackendName; aof?: boolean /** false: the tests start no worker (no image built). */; image?: boolean } = {},
): RealParts {
  const consumers = consumerProcesses();
  const parts = {
    berths: [] as TestBerth[],
    consumer: consumers.start,
    env: (overrides: Record<string, string> = {}) => testEnv(parts.redis, parts.image, { ...parts.backend.env, ...overrides }),
  } as RealParts;
  before(async () => {
    parts.image = options.image === false ? 'berth:unused' : await ensureWorkerImage();
    parts.redis = await startRedis({ aof: options.aof ?? false });
    parts.backend = await startBackend(options.backend ?? 'docker', parts.image);
  });
  after(async () => {
    await consumers.killAll();
    for (const berth of parts.berths) await berth.close().catch(() => {});
    for (const berth of parts.berths) await parts.backend.clean(berth.config.QUEUE_NAME);
    await parts.backend.stop();
    await parts.redis.stop();
  });
  return parts;
}
