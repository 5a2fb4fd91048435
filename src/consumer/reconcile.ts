import type { AuditTrail } from '../core/audit.js';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { CancelBook } from '../core/cancel.js';
import { wakeConsumers, type TaskQueue } from '../core/queue.js';
import type { RunningSlots } from '../core/running-slots.js';
import type { Launcher, ManagedWorkload } from './launcher/launcher.js';
import type { Liveness } from './liveness.js';

export interface ReconcileDeps {
  queue: TaskQueue;
  redis: Redis;
  launcher: Launcher;
  liveness: Liveness;
  cancels: CancelBook;
  logger: Logger;
  stopGraceMs: number;
  /** False for a while after Redis came back: heartbeats may not have caught up yet. */
  takeoversAllowed?: () => boolean;
  /** Revokes a retired container's GitHub token (no watched exit will). */
  revokeToken?: (token: string) => Promise<void>;
  audit?: Pick<AuditTrail, 'record'>;
  /** MAX_RUNNING_PER_REPO and _PER_INSTALLATION: slots of tasks gone or finished are given back. */
  slots?: Pick<RunningSlots, 'sweep'>;
}

export interface ReconcileReport {
  takenOver: string[];
  retired: Array<{ name: string; reason: string }>;
}

/**
 * Brings Redis and Docker back into agreement. Two halves:
 * 1. Jobs: an active job whose lock holder is dead is moved back to wait at once (BullMQ's own
 *    path would wait out the lock and count a stall); a live consumer then adopts its container.
 * 2. Containers: only those labelled berth.managed for *this* queue, on this engine. A container
 *    whose job is gone, finished (completed, failed, cancelled, or failed by BullMQ as stalled too
 *    often) or that belongs to an older attempt is stopped and removed. Everything else — above
 *    all a container whose job is waiting to be adopted — is left alone.
 * Every step is idempotent, so any number of consumers may run it at once.
 */
export async function reconcileOnce(deps: ReconcileDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { takenOver: [], retired: [] };
  const { queue, redis, logger } = deps;

  for (const job of deps.takeoversAllowed?.() === false ? [] : await queue.getActive()) {
    if (!job.id) continue;
    const lock = await redis.get(`${queue.toKey(job.id)}:lock`);
    if (lock && (await deps.liveness.holderAlive(lock))) continue;
    try {
      // Token '0' skips BullMQ's lock check; only reached when the lock is gone or its holder is dead.
      await job.moveToWait(lock ?? '0');
      await wakeConsumers(redis, queue);
      report.takenOver.push(job.id);
      logger.info({ jobId: job.id }, 'took over a job whose consumer is gone');
    } catch (error) {
      logger.debug({ err: error, jobId: job.id }, 'job changed while taking it over');
    }
  }

  for (const container of await deps.launcher.listManaged(queue.name)) {
    const reason = await retireReason(deps, container);
    if (!reason) continue;
    // Its token first: no consumer watches this container, so nobody else will revoke it.
    const revoke = deps.revokeToken;
    const workload = deps.launcher.handle(container.id);
    const token = revoke ? (await workload.inspect().catch(() => null))?.env.GITHUB_TOKEN : undefined;
    if (container.state === 'running') await workload.stop(deps.stopGraceMs);
    await workload.remove();
    if (revoke && token)
      await revoke(token).then(
        () => deps.audit?.record(container.jobId, { type: 'token-revoked', attempt: container.attempt, by: 'reconciler' }),
        (error) => logger.warn({ err: error, container: container.name }, "revoking a retired container's token failed; it expires within the hour"),
      );
    report.retired.push({ name: container.name, reason });
    logger.info({ container: container.name, reason }, 'removed container');
  }
  const swept = (await deps.slots?.sweep(queue)) ?? 0;
  if (swept) logger.info({ swept }, 'gave back repository slots of tasks that are gone or finished');
  return report;
}

async function retireReason(deps: ReconcileDeps, container: ManagedWorkload): Promise<string | null> {
  if (!container.jobId) return 'no job id label';
  const job = await deps.queue.getJob(container.jobId);
  if (!job) return 'job gone';
  const state = await job.getState();
  if (state === 'completed' || state === 'failed') return `job ${state}`;
  if (state === 'unknown') return 'job gone';
  if (container.attempt < job.attemptsMade + 1) return `older attempt (${container.attempt} < ${job.attemptsMade + 1})`;
  if (state !== 'active' && (await deps.cancels.isRequested(container.jobId, job.attemptsMade))) return 'cancelled';
  return null;
}
