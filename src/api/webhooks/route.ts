import { signatureMatches } from './signature.js';
import { DeliveryIntake } from './intake.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { CancelBook } from '../../core/cancel.js';
import { berthKeys } from '../../core/keys.js';
import type { TaskQueue } from '../../core/queue.js';
import type { WebhookRules } from '../../core/webhook-rules.js';
import { agentCommandFor, type Config } from '../../core/config.js';
import { cancelTask } from '../tasks/cancel.js';
import { submitTask, type SubmitConfig } from '../tasks/submit.js';
import { interpretDelivery, type ApproveIntent, type CheckRunIntent, type Interpretation, type TaskIntent } from './interpret.js';
import { judgeRole, screenDelivery, type Actor, type TrustDecision } from './trust.js';
import type { ActorRoles } from '../../github/permissions.js';
import type { GithubReports } from '../../github/report-queue.js';
import { spendPeriod } from '../../core/spend-budgets.js';
import { overAllMessage, overRepoMessage, type Capacity } from '../../core/backpressure.js';
import type { TaskIndex } from '../../core/task-index.js';
import { replayTask } from '../tasks/retry.js';
import { approveTask, type ApprovalCommits, type ApproveResult } from '../tasks/approve.js';
import { awaitsApproval, type Approval } from '../../core/approval.js';
import type { RepoRole } from '../../core/permission.js';
import { GithubRecord } from '../../github/record.js';
import type { PullHeads } from '../../github/pull-heads.js';
import type { AuditTrail } from '../../core/audit.js';

const DELIVERY_ID = /^[A-Za-z0-9-]{1,100}$/;
const EVENT_NAME = /^[a-z_]{1,64}$/;

export interface GithubWebhookOptions {
  secrets: string[];
  rules: WebhookRules;
  queue: TaskQueue;
  redis: Redis;
  cancels: CancelBook;
  config: SubmitConfig & Pick<Config, 'MAX_QUEUED_PER_REPO' | 'MAX_QUEUED_TASKS' | 'FAIR_START'>;
  /** Outbound GitHub reports (👀, check runs); null without App credentials. */
  reports?: GithubReports | null;
  /** berth's own App id: only its check runs' buttons are acted on. */
  appId?: string;
  /** Largest delivery accepted (WEBHOOK_BODY_LIMIT). */
  bodyLimit: number;
  capacity?: Capacity;
  index?: TaskIndex;
  /** Asks GitHub for an actor's role on a repository; null without App credentials (then nothing is trusted). */
  roles?: ActorRoles | null;
  /** A pull request's head now: an approval is bound to the commit it was shown for. */
  heads?: PullHeads | null;
  audit?: AuditTrail;
}

/**
 * POST /webhooks/github: verify → parse → match a rule → trust → enqueue. The signature is checked
 * over the raw body bytes before anything else reads them; nothing is queued for a delivery that
 * fails any step. Registered in its own scope so its raw-body parser touches no other route.
 */
export async function githubWebhookRoute(app: FastifyInstance, opts: GithubWebhookOptions): Promise<void> {
  const keys = berthKeys(opts.queue.name);
  const intake = new DeliveryIntake(opts.redis, opts.queue, opts.config.KEEP_COMPLETED);

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (_request, body, done) => done(null, body));

  // One log line per delivery (below), not Fastify's two per request: at thousands of deliveries a
  // second the logger was a measurable share of the route's CPU. Warnings and errors still log.
  // A delivery without a signature is refused before its body is read: unsigned uploads in flight
  // cost nothing but their headers, however many and however large.
  const refuseUnsigned = async (request: FastifyRequest, reply: FastifyReply) => {
    const signature = request.headers['x-hub-signature-256'];
    if (typeof signature === 'string' && signature.startsWith('sha256=') && signature.length === 71) return;
    reply.header('connection', 'close');
    return reply.status(401).send({ error: 'Unauthorized', message: 'missing or malformed X-Hub-Signature-256 (sha1 signatures are not accepted)' });
  };
  app.post('/webhooks/github', { bodyLimit: opts.bodyLimit, logLevel: 'warn', onRequest: refuseUnsigned }, async (request, reply) => {
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    // Present and well formed: refuseUnsigned answered every request without one.
    const signature = request.headers['x-hub-signature-256'] as string;
    if (!signatureMatches(raw, signature, opts.secrets)) {
      request.log.warn({ delivery: request.headers['x-github-delivery'] }, 'webhook signature does not match');
      return reply.status(401).send({ error: 'Unauthorized', message: 'signature does not match' });
    }

    const event = request.headers['x-github-event'];
    const delivery = request.headers['x-github-delivery'];
    if (typeof event !== 'string' || !EVENT_NAME.test(event))
      return reply.status(400).send({ error: 'Bad Request', message: 'missing or malformed X-GitHub-Event' });
    if (typeof delivery !== 'string' || !DELIVERY_ID.test(delivery))
      return reply.status(400).send({ error: 'Bad Request', message: 'missing or malformed X-GitHub-Delivery' });

    // Every final answer from here on records the delivery as received (the recovery asks GitHub
    // again only for deliveries berth never answered); an error answer (a 503) does not.
    const final = async (status: number, body: Record<string, unknown>) => {
      await intake.answered(delivery);
      return reply.status(status).send(body);
    };

    const intent = interpretBody(raw, event, opts.rules);
    if (intent.type === 'invalid') return final(400, { error: 'Bad Request', message: intent.message });
    if (intent.type === 'ignored') return final(202, { ignored: intent.reason });
    if (intent.type === 'check-run') {
      // The same signed click under a new delivery id is a replay, not a second click.
      const original = await intake.firstSeenAs({ id: delivery, digest: signature.slice(7) });
      if (original) {
        request.log.warn({ delivery, original }, 'a check run delivery body seen before under another delivery id; ignored as a replay');
        return final(202, { ignored: `the same body was delivered before as ${original}`, duplicate: 'replayed body' });
      }
      const answer = await checkRunAction(opts, intent, delivery);
      app.log.info({ delivery, event, taskId: intent.taskId, action: intent.action, ...answer }, 'check run button');
      return final(202, answer);
    }

    if (intent.type === 'approve') {
      const answer = await approveCommand(opts, intent);
      app.log.info({ delivery, event, repo: intent.repo, number: intent.number, actor: intent.actor.login, ...answer }, 'approve command');
      if (opts.reports && !('ignored' in answer))
        await opts.reports.react({
          taskId: `approve-${delivery}`,
          repo: intent.repo,
          commentId: intent.commentId,
          ...(intent.installationId ? { installationId: intent.installationId } : {}),
        });
      return final(202, answer);
    }

    const trust = await decideTrust(opts, intent, screenDelivery(opts.rules.trust, intent));
    // In scope but below the rule's role: held for a person who has it, when approvals are on.
    const approval =
      !trust.trusted && trust.approvable && opts.rules.trust.approval.enabled ? pendingApproval(opts, intent, trust.detail, trust.approvable) : undefined;
    if (!trust.trusted && !approval) {
      app.log.info({ delivery, event, repo: intent.repo, actor: intent.actor.login, detail: trust.detail }, 'ignored untrusted delivery');
      return final(202, { ignored: trust.reason, detail: trust.detail });
    }
    if (!agentCommandFor(opts.config, intent.kind)) return final(202, { ignored: `no AGENT_COMMAND_${intent.kind.toUpperCase()} configured` });

    // berth's bookkeeping in one server-side step: the body's digest (the verified signature is an
    // HMAC of exactly these bytes), the index, and both queue caps. A superseding task replaces the
    // one it cancels: no cap for it.
    const spent = await opts.capacity?.spendRefusal({ repo: intent.repo, installationId: intent.installationId });
    if (spent) {
      request.log.warn({ delivery, event, repo: intent.repo, reason: spent }, 'delivery ignored: a budget is spent');
      await refusalNotice(opts, intent, delivery, spent);
      return final(202, { ignored: spent });
    }
    const taskId = `gh-${delivery}`;
    const caps = intent.supersede
      ? { repo: 0, all: 0 }
      : { repo: opts.config.MAX_QUEUED_PER_REPO, all: opts.config.MAX_QUEUED_TASKS, fair: opts.config.FAIR_START };
    const admitted = await intake.admit(
      { id: delivery, digest: signature.slice(7) },
      {
        id: taskId,
        repo: intent.repo,
        kind: intent.kind,
        at: Date.now(),
        dedupeId: dedupeId(intent),
        subjectKey: keys.subject(intent.repo, intent.number, intent.kind),
        supersede: intent.supersede,
      },
      caps,
    );
    if (admitted.status === 'replay') {
      // A signed body replayed under a new X-GitHub-Delivery id is not a new event (GitHub's own
      // redeliveries keep the id, and the job id folds those).
      request.log.warn({ delivery, original: admitted.original }, 'a delivery body seen before under another delivery id; ignored as a replay');
      return final(202, { ignored: `the same body was delivered before as ${admitted.original}`, duplicate: 'replayed body' });
    }
    const overCap =
      admitted.status === 'over-all'
        ? overAllMessage(admitted.queued, opts.config.MAX_QUEUED_TASKS)
        : admitted.status === 'over-cap'
          ? overRepoMessage(intent.repo, admitted.queued, opts.config.MAX_QUEUED_PER_REPO)
          : null;
    if (overCap) {
      request.log.warn({ delivery, event, repo: intent.repo, reason: overCap }, 'delivery ignored: berth is over its queue cap');
      await refusalNotice(opts, intent, delivery, overCap);
      return final(202, { ignored: overCap });
    }

    const previous = admitted.status === 'ok' ? admitted.previous : null;
    const superseded = intent.supersede && previous ? await supersede(opts, intent, previous) : null;
    const result = await submitTask(
      opts.queue,
      opts.config,
      {
        kind: intent.kind,
        repo: intent.repo,
        number: intent.number,
        ...(intent.ref ? { ref: intent.ref } : {}),
        ...(intent.prompt ? { prompt: intent.prompt } : {}),
      },
      // A delivery answered for the first time cannot name an existing job: no need to ask Redis whose it is.
      {
        ...(intent.untrusted ? { untrusted: intent.untrusted } : {}),
        fresh: admitted.firstTime,
        source: 'github',
        jobId: taskId,
        deliveryId: delivery,
        installationId: intent.installationId,
        deduplicationId: dedupeId(intent),
        ...(intent.commentId ? { commentId: intent.commentId } : {}),
        ...(admitted.status === 'ok' && admitted.rank ? { rank: admitted.rank } : {}),
        ...(intent.priority !== undefined ? { level: intent.priority } : {}),
        ...(approval ? { approval } : {}),
        actor: intent.actor.login,
        ...(trust.trusted && trust.role ? { permission: trust.role } : {}),
      },
      { audit: opts.audit },
    );
    // A trusted request for what already waits for approval is that approval.
    if (!approval && result.status === 'existing' && result.state === 'awaiting-approval') {
      const approved = await approveAudited(opts, result.id, intent.actor.login, await approvalCommits(opts, result.id, intent));
      app.log.info(
        { delivery, event, id: result.id, actor: intent.actor.login, status: approved.status },
        'a trusted request approved the task awaiting approval',
      );
    }
    if ((result.status === 'created' || result.status === 'existing') && opts.reports) {
      // The comment is acknowledged even when its task was already queued: berth did see it.
      if (intent.commentId)
        await opts.reports.react({
          taskId: result.id,
          repo: intent.repo,
          commentId: intent.commentId,
          ...(intent.installationId ? { installationId: intent.installationId } : {}),
        });
    }
    if (result.status === 'created') {
      app.log.info(
        {
          delivery,
          event,
          id: result.id,
          kind: intent.kind,
          repo: intent.repo,
          number: intent.number,
          ...(approval ? { awaitingApproval: approval.reason } : {}),
        },
        approval ? 'task from webhook awaits approval' : 'queued task from webhook',
      );
      // Answered now that its job exists: the recovery never redelivers it, even once the job is removed.
      await intake.answered(delivery);
      return reply.status(202).send({ id: result.id, state: result.state, ...(superseded ? { superseded } : {}) });
    }
    if (result.status === 'existing') {
      return final(202, {
        id: result.id,
        state: result.state,
        ...(result.deduplicated
          ? { ignored: `a ${intent.kind} task for ${intent.repo}#${intent.number} is already queued` }
          : { duplicate: 'delivery already received' }),
      });
    }
    return reply.status(202).send({ ignored: 'task not queued' });
  });
}

/**
 * Re-run replays the task as a new one (its own check run); Cancel cancels it. Only buttons of
 * berth's own App's check runs count, and the clicker passes the same trust rules as any delivery
 * (GitHub shows these buttons only to people with write access, like labels).
 */
async function checkRunAction(opts: GithubWebhookOptions, intent: CheckRunIntent, delivery: string): Promise<Record<string, unknown>> {
  if (!opts.appId || String(intent.appId) !== opts.appId) return { ignored: "not a check run of berth's GitHub App" };
  const job = await opts.queue.getJob(intent.taskId);
  if (job && job.data.repo.toLowerCase() !== intent.repo.toLowerCase()) return { ignored: 'the check run belongs to another repository' };
  // The clicker needs the same role as whoever may start a task of this kind (unknown kind: the default);
  // an approver, the role the waiting task needs.
  const kind = job?.data.kind ?? '';
  const permission = intent.action === 'approve' ? job?.data.approval?.minimum : undefined;
  const trust = await decideTrust(opts, intent, screenDelivery(opts.rules.trust, { ...intent, fork: false, kind, ...(permission ? { permission } : {}) }));
  if (!trust.trusted) {
    if (intent.action === 'approve' && job) await opts.audit?.record(intent.taskId, { type: 'approval-refused', by: intent.actor.login, reason: trust.detail });
    return { ignored: trust.reason, detail: trust.detail };
  }
  if (intent.action === 'approve') {
    if (!job) return { ignored: `no task ${intent.taskId}` };
    return approvalAnswer(
      await approveAudited(opts, intent.taskId, intent.actor.login, {
        ...(await approvalCommits(opts, intent.taskId, { repo: intent.repo, number: job.data.number, installationId: intent.installationId })),
        ...(intent.headSha ? { clicked: intent.headSha } : {}),
      }),
      intent.actor.login,
    );
  }
  if (intent.action === 'cancel') {
    await opts.audit?.record(intent.taskId, { type: 'cancelled', by: intent.actor.login, detail: 'the Cancel button on GitHub' });
    const result = await cancelTask(opts.queue, opts.cancels, intent.taskId, 0, {
      cause: 'cancelled',
      detail: `cancelled from GitHub by ${intent.actor.login}`,
    });
    if (result.status === 'not-found') return { ignored: `no task ${intent.taskId}` };
    return { id: intent.taskId, state: result.state };
  }
  const replay = await replayTask(
    opts.queue,
    opts.config,
    intent.taskId,
    `rerun:${delivery}`,
    { capacity: opts.capacity, index: opts.index, audit: opts.audit },
    intent.headSha ? { ref: intent.headSha } : {},
  );
  if (replay.status === 'not-found') return { ignored: `task ${intent.taskId} is gone (kept for KEEP_COMPLETED)` };
  if (replay.status !== 'created' && replay.status !== 'existing') return { ignored: 'replay could not be queued' };
  return { id: replay.id, state: replay.state, replayOf: intent.taskId };
}

/** An approval, and what came of it, in the audit trail. */
async function approveAudited(opts: GithubWebhookOptions, taskId: string, approver: string, commits: ApprovalCommits): Promise<ApproveResult> {
  const result = await approveTask(opts.queue, opts.cancels, taskId, approver, commits);
  if (result.status === 'approved')
    await opts.audit?.record(taskId, { type: 'approved', by: approver, ...(result.approvedSha ? { sha: result.approvedSha } : {}) });
  else if (result.status !== 'not-found')
    await opts.audit?.record(taskId, { type: 'approval-refused', by: approver, reason: approvalAnswer(result, approver).ignored as string });
  return result;
}

/** A held request's approval: who asked, why they could not start it, who may lift it, until when. */
function pendingApproval(opts: GithubWebhookOptions, intent: TaskIntent, reason: string, minimum: RepoRole): Approval {
  return {
    state: 'pending',
    requestedBy: intent.actor.login,
    reason,
    minimum,
    expiresAt: Date.now() + opts.rules.trust.approval.expireAfterHours * 3_600_000,
  };
}

/** The commits an approval is bound to: the one the task is pinned to, and the pull request's head now. */
async function approvalCommits(
  opts: GithubWebhookOptions,
  taskId: string,
  at: { repo: string; number?: number | undefined; installationId?: number | undefined },
): Promise<ApprovalCommits> {
  const subject = (await new GithubRecord(opts.redis, opts.queue.name, opts.config.KEEP_COMPLETED).read(taskId)).subject;
  if (subject?.type !== 'pull') return {};
  const head = opts.heads && at.number !== undefined ? await opts.heads.headOf(at.repo, at.number, at.installationId).catch(() => null) : null;
  return { pinned: subject.sha, ...(head ? { head } : {}) };
}

/**
 * `/agent approve`: runs what waits for approval on that issue or pull request, each kind's task
 * (the subject pointers name them), when the commenter has the role the task needs.
 */
async function approveCommand(opts: GithubWebhookOptions, intent: ApproveIntent): Promise<Record<string, unknown>> {
  const keys = berthKeys(opts.queue.name);
  const kinds = [...new Set(opts.rules.rules.map((rule) => rule.kind))];
  const ids = (await Promise.all(kinds.map((kind) => opts.redis.get(keys.subject(intent.repo, intent.number, kind))))).filter((id): id is string => !!id);
  const waiting = [];
  for (const id of ids) {
    const job = await opts.queue.getJob(id);
    if (job?.data.approval && awaitsApproval(job.data) && job.data.repo.toLowerCase() === intent.repo.toLowerCase()) waiting.push(job);
  }
  if (waiting.length === 0) return { ignored: `nothing awaits approval on ${intent.repo}#${intent.number}` };
  const answers = [];
  for (const job of waiting) {
    const trust = await decideTrust(
      opts,
      intent,
      screenDelivery(opts.rules.trust, { ...intent, fork: false, kind: job.data.kind, permission: job.data.approval!.minimum }),
    );
    if (!trust.trusted) {
      await opts.audit?.record(job.id!, { type: 'approval-refused', by: intent.actor.login, reason: trust.detail });
      answers.push({ id: job.id, ignored: trust.reason, detail: trust.detail });
      continue;
    }
    answers.push(
      approvalAnswer(
        await approveTask(opts.queue, opts.cancels, job.id!, intent.actor.login, await approvalCommits(opts, job.id!, intent)),
        intent.actor.login,
      ),
    );
  }
  return answers.length === 1 ? answers[0]! : { tasks: answers };
}

function approvalAnswer(result: ApproveResult, approver: string): Record<string, unknown> {
  switch (result.status) {
    case 'approved':
      return { id: result.id, approvedBy: approver, ...(result.approvedSha ? { sha: result.approvedSha } : {}) };
    case 'not-found':
      return { ignored: 'no such task' };
    case 'not-pending':
      return { id: result.id, ignored: `task ${result.id} does not await approval (it is ${result.state})` };
    case 'other-commit':
      return { id: result.id, ignored: `that approval was shown for ${result.clicked.slice(0, 7)}; the task is for ${result.pinned.slice(0, 7)}` };
    case 'moved':
      return {
        id: result.id,
        ignored: `the pull request moved to ${result.head.slice(0, 7)} after approval was asked for ${result.pinned.slice(0, 7)}; the request was dropped, ask again on the new commit`,
      };
  }
}

/**
 * Trust on the role GitHub reports for the actor on the repository, after what the payload alone
 * settles. Without App credentials berth cannot ask, so nothing is trusted.
 */
async function decideTrust(
  opts: GithubWebhookOptions,
  target: { repo: string; installationId?: number; actor: Actor },
  screen: ReturnType<typeof screenDelivery>,
): Promise<TrustDecision> {
  if (screen.trusted !== 'ask') return screen;
  if (!opts.roles) return { trusted: false, reason: 'untrusted sender', detail: "berth has no GitHub App credentials to ask for the actor's permission" };
  return judgeRole(target.actor.login, target.repo, screen.minimum, await opts.roles.roleOf(target.repo, target.actor.login, target.installationId));
}

/**
 * The body as JSON, then what it asks for: one synchronous step, so the handler holds only the
 * small intent (never the parsed 25 KB payload) across its awaits.
 */
function interpretBody(raw: Buffer, event: string, rules: WebhookRules): Interpretation {
  let payload: unknown;
  try {
    payload = JSON.parse(raw.toString('utf8'));
  } catch {
    return { type: 'invalid', message: 'body is not valid JSON' };
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return { type: 'invalid', message: 'body must be a JSON object' };
  return interpretDelivery(event, payload as Record<string, unknown>, rules);
}

/**
 * Says on the issue or pull request why its request did not become a task, so the person who
 * asked is not left guessing (once per subject and day: the reports queue folds the rest).
 */
async function refusalNotice(opts: GithubWebhookOptions, intent: TaskIntent, delivery: string, reason: string): Promise<void> {
  await opts.reports?.notice(
    {
      taskId: `gh-${delivery}`,
      repo: intent.repo,
      number: intent.number,
      ...(intent.installationId ? { installationId: intent.installationId } : {}),
      text: `berth did not start a \`${intent.kind}\` task for this: ${reason}.`,
    },
    spendPeriod('day'),
  );
}

/** One waiting-or-running task per (repo, number, kind). */
export function dedupeId(intent: Pick<TaskIntent, 'repo' | 'number' | 'kind'>): string {
  return `${intent.repo}#${intent.number}/${intent.kind}`;
}

/** Cancels the PR's current task of this kind (through the cancel path) so a new one can queue. */
async function supersede(opts: GithubWebhookOptions, intent: TaskIntent, previous: string): Promise<string | null> {
  const result = await cancelTask(opts.queue, opts.cancels, previous, 0, {
    cause: 'superseded',
    detail: `superseded by a push to ${intent.ref?.slice(0, 12) ?? 'the pull request'}`,
  });
  await opts.queue.removeDeduplicationKey(dedupeId(intent));
  return result.status === 'cancelled' || result.status === 'cancelling' ? previous : null;
}
