#!/usr/bin/env node
import closeWithGrace from 'close-with-grace';
import { Redis } from 'ioredis';
import { CancelBook } from '../core/cancel.js';
import { loadConfigOrExit } from '../core/config.js';
import { githubAppFromConfig } from '../github/app.js';
import { ActorRoles } from '../github/permissions.js';
import { PullHeads } from '../github/pull-heads.js';
import { AuditTrail } from '../core/audit.js';
import { GithubReports } from '../github/report-queue.js';
import { ReportTrigger } from '../github/report-trigger.js';
import { ScheduleBook } from '../core/schedules.js';
import { ScheduleTicks } from './schedules/ticks.js';
import { Capacity } from '../core/backpressure.js';
import { TaskIndex } from '../core/task-index.js';
import { createLogger } from '../core/logger.js';
import { createTaskQueue, failFastRedisOptions, redisConnection } from '../core/queue.js';
import { startConsumer, type Consumer } from '../consumer/consumer.js';
import { launcherFromConfig } from '../consumer/launcher/from-config.js';
import { buildApi } from './server.js';
import { startMetricsServer } from '../core/metrics-server.js';
import { BerthMetrics } from '../core/metrics.js';
import { metricSources } from '../consumer/metric-sources.js';

// What `ps`, `pgrep berth` and `top` show.
process.title = 'berth';

/** Composition root of the API process; by default it also runs the consumer in-process. */
const config = loadConfigOrExit();
const logger = createLogger(config.LOG_LEVEL, 'berth');
const launcher = launcherFromConfig(config);
const queue = createTaskQueue(config);
const github = githubAppFromConfig(config);
if (!github) logger.info('no GitHub App credentials: tasks run without a GitHub token or checkout, and nothing is reported to GitHub');
const reports = github
  ? GithubReports.create(config.QUEUE_NAME, config.REDIS_URL, {
      failFast: true,
      onError: (error) => logger.warn({ err: error }, 'a GitHub report could not be queued; the next change of the task reports it'),
    })
  : null;
queue.on('error', (error) => logger.warn({ err: error }, 'queue connection'));
// A separate client that fails fast, so /readyz answers during a Redis outage instead of queueing.
const probeRedis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
probeRedis.on('error', () => {});

// Request handlers fail fast while Redis is down (503, never queued for later); the in-process
// consumer keeps its own patient connections and simply carries on when Redis is back.
// One client for the API's queue and berth's own keys: a delivery's commands share its writes.
const redis = new Redis(config.REDIS_URL, failFastRedisOptions());
const apiQueue = createTaskQueue(config, { client: redis });
// GitHub reports follow the task queue's events through a consumer group, which must exist before
// the first delivery writes one: consumers may start later, or be restarting. Not awaited: the API
// starts during a Redis outage too.
if (reports)
  redis.once('ready', () =>
    ReportTrigger.ensureGroup(redis, apiQueue).catch((error: unknown) =>
      logger.warn({ err: error }, 'could not prepare the GitHub report group; a consumer does at its start'),
    ),
  );
apiQueue.on('error', () => {});
redis.on('error', (error) => logger.warn({ err: error }, 'redis'));
const cancels = new CancelBook(redis, config.QUEUE_NAME, config.KEEP_COMPLETED);
const metrics = new BerthMetrics();
const capacity = new Capacity(redis, apiQueue, config);
const index = new TaskIndex(redis, config.QUEUE_NAME);
const scheduleBook = new ScheduleBook(redis, config.QUEUE_NAME);
const audit = new AuditTrail(redis, config.QUEUE_NAME, config.AUDIT_RETENTION);
// Schedules in, beside the API and webhooks: each tick of the rules file's schedules becomes at
// most one task. Patient connections: the sync waits out a Redis outage instead of failing it.
const ticks = new ScheduleTicks({
  config,
  connection: redisConnection(config.REDIS_URL),
  tasks: queue,
  book: scheduleBook,
  submit: { capacity, index, audit },
  logger,
  metrics,
});
ticks.sync().catch((error: unknown) => logger.error({ err: error }, 'the schedules could not be set up; they run after the next start'));
ticks.start();
const app = await buildApi({
  config,
  metrics: {
    metrics,
    sources: metricSources(queue, launcher, config, probeRedis),
  },
  queue: apiQueue,
  cancels,
  logger,
  github: {
    secrets: [config.GITHUB_WEBHOOK_SECRET, config.GITHUB_WEBHOOK_SECRET_PREVIOUS].filter((s): s is string => !!s),
    rules: config.webhookRules,
    redis,
    roles: github ? new ActorRoles(github) : null,
    heads: github ? new PullHeads(github) : null,
    ...(config.GITHUB_APP_ID ? { appId: config.GITHUB_APP_ID } : {}),
  },
  reports,
  capacity,
  index,
  schedules: { book: scheduleBook, queue: ticks.queue },
  audit,
  probes: [
    {
      name: 'redis',
      check: async () => {
        if (probeRedis.status === 'wait') await probeRedis.connect();
        await probeRedis.ping();
      },
    },
    { name: 'docker', check: () => launcher.ping() },
    { name: 'worker image', check: () => launcher.checkImage(config.WORKER_IMAGE) },
  ],
});
if (!config.GITHUB_WEBHOOK_SECRET) logger.warn('GITHUB_WEBHOOK_SECRET is not set: POST /webhooks/github is off (unsigned deliveries are never accepted)');
let consumer: Consumer | null = null;
if (config.CONSUMER_IN_PROCESS) consumer = await startConsumer({ config, launcher, queue, logger, hostEnv: process.env, github, metrics });
await app.listen({ host: config.HOST, port: config.PORT });
const metricsServer = config.METRICS_PORT > 0 ? await startMetricsServer(metrics, config.METRICS_HOST, config.METRICS_PORT) : null;

closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error');
  else logger.info({ signal }, 'shutting down; running containers are left to the next consumer');
  await app.close();
  await metricsServer?.close();
  await consumer?.close();
  await ticks.close();
  await queue.close();
  await apiQueue.close();
  await reports?.close();
  probeRedis.disconnect();
  redis.disconnect();
});
