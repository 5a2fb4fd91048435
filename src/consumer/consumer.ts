import { Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { redisConnection, type TaskQueue } from '../core/queue.js';
import type { TaskData } from '../core/task.js';
import type { WorkerResultLine } from '../core/worker-protocol.js';
import type { Config } from '../core/config.js';
import { crashPoint } from './crash-points.js';
import type { DockerLauncher } from './launcher/docker.js';
import { ABORT, runAttempt, type AttemptConfig, type AttemptDeps } from './run-attempt.js';

export type ConsumerConfig = AttemptConfig & Pick<Config, 'REDIS_URL' | 'WORKER_CONCURRENCY' | 'GLOBAL_CONCURRENCY'>;

export interface ConsumerDeps {
  config: ConsumerConfig;
  launcher: DockerLauncher;
  queue: TaskQueue;
  logger: Logger;
  hostEnv?: NodeJS.ProcessEnv;
  mintSecrets?: AttemptDeps['mintSecrets'];
}

export interface Consumer {
  worker: Worker<TaskData, WorkerResultLine>;
  /** Planned shutdown: stop taking jobs, hand active ones back, leave their containers running. */
  close(): Promise<void>;
}

/**
 * A BullMQ Worker whose processor runs one container per attempt. The container of a finished
 * attempt is removed only after BullMQ has recorded the outcome ('completed'/'failed' fire after
 * the job moved), so a crash in between leaves evidence, never a lost result.
 */
export async function startConsumer(deps: ConsumerDeps): Promise<Consumer> {
  const { config, launcher, logger } = deps;
  const finished = new Map<string, string>();

  const worker = new Worker<TaskData, WorkerResultLine>(
    config.QUEUE_NAME,
    (job: Job<TaskData>, token?: string, signal?: AbortSignal) =>
      runAttempt(job, token, signal, {
        config,
        launcher,
        logger,
        hostEnv: deps.hostEnv,
        mintSecrets: deps.mintSecrets,
        onAttemptFinished: (jobId, containerId) => finished.set(jobId, containerId),
      }),
    {
      connection: redisConnection(config.REDIS_URL),
      concurrency: config.WORKER_CONCURRENCY,
      autorun: false,
    },
  );

  const removeAfterRecord = (job: Job | undefined) => {
    if (!job?.id) return;
    const containerId = finished.get(job.id);
    if (!containerId) return;
    finished.delete(job.id);
    crashPoint('after-record');
    launcher.remove(containerId).catch((error) => logger.warn({ err: error, containerId }, 'removing a finished container failed; the reconciler will retry'));
  };
  worker.on('completed', (job) => removeAfterRecord(job));
  worker.on('failed', (job) => removeAfterRecord(job));
  worker.on('error', (error) => logger.error({ err: error }, 'consumer error'));

  // Global concurrency lives in Redis and is shared by every consumer; the last one started wins.
  if (config.GLOBAL_CONCURRENCY > 0) await deps.queue.setGlobalConcurrency(config.GLOBAL_CONCURRENCY);
  else await deps.queue.removeGlobalConcurrency();
  void worker.run().catch((error) => logger.error({ err: error }, 'consumer stopped'));
  logger.info({ queue: config.QUEUE_NAME, concurrency: config.WORKER_CONCURRENCY, globalConcurrency: config.GLOBAL_CONCURRENCY || null }, 'consumer started');

  return {
    worker,
    async close() {
      const closing = worker.close();
      worker.cancelAllJobs(ABORT.shutdown);
      await closing;
    },
  };
}
