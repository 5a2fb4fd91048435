#!/usr/bin/env node
import closeWithGrace from 'close-with-grace';
import { loadConfigOrExit } from '../core/config.js';
import { githubAppFromConfig } from '../github/app.js';
import { createLogger } from '../core/logger.js';
import { createTaskQueue } from '../core/queue.js';
import { startConsumer } from './consumer.js';
import { DockerLauncher, dockerClient } from './launcher/docker.js';

/** Composition root of a consumer-only process (CONSUMER_IN_PROCESS=false on the API). */
const config = loadConfigOrExit();
const logger = createLogger(config.LOG_LEVEL, 'berth-consumer');
const launcher = new DockerLauncher(dockerClient(config));
const queue = createTaskQueue(config);
const github = githubAppFromConfig(config);
if (!github) logger.info('no GitHub App credentials: tasks run without a GitHub token or checkout, and nothing is reported to GitHub');
queue.on('error', (error) => logger.warn({ err: error }, 'queue connection'));
const consumer = await startConsumer({ config, launcher, queue, logger, hostEnv: process.env, github });

closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error');
  else logger.info({ signal }, 'shutting down; running containers are left to the next consumer');
  await consumer.close();
  await queue.close();
});
