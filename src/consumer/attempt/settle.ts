import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { FailureError, failureReason, type Failure } from '../../core/failure.js';
import { LABEL } from '../../core/labels.js';
import type { EgressSummary } from '../../core/egress-record.js';
import { SecretMask } from '../../core/secret-mask.js';
import { mergeModelUsage, spendOf, type ModelUsage } from '../../core/spend.js';
import type { TaskData } from '../../core/task.js';
import { taskSpend, type ContainerProgress } from '../../core/task-view.js';
import type { WorkerResultLine } from '../../core/worker-protocol.js';
import { crashPoint } from '../../core/crash-points.js';
import type { Workload, WorkloadFacts } from '../launcher/launcher.js';
import { capOutcome, interpretExit, maskOutcome } from '../outcome.js';
import type { AttemptDeps } from './deps.js';
import type { Watched } from './watch.js';

/** How long after an unexplained signal death berth watches for the engine going down. */
const ENGINE_SHUTDOWN_WINDOW_MS = 5_000;
/** Entries of an attempt's egress log kept with the task (the proxy keeps more, the counts all). */
const EGRESS_LOG_KEPT = 100;

/**
 * After the exit: the token given back, the engine's part told apart from the agent's, the
 * output read, the outcome masked and capped, then recorded (progress, metrics, GitHub) before
 * BullMQ records it. Returns the result, or throws what fails the job.
 */
export async function settleAttempt(
  job: Job,
  attempt: number,
  workload: Workload,
  watched: Watched,
  held: { secrets: Record<string, string>; before: ModelUsage },
  deps: AttemptDeps,
  log: Logger,
): Promise<WorkerResultLine> {
  const { secrets, before } = held;
  const { facts, timedOut, cancelled, timeoutMs } = watched;
  crashPoint('after-exit');
  // Its token has nothing left to do. Revoked best effort; it expires within the hour anyway.
  if (secrets.GITHUB_TOKEN && deps.revokeToken)
    deps.revokeToken(secrets.GITHUB_TOKEN).then(
      () => deps.audit?.record(job.id!, { type: 'token-revoked', attempt, by: 'consumer' }),
      (error) => log.warn({ err: error }, 'revoking the installation token failed; it expires on its own'),
    );
  // Killed by a signal berth did not send, around an engine outage: the engine stopped it on its way
  // down (live-restore off), not the agent. Costs a few seconds, only for such deaths.
  const signalledFromOutside = !timedOut && !cancelled && !facts.failure && facts.exitCode > 128 && !facts.oomKilled && facts.finishedAt !== null;
  const engineRestarted =
    signalledFromOutside && !!deps.engine && (deps.engine.wasDownAround(facts.finishedAt!) || (await deps.engine.goesDownWithin(ENGINE_SHUTDOWN_WINDOW_MS)));
  const output = await workload.tail();
  const egress = await egressOf(deps, facts, `${job.id}#${attempt}`, job.data as TaskData);
  const spend = taskSpend(mergeModelUsage(before, egress?.byModel), deps.config.prices);
  if (egress?.byModel) await recordSpend(deps, job.data as TaskData, spendOf(egress.byModel, deps.config.prices), log);
  // What the agent wrote (its result, its error) is masked with the workload's own secrets before
  // anything records it: the job's return value and failure reason feed the task API and GitHub.
  // Capped after masking, so a cut never leaves part of a secret unmasked.
  const exit = {
    exitCode: facts.exitCode,
    oomKilled: facts.oomKilled,
    memoryLimited: Number(facts.labels[LABEL.memoryBytes]) > 0,
    timedOut,
    timeoutMs,
    cancelled,
    engineRestarted,
    platformFailure: facts.failure,
    ...(egress?.budgetExceeded ? { budgetExceeded: egress.budgetExceeded } : {}),
  };
  const outcome = capOutcome(
    maskOutcome(new SecretMask(Object.values(secrets)), interpretExit(exit, output, { retryOnTimeout: deps.config.RETRY_ON_TIMEOUT })),
    deps.config.RESULT_MAX_SIZE,
  );
  const failure = outcome.status === 'failed' ? outcome.failure : undefined;
  await reportProgress(job, attempt, facts, { ...(egress ? { egress } : {}), ...(failure ? { failure } : {}), spentBefore: before, spend });
  deps.onAttemptFinished(job.id!, facts.id);
  if (facts.startedAt && facts.finishedAt) deps.metrics?.taskDuration.observe((facts.finishedAt - facts.startedAt) / 1000);
  log.info({ exitCode: facts.exitCode, outcome: outcome.status, reason: failure ? failureReason(failure) : undefined }, 'attempt finished');
  if (outcome.status === 'failed') return failAttempt(job, attempt, outcome.failure, outcome.retry, deps, { recorded: true });
  deps.metrics?.completions.inc();
  return outcome.value;
}

/**
 * Ends the attempt as failed: the cause goes into the job's progress first (what the task view,
 * the check run and the metrics read), then BullMQ records the reason. The report is added before
 * BullMQ records the outcome: if this consumer dies right after, it still lands (it waits until the
 * task reads as finished).
 */
export async function failAttempt(
  job: Job,
  attempt: number,
  failure: Failure,
  retry: boolean,
  deps: AttemptDeps,
  options: { recorded?: boolean } = {},
): Promise<never> {
  if (!options.recorded) await job.updateProgress({ ...(typeof job.progress === 'object' ? job.progress : {}), attempt, failure } as object);
  deps.metrics?.failures.inc({ reason: failure.cause });
  const again = retry && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
  if (again) deps.metrics?.retries.inc();
  throw retry ? new FailureError(failure) : new UnrecoverableError(failureReason(failure));
}

/** What the job's progress says about its attempt: which workload runs (or ran) it, and how it ended. */
export async function reportProgress(
  job: Job,
  attempt: number,
  facts: WorkloadFacts,
  extra: Pick<ContainerProgress, 'egress' | 'failure' | 'spentBefore' | 'spend'> = {},
): Promise<void> {
  const progress: ContainerProgress = {
    attempt,
    ...extra,
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

/** This attempt's spend, added to its repository's and installation's day and month (best effort: a Redis hiccup must not fail the attempt). */
async function recordSpend(deps: AttemptDeps, task: TaskData, spend: { tokens: number; usd: number }, log: Logger): Promise<void> {
  if (!deps.spendBudgets) return;
  try {
    if (spend.tokens <= 0 && spend.usd <= 0) return;
    const used = await deps.spendBudgets.add({ repo: task.repo, installationId: task.installationId }, spend);
    if (!deps.spendBudgets.budgeted) return;
    deps.metrics?.repoBudgetUsed.set({ repo: task.repo }, used.repo);
    if (used.installation !== null) deps.metrics?.installationBudgetUsed.set({ installation: String(task.installationId) }, used.installation);
  } catch (error) {
    log.warn({ err: error }, "recording the repository's spend failed");
  }
}

/** The proxy's record of the attempt, as the task shows it; counted in the metrics once. */
async function egressOf(deps: AttemptDeps, facts: WorkloadFacts, attempt: string, task: TaskData): Promise<EgressSummary | undefined> {
  const proxy = facts.labels[LABEL.egress];
  if (!proxy || !deps.egress) return undefined;
  const record = await deps.egress.record(proxy, attempt, facts.startedAt ?? undefined);
  if (!record) return undefined;
  await deps.audit?.record(attempt.split('#')[0]!, {
    type: 'egress',
    attempt: Number(attempt.split('#').pop()),
    allowed: record.counts.allowed,
    refused: record.counts.refused,
    refusedHosts: record.refusedHosts,
  });
  for (const decision of ['allowed', 'refused'] as const) deps.metrics?.egressRequests.inc({ decision }, record.counts[decision]);
  const byModel = record.byModel ?? { unknown: record.usage };
  for (const [model, usage] of Object.entries(byModel)) {
    const labels = { kind: task.kind, repo: task.repo, model };
    for (const [type, count] of Object.entries({
      input: usage.inputTokens,
      output: usage.outputTokens,
      cache_read: usage.cacheReadTokens,
      cache_write: usage.cacheWriteTokens,
    }))
      deps.metrics?.modelTokens.inc({ ...labels, type }, count);
    const { usd } = spendOf({ [model]: usage }, deps.config.prices);
    if (usd > 0) deps.metrics?.modelCost.inc(labels, usd);
  }
  return {
    allowed: record.counts.allowed,
    refused: record.counts.refused,
    refusedHosts: record.refusedHosts,
    usage: record.usage,
    byModel,
    ...(record.budgetExceeded ? { budgetExceeded: record.budgetExceeded } : {}),
    log: record.entries.slice(-EGRESS_LOG_KEPT),
  };
}
