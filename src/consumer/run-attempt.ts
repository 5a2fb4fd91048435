import { DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { agentCommandFor, type Config } from '../core/config.js';
import { LABEL } from '../core/labels.js';
import { taskDataSchema, type TaskData, type WorkerTask } from '../core/task.js';
import type { WorkerResultLine } from '../core/worker-protocol.js';
import type { CancelBook } from '../core/cancel.js';
import { crashPoint } from './crash-points.js';
import type { AttemptFence } from './fence.js';
import { ImageMissing, type Launcher, type WorkloadFacts } from './launcher/launcher.js';
import { buildWorkloadSpec, type LaunchConfig } from './launcher/spec.js';
import { capOutcome, interpretExit, maskOutcome } from './outcome.js';
import { SecretMask } from '../core/secret-mask.js';
import type { EgressGate } from './egress-gate.js';
import type { BerthMetrics } from '../core/metrics.js';
import { FailureError, failureReason, type Failure } from '../core/failure.js';
import { streamLogsToJob } from './log-stream.js';
import type { ContainerProgress } from '../core/task-view.js';
import type { EgressSummary } from '../core/egress-record.js';
import type { GithubReports } from '../core/reports.js';
import { GithubUnavailable, LaunchRefused, type LaunchPreparation } from './github-launch.js';
import { isEngineUnavailable, retryWhileUnreachable, type EngineHealth } from './engine-health.js';

/** How often a waiting consumer looks at its container itself: a wait request on a connection a restarting engine dropped may never settle. */
const WAIT_POLL_MS = 5_000;
/** Entries of an attempt's egress log kept with the task (the proxy keeps more, the counts all). */
const EGRESS_LOG_KEPT = 100;
/** How often a launch looks at a workload the backend has not started yet. */
const START_POLL_MS = 250;
/** How long after an unexplained signal death berth watches for the engine going down. */
const ENGINE_SHUTDOWN_WINDOW_MS = 5_000;
/** How long a task waits before trying again while the engine cannot be reached at launch. */
const ENGINE_DOWN_RETRY_MS = 5_000;

export type AttemptConfig = LaunchConfig & Pick<Config, 'RETRY_ON_TIMEOUT' | 'RESULT_MAX_SIZE'>;

/** Why a processor's AbortSignal fired. */
export const ABORT = { shutdown: 'shutdown', cancel: 'cancel' } as const;

export interface AttemptDeps {
  config: AttemptConfig;
  launcher: Launcher;
  fence: AttemptFence;
  cancels: CancelBook;
  logger: Logger;
  hostEnv?: NodeJS.ProcessEnv;
  /**
   * GitHub before a container is created: pin the subject, apply the fork policy, mint a
   * short-lived token (never stored). Absent without App credentials.
   */
  prepareLaunch?: (taskId: string, task: TaskData) => Promise<LaunchPreparation>;
  /** The task left the queue for a container (it no longer counts against its repository's cap). */
  started?: (repo: string, taskId: string) => Promise<void>;
  /** The engine's reachability over time; calls retry while it is down. */
  engine?: EngineHealth;
  /** EGRESS=proxy: each attempt's way out, and its record afterwards. */
  egress?: EgressGate;
  /** Revokes a worker's installation token once its container has exited. */
  revokeToken?: (token: string) => Promise<void>;
  /** Outbound GitHub reports (check runs, comments); absent without App credentials. */
  reports?: GithubReports | null;
  metrics?: BerthMetrics;
  /** True once a planned shutdown began: a job fetched now is handed straight back. */
  isClosing: () => boolean;
  /** Told the container of a finished attempt, so it is removed only once the outcome is recorded. */
  onAttemptFinished: (jobId: string, containerId: string) => void;
}

/** How long a consumer on another engine waits before it looks at a foreign attempt again. */
export const FOREIGN_ATTEMPT_RETRY_MS = 2_000;

/**
 * The attempt number is `attemptsMade + 1`. BullMQ increments attemptsMade only when an attempt
 * *fails* (or on a manual retry path that keeps it), never when a job stalls and is handed out
 * again, so a re-delivery after a consumer crash maps to the same attempt, hence the same
 * container name, hence adoption instead of a second container.
 */
export function attemptOf(job: Pick<Job, 'attemptsMade'>): number {
  return job.attemptsMade + 1;
}

export async function runAttempt(job: Job<TaskData>, token: string | undefined, signal: AbortSignal | undefined, deps: AttemptDeps): Promise<WorkerResultLine> {
  const { config, launcher } = deps;
  const jobId = job.id!;
  if (deps.isClosing()) {
    // A fetch already in flight when shutdown began can still deliver a job (even one this
    // process just handed back). Give it back untouched for the next consumer.
    await job.moveToWait(token);
    throw new WaitingError();
  }
  const parsed = taskDataSchema.safeParse(job.data);
  const attempt = attemptOf(job);
  if (!parsed.success) return failWith(job, attempt, { cause: 'invalid_task', detail: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') }, false, deps);
  const data = parsed.data;
  if (!agentCommandFor(config, data.kind)) return failWith(job, attempt, { cause: 'invalid_task', detail: `no agent command configured for kind '${data.kind}'` }, false, deps);

  const name = launcher.nameFor(config.QUEUE_NAME, jobId, attempt);
  const log = deps.logger.child({ jobId, attempt, container: name });
  crashPoint('after-dequeue');

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
  const cancelledBefore = await deps.cancels.reason(jobId, job.attemptsMade);
  if (cancelledBefore) {
    // Cancelled while nobody held the job (or before it ever ran): never start, stop what runs.
    const existing = await launcher.inspect(name);
    if (existing) {
      await launcher.stop(existing.id, config.WORKER_STOP_GRACE);
      deps.onAttemptFinished(jobId, existing.id);
    }
    return failWith(job, attempt, cancelledBefore, false, deps);
  }
  await deps.started?.(data.repo, jobId);
  let launch: Awaited<ReturnType<typeof launchOrAdopt>>;
  try {
    launch = await launchOrAdopt(job, token, name, task, data, deps, log);
  } catch (error) {
    if (error instanceof LaunchRefused || error instanceof ImageMissing) {
      // Retrying cannot help (trust, policy, or an image the operator must provide): fail once, no container.
      log.warn({ reason: error.message }, 'failed before launch');
      return failWith(job, attempt, error.failure, false, deps);
    }
    if (isEngineUnavailable(error)) {
      // The engine is down or restarting: nothing of ours failed. Wait without counting an attempt.
      deps.engine?.failed('launch');
      log.warn({ err: error }, 'Docker engine unreachable at launch; the task waits');
      await job.moveToDelayed(Date.now() + ENGINE_DOWN_RETRY_MS, token);
      throw new DelayedError();
    }
    if (error instanceof GithubUnavailable) {
      // GitHub is down or rate limited: wait without counting an attempt; nothing was created.
      log.warn({ reason: error.message, retryAt: new Date(error.retryAt).toISOString() }, 'GitHub unavailable before launch; the task waits');
      deps.metrics?.failures.inc({ reason: 'github' });
      await job.moveToDelayed(error.retryAt, token);
      throw new DelayedError();
    }
    throw error;
  }
  let facts = launch.facts;
  const adopted = launch.createdAt === null;
  const id = facts.id;
  const noun = launcher.backend === 'swarm' ? 'service' : 'container';
  log.info({ containerId: id, adopted, state: facts.state, ...(facts.node ? { node: facts.node } : {}) }, `${adopted ? 'adopted' : 'started'} ${noun}`);
  if (launch.createdAt === null) deps.metrics?.adoptions.inc();
  else {
    deps.metrics?.launches.inc();
    deps.metrics?.startLatency.observe((Date.now() - launch.createdAt) / 1000);
  }
  crashPoint('after-start');
  await reportProgress(job, attempt, facts);
  await deps.reports?.sync(jobId, `a${attempt}-running`);
  // The workload's own secrets, so an adopted one is masked too: what this consumer handed it, what
  // its engine tells (a swarm tells none), and the operator's WORKER_ENV values as this host has them.
  const secrets: Record<string, string> = { ...pick(deps.hostEnv ?? {}, config.WORKER_ENV), ...pick(facts.env, ['GITHUB_TOKEN', ...config.WORKER_ENV]), ...launch.secrets };
  const stopStreaming = await streamLogsToJob((containerId) => launcher.followLogs(containerId), id, job, Object.values(secrets)).catch(() => async () => {});
  let exited = false;

  const timeoutMs = Number(facts.labels[LABEL.timeoutMs]) || config.TASK_TIMEOUT;
  // Counted from the workload's own start, so a task a swarm node is still pulling or scheduling
  // keeps its whole time, and a restarted consumer keeps the original deadline.
  let deadline = Number.POSITIVE_INFINITY;
  let timedOut = false;
  let cancelled: Failure | null = null;
  let timer: NodeJS.Timeout | undefined;

  try {
    if (facts.state === 'pending') facts = await retryWhileUnreachable('wait', () => untilStarted(launcher, id, signal), deps.engine, signal);
    deadline = (facts.startedAt ?? Date.now()) + timeoutMs;
    timer = setTimeout(() => {
      timedOut = true;
      log.warn({ timeoutMs }, 'deadline passed, stopping the workload');
      retryWhileUnreachable('stop', () => launcher.stop(id, config.WORKER_STOP_GRACE), deps.engine).catch((error) => log.error({ err: error }, 'stop after timeout failed'));
    }, Math.max(0, deadline - Date.now()));
    // While the engine is unreachable the attempt keeps its job, its container and its deadline.
    await retryWhileUnreachable('wait', () => waitForExit(launcher, id, signal), deps.engine, signal);
    exited = true;
  } catch (error) {
    if (!signal?.aborted) throw error;
    if (signal.reason === ABORT.shutdown) {
      // Planned shutdown: the container keeps running; the job goes back to wait without
      // counting a stall, and the next consumer adopts the container by name.
      clearTimeout(timer);
      log.info('shutting down: handing job back, container left running');
      await job.moveToWait(token);
      throw new WaitingError();
    }
    cancelled = (await deps.cancels.reason(jobId, job.attemptsMade)) ?? { cause: 'cancelled' };
    await retryWhileUnreachable('stop', () => launcher.stop(id, config.WORKER_STOP_GRACE), deps.engine);
    await retryWhileUnreachable('wait', () => waitForExit(launcher, id), deps.engine);
    exited = true;
  } finally {
    clearTimeout(timer);
    // Only an exited container's stream ends by itself; a handed-back one is still running.
    await stopStreaming(exited);
  }

  crashPoint('after-exit');
  // The container has exited: its token has nothing left to do. Revoke it (best effort; it expires within the hour anyway).
  if (secrets.GITHUB_TOKEN && deps.revokeToken) deps.revokeToken(secrets.GITHUB_TOKEN).catch((error) => log.warn({ err: error }, 'revoking the installation token failed; it expires on its own'));
  facts = await retryWhileUnreachable('inspect', () => mustInspect(launcher, id), deps.engine);
  // A container stopped at its deadline by a consumer that then died looks like any other exit;
  // its own timestamps tell the story.
  if (!timedOut && facts.finishedAt !== null && facts.finishedAt >= deadline) timedOut = true;
  // Killed by a signal berth did not send, around an engine outage: the engine stopped it on its way
  // down (live-restore off), not the agent. Costs a few seconds, only for such deaths.
  const signalledFromOutside = !timedOut && !cancelled && !facts.failure && facts.exitCode > 128 && !facts.oomKilled && facts.finishedAt !== null;
  const engineRestarted = signalledFromOutside && !!deps.engine && (deps.engine.wasDownAround(facts.finishedAt!) || (await deps.engine.goesDownWithin(ENGINE_SHUTDOWN_WINDOW_MS)));
  const output = await retryWhileUnreachable('logs', () => launcher.logs(id), deps.engine);
  const egress = await egressOf(deps, facts, `${jobId}#${attempt}`);
  // What the agent wrote (its result, its error) is masked with the container's own secrets before
  // anything records it: the job's return value and failure reason feed the task API and GitHub.
  // Capped after masking, so a cut never leaves part of a secret unmasked.
  const outcome = capOutcome(maskOutcome(new SecretMask(Object.values(secrets)), interpretExit(
    {
      exitCode: facts.exitCode,
      oomKilled: facts.oomKilled,
      memoryLimited: Number(facts.labels[LABEL.memoryBytes]) > 0,
      timedOut,
      timeoutMs,
      cancelled,
      engineRestarted,
      platformFailure: facts.failure,
    },
    output,
    { retryOnTimeout: config.RETRY_ON_TIMEOUT },
  )), config.RESULT_MAX_SIZE);
  await reportProgress(job, attempt, facts, egress, outcome.status === 'failed' ? outcome.failure : undefined);
  deps.onAttemptFinished(jobId, id);
  if (facts.startedAt && facts.finishedAt) deps.metrics?.taskDuration.observe((facts.finishedAt - facts.startedAt) / 1000);
  log.info({ exitCode: facts.exitCode, outcome: outcome.status, reason: outcome.status === 'failed' ? failureReason(outcome.failure) : undefined }, 'attempt finished');
  if (outcome.status === 'completed') {
    deps.metrics?.completions.inc();
    await deps.reports?.sync(jobId, 'final', { final: true });
    return outcome.value;
  }
  return failWith(job, attempt, outcome.failure, outcome.retry, deps, { recorded: true });
}

/**
 * Ends the attempt as failed: the cause goes into the job's progress first (what the task view,
 * the check run and the metrics read), then BullMQ records the reason. The report is added before
 * BullMQ records the outcome: if this consumer dies right after, it still lands (it waits until the
 * task reads as finished).
 */
async function failWith(job: Job, attempt: number, failure: Failure, retry: boolean, deps: AttemptDeps, options: { recorded?: boolean } = {}): Promise<never> {
  if (!options.recorded) await job.updateProgress({ ...(typeof job.progress === 'object' ? job.progress : {}), attempt, failure } as object);
  deps.metrics?.failures.inc({ reason: failure.cause });
  const again = retry && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
  if (again) deps.metrics?.retries.inc();
  await deps.reports?.sync(job.id!, again ? `a${attempt}-retry` : 'final', { final: !again });
  throw retry ? new FailureError(failure) : new UnrecoverableError(failureReason(failure));
}

/**
 * The attempt's container: created here (`createdAt` is when), or the one a previous consumer left
 * (adopted: `createdAt` is null). The hot path (a fresh fence claim) goes straight to create +
 * start, with no inspect before the start: a fresh claim means no consumer launched this attempt,
 * and if Redis forgot the claim, Docker's 409 on the deterministic name still turns the create into
 * an adoption.
 */
async function launchOrAdopt(
  job: Job<TaskData>,
  token: string | undefined,
  name: string,
  task: WorkerTask,
  data: TaskData,
  deps: AttemptDeps,
  log: Logger,
): Promise<{ facts: WorkloadFacts; createdAt: number | null; secrets?: Record<string, string> }> {
  const { config, launcher } = deps;
  const engineId = await launcher.engineId();
  const claim = await deps.fence.claim(task.id, task.attempt, engineId);
  const existing = claim.fresh ? null : await launcher.inspect(name);
  if (!existing && claim.owner !== engineId) {
    // The attempt belongs to a container on another engine; only a consumer there may watch
    // it. Put the job back (no stall, no attempt counted) for one of them to take.
    log.info({ owner: claim.owner }, 'attempt belongs to another Docker engine; handing it back');
    await job.moveToDelayed(Date.now() + FOREIGN_ATTEMPT_RETRY_MS, token);
    throw new DelayedError();
  }
  if (existing) return { facts: await startIfCreated(launcher, existing), createdAt: null };

  // Only pin and mint when a container is actually created; adopting needs neither.
  const prepared = deps.prepareLaunch ? await deps.prepareLaunch(task.id, data) : { env: {} };
  const launched: WorkerTask = prepared.pull ? { ...task, pull: prepared.pull } : task;
  const createdAt = Date.now();
  // A token minted for a workload that was never made (the create failed, or another consumer's
  // workload holds the name) has no container to end with: given back here.
  const giveBack = () => {
    const minted = prepared.env.GITHUB_TOKEN;
    if (minted && deps.revokeToken) deps.revokeToken(minted).catch((error) => log.warn({ err: error }, 'revoking an unused installation token failed; it expires on its own'));
  };
  const egress = deps.egress?.enabled ? deps.egress.forAttempt(launched) : undefined;
  let created: { id: string; adopted: boolean };
  try {
    created = await launcher.createOrAdopt(buildWorkloadSpec(config, { name, task: launched, secrets: prepared.env, ...(egress ? { egress } : {}) }, deps.hostEnv));
  } catch (error) {
    giveBack();
    throw error;
  }
  if (created.adopted) {
    giveBack();
    return { facts: await startIfCreated(launcher, await mustInspect(launcher, created.id)), createdAt: null };
  }
  crashPoint('after-create');
  await launcher.start(created.id);
  return { facts: await mustInspect(launcher, created.id), createdAt, secrets: prepared.env };
}

/**
 * Until the container is no longer running. Docker's own wait, raced with a look every
 * WAIT_POLL_MS: after an engine restart (live-restore) a wait request on the dropped connection
 * may neither return nor fail, while the container carries on and exits.
 */
async function waitForExit(launcher: Launcher, id: string, signal?: AbortSignal): Promise<void> {
  const inner = new AbortController();
  const forward = () => inner.abort(signal?.reason);
  if (signal?.aborted) forward();
  signal?.addEventListener('abort', forward, { once: true });
  const waited = launcher.wait(id, inner.signal);
  const polled = (async () => {
    for (;;) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, WAIT_POLL_MS);
        inner.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (inner.signal.aborted) throw inner.signal.reason instanceof Error ? inner.signal.reason : new Error('aborted');
      const facts = await launcher.inspect(id);
      if (!facts || facts.state === 'exited') return;
    }
  })();
  waited.catch(() => {});
  polled.catch(() => {});
  try {
    await Promise.race([waited, polled]);
  } finally {
    signal?.removeEventListener('abort', forward);
    inner.abort(new Error('done'));
  }
}

/** Until the workload has left `pending` (a swarm task being placed, pulled, started): the facts then. */
async function untilStarted(launcher: Launcher, id: string, signal?: AbortSignal): Promise<WorkloadFacts> {
  for (;;) {
    signal?.throwIfAborted();
    const facts = await mustInspect(launcher, id);
    if (facts.state !== 'pending') return facts;
    // An abort ends the pause; the check above then throws its reason.
    await delay(START_POLL_MS, undefined, { signal }).catch(() => {});
  }
}

async function startIfCreated(launcher: Launcher, facts: WorkloadFacts): Promise<WorkloadFacts> {
  if (facts.state !== 'pending') return facts;
  await launcher.start(facts.id);
  return mustInspect(launcher, facts.id);
}

async function mustInspect(launcher: Launcher, id: string): Promise<WorkloadFacts> {
  const facts = await launcher.inspect(id);
  if (!facts) throw new Error(`container ${id} vanished`);
  return facts;
}

/** The variables of `env` named in `names` that are set. */
function pick(env: Record<string, string | undefined>, names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (env[name] !== undefined ? [[name, env[name]]] : [])));
}

/** The proxy's record of the attempt, as the task shows it; counted in the metrics once. */
async function egressOf(deps: AttemptDeps, facts: WorkloadFacts, attempt: string): Promise<EgressSummary | undefined> {
  const proxy = facts.labels[LABEL.egress];
  if (!proxy || !deps.egress) return undefined;
  const record = await deps.egress.record(proxy, attempt);
  if (!record) return undefined;
  for (const decision of ['allowed', 'refused'] as const) deps.metrics?.egressRequests.inc({ decision }, record.counts[decision]);
  const { inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens } = record.usage;
  for (const [type, count] of Object.entries({ input: inputTokens, output: outputTokens, cache_read: cacheReadTokens, cache_write: cacheWriteTokens })) deps.metrics?.modelTokens.inc({ type }, count);
  return { allowed: record.counts.allowed, refused: record.counts.refused, refusedHosts: record.refusedHosts, usage: record.usage, log: record.entries.slice(-EGRESS_LOG_KEPT) };
}

async function reportProgress(job: Job, attempt: number, facts: WorkloadFacts, egress?: EgressSummary, failure?: Failure): Promise<void> {
  const progress: ContainerProgress = {
    attempt,
    ...(egress ? { egress } : {}),
    ...(failure ? { failure } : {}),
    container: {
      name: facts.name,
      id: facts.id,
      state: facts.state,
      ...(facts.state === 'exited' ? { exitCode: facts.exitCode } : {}),
      startedAt: facts.startedAt,
      finishedAt: facts.finishedAt,
      ...(facts.node ? { node: facts.node } : {}),
      ...(facts.failure ? { failure: facts.failure } : {}),
    },
  };
  await job.updateProgress(progress as unknown as object);
}
