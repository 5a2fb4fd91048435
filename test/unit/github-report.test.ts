import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentSummary, CANCEL_ACTION, commentMarker, renderApprovalComment, renderCheckRun, renderIssueComment } from '../../src/github/check-run.js';
import { APPROVE_ACTION, unapprovedFailure } from '../../src/core/approval.js';
import { maskTokens } from '../../src/core/secret-mask.js';
import { classifyGithubError } from '../../src/github/errors.js';
import { classifyCheckoutError } from '../../src/worker/checkout.js';
import { reportBackoffMs } from '../../src/github/report-queue.js';
import { EXIT } from '../../src/core/exit-codes.js';
import type { TaskView } from '../../src/core/task-view.js';
import type { Failure } from '../../src/core/failure.js';

const view = (over: Partial<TaskView> = {}): TaskView => ({
  id: 'gh-1',
  kind: 'review',
  repo: 'octo/widgets',
  ref: null,
  number: 7,
  source: 'github',
  state: 'waiting',
  attempts: 0,
  maxAttempts: 3,
  container: null,
  result: null,
  failedReason: null,
  failure: null,
  createdAt: '2026-11-30T10:00:00.000Z',
  startedAt: null,
  finishedAt: null,
  replayOf: null,
  egress: null,
  spend: null,
  waitingFor: null,
  priority: 0,
  approval: null,
  ...over,
});

describe('check runs rendered from a task', () => {
  it('shows what the attempt reached and what was blocked, and the model usage the proxy metered', () => {
    const egress = {
      allowed: 12,
      refused: 4,
      refusedHosts: { 'evil.example': 3, '`@org/team`': 1 },
      usage: { inputTokens: 1200, outputTokens: 340, cacheReadTokens: 5000, cacheWriteTokens: 0, requests: 3 },
      log: [],
    };
    const done = renderCheckRun(
      view({
        state: 'completed',
        attempts: 1,
        result: { summary: 'ok' },
        finishedAt: '2026-11-30T10:05:00.000Z',
        startedAt: '2026-11-30T10:00:00.000Z',
        egress,
      }),
      { logTail: [] },
    );
    const summary = done.output!.summary;
    assert.match(summary, /^- Egress: 12 allowed; blocked: 3 requests to `evil\.example`, 1 request to `` `@org\/team` ``$/m, summary);
    assert.match(summary, /^- Model usage: 1200 input, 340 output tokens \(cache: 5000 read, 0 written\) in 3 requests$/m);
    const clean = renderCheckRun(
      view({ state: 'completed', attempts: 1, egress: { ...egress, refused: 0, refusedHosts: {}, usage: { ...egress.usage, requests: 0 } } }),
      { logTail: [] },
    );
    assert.match(clean.output!.summary, /^- Egress: 12 allowed, none blocked$/m);
    assert.doesNotMatch(clean.output!.summary, /Model usage/);
    assert.doesNotMatch(renderCheckRun(view({ state: 'completed', attempts: 1 }), { logTail: [] }).output!.summary, /Egress/, 'EGRESS=open or none: no line');
  });
  it('awaiting approval: a check run of its own, action_required, with an Approve button, who asked and who may approve; unapproved in time: neutral', () => {
    const approval = {
      state: 'pending' as const,
      requestedBy: 'stranger',
      reason: 'stranger has read permission on octo/widgets; write is needed',
      minimum: 'write' as const,
      expiresAt: Date.parse('2026-12-06T10:00:00Z'),
    };
    const body = renderCheckRun(view({ state: 'awaiting-approval', approval }), { logTail: [] });
    assert.equal(body.name, 'berth/review: approval', 'not the task run: a completed run never goes back to queued');
    assert.equal(body.status, 'completed');
    assert.equal(body.conclusion, 'action_required');
    assert.deepEqual(body.actions, [{ label: 'Approve', description: 'Run the agent on this commit', identifier: APPROVE_ACTION }]);
    assert.match(body.output.summary, /stranger has read permission on octo\/widgets; write is needed/);
    assert.match(body.output.summary, /Someone with \*\*write\*\* permission .* `\/agent approve`/);
    assert.match(body.output.summary, /2026-12-06T10:00:00.000Z/);
    const expired = renderCheckRun(view({ state: 'cancelled', approval, failure: unapprovedFailure(approval) }), { logTail: [] });
    assert.deepEqual([expired.name, expired.status, expired.conclusion, expired.output.title], ['berth/review', 'completed', 'neutral', 'Not approved']);
    const comment = renderApprovalComment(view({ state: 'awaiting-approval', approval }));
    assert.match(comment, /with a comment `\/agent approve`/);
    assert.ok(comment.endsWith('<!-- berth-approval:gh-1 -->'));
  });

  it('queued, then running, both with a Cancel button', () => {
    const queued = renderCheckRun(view(), { logTail: [] });
    assert.equal(queued.status, 'queued');
    assert.equal(queued.name, 'berth/review');
    assert.equal(queued.external_id, 'gh-1');
    assert.deepEqual(
      queued.actions.map((a) => a.identifier),
      [CANCEL_ACTION],
    );
    const running = renderCheckRun(
      view({ state: 'active', attempts: 1, startedAt: '2026-11-30T10:00:05.000Z', container: { name: 'berth-x-a1', id: 'c', state: 'running' } }),
      { logTail: [], detailsUrl: 'https://b/x' },
    );
    assert.equal(running.status, 'in_progress');
    assert.equal(running.started_at, '2026-11-30T10:00:05.000Z');
    assert.equal(running.details_url, 'https://b/x');
    assert.match(running.output.summary, /berth-x-a1.*attempt 1 of 3/);
    const live = renderCheckRun(view({ state: 'active', attempts: 1, startedAt: '2026-11-30T10:00:05.000Z' }), {
      logTail: ['step 3'],
      now: Date.parse('2026-11-30T10:02:35.000Z'),
    });
    assert.match(live.output.summary, /\(attempt 1 of 3\), for 2 min 30 s so far\.$/, 'live progress: how long it has run');
    assert.match(live.output.text ?? '', /step 3/);
    for (const action of running.actions)
      assert.ok(action.label.length <= 20 && action.description.length <= 40 && action.identifier.length <= 20, "within GitHub's limits");
  });
  it('a retry waits as queued and says why the last attempt failed', () => {
    const body = renderCheckRun(view({ state: 'delayed', attempts: 1, failedReason: 'exit code 3', failure: { cause: 'exit_code', exitCode: 3 } }), {
      logTail: [],
    });
    assert.equal(body.status, 'queued');
    assert.match(body.output.title, /^Retrying: the agent exited with code 3/);
  });
  it('success carries the agent summary, attempts and duration; no buttons', () => {
    const body = renderCheckRun(
      view({
        state: 'completed',
        attempts: 2,
        result: { summary: 'LGTM\nwith notes' },
        startedAt: '2026-11-30T10:00:00.000Z',
        finishedAt: '2026-11-30T10:03:30.000Z',
      }),
      { logTail: ['a', 'b'] },
    );
    assert.deepEqual([body.status, body.conclusion, body.output.title], ['completed', 'success', 'LGTM']);
    assert.match(body.output.summary, /Attempts used: 2 of 3/);
    assert.match(body.output.summary, /Duration: 3 min 30 s/);
    assert.match(body.output.text!, /```\na\nb\n```/);
    assert.deepEqual(body.actions, []);
  });
  it('conclusions: timeout → timed_out, cancel → cancelled, superseded → neutral, other failures → failure', () => {
    const conclusion = (state: TaskView['state'], failure: Failure) => renderCheckRun(view({ state, attempts: 1, failure }), { logTail: [] }).conclusion;
    assert.equal(conclusion('failed', { cause: 'timeout', limitSeconds: 2700 }), 'timed_out');
    assert.equal(conclusion('cancelled', { cause: 'cancelled' }), 'cancelled');
    assert.equal(conclusion('cancelled', { cause: 'superseded', detail: 'superseded by a push to abc' }), 'neutral');
    assert.equal(conclusion('failed', { cause: 'oom' }), 'failure');
    const timedOut = renderCheckRun(view({ state: 'failed', attempts: 1, failure: { cause: 'timeout', limitSeconds: 2700 } }), { logTail: [] });
    assert.equal(timedOut.output.title, 'Failed: timed out after 45 min');
  });
  it('tokens never leave in output, summaries or comments', () => {
    const token = `ghs_${'a'.repeat(36)}`;
    assert.equal(maskTokens(`token is ${token}.`), 'token is ***.');
    const body = renderCheckRun(view({ state: 'failed', attempts: 3, failedReason: 'exit code 1' }), { logTail: [`echo ${token}`] });
    assert.ok(!JSON.stringify(body).includes(token));
    assert.ok(!renderIssueComment(view({ state: 'completed', result: { summary: token } }), { rerunHint: 'x' }).includes(token));
  });
  it('an issue comment carries its marker (the exactly-once key) and how to run again', () => {
    const body = renderIssueComment(view({ state: 'failed', attempts: 3, failedReason: 'exit code 3' }), { rerunHint: 'comment the command again' });
    assert.ok(body.endsWith(commentMarker('gh-1')));
    assert.match(body, /Attempts used: 3 of 3\. To run it again: comment the command again\./);
  });
  it('agent summaries come from result.summary or a string result', () => {
    assert.equal(agentSummary({ summary: ' ok ' }), 'ok');
    assert.equal(agentSummary('done'), 'done');
    assert.equal(agentSummary({ other: 1 }), null);
  });
});

describe('GitHub failures', () => {
  const error = (status: number | undefined, headers: Record<string, string> = {}) => Object.assign(new Error('x'), { status, response: { headers } });
  it('rate limits wait for the reset or retry-after', () => {
    assert.deepEqual(classifyGithubError(error(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2000' }), 1_000_000), {
      kind: 'rate-limited',
      retryAt: 2_000_000,
      status: 403,
    });
    assert.deepEqual(classifyGithubError(error(429, { 'retry-after': '30' }), 1_000_000), { kind: 'rate-limited', retryAt: 1_030_000, status: 429 });
  });
  it('5xx, 401 and network errors pass; 404 and other 4xx do not', () => {
    assert.equal(classifyGithubError(error(502)).kind, 'transient');
    assert.equal(classifyGithubError(error(undefined)).kind, 'transient');
    assert.equal(classifyGithubError(error(401)).kind, 'transient');
    assert.equal(classifyGithubError(error(404)).kind, 'not-found');
    assert.equal(classifyGithubError(error(422)).kind, 'permanent');
    assert.equal(classifyGithubError(error(403)).kind, 'permanent', 'a 403 that is not a rate limit is a refusal');
  });
  it('report backoff is exponential and capped at 5 minutes', () => {
    assert.deepEqual([1, 2, 3, 20].map(reportBackoffMs), [2_000, 4_000, 8_000, 300_000]);
  });
  it('checkout: not found and refused tokens are final; network and 5xx are retried', () => {
    const git = (stderr: string) => Object.assign(new Error(stderr), { stderr });
    assert.equal(classifyCheckoutError('o/r', new Error("fatal: repository 'http://x/o/r.git/' not found")).exitCode, EXIT.noRetry);
    assert.equal(classifyCheckoutError('o/r', new Error('fatal: Authentication failed for http://x/o/r.git/')).exitCode, EXIT.noRetry);
    assert.equal(classifyCheckoutError('o/r', new Error('fatal: unable to access http://x/: The requested URL returned error: 503')).exitCode, EXIT.tempFail);
    assert.equal(classifyCheckoutError('o/r', git('fatal: unable to access http://x/: Could not resolve host: x')).exitCode, EXIT.tempFail);
    assert.equal(
      classifyCheckoutError('o/r', git('remote: Repository not found\nfatal: unable to access http://x/: The requested URL returned error: 503')).exitCode,
      EXIT.tempFail,
      'a 503 is a 503 whatever its body says',
    );
  });
});
