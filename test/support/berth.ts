import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { CancelBook } from '../../src/core/cancel.js';
import { BerthMetrics } from '../../src/core/metrics.js';
import { githubAppFromConfig } from '../../src/github/app.js';
import { ActorRoles } from '../../src/github/permissions.js';
import { PullHeads } from '../../src/github/pull-heads.js';
import { AuditTrail } from '../../src/core/audit.js';
import { ReportTrigger } from '../../src/github/report-trigger.js';
import { GithubReports } from '../../src/github/report-queue.js';
import { Capacity } from '../../src/core/backpressure.js';
import { TaskIndex } from '../../src/core/task-index.js';
import { metricSources } from '../../src/consumer/metric-sources.js';
import { buildApi } from '../../src/api/server.js';
import { parseConfig, type Config } from '../../src/core/config.js';
import { createTaskQueue, type TaskQueue } from '../../src/core/queue.js';
import { startConsumer, type Consumer } from '../../src/consumer/consumer.js';
import { launcherFromConfig } from '../../src/consumer/launcher/from-config.js';
import type { Launcher } from '../../src/consumer/launcher/launcher.js';
import { removeQueueContainers } from './docker.js';
import { ROOT } from './image.js';
import { freePort, type TestRedis } from './redis.js';
import { startNodeProcess, type NodeProcess } from './node-process.js';

/**
 * The fixture agents, bind-mounted read-only into workers that run as uid 10001. A checkout may
 * live where that uid cannot read (a 0700 CI folder), so they are copied to a world-readable place.
 */
export const AGENTS_DIR = (() => {
  const target = join(tmpdir(), 'berth-test-agents');
  mkdirSync(target, { recursive: true });
  chmodSync(target, 0o755);
  for (const file of readdirSync(join(ROOT, 'test/fixtures/agents'))) {
    copyFileSync(join(ROOT, 'test/fixtures/agents', file), join(target, file));
    chmodSync(join(target, file), 0o644);
  }
  return target;
})();
export const TEST_TOKEN = 'test-token-0123456789abcdef0123';

export function uniqueQueue(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Environment for a berth under test: small limits, the fixture agents bind-mounted read-only. */
export function testEnv(redis: TestRedis, image: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    API_TOKEN: TEST_TOKEN,
    WORKER_IMAGE: image,
    QUEUE_NAME: uniqueQueue(),
    WORKER_BINDS: `${AGENTS_DIR}:/agents:ro`,
    WORKER_NETWORK: 'none',
    // No network and no proxy unless a test asks for one (EGRESS=proxy starts a proxy container).
    EGRESS: 'none',
    WORKER_MEMORY: '256m',
    WORKER_CPUS: '1',
    WORKER_STOP_GRACE: '2s',
    WORKER_CONCURRENCY: '4',
    TASK_BACKOFF: '200ms',
    TASK_ATTEMPTS: '3',
    TASK_TIMEOUT: '2m',
    LOG_LEVEL: process.env.BERTH_TEST_LOG_LEVEL ?? 'silent',
    AGENT_COMMAND_ECHO: 'node /agents/echo.mjs',
    AGENT_COMMAND_EXIT: 'node /agents/exit.mjs',
    AGENT_COMMAND_SLEEP: 'node /agents/sleep.mjs',
    AGENT_COMMAND_OOM: 'node /agents/oom.mjs',
    ...overrides,
  };
}

export interface TestBerth {
  config: Config;
  url: string;
  queue: TaskQueue;
  app: FastifyInstance;
  consumer: Consumer | null;
  launcher: Launcher;
  metrics: BerthMetrics;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  waitFor(id: string, states: string[], timeoutMs?: number): Promise<any>;
  close(): Promise<void>;
}

/** API and consumer in this process, against real Redis and the real Docker engine. */
export interface StartOptions {
  consumer?: boolean;
  /** Receives every log line (JSON) of API and consumer, at LOG_LEVEL or `debug` when given. */
  logSink?: (line: string) => void;
  /** berth's own environment, where WORKER_ENV values are read from. */
  hostEnv?: Record<string, string>;
}

export async function startBerth(env: Record<string, string>, options: StartOptions = {}): Promise<TestBerth> {
  const config = parseConfig(env);
  const logger = options.logSink ? pino({ level: 'debug' }, { write: options.logSink }) : pino({ level: config.LOG_LEVEL });
  // The backend and engine the env names (a second engine, a swarm), as the composition roots do.
  const launcher = launcherFromConfig(config);
  const queue = createTaskQueue(config);
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const metrics = new BerthMetrics({ defaultMetrics: false });
  redis.on('error', () => {});
  queue.on('error', () => {});
  const cancels = new CancelBook(redis, config.QUEUE_NAME, config.KEEP_COMPLETED);
  // As the composition roots do: GitHub only when the env names an App.
  const github = githubAppFromConfig(config);
  const reports = github ? GithubReports.create(config.QUEUE_NAME, config.REDIS_URL) : null;
  // As the API's composition root does: the report group exists before the first delivery.
  if (reports) await ReportTrigger.ensureGroup(redis, queue);
  const app = await buildApi({
    config,
    queue,
    cancels,
    reports,
    capacity: new Capacity(redis, queue, config),
    index: new TaskIndex(redis, config.QUEUE_NAME),
    audit: new AuditTrail(redis, config.QUEUE_NAME, config.AUDIT_RETENTION),
    logger,
    probes: [{ name: 'docker', check: () => launcher.ping() }],
    metrics: {
      metrics,
      sources: metricSources(queue, launcher, config, redis),
    },
    github: {
      secrets: [config.GITHUB_WEBHOOK_SECRET, config.GITHUB_WEBHOOK_SECRET_PREVIOUS].filter((v): v is string => !!v),
      rules: config.webhookRules,
      redis,
      roles: github ? new ActorRoles(github) : null,
      heads: github ? new PullHeads(github) : null,
      ...(config.GITHUB_APP_ID ? { appId: config.GITHUB_APP_ID } : {}),
    },
  });
  const consumer =
    options.consumer === false ? null : await startConsumer({ config, launcher, queue, logger, hostEnv: options.hostEnv ?? {}, github, metrics });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });

  const api: TestBerth['api'] = async (method, path, body, headers = {}) => {
    const response = await fetch(`${address}${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep text
    }
    return { status: response.status, body: parsed };
  };

  return {
    config,
    url: address,
    queue,
    app,
    consumer,
    launcher,
    metrics,
    api,
    async waitFor(id, states, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < deadline) {
        last = (await api('GET', `/api/tasks/${id}`)).body;
        if (states.includes(last?.state)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`task ${id} not in ${states.join('|')} after ${timeoutMs}ms; last: ${JSON.stringify(last)}`);
    },
    async close() {
      await app.close();
      await consumer?.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      await reports?.queue.obliterate({ force: true }).catch(() => {});
      await reports?.close();
      redis.disconnect();
      for (const workload of await launcher.listManaged(config.QUEUE_NAME).catch(() => []))
        await launcher
          .handle(workload.id)
          .remove()
          .catch(() => {});
    },
  };
}

/** A real berth API process (src/api/main.ts: API and consumer in one, as production runs it). */
export interface ApiProcess {
  process: NodeProcess;
  url: string;
  queue: string;
  /** A call with the API token; `ms` is how long berth took to answer. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; retryAfter: string | null; body: any; ms: number }>;
  /** SIGTERM, then the queue's containers removed. */
  stop(): Promise<void>;
}

export async function startApiProcess(redis: TestRedis, image: string, overrides: Record<string, string> = {}): Promise<ApiProcess> {
  const port = await freePort();
  const env = testEnv(redis, image, { PORT: String(port), ...overrides });
  const url = `http://127.0.0.1:${port}`;
  const child = startNodeProcess(env, { entry: 'src/api/main.ts', readyMsg: 'Server listening' });
  await child.ready;
  return {
    process: child,
    url,
    queue: env.QUEUE_NAME!,
    async call(method, path, body) {
      const started = Date.now();
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(15_000),
      });
      return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as any, ms: Date.now() - started };
    },
    async stop() {
      await child.kill('SIGTERM');
      await removeQueueContainers(env.QUEUE_NAME!);
    },
  };
}
