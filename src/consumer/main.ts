#!/usr/bin/env node
import closeWithGrace from 'close-with-grace';
import { loadConfigOrExit } from '../core/config.js';
import { githubAppFromConfig } from '../github/app.js';
import { createLogger } from '../core/logger.js';
import { createTaskQueue, failFastRedisOptions } from '../core/queue.js';
import { Redis } from 'ioredis';
import { BerthMetrics } from '../core/metrics.js';
import { startMetricsServer } from '../core/metrics-server.js';
import { metricSources } from './metric-sources.js';
import { startConsumer } from './consumer.js';
import { launcherFromConfig } from './launcher/from-config.js';

// What `ps`, `pgrep berth-consumer` and `top` show.
process.title = 'berth-consumer';

/** Composition root of a consumer-only process (CONSUMER_IN_PROCESS=false on the API). */
const config = loadConfigOrExit();
const logger = createLogger(config.LOG_LEVEL, 'berth-consumer');
const launcher = launcherFromConfig(config);
const queue = createTaskQueue(config);
const github = githubAppFromConfig(config);
if (!github) logger.info('no GitHub App credentials: tasks run without a GitHub token or checkout, and nothing is reported to GitHub');
queue.on('error', (error) => logger.warn({ err: error }, 'queue connection'));
const metrics = new BerthMetrics();
const probeRedis = new Redis(config.REDIS_URL, { ...failFastRedisOptions(), lazyConnect: true });
probeRedis.on('error', () => {});
metrics.observe(metricSources(queue, launcher, config, probeRedis));
const consumer = await startConsumer({ config, launcher, queue, logger, hostEnv: process.env, github, metrics });
// /metrics as the API serves it: without a token on METRICS_PORT, else on HOST:PORT behind the API
// token. A port already taken costs the metrics, never the consumer's work.
const [metricsHost, metricsPort, metricsToken] =
  config.METRICS_PORT > 0 ? [config.METRICS_HOST, config.METRICS_PORT, undefined] : [config.HOST, config.PORT, config.API_TOKEN];
const metricsServer = await startMetricsServer(metrics, metricsHost, metricsPort, metricsToken).catch((error: Error) => {
  logger.error({ err: error }, `could not serve /metrics on ${metricsHost}:${metricsPort}; set PORT or METRICS_PORT to a free port`);
  return null;
});
if (metricsServer) logger.info({ host: metricsHost, port: metricsPort, token: metricsToken ? 'API_TOKEN' : 'none' }, 'serving /metrics');

closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error');
  else logger.info({ signal }, 'shutting down; running containers are left to the next consumer');
  await metricsServer?.close();
  await consumer.close();
  await queue.close();
  probeRedis.disconnect();
});
