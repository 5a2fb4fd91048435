import { z } from 'zod';
import type { Rule, WebhookRules } from '../../core/webhook-rules.js';
import type { Actor } from './trust.js';
import type { RepoRole } from '../../core/permission.js';
import { CANCEL_ACTION } from '../../github/check-run.js';
import { APPROVE_ACTION, APPROVE_COMMAND } from '../../core/approval.js';
import { clipEncoded, PROMPT_MAX_BYTES, UNTRUSTED_MAX_BYTES, type TaskData } from '../../core/task.js';

type UntrustedText = NonNullable<TaskData['untrusted']>;

/** What a delivery asks for, before trust is decided. */
export interface TaskIntent {
  type: 'task';
  kind: string;
  repo: string;
  owner: string;
  number: number;
  ref?: string;
  prompt?: string;
  /** The issue author's text, kept apart from the instruction (see docs/security.md). */
  untrusted?: UntrustedText;
  installationId?: number;
  actor: Actor;
  /** The matched rule's least role for the actor, when it names one. */
  permission?: RepoRole;
  /** The matched rule's start priority level, when it names one (else the kind's). */
  priority?: number;
  fork: boolean;
  supersede: boolean;
  /** The comment that asked for the task, acknowledged with a 👀 reaction. */
  commentId?: number;
}

/** A click on one of berth's own check runs: Re-run replays the task, Cancel cancels it, Approve runs one awaiting approval. */
export interface CheckRunIntent {
  type: 'check-run';
  action: 'rerun' | 'cancel' | 'approve';
  taskId: string;
  appId: number;
  /** The clicked check run's own commit: a Re-run replays that one, not the pull request's head at click time. */
  headSha?: string;
  repo: string;
  owner: string;
  installationId?: number;
  actor: Actor;
}

/** `/agent approve` on an issue or pull request: runs what waits there for approval. */
export interface ApproveIntent {
  type: 'approve';
  repo: string;
  owner: string;
  number: number;
  installationId?: number;
  actor: Actor;
  commentId: number;
}

export type Interpretation = TaskIntent | CheckRunIntent | ApproveIntent | { type: 'ignored'; reason: string } | { type: 'invalid'; message: string };

const user = z.object({ login: z.string().max(256), type: z.string().max(64) });
const repository = z.object({ full_name: z.string().max(300), owner: z.object({ login: z.string().max(256) }) });
const installation = z.object({ id: z.number().int().positive() }).optional();
const text = z.string().max(1_000_000).nullable().optional();
const pullRequest = z.object({
  number: z.number().int().positive(),
  title: z.string().max(10_000).optional(),
  body: text,
  author_association: z.string().max(64).optional(),
  head: z.object({
    sha: z.string().max(64),
    repo: z
      .object({ full_name: z.string().max(300) })
      .nullable()
      .optional(),
  }),
});
const base = { repository, sender: user, installation };

const payloads = {
  'issues.labeled': z.object({
    ...base,
    label: z.object({ name: z.string().max(256) }),
    issue: z.object({ number: z.number().int().positive(), title: z.string().max(10_000), body: text }),
  }),
  'pull_request.labeled': z.object({ ...base, label: z.object({ name: z.string().max(256) }), pull_request: pullRequest }),
  'pull_request.review_requested': z.object({ ...base, requested_reviewer: z.object({ login: z.string().max(256) }).optional(), pull_request: pullRequest }),
  'pull_request.synchronize': z.object({ ...base, pull_request: pullRequest }),
  'issue_comment.created': z.object({
    ...base,
    comment: z.object({ id: z.number().int().positive(), body: z.string().max(1_000_000), user, author_association: z.string().max(64) }),
    issue: z.object({ number: z.number().int().positive(), pull_request: z.object({}).optional() }),
  }),
} as const;
type EventKey = keyof typeof payloads;

const checkRunPayload = z.object({
  ...base,
  check_run: z.object({
    external_id: z.string().max(200).nullable().optional(),
    head_sha: z
      .string()
      .regex(/^[0-9a-f]{40}$/)
      .optional(),
    app: z.object({ id: z.number().int() }),
  }),
  requested_action: z.object({ identifier: z.string().max(64) }).optional(),
});

const clip = (s: string) => clipEncoded(s, PROMPT_MAX_BYTES);

/** Matches a delivery against the rules. Pure: no I/O, so every example payload is unit-testable. */
export function interpretDelivery(event: string, payload: Record<string, unknown>, rules: WebhookRules): Interpretation {
  if (event === 'ping') return { type: 'ignored', reason: 'ping' };
  const action = typeof payload.action === 'string' ? payload.action : '';
  const key = `${event}.${action}`;
  if (key === 'check_run.rerequested' || key === 'check_run.requested_action') return interpretCheckRun(action, payload);
  if (key === 'issue_comment.created') {
    const approve = interpretApprove(payload);
    if (approve) return approve;
  }
  const candidates = rules.rules.filter((r) => r.on === key);
  if (candidates.length === 0) return { type: 'ignored', reason: `${action ? key : event} is not acted on` };
  const parsed = payloads[key as EventKey].safeParse(payload);
  if (!parsed.success)
    return {
      type: 'invalid',
      message: `malformed ${key} payload: ${parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
    };
  // biome-ignore lint/suspicious/noExplicitAny: a GitHub payload walked by path; every field read is checked where it is read
  const p = parsed.data as Record<string, any>;
  const repo: string = p.repository.full_name;
  const common = {
    type: 'task' as const,
    repo,
    owner: p.repository.owner.login as string,
    installationId: p.installation?.id as number | undefined,
    supersede: false,
  };
  const pr = p.pull_request as z.infer<typeof pullRequest> | undefined;
  const fork = pr ? pr.head.repo?.full_name !== repo : false;

  for (const rule of candidates) {
    const intent = matchRule(rule, p, rules.botLogin);
    if (!intent) continue;
    return {
      ...common,
      ...intent,
      fork,
      ...(rule.permission ? { permission: rule.permission } : {}),
      ...(rule.priority !== undefined ? { priority: rule.priority } : {}),
    };
  }
  return { type: 'ignored', reason: `no rule matches this ${key}` };
}

/** The built-in approve command, whatever the rules say; null when the comment is something else. */
function interpretApprove(payload: Record<string, unknown>): Interpretation | null {
  const parsed = payloads['issue_comment.created'].safeParse(payload);
  if (!parsed.success) return null;
  const p = parsed.data;
  const firstLine = p.comment.body.trim().split('\n', 1)[0]!.trim();
  if (firstLine !== APPROVE_COMMAND) return null;
  return {
    type: 'approve',
    repo: p.repository.full_name,
    owner: p.repository.owner.login,
    number: p.issue.number,
    installationId: p.installation?.id,
    actor: { login: p.comment.user.login, type: p.comment.user.type, association: p.comment.author_association },
    commentId: p.comment.id,
  };
}

function interpretCheckRun(action: string, payload: Record<string, unknown>): Interpretation {
  const parsed = checkRunPayload.safeParse(payload);
  if (!parsed.success)
    return {
      type: 'invalid',
      message: `malformed check_run.${action} payload: ${parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
    };
  const p = parsed.data;
  const taskId = p.check_run.external_id ?? '';
  if (!taskId) return { type: 'ignored', reason: "check run has no external_id (not one of berth's)" };
  let intended: CheckRunIntent['action'];
  if (action === 'rerequested') intended = 'rerun';
  else if (p.requested_action?.identifier === CANCEL_ACTION) intended = 'cancel';
  else if (p.requested_action?.identifier === APPROVE_ACTION) intended = 'approve';
  else return { type: 'ignored', reason: `check run action '${p.requested_action?.identifier ?? ''}' is not berth's` };
  return {
    type: 'check-run',
    action: intended,
    taskId,
    appId: p.check_run.app.id,
    ...(p.check_run.head_sha ? { headSha: p.check_run.head_sha } : {}),
    repo: p.repository.full_name,
    owner: p.repository.owner.login,
    installationId: p.installation?.id,
    actor: { login: p.sender.login, type: p.sender.type },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the same payload
function matchRule(rule: Rule, p: Record<string, any>, botLogin: string): Omit<TaskIntent, 'type' | 'repo' | 'owner' | 'installationId' | 'fork'> | null {
  const sender: Actor = { login: p.sender.login, type: p.sender.type };
  switch (rule.on) {
    case 'issues.labeled':
      if (p.label.name !== rule.label) return null;
      return {
        kind: rule.kind,
        number: p.issue.number,
        // The labeller is trusted; the issue's author was never checked: their text is data.
        ...(rule.issueText
          ? {
              untrusted: {
                source: 'issue' as const,
                title: clipEncoded(p.issue.title, 2_048),
                body: clipEncoded(p.issue.body ?? '', UNTRUSTED_MAX_BYTES - 2_048),
              },
            }
          : {}),
        actor: sender,
        supersede: false,
      };
    case 'pull_request.labeled':
      if (p.label.name !== rule.label) return null;
      return { kind: rule.kind, number: p.pull_request.number, ref: p.pull_request.head.sha, actor: sender, supersede: false };
    case 'pull_request.review_requested':
      if (p.requested_reviewer?.login?.toLowerCase() !== botLogin.toLowerCase()) return null;
      return { kind: rule.kind, number: p.pull_request.number, ref: p.pull_request.head.sha, actor: sender, supersede: false };
    case 'pull_request.synchronize':
      // The pusher is the actor: their role on the base repository decides (a fork's pusher has none).
      return {
        kind: rule.kind,
        number: p.pull_request.number,
        ref: p.pull_request.head.sha,
        actor: sender,
        supersede: rule.supersede,
      };
    case 'issue_comment.created': {
      const body = String(p.comment.body).trim();
      const firstLine = body.split('\n', 1)[0]!.trim();
      if (firstLine !== rule.command && !firstLine.startsWith(`${rule.command} `)) return null;
      const args = body.slice(rule.command.length).trim();
      return {
        kind: rule.kind,
        number: p.issue.number,
        ...(p.issue.pull_request ? { ref: `refs/pull/${p.issue.number}/head` } : {}),
        ...(rule.promptFromArguments && args ? { prompt: clip(args) } : {}),
        actor: { login: p.comment.user.login, type: p.comment.user.type, association: p.comment.author_association },
        supersede: false,
        commentId: p.comment.id,
      };
    }
  }
}
