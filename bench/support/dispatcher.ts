import { parseConfig, type Config } from '../../src/core/config.js';
import { berthNodeFlags } from '../../test/support/image.js';
import { startNodeProcess, type NodeProcess } from '../../test/support/node-process.js';
import { freePort, type TestRedis } from '../../test/support/redis.js';
import { TEST_TOKEN, testEnv } from '../../test/support/berth.js';

export interface Dispatcher {
  process: NodeProcess;
  config: Config;
  url: string;
  env: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read by each scenario as it needs
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

/**
 * berth as production runs it: the built `dist/api/main.js` (API, and the consumer unless
 * CONSUMER_IN_PROCESS=false) on plain node, logging at the production default level.
 */
export async function startDispatcher(redis: TestRedis, image: string, overrides: Record<string, string> = {}, captureLogs = true): Promise<Dispatcher> {
  const port = await freePort();
  // Caps far above any bench size: the checks are paid for, never hit.
  const env = testEnv(redis, image, {
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    MAX_QUEUED_TASKS: '100000000',
    MAX_QUEUED_PER_REPO: '100000000',
    ...overrides,
  });
  const config = parseConfig(env);
  // With the V8 flags of the image's entrypoint: berth as production runs it.
  const child = startNodeProcess({ ...env, NODE_OPTIONS: berthNodeFlags() }, { entry: 'dist/api/main.js', readyMsg: 'Server listening at', captureLogs });
  await Promise.race([child.ready, child.exited.then(({ code }) => Promise.reject(new Error(`dispatcher exited with ${code} before it was ready`)))]);
  const url = `http://127.0.0.1:${port}`;
  return {
    process: child,
    config,
    url,
    env,
    async api(method, path, body) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    stop: () => child.kill('SIGTERM'),
  };
}
