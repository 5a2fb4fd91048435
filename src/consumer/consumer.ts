import { AuditTrail } from '../core/audit.js';
import { isCancel, untypedFailure } from '../core/failure.js';
import type { ContainerProgress } from '../core/task-view.js';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CancelBook } from '../core/cancel.js';
import type { BerthMetrics } from '../core/metrics.js';
import { redisConnection, type TaskQueue } from '../core/queue.js';
import type { TaskData } from '../core/task.js';
import type { WorkerResultLine } from '../core/worker-protocol.js';
import { tokenPermissionsFor, type Config } from '../core/config.js';
import { crashPoint } from '../core/crash-points.js';
import type { Launcher } from './launcher/launcher.js';
import { AttemptFence } from './fence.js';
import { HEARTBEAT_TTL_MS, Liveness } from './liveness.js';
import { reconcileOnce, type ReconcileReport } from './reconcile.js';
import { ABORT, runAttempt, type AttemptConfig } from './run-attempt.js';
import type { GithubApp } from '../github/app.js';
import { GithubRecord } from '../github/record.js';
import { GithubReports } from '../github/report-queue.js';
import { ReportTrigger } from '../github/report-trigger.js';
import { GithubLaunch } from './github-launch.js';
import { startReporter, type ReporterConfig } from '../github/reporter.js';
import { EngineHealth } from './engine-health.js';
import { DeliveryRecovery } from './delivery-recovery.js';
import { GITHUB_REDELIVERY_WINDOW_MS } from '../core/keys.js';
import { leftQueue } from '../core/backpressure.js';
import { RunningSlots } from '../core/running-slots.js';
import { SpendBudgets, type SpendBudgetConfig } from '../core/spend-budgets.js';
import { EgressGate, type EgressGateConfig } from './egress-gate.js';

export type ConsumerConfig = AttemptConfig &
  SpendBudgetConfig &
  ReporterConfig &
  EgressGateConfig &
  Pick<
    Config,
    | 'AUDIT_RETENTION'
    | 'WEBHOOK_REDELIVERY'
    | 'WEBHOOK_REDELIVERY_INTERVAL'
    | 'GITHUB_WEBHOOK_SECRET'
    | 'REDIS_URL'
    | 'WORKER_CONCURRENCY'
    | 'GLOBAL_CONCURRENCY'
    | 'MAX_RUNNING_PER_REPO'
    | 'MAX_RUNNING_PER_INSTALLATION'
    | 'KEEP_COMPLETED'
    | 'LOCK_DURATION'
    | 'STALLED_INTERVAL'
    | 'MAX_STALLED_COUNT'
    | 'RECONCILE_INTERVAL'
    | 'webhookRules'
    | 'tokenPermissions'
  >;

export interface ConsumerDeps {
  config: ConsumerConfig;
  launcher: Launcher;
  queue: TaskQueue;
  logger: Logger;
  hostEnv?: NodeJS.ProcessEnv;
  /** berth's GitHub App: pins and mints at launch, and reports back. Null: no GitHub at all. */
  github?: GithubApp | null;
  metrics?: BerthMetrics;
}

export interface Consumer {
  worker: Worker<TaskData, WorkerResultLine>;
  /** Runs one reconcile pass now (it also runs at start and every RECONCILE_INTERVAL). */
  reconcile(): Promise<ReconcileReport>;
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
  // Before anything else: a consumer must not start workers on a network that reaches Redis or berth.
  await launcher.prepareNetwork(config.WORKER_NETWORK, config.REDIS_URL);
  const engine = new EngineHealth(() => launcher.ping(), logger, deps.metrics);
  engine.start();
  const finished = new Map<string, string>();
  let closing = false;
  // berth's own keys need a plain client; pub/sub needs one of its own.
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const subscriber = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  redis.on('error', (error) => logger.warn({ err: error }, 'redis'));
  // After Redis comes back, every consumer's heartbeat key may have expired meanwhile. Takeovers wait
  // one heartbeat lifetime after a *re*connect, so live consumers can beat again before anyone
  // judges them dead (the first connect needs no grace: a dead predecessor is dead).
  let connectedOnce = false;
  let reconnectedAt = 0;
  redis.on('ready', () => {
    if (connectedOnce) reconnectedAt = Date.now();
    connectedOnce = true;
  });
  subscriber.on('error', () => {});
  const cancels = new CancelBook(redis, config.QUEUE_NAME, config.KEEP_COMPLETED);
  const audit = new AuditTrail(redis, config.QUEUE_NAME, config.AUDIT_RETENTION);
  const fence = new AttemptFence(redis, config.QUEUE_NAME, config.KEEP_COMPLETED + config.TASK_TIMEOUT);
  const record = new GithubRecord(redis, config.QUEUE_NAME, config.KEEP_COMPLETED + config.TASK_TIMEOUT);
  const github = deps.github ?? null;
  const launch = github
    ? new GithubLaunch(github, record, { trust: config.webhookRules.trust, permissions: (kind) => tokenPermissionsFor(config.tokenPermissions, kind) })
    : null;
  const reports = github ? GithubReports.create(config.QUEUE_NAME, config.REDIS_URL) : null;
  const reporter = github
    ? startReporter({ config, app: github, tasks: deps.queue, record, cancels, logger, metrics: deps.metrics, trust: config.webhookRules.trust, audit })
    : null;
  // Every change of a task's state, whoever made it, becomes its GitHub report here (the read blocks: a connection of its own).
  const trigger = reports
    ? new ReportTrigger({
        redis: new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }),
        queue: deps.queue,
        reports,
        cancels,
        consumer: config.CONSUMER_ID,
        logger,
      })
    : null;
  trigger?.start();
  const recovery =
    github && config.WEBHOOK_REDELIVERY && config.GITHUB_WEBHOOK_SECRET
      ? new DeliveryRecovery(github, redis, config.QUEUE_NAME, {
          intervalMs: config.WEBHOOK_REDELIVERY_INTERVAL,
          logger,
          metrics: deps.metrics,
          // Never past KEEP_COMPLETED: a task removed by age must not read as a delivery never received.
          windowMs: Math.min(GITHUB_REDELIVERY_WINDOW_MS, config.KEEP_COMPLETED),
          taskExists: async (taskId) => !!(await deps.queue.getJob(taskId)) || !!(await cancels.tombstone(taskId)),
        })
      : null;

  // EGRESS=proxy: the proxy runs before any worker that needs it starts; each reconcile pass
  // brings it back if it is gone (the engine restarts it when it merely died).
  const egress = new EgressGate(config, launcher, logger);
  const ensureEgress = () =>
    egress.ensure().catch((error) => logger.error({ err: error }, 'the egress proxy could not be started; workers have no way out until it runs'));
  await ensureEgress();

  const spendBudgets = new SpendBudgets(redis, config);
  const running = new RunningSlots(redis, config.QUEUE_NAME, { perRepo: config.MAX_RUNNING_PER_REPO, perInstallation: config.MAX_RUNNING_PER_INSTALLATION });
  const slots = running.enabled ? running : undefined;
  const worker = new Worker<TaskData, WorkerResultLine>(
    config.QUEUE_NAME,
    (job: Job<TaskData>, token?: string, signal?: AbortSignal) =>
      runAttempt(job, token, signal, {
        config,
        launcher,
        fence,
        cancels,
        logger,
        hostEnv: deps.hostEnv,
        egress,
        prepareLaunch: launch ? (taskId, task) => launch.prepare(taskId, task) : undefined,
        revokeToken: github ? (token) => github.revoke(token) : undefined,
        engine,
        started: (repo, taskId) => leftQueue(redis, config.QUEUE_NAME, repo, taskId),
        ...(slots ? { slots } : {}),
        spendBudgets,
        reports,
        metrics: deps.metrics,
        audit,
        isClosing: () => closing,
        onAttemptFinished: (jobId, containerId) => finished.set(jobId, containerId),
      }),
    {
      connection: redisConnection(config.REDIS_URL),
      concurrency: config.WORKER_CONCURRENCY,
      autorun: false,
      lockDuration: config.LOCK_DURATION,
      stalledInterval: config.STALLED_INTERVAL,
      maxStalledCount: config.MAX_STALLED_COUNT,
    },
  );
  const liveness = new Liveness(redis, config.QUEUE_NAME, config.CONSUMER_ID, worker.id);

  const removeAfterRecord = (job: Job | undefined) => {
    if (!job?.id) return;
    const failure = job.failedReason ? ((job.progress as Partial<ContainerProgress> | undefined)?.failure ?? untypedFailure(job.failedReason)) : null;
    // How it ended, once: a failed attempt that will be retried is not an end.
    if (job.finishedOn)
      void audit.record(job.id, {
        type: 'finished',
        attempt: job.attemptsMade || 1,
        state: failure ? (isCancel(failure) ? 'cancelled' : 'failed') : 'completed',
        ...(failure ? { cause: failure.cause } : {}),
      });
    // The attempt is over: its repository's slot is free (a retry takes one again when it starts).
    if (slots && job.data?.repo)
      slots.release(job.data, job.id).catch((error) => logger.warn({ err: error, jobId: job.id }, 'giving back a repository slot failed; the reconciler will'));
    const containerId = finished.get(job.id);
    if (!containerId) return;
    finished.delete(job.id);
    crashPoint('after-record');
    launcher
      .handle(containerId)
      .remove()
      .catch((error: unknown) => logger.warn({ err: error, containerId }, 'removing a finished container failed; the reconciler will retry'));
  };
  worker.on('completed', (job) => removeAfterRecord(job));
  worker.on('failed', (job) => removeAfterRecord(job));
  worker.on('error', (error) => logger.error({ err: error }, 'consumer error'));

  // Global concurrency lives in Redis and is shared by every consumer; the last one started wins.
  if (config.GLOBAL_CONCURRENCY > 0) await deps.queue.setGlobalConcurrency(config.GLOBAL_CONCURRENCY);
  else await deps.queue.removeGlobalConcurrency();
  const unsubscribe = await cancels.subscribe(subscriber, (jobId) => {
    if (worker.cancelJob(jobId, ABORT.cancel)) logger.info({ jobId }, 'cancel requested; stopping its container');
  });

  // Register as alive before taking jobs, so no reconciler mistakes this consumer for dead.
  await liveness.start();
  const reconcile = async () => {
    await ensureEgress();
    return reconcileOnce({
      queue: deps.queue,
      redis,
      launcher,
      liveness,
      cancels,
      logger,
      stopGraceMs: config.WORKER_STOP_GRACE,
      takeoversAllowed: () => Date.now() - reconnectedAt >= HEARTBEAT_TTL_MS,
      ...(github ? { revokeToken: (token: string) => github.revoke(token) } : {}),
      ...(slots ? { slots } : {}),
      audit,
    });
  };
  let reconciling: Promise<unknown> = Promise.resolve();
  let reconcileRunning = false;
  // One pass at a time: passes that would pile up behind a Redis or engine outage are skipped.
  const reconcileSafely = () => {
    if (reconcileRunning) return reconciling;
    reconcileRunning = true;
    reconciling = reconcile()
      .catch((error) => logger.warn({ err: error }, 'reconcile pass failed; next pass retries'))
      .finally(() => (reconcileRunning = false));
    return reconciling;
  };
  void worker.run().catch((error) => logger.error({ err: error }, 'consumer stopped'));
  await reconcileSafely();
  recovery?.start();
  const reconcileTimer = setInterval(() => void reconcileSafely(), config.RECONCILE_INTERVAL);
  logger.info({ queue: config.QUEUE_NAME, concurrency: config.WORKER_CONCURRENCY, globalConcurrency: config.GLOBAL_CONCURRENCY || null }, 'consumer started');

  return {
    worker,
    reconcile,
    async close() {
      clearInterval(reconcileTimer);
      engine.stop();
      await recovery?.stop();
      closing = true;
      const closed = worker.close();
      worker.cancelAllJobs(ABORT.shutdown);
      await closed;
      await reconciling;
      await unsubscribe();
      await liveness.stop();
      await reporter?.close();
      await trigger?.close();
      await reports?.close();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}
