import { DelayedError, WaitingError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { agentCommandFor, budgetFor } from '../core/config.js';
import { LABEL } from '../core/labels.js';
import { spendOf } from '../core/spend.js';
import { priorSpend, taskSpend } from '../core/task-view.js';
import { taskDataSchema, type TaskData, type WorkerTask } from '../core/task.js';
import type { WorkerResultLine } from '../core/worker-protocol.js';
import { crashPoint } from '../core/crash-points.js';
import { awaitsApproval, unapprovedFailure } from '../core/approval.js';
import { isEngineUnavailable, resilient } from './engine-health.js';
import { GithubUnavailable, LaunchRefused } from './github-launch.js';
import { ImageMissing, type WorkloadFacts } from './launcher/launcher.js';
import { streamLogsToJob } from './log-stream.js';
import type { AttemptDeps } from './attempt/deps.js';
import { launchOrAdopt, type AttemptToLaunch, type Launched } from './attempt/launch.js';
import { watchUntilExit } from './attempt/watch.js';
import { failAttempt, reportProgress, settleAttempt } from './attempt/settle.js';

export { ABORT, type AttemptConfig, type AttemptDeps } from './attempt/deps.js';

/** How long a task waits before trying again while the engine cannot be reached at launch. */
const ENGINE_DOWN_RETRY_MS = 5_000;

/**
 * The attempt number is `attemptsMade + 1`. BullMQ increments attemptsMade only when an attempt
 * *fails* (or on a manual retry path that keeps it), never when a job stalls and is handed out
 * again, so a re-delivery after a consumer crash maps to the same attempt, hence the same
 * workload name, hence adoption instead of a second workload.
 */
export function attemptOf(job: Pick<Job, 'attemptsMade'>): number {
  return job.attemptsMade + 1;
}

/**
 * One attempt of a task, as BullMQ's processor: checked, launched (or adopted), watched to its
 * exit, settled. Each phase is its own module under attempt/; none names a backend.
 */
export async function runAttempt(job: Job<TaskData>, token: string | undefined, signal: AbortSignal | undefined, deps: AttemptDeps): Promise<WorkerResultLine> {
  const { config, launcher } = deps;
  const jobId = job.id!;
  if (deps.isClosing()) {
    // A fetch already in flight when shutdown began can still deliver a job (even one this
    // process just handed back). Give it back untouched for the next consumer.
    await job.moveToWait(token);
    throw new WaitingError();
  }
  const attempt = attemptOf(job);
  const parsed = taskDataSchema.safeParse(job.data);
  if (!parsed.success)
    return failAttempt(
      job,
      attempt,
      { cause: 'invalid_task', detail: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') },
      false,
      deps,
    );
  const data = parsed.data;
  if (!agentCommandFor(config, data.kind))
    return failAttempt(job, attempt, { cause: 'invalid_task', detail: `no agent command configured for kind '${data.kind}'` }, false, deps);

  const name = launcher.nameFor(config.QUEUE_NAME, jobId, attempt);
  const log = deps.logger.child({ jobId, attempt, container: name });
  crashPoint('after-dequeue');

  const cancelledBefore = await deps.cancels.reason(jobId, job.attemptsMade);
  if (cancelledBefore) {
    // Cancelled while nobody held the job (or before it ever ran): never start, stop what runs.
    const existing = await launcher.handle(name).inspect();
    if (existing) {
      await launcher.handle(existing.id).stop(config.WORKER_STOP_GRACE);
      deps.onAttemptFinished(jobId, existing.id);
    }
    return failAttempt(job, attempt, cancelledBefore, false, deps);
  }
  if (data.approval && awaitsApproval(data)) {
    // Promoted before its expiry by something other than an approval (the board's Promote, a
    // script): only a person GitHub says has the role approves, so it goes back to waiting for one.
    if (Date.now() < data.approval.expiresAt) {
      log.warn({ expiresAt: data.approval.expiresAt }, 'a task awaiting approval was promoted without an approval; it waits again');
      await job.moveToDelayed(data.approval.expiresAt, token);
      throw new DelayedError();
    }
    // Came due still awaiting approval: its time ran out. Nothing was minted or launched for it.
    return failAttempt(job, attempt, unapprovedFailure(data.approval), false, deps);
  }
  const waitingFor = deps.slots ? await deps.slots.claim(data, jobId) : null;
  if (waitingFor) return waitForSlot(job, token, attempt, waitingFor);
  await deps.started?.(data.repo, jobId);
  const task: WorkerTask = {
    id: jobId,
    attempt,
    kind: data.kind,
    repo: data.repo,
    ref: data.ref,
    number: data.number,
    prompt: data.prompt,
    untrusted: data.untrusted,
    installationId: data.installationId,
    deliveryId: data.deliveryId,
  };
  // What the task's earlier attempts spent: this attempt's budget is what is left of the task's.
  const before = priorSpend(job.progress, attempt);
  const launched = await launchOrWait({ job, token, name, task, data, spentBefore: spendOf(before, config.prices), log }, deps);
  const workload = resilient(launched.workload, deps.engine);
  let secrets: Record<string, string> = {};
  const watched = await watchUntilExit(workload, {
    job,
    token,
    signal,
    deps,
    log,
    onRunning: async (facts) => {
      recordStart(launched, facts, deps, log);
      crashPoint('after-start');
      await reportProgress(job, attempt, facts, { spentBefore: before, spend: taskSpend(before, config.prices) });
      secrets = secretsOf(launched, facts, deps);
      return streamLogsToJob(() => workload.follow(), facts.id, job, Object.values(secrets)).catch(() => async () => {});
    },
    ...(deps.reports && data.number !== undefined && config.REPORT_PROGRESS_INTERVAL > 0
      ? { tick: { everyMs: config.REPORT_PROGRESS_INTERVAL, run: progressReport(deps, jobId, attempt, log) } }
      : {}),
    ...(deps.egress && budgetFor(config.budgets, data.kind)
      ? { overBudget: (facts: WorkloadFacts) => deps.egress!.overBudget(facts.labels[LABEL.egress] ?? '', `${jobId}#${attempt}`) }
      : {}),
  });
  return settleAttempt(job, attempt, workload, watched, { secrets, before }, deps, log);
}

/** The launch, with what cannot be retried failed at once and an unreachable engine or GitHub waited out without counting an attempt. */
async function launchOrWait(attempt: AttemptToLaunch, deps: AttemptDeps): Promise<Launched> {
  const { job, token, task, data, log } = attempt;
  try {
    return await launchOrAdopt(attempt, deps);
  } catch (error) {
    if (error instanceof LaunchRefused || error instanceof ImageMissing) {
      // Retrying cannot help (trust, policy, or an image the operator must provide): fail once, no container.
      log.warn({ reason: error.message }, 'failed before launch');
      return failAttempt(job, task.attempt, error.failure, false, deps);
    }
    if (isEngineUnavailable(error)) {
      // The engine is down or restarting: nothing of ours failed. Wait without counting an attempt.
      deps.engine?.failed('launch');
      log.warn({ err: error }, 'Docker engine unreachable at launch; the task waits');
      await deps.slots?.release(data, task.id);
      await job.moveToDelayed(Date.now() + ENGINE_DOWN_RETRY_MS, token);
      throw new DelayedError();
    }
    if (error instanceof GithubUnavailable) {
      // GitHub is down or rate limited: wait without counting an attempt; nothing was created.
      log.warn({ reason: error.message, retryAt: new Date(error.retryAt).toISOString() }, 'GitHub unavailable before launch; the task waits');
      deps.metrics?.failures.inc({ reason: 'github' });
      await deps.slots?.release(data, task.id);
      await job.moveToDelayed(error.retryAt, token);
      throw new DelayedError();
    }
    throw error;
  }
}

/** How long a task whose repository is at its cap waits before it looks again (with some spread, so waiting tasks do not all come back at once). */
const SLOT_RETRY_MS = 2_000;

/** The repository or installation is at its running cap: the task goes back to wait, saying why, without counting an attempt. */
async function waitForSlot(job: Job<TaskData>, token: string | undefined, attempt: number, waitingFor: string): Promise<never> {
  const progress = typeof job.progress === 'object' && job.progress ? (job.progress as Record<string, unknown>) : {};
  if (progress.waitingFor !== waitingFor) {
    // Said once per change, not on every look: the check run shows it while the task waits.
    await job.updateProgress({ ...progress, attempt: Math.max(0, attempt - 1), waitingFor } as object);
  }
  await job.moveToDelayed(Date.now() + SLOT_RETRY_MS + Math.floor(Math.random() * 1_000), token);
  throw new DelayedError();
}

/** A report of the running attempt (its check run's elapsed time and output tail); each a job of its own, so none folds into a finished one. */
function progressReport(deps: AttemptDeps, jobId: string, attempt: number, log: Logger): () => void {
  let tick = 0;
  return () => {
    tick++;
    deps.reports?.sync(jobId, `a${attempt}-progress-${tick}`).catch((error) => log.warn({ err: error }, 'queueing a progress report failed'));
  };
}

function recordStart(launched: Launched, facts: WorkloadFacts, deps: AttemptDeps, log: Logger): void {
  const adopted = launched.createdAt === null;
  log.info(
    { containerId: facts.id, adopted, state: facts.state, ...(facts.node ? { node: facts.node } : {}) },
    `${adopted ? 'adopted' : 'started'} ${deps.launcher.noun}`,
  );
  if (launched.createdAt === null) deps.metrics?.adoptions.inc();
  else {
    deps.metrics?.launches.inc();
    deps.metrics?.startLatency.observe((Date.now() - launched.createdAt) / 1000);
  }
}

/**
 * The workload's own secrets, so an adopted one is masked too: what this consumer handed it, what
 * its engine tells (a swarm tells none), and the operator's WORKER_ENV values as this host has them.
 */
function secretsOf(launched: Launched, facts: WorkloadFacts, deps: AttemptDeps): Record<string, string> {
  const names = deps.config.WORKER_ENV;
  return { ...pick(deps.hostEnv ?? {}, names), ...pick(facts.env, ['GITHUB_TOKEN', ...names]), ...launched.secrets };
}

/** The variables of `env` named in `names` that are set. */
function pick(env: Record<string, string | undefined>, names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (env[name] !== undefined ? [[name, env[name]]] : [])));
}
