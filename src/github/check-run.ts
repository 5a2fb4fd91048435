import { codeSpan, neutraliseMentions } from '../core/markdown.js';
import { maskTokens } from '../core/secret-mask.js';
import type { TaskView } from '../core/task-view.js';
import { failureInWords } from '../core/failure.js';
import { secondsInWords } from '../core/duration.js';
import { formatTokens, formatUsd } from '../core/spend.js';
import { APPROVE_ACTION, APPROVE_COMMAND } from '../core/approval.js';

/** GitHub's limits: summary and text up to 65535 characters, action label 20, description 40. */
const OUTPUT_MAX = 65_000;
const TITLE_MAX = 200;

export interface CheckRunBody {
  name: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: 'success' | 'failure' | 'neutral' | 'cancelled' | 'timed_out' | 'action_required';
  started_at?: string;
  completed_at?: string;
  details_url?: string;
  external_id: string;
  output: { title: string; summary: string; text?: string };
  actions: Array<{ label: string; description: string; identifier: string }>;
}

export const CANCEL_ACTION = 'berth-cancel';

export function checkRunName(kind: string): string {
  return `berth/${kind}`;
}

/**
 * The check run that asks for approval. A check run of its own: GitHub never lets a completed one
 * (and `action_required` is a conclusion) go back to queued, so the approved task's run is a new one.
 */
export function approvalCheckRunName(kind: string): string {
  return `berth/${kind}: approval`;
}

/** ", for 2 min 30 s so far": how long the current attempt has run, as of `now`. */
function running(view: TaskView, now: number | undefined): string {
  if (now === undefined || !view.startedAt) return '';
  return `, for ${since(view.startedAt, now)} so far`;
}

function duration(view: TaskView): string | null {
  return view.startedAt && view.finishedAt ? since(view.startedAt, Date.parse(view.finishedAt)) : null;
}

/** From an ISO start to `until` (ms), in words. */
function since(startedAt: string, until: number): string {
  return secondsInWords(Math.max(0, Math.round((until - Date.parse(startedAt)) / 1000)));
}

/** The agent's own summary: `result.summary` when it gave one, else a string result. */
function agentSummaryText(result: unknown): string | null {
  if (typeof result === 'string' && result.trim()) return result.trim();
  if (result && typeof result === 'object' && typeof (result as { summary?: unknown }).summary === 'string')
    return (result as { summary: string }).summary.trim() || null;
  return null;
}

/**
 * The agent's summary as berth posts it: the agent read text from strangers, so its words may carry
 * someone else's `@team` mention; mentions are neutralised (its markdown is kept).
 */
export function agentSummary(result: unknown): string | null {
  const text = agentSummaryText(result);
  return text === null ? null : neutraliseMentions(text);
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function tail(lines: string[]): string | undefined {
  const kept = lines.filter((l) => l.trim()).slice(-30);
  if (kept.length === 0) return undefined;
  return clip(`Last lines of output:\n\n\`\`\`\n${kept.join('\n').replace(/```/g, "'''")}\n\`\`\``, OUTPUT_MAX);
}

/**
 * The check run that shows `view` on GitHub. Pure: the same task state always renders the same
 * body, which is what makes every sync idempotent.
 */
/** The check run for a task's state; every text in it masked for GitHub-shaped tokens, whatever put them there. */
export function renderCheckRun(view: TaskView, options: { logTail: string[]; detailsUrl?: string; now?: number }): CheckRunBody {
  const body = renderCheckRunText(view, options);
  const { title, summary, text } = body.output;
  return { ...body, output: { title: maskTokens(title), summary: maskTokens(summary), ...(text !== undefined ? { text: maskTokens(text) } : {}) } };
}

function renderCheckRunText(view: TaskView, options: { logTail: string[]; detailsUrl?: string; now?: number }): CheckRunBody {
  const base = {
    name: checkRunName(view.kind),
    external_id: view.id,
    ...(options.detailsUrl ? { details_url: options.detailsUrl } : {}),
  };
  const attempts = `attempt ${Math.max(1, view.attempts)} of ${view.maxAttempts}`;
  const cancel = [{ label: 'Cancel', description: 'Stop this berth task', identifier: CANCEL_ACTION }];
  const text = tail(options.logTail);
  switch (view.state) {
    case 'awaiting-approval': {
      const approval = view.approval;
      const who = approval ? `@${approval.requestedBy}` : 'Someone';
      return {
        ...base,
        name: approvalCheckRunName(view.kind),
        status: 'completed',
        conclusion: 'action_required',
        completed_at: view.createdAt,
        output: {
          title: 'Awaiting approval',
          summary: clip(
            [
              `${neutraliseMentions(who)} asked for a \`${view.kind}\` task, and berth does not run it on their word: ${approval?.reason ?? "they are below the rule's permission"}.`,
              '',
              `Someone with **${approval?.minimum ?? 'write'}** permission on this repository can run it on this commit: the **Approve** button above, or a comment \`${APPROVE_COMMAND}\`. Until then no agent runs and no token exists for it.`,
              ...(approval ? ['', `It is dropped unapproved at ${new Date(approval.expiresAt).toISOString()}.`] : []),
              '',
              `- Task: \`${view.id}\``,
            ].join('\n'),
            OUTPUT_MAX,
          ),
        },
        actions: [{ label: 'Approve', description: 'Run the agent on this commit', identifier: APPROVE_ACTION }],
      };
    }
    case 'waiting':
    case 'delayed': {
      const retrying = view.attempts > 0 ? view.failure : null;
      return {
        ...base,
        status: 'queued',
        output: {
          title: retrying ? `Retrying: ${clip(failureInWords(retrying), 120)}` : 'Queued',
          summary: retrying
            ? `Attempt ${view.attempts} of ${view.maxAttempts} failed: ${failureInWords(retrying)}.\n\nThe next attempt runs after a backoff.`
            : `Task \`${view.id}\` is queued${view.waitingFor ? `: ${view.waitingFor}` : ''}.`,
          ...(text ? { text } : {}),
        },
        actions: cancel,
      };
    }
    case 'active':
      return {
        ...base,
        status: 'in_progress',
        ...(view.startedAt ? { started_at: view.startedAt } : {}),
        output: {
          title: `Running (${attempts})`,
          summary: `Task \`${view.id}\` is running${view.container ? ` in container \`${view.container.name}\`` : ''} (${attempts})${running(view, options.now)}.`,
          ...(text ? { text } : {}),
        },
        actions: cancel,
      };
    case 'completed': {
      const summary = agentSummary(view.result);
      return {
        ...base,
        status: 'completed',
        conclusion: 'success',
        completed_at: view.finishedAt ?? new Date().toISOString(),
        output: {
          title: clip(summary?.split('\n')[0] ?? 'Completed', TITLE_MAX),
          summary: clip([summary ?? 'The agent finished without a summary.', '', facts(view)].join('\n'), OUTPUT_MAX),
          ...(text ? { text } : {}),
        },
        actions: [],
      };
    }
    case 'failed':
    case 'cancelled': {
      const failure = view.failure ?? { cause: 'other', detail: 'failed' };
      const superseded = failure.cause === 'superseded';
      const unapproved = failure.cause === 'unapproved';
      const conclusion =
        view.state === 'cancelled' ? (superseded || unapproved ? 'neutral' : 'cancelled') : failure.cause === 'timeout' ? 'timed_out' : 'failure';
      const plain = failureInWords(failure);
      return {
        ...base,
        status: 'completed',
        conclusion,
        completed_at: view.finishedAt ?? new Date().toISOString(),
        output: {
          title: clip(view.state === 'cancelled' ? (superseded ? 'Superseded' : unapproved ? 'Not approved' : 'Cancelled') : `Failed: ${plain}`, TITLE_MAX),
          summary: clip([`${view.state === 'cancelled' ? 'Stopped' : 'Failed'}: ${plain}.`, '', facts(view)].join('\n'), OUTPUT_MAX),
          ...(text ? { text } : {}),
        },
        actions: [],
      };
    }
  }
}

function facts(view: TaskView): string {
  const took = duration(view);
  return [
    `- Task: \`${view.id}\``,
    `- Attempts used: ${view.attempts} of ${view.maxAttempts}`,
    ...(took ? [`- Duration: ${took}`] : []),
    ...spendFacts(view),
    ...egressFacts(view),
  ].join('\n');
}

/** "Spend: 1.2M tokens, $3.40 over 2 attempts": the task's model calls as the proxy metered them, priced by the operator's table. */
export function spendFacts(view: Pick<TaskView, 'spend' | 'attempts'>): string[] {
  const spend = view.spend;
  if (!spend) return [];
  const said = spend.selfReported;
  const saidText = said
    ? `the agent reported ${[said.tokens !== undefined ? `${formatTokens(said.tokens)} tokens` : '', said.usd !== undefined ? formatUsd(said.usd) : ''].filter(Boolean).join(', ')}`
    : '';
  if (spend.tokens === 0) return said ? [`- Spend: none metered; ${saidText}`] : [];
  const cost = spend.usd > 0 || spend.unpriced.length === 0 ? `, ${formatUsd(spend.usd)}` : '';
  const unpriced = spend.unpriced.length ? ` (no price for ${spend.unpriced.map((model) => codeSpan(model)).join(', ')})` : '';
  const over = view.attempts > 1 ? ` over ${view.attempts} attempts` : '';
  return [`- Spend: ${formatTokens(spend.tokens)} tokens${cost}${over}${unpriced}${said ? ` (${saidText})` : ''}`];
}

/** "Egress: 12 allowed; blocked: 3 requests to evil.example", and the model usage the proxy metered. */
export function egressFacts(view: Pick<TaskView, 'egress'>): string[] {
  const egress = view.egress;
  if (!egress) return [];
  const blocked = Object.entries(egress.refusedHosts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([host, count]) => `${count} request${count === 1 ? '' : 's'} to ${codeSpan(host)}`);
  const lines = [
    `- Egress: ${egress.allowed} allowed${egress.refused ? `; blocked: ${blocked.join(', ')}${Object.keys(egress.refusedHosts).length > 5 ? ', …' : ''}` : ', none blocked'}`,
  ];
  const u = egress.usage;
  if (u.requests > 0)
    lines.push(
      `- Model usage: ${u.inputTokens} input, ${u.outputTokens} output tokens${u.cacheReadTokens || u.cacheWriteTokens ? ` (cache: ${u.cacheReadTokens} read, ${u.cacheWriteTokens} written)` : ''} in ${u.requests} request${u.requests === 1 ? '' : 's'}`,
    );
  return lines;
}

/** Marks berth's comment for a task, so a crash between posting and recording never posts twice. */
export function commentMarker(taskId: string): string {
  return `<!-- berth-task:${taskId} -->`;
}

/** The one comment an issue task gets when it finishes (always on failure; on success if asked). */
export function renderIssueComment(view: TaskView, options: { detailsUrl?: string; rerunHint: string }): string {
  const kind = `\`${view.kind}\``;
  const link = options.detailsUrl ? ` ([details](${options.detailsUrl}))` : '';
  const body =
    view.state === 'completed'
      ? `berth finished the ${kind} task${link}.\n\n${agentSummary(view.result) ?? ''}`.trim()
      : `berth could not finish the ${kind} task${link}: ${failureInWords(view.failure ?? { cause: 'other', detail: 'failed' })}.\n\n` +
        `Attempts used: ${view.attempts} of ${view.maxAttempts}. To run it again: ${options.rerunHint}.`;
  return `${clip(maskTokens(body), OUTPUT_MAX)}\n\n${commentMarker(view.id)}`;
}

/** Marks the comment that asked for approval (one per task). */
export function approvalMarker(taskId: string): string {
  return `<!-- berth-approval:${taskId} -->`;
}

/** On an issue (no check run to carry a button): who asked, who can approve, and how. */
export function renderApprovalComment(view: TaskView): string {
  const approval = view.approval;
  const lines = [
    `@${approval?.requestedBy ?? 'someone'} asked for a \`${view.kind}\` task, and berth does not run it on their word: ${approval?.reason ?? "they are below the rule's permission"}.`,
    '',
    `Someone with **${approval?.minimum ?? 'write'}** permission on this repository can run it with a comment \`${APPROVE_COMMAND}\`. Until then no agent runs and no token exists for it.${approval ? ` It is dropped unapproved at ${new Date(approval.expiresAt).toISOString()}.` : ''}`,
  ];
  return `${clip(maskTokens(neutraliseMentions(lines.join('\n'))), OUTPUT_MAX)}\n\n${approvalMarker(view.id)}`;
}
