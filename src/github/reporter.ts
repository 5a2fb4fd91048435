import type { AuditTrail } from '../core/audit.js';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { CancelBook } from '../core/cancel.js';
import type { Config } from '../core/config.js';
import type { BerthMetrics } from '../core/metrics.js';
import { redisConnection, type TaskQueue } from '../core/queue.js';
import { reportBackoffMs, reportQueueName, type ReportJob } from './report-queue.js';
import { viewTask, type TaskView } from '../core/task-view.js';
import { splitRepo, type GithubApp, type RepoRequest, type TokenPermissions } from './app.js';
import { approvalMarker, commentMarker, renderApprovalComment, renderCheckRun, renderIssueComment, checkRunName } from './check-run.js';
import { classifyGithubError, describeGithubError } from './errors.js';
import { resolveSubject } from './pulls.js';
import type { GithubRecord } from './record.js';
import { crashPoint } from '../core/crash-points.js';
import { scopeRefusal } from '../core/trust-scope.js';
import { neutraliseMentions } from '../core/markdown.js';
import type { WebhookRules } from '../core/webhook-rules.js';

/** What reporting may do, and no more: check runs, comments and reactions, reading pull requests. */
export const REPORT_PERMISSIONS: TokenPermissions = { checks: 'write', issues: 'write', pull_requests: 'read', metadata: 'read' };

export type ReporterConfig = Pick<Config, 'QUEUE_NAME' | 'REDIS_URL' | 'PUBLIC_URL' | 'REPORT_SUCCESS_COMMENT'>;

export interface ReporterDeps {
  config: ReporterConfig;
  app: GithubApp;
  tasks: TaskQueue;
  record: GithubRecord;
  cancels: CancelBook;
  logger: Logger;
  metrics?: BerthMetrics;
  /** The installations and repositories berth works for: nothing is reported anywhere else. */
  trust: Pick<WebhookRules['trust'], 'installations' | 'owners' | 'repositories'>;
  /** Every write berth makes on GitHub for a task. */
  audit?: Pick<AuditTrail, 'record'>;
}

/** Where a person sees the task: the board's job page under PUBLIC_URL. */
export function detailsUrl(publicUrl: string | undefined, queue: string, taskId: string): string | undefined {
  if (!publicUrl) return undefined;
  return `${publicUrl.replace(/\/$/, '')}/admin/queues/queue/${encodeURIComponent(queue)}/${encodeURIComponent(taskId)}`;
}

/**
 * Consumes the report queue. Each call is idempotent as GitHub sees it: reactions are idempotent on
 * GitHub's side; a check run is found by its external_id (the task id) before one is created, and a
 * comment by its marker, so a consumer killed between the call and recording its id never makes a
 * second one. A task's reports are serialised by a per-task lock.
 */
export function startReporter(deps: ReporterDeps): Worker<ReportJob> {
  const { logger } = deps;
  const worker = new Worker<ReportJob>(
    reportQueueName(deps.config.QUEUE_NAME),
    async (job, token) => {
      try {
        if (job.data.type === 'react') await react(deps, job.data);
        else if (job.data.type === 'notice') await notice(deps, job.data);
        else await sync(deps, job as Job<Extract<ReportJob, { type: 'sync' }>>, token);
      } catch (error) {
        if (error instanceof DelayedError || error instanceof UnrecoverableError) throw error;
        const failure = classifyGithubError(error);
        deps.metrics?.githubErrors.inc({ operation: job.data.type, kind: failure.kind });
        deps.metrics?.failures.inc({ reason: 'github' });
        const what = `${job.data.type} for ${job.data.taskId}: ${describeGithubError(error)}`;
        if (failure.kind === 'rate-limited') {
          logger.warn({ jobId: job.id, retryAt: new Date(failure.retryAt).toISOString() }, `GitHub rate limit; ${what}`);
          await job.moveToDelayed(failure.retryAt + 1_000, token);
          throw new DelayedError();
        }
        if (failure.kind === 'transient') {
          logger.warn({ jobId: job.id, attempt: job.attemptsMade + 1 }, `GitHub call failed, will retry; ${what}`);
          throw error;
        }
        logger.warn({ jobId: job.id }, `GitHub refused a report, not retried; ${what}`);
        throw new UnrecoverableError(what);
      }
    },
    {
      connection: redisConnection(deps.config.REDIS_URL),
      concurrency: 4,
      // A report job of a killed consumer is re-delivered after this long (BullMQ's stall path).
      lockDuration: 10_000,
      stalledInterval: 10_000,
      settings: { backoffStrategy: (attemptsMade: number) => reportBackoffMs(attemptsMade) },
    },
  );
  worker.on('error', (error) => logger.warn({ err: error }, 'reporter'));
  return worker;
}

/**
 * Runs `use` with a report token minted for this one report and revoked after it, or not at all
 * for a repository outside the trust scope: a task from the API or the board for some other
 * repository gets no check run, no comment, no token.
 */
async function withReportToken(
  deps: ReporterDeps,
  taskId: string,
  repo: string,
  installationId: number | undefined,
  use: (github: RepoRequest) => Promise<void>,
): Promise<void> {
  const outOfScope = scopeRefusal(deps.trust, { repo, owner: splitRepo(repo)[0], ...(installationId !== undefined ? { installationId } : {}) });
  if (outOfScope) {
    deps.logger.info({ taskId, repo }, `not reported to GitHub: ${outOfScope} (trust in the rules file)`);
    return;
  }
  await deps.app.withFreshToken(repo, installationId, REPORT_PERMISSIONS, use, (error) =>
    deps.logger.warn({ err: error, taskId }, 'revoking a report token failed; it expires within the hour'),
  );
}

async function react(deps: ReporterDeps, job: Extract<ReportJob, { type: 'react' }>): Promise<void> {
  await withReportToken(deps, job.taskId, job.repo, job.installationId, async (github) => {
    const [owner, repo] = splitRepo(job.repo);
    await github('POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions', { owner, repo, comment_id: job.commentId, content: 'eyes' });
  });
  await deps.audit?.record(job.taskId, { type: 'github-write', what: 'reaction', githubId: job.commentId });
}

/** A refusal, in plain words, on the issue or pull request that asked (mentions neutralised: the reason names a repository, not people). */
async function notice(deps: ReporterDeps, job: Extract<ReportJob, { type: 'notice' }>): Promise<void> {
  await withReportToken(deps, job.taskId, job.repo, job.installationId, async (github) => {
    const [owner, repo] = splitRepo(job.repo);
    await github('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner, repo, issue_number: job.number, body: neutraliseMentions(job.text) });
  });
}

async function sync(deps: ReporterDeps, job: Job<Extract<ReportJob, { type: 'sync' }>>, token: string | undefined): Promise<void> {
  const { taskId } = job.data;
  const unlock = await deps.record.lock(taskId);
  if (!unlock) {
    await job.moveToDelayed(Date.now() + 500, token);
    throw new DelayedError();
  }
  try {
    const task = await deps.tasks.getJob(taskId);
    const view = task ? await viewTask(task) : await deps.cancels.tombstone<TaskView>(taskId);
    if (!view || view.number === null) return;
    await withReportToken(deps, taskId, view.repo, task?.data.installationId, async (github) => {
      const subject = await deps.record.pin(taskId, () => resolveSubject(github, view.repo, view.number!, task?.data.ref));
      const logTail = task ? (await deps.tasks.getJobLogs(taskId, 0, 29, false)).logs.reverse() : [];
      const details = detailsUrl(deps.config.PUBLIC_URL, deps.config.QUEUE_NAME, taskId);
      if (subject.type === 'pull') await syncCheckRun(deps, github, view, subject.sha, logTail, details);
      else await syncIssueComment(deps, github, view, details);
    });
  } finally {
    await unlock();
  }
}

async function syncCheckRun(
  deps: ReporterDeps,
  github: RepoRequest,
  view: TaskView,
  sha: string,
  logTail: string[],
  details: string | undefined,
): Promise<void> {
  const [owner, repo] = splitRepo(view.repo);
  const body = renderCheckRun(view, { logTail, detailsUrl: details, now: Date.now() });
  if (view.state === 'awaiting-approval') {
    // Completed as it is made (action_required), so made once and never changed: GitHub keeps a completed run as it is.
    if ((await deps.record.read(view.id)).approvalCheckRunId !== undefined) return;
    const found = await findCheckRun(deps, github, view, sha, body.name);
    const approvalId = found ?? Number((await github('POST /repos/{owner}/{repo}/check-runs', { owner, repo, head_sha: sha, ...body })).data.id);
    await deps.record.remember(view.id, 'approvalCheckRunId', approvalId);
    if (found === undefined)
      await deps.audit?.record(view.id, { type: 'github-write', what: 'check-run.created', githubId: approvalId, status: 'action_required' });
    if (found === undefined) deps.logger.info({ taskId: view.id, checkRunId: approvalId }, 'asked for approval on a check run');
    return;
  }
  let id = (await deps.record.read(view.id)).checkRunId;
  if (id === undefined) {
    id = await findCheckRun(deps, github, view, sha);
    if (id === undefined) {
      const created = await github('POST /repos/{owner}/{repo}/check-runs', { owner, repo, head_sha: sha, ...body });
      crashPoint('report-after-check-run');
      await deps.record.remember(view.id, 'checkRunId', Number(created.data.id));
      await deps.audit?.record(view.id, {
        type: 'github-write',
        what: 'check-run.created',
        githubId: Number(created.data.id),
        status: body.conclusion ?? body.status,
      });
      deps.logger.info({ taskId: view.id, checkRunId: Number(created.data.id), status: body.status }, 'created check run');
      return;
    }
    await deps.record.remember(view.id, 'checkRunId', id);
  }
  await github('PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}', { owner, repo, check_run_id: id, ...body });
  await deps.audit?.record(view.id, { type: 'github-write', what: 'check-run.updated', githubId: id, status: body.conclusion ?? body.status });
  deps.logger.debug({ taskId: view.id, checkRunId: id, status: body.status, conclusion: body.conclusion }, 'updated check run');
}

/** A check run this App made for this task on this commit, if any (found by external_id). */
async function findCheckRun(deps: ReporterDeps, github: RepoRequest, view: TaskView, sha: string, name = checkRunName(view.kind)): Promise<number | undefined> {
  const [owner, repo] = splitRepo(view.repo);
  const { data } = await github('GET /repos/{owner}/{repo}/commits/{ref}/check-runs', {
    owner,
    repo,
    ref: sha,
    check_name: name,
    filter: 'all',
    per_page: 100,
  });
  const mine = data.check_runs.find((run) => run.external_id === view.id && (run.app?.id === undefined || String(run.app.id) === deps.app.appId));
  return mine ? Number(mine.id) : undefined;
}

async function syncIssueComment(deps: ReporterDeps, github: RepoRequest, view: TaskView, details: string | undefined): Promise<void> {
  if (view.state === 'awaiting-approval') {
    await commentOnce(deps, github, view, 'approvalCommentId', approvalMarker(view.id), () => renderApprovalComment(view));
    return;
  }
  if (view.state !== 'failed' && !(view.state === 'completed' && deps.config.REPORT_SUCCESS_COMMENT)) return;
  await commentOnce(deps, github, view, 'commentId', commentMarker(view.id), () =>
    renderIssueComment(view, { detailsUrl: details, rerunHint: `comment the command again, or \`berth tasks replay ${view.id}\`` }),
  );
}

/** One comment per task and purpose, found again by its marker after a crash between posting and recording. */
async function commentOnce(
  deps: ReporterDeps,
  github: RepoRequest,
  view: TaskView,
  field: 'commentId' | 'approvalCommentId',
  marker: string,
  render: () => string,
): Promise<void> {
  if ((await deps.record.read(view.id))[field] !== undefined) return;
  const [owner, repo] = splitRepo(view.repo);
  for (let page = 1; page <= 10; page++) {
    const { data } = await github('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', {
      owner,
      repo,
      issue_number: view.number!,
      since: view.createdAt,
      per_page: 100,
      page,
    });
    // Only a comment the App itself made counts: anyone can post the marker to suppress berth's comment.
    const mine = data.find((comment) => comment.body?.includes(marker) && String(comment.performed_via_github_app?.id) === deps.app.appId);
    if (mine) {
      await deps.record.remember(view.id, field, Number(mine.id));
      return;
    }
    if (data.length < 100) break;
  }
  const created = await github('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner, repo, issue_number: view.number!, body: render() });
  crashPoint('report-after-comment');
  await deps.record.remember(view.id, field, Number(created.data.id));
  await deps.audit?.record(view.id, { type: 'github-write', what: 'comment', githubId: Number(created.data.id) });
  deps.logger.info({ taskId: view.id, commentId: created.data.id, purpose: field }, 'commented on the issue');
}
