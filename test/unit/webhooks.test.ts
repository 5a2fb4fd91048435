import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { interpretDelivery, type TaskIntent } from '../../src/api/webhooks/interpret.js';
import { judgeRole, requiredRole, screenDelivery } from '../../src/api/webhooks/trust.js';
import { roleFromGithub } from '../../src/core/permission.js';
import { webhookRulesSchema } from '../../src/core/webhook-rules.js';
import { CANCEL_ACTION } from '../../src/github/check-run.js';
import { APPROVE_ACTION } from '../../src/core/approval.js';
import { clipEncoded, encodedBytes, PROMPT_MAX_BYTES, taskRequestSchema, UNTRUSTED_MAX_BYTES } from '../../src/core/task.js';

type Example = Record<string, any>;
const all = examples as Array<{ name: string; examples: Example[] }>;
const example = (event: string, action: string): Example =>
  JSON.parse(JSON.stringify(all.find((e) => e.name === event)!.examples.find((x) => x.action === action)));
const rules = webhookRulesSchema.parse({ botLogin: 'octocat', trust: { owners: ['Codertocat'] } });

describe('webhook interpretation (pure, every example payload)', () => {
  it('every example payload of every event gets an answer, never an exception', () => {
    let count = 0;
    for (const { name, examples: list } of all) {
      for (const payload of list) {
        const answer = interpretDelivery(name, payload, rules);
        assert.ok(['task', 'ignored', 'invalid', 'check-run', 'approve'].includes(answer.type), `${name}.${payload.action}`);
        count++;
      }
    }
    assert.ok(count > 300, `${count} payloads`);
  });
  it('a slash command on a pull request: kind, number, the comment to acknowledge, no sha in the payload', () => {
    const payload = example('issue_comment', 'created');
    payload.comment.body = '/agent review';
    payload.issue.pull_request = { url: 'x' };
    const intent = interpretDelivery('issue_comment', payload, rules) as TaskIntent;
    assert.equal(intent.type, 'task');
    assert.equal(intent.kind, 'review');
    assert.equal(intent.commentId, payload.comment.id);
    assert.equal(intent.ref, `refs/pull/${payload.issue.number}/head`);
    assert.equal(intent.fork, false, 'a comment payload cannot tell a fork: the consumer resolves the pull request before launch');
  });
  it("a rule's priority travels with its task; a rule without one leaves the kind's", () => {
    const prioritised = webhookRulesSchema.parse({
      botLogin: 'octocat',
      trust: { owners: ['Codertocat'] },
      rules: [
        { on: 'issue_comment.created', command: '/agent hotfix', kind: 'implement', priority: 7 },
        { on: 'issue_comment.created', command: '/agent review', kind: 'review' },
      ],
    });
    const payload = example('issue_comment', 'created');
    payload.comment.body = '/agent hotfix';
    assert.equal((interpretDelivery('issue_comment', payload, prioritised) as TaskIntent).priority, 7);
    payload.comment.body = '/agent review';
    assert.equal((interpretDelivery('issue_comment', payload, prioritised) as TaskIntent).priority, undefined);
    assert.throws(() => webhookRulesSchema.parse({ rules: [{ on: 'pull_request.review_requested', kind: 'review', priority: 11 }] }), /priority/);
  });
  it("check run buttons: Re-run replays, Cancel cancels, other actions are not berth's", () => {
    const rerun = example('check_run', 'rerequested');
    rerun.check_run.external_id = 'gh-1';
    assert.deepEqual(interpretDelivery('check_run', rerun, rules), {
      type: 'check-run',
      action: 'rerun',
      taskId: 'gh-1',
      appId: rerun.check_run.app.id,
      headSha: rerun.check_run.head_sha,
      repo: rerun.repository.full_name,
      owner: rerun.repository.owner.login,
      installationId: rerun.installation?.id,
      actor: { login: rerun.sender.login, type: rerun.sender.type },
    });
    const cancel = example('check_run', 'requested_action');
    cancel.check_run.external_id = 'gh-1';
    assert.equal(interpretDelivery('check_run', cancel, rules).type, 'ignored', "another app's action identifier");
    cancel.requested_action = { identifier: CANCEL_ACTION };
    assert.equal((interpretDelivery('check_run', cancel, rules) as { action: string }).action, 'cancel');
    rerun.check_run.external_id = '';
    assert.equal(interpretDelivery('check_run', rerun, rules).type, 'ignored');
    cancel.requested_action = { identifier: APPROVE_ACTION };
    assert.equal((interpretDelivery('check_run', cancel, rules) as { action: string }).action, 'approve');
  });
  it('/agent approve is built in, whatever the rules: the commenter, the number, the comment', () => {
    const payload = example('issue_comment', 'created');
    payload.comment.body = '/agent approve\nthanks!';
    const answer = interpretDelivery('issue_comment', payload, webhookRulesSchema.parse({ rules: [] }));
    assert.deepEqual(answer, {
      type: 'approve',
      repo: payload.repository.full_name,
      owner: payload.repository.owner.login,
      number: payload.issue.number,
      installationId: payload.installation?.id,
      actor: { login: payload.comment.user.login, type: payload.comment.user.type, association: payload.comment.author_association },
      commentId: payload.comment.id,
    });
    payload.comment.body = '/agent approved';
    assert.equal(interpretDelivery('issue_comment', payload, rules).type, 'ignored');
  });
  it("an issue's title and body reach the agent as untrusted data, bounded by their encoded size; the rules file can leave them out", () => {
    const payload = example('issues', 'labeled');
    payload.label.name = 'agent:implement';
    payload.issue.body = '\u0001\u00e9'.repeat(40_000);
    const intent = interpretDelivery('issues', payload, rules) as TaskIntent;
    assert.equal(intent.prompt, undefined);
    assert.equal(intent.untrusted!.source, 'issue');
    assert.ok(encodedBytes(intent.untrusted!.title) + encodedBytes(intent.untrusted!.body) <= UNTRUSTED_MAX_BYTES);
    const off = webhookRulesSchema.parse({
      trust: { owners: ['Codertocat'] },
      rules: [{ on: 'issues.labeled', label: 'agent:implement', kind: 'implement', issueText: false }],
    });
    assert.equal((interpretDelivery('issues', payload, off) as TaskIntent).untrusted, undefined);
  });
  it('a 64K-character prompt of control characters is refused at the API by its encoded size (BERTH_TASK must fit one 128 KiB variable)', () => {
    assert.equal(taskRequestSchema.safeParse({ kind: 'x', repo: 'o/r', prompt: '\u0001'.repeat(60_000) }).success, false);
    assert.equal(taskRequestSchema.safeParse({ kind: 'x', repo: 'o/r', prompt: 'a'.repeat(60_000) }).success, true);
    assert.equal(encodedBytes(clipEncoded('\u0001'.repeat(60_000), PROMPT_MAX_BYTES)) <= PROMPT_MAX_BYTES, true);
  });
  it('a malformed known payload is invalid, with the field named', () => {
    const payload = example('issue_comment', 'created');
    payload.comment.body = '/agent review';
    payload.comment.id = 'nope';
    const answer = interpretDelivery('issue_comment', payload, rules);
    assert.equal(answer.type, 'invalid');
    assert.match((answer as { message: string }).message, /comment\.id/);
  });
});

describe("trust (pure): the payload screens, GitHub's reported role decides", () => {
  const trust = rules.trust;
  const base = {
    installationId: 1,
    owner: 'Codertocat',
    repo: 'Codertocat/Hello-World',
    actor: { login: 'a', type: 'User', association: 'MEMBER' },
    fork: false,
    kind: 'review',
  };
  it('installation, repository, bots, forks and the association filter refuse before any lookup', () => {
    assert.deepEqual(screenDelivery(trust, base), { trusted: 'ask', minimum: 'write' });
    assert.equal(screenDelivery(trust, { ...base, owner: 'mallory' }).trusted, false);
    assert.equal(screenDelivery(trust, { ...base, actor: { login: 'a', type: 'User', association: 'NONE' } }).trusted, false);
    assert.equal(
      screenDelivery({ ...trust, logins: ['A'] }, { ...base, actor: { login: 'a', type: 'User', association: 'NONE' } }).trusted,
      'ask',
      'a listed login passes the filter, and is still asked about',
    );
    assert.equal(screenDelivery(trust, { ...base, actor: { login: 'a', type: 'User' } }).trusted, 'ask', 'a sender (no association) is always asked about');
    assert.equal(screenDelivery(trust, { ...base, actor: { login: 'x[bot]', type: 'Bot' } }).trusted, false);
    assert.equal(screenDelivery(trust, { ...base, fork: true, kind: 'implement' }).trusted, false);
    assert.equal(screenDelivery({ ...trust, allowForkImplement: true }, { ...base, fork: true, kind: 'implement' }).trusted, 'ask');
    assert.equal(screenDelivery({ ...trust, repositories: ['Codertocat/other'] }, base).trusted, false);
  });

  it('a refusal a person with the role may lift says so (approvable); scope, bots and a failed lookup never are', () => {
    const outsider = { ...base, actor: { login: 'a', type: 'User', association: 'CONTRIBUTOR' } };
    assert.equal((screenDelivery(trust, outsider) as { approvable?: string }).approvable, 'write', 'a contributor below the association filter');
    assert.equal((judgeRole('reader', 'o/r', 'write', { role: 'read' }) as { approvable?: string }).approvable, 'write', 'a reader below the role');
    assert.equal((judgeRole('reader', 'o/r', 'write', { error: 'GitHub is down' }) as { approvable?: string }).approvable, undefined);
    assert.equal((screenDelivery(trust, { ...base, owner: 'mallory' }) as { approvable?: string }).approvable, undefined, 'out of scope');
    assert.equal((screenDelivery(trust, { ...base, actor: { login: 'x[bot]', type: 'Bot' } }) as { approvable?: string }).approvable, undefined, 'a bot');
    const fork = { ...base, fork: true, kind: 'implement' };
    assert.equal((screenDelivery(trust, fork) as { approvable?: string }).approvable, undefined, 'a fork implement: refused unless forks wait for approval');
    assert.equal((screenDelivery({ ...trust, approval: { ...trust.approval, forks: true } }, fork) as { approvable?: string }).approvable, 'write');
    assert.deepEqual(trust.approval, { enabled: true, expireAfterHours: 72, forks: false }, 'approvals on by default, three days');
  });

  it("the least role: the rule's, else the kind's, else trust.permission (write by default)", () => {
    assert.equal(requiredRole(trust, 'review'), 'write');
    assert.equal(requiredRole({ ...trust, kinds: { triage: 'triage' } }, 'triage'), 'triage');
    assert.equal(requiredRole({ ...trust, kinds: { triage: 'triage' } }, 'triage', 'admin'), 'admin');
    assert.equal(requiredRole({ ...trust, permission: 'maintain' }, 'review'), 'maintain');
    assert.deepEqual(screenDelivery({ ...trust, permission: 'none' }, base), { trusted: true }, 'none: the operator opted out of asking');
  });

  it('MEMBER with read and a triage labeller are refused with the reason; writer, maintainer, admin pass; a failed lookup refuses', () => {
    assert.match((judgeRole('reader', 'o/r', 'write', { role: 'read' }) as { detail: string }).detail, /reader has read permission on o\/r; write is needed/);
    assert.equal(judgeRole('labeller', 'o/r', 'write', { role: 'triage' }).trusted, false);
    for (const role of ['write', 'maintain', 'admin'] as const)
      assert.deepEqual(judgeRole('w', 'o/r', 'write', { role }), { trusted: true, role }, 'trusted, with the role GitHub reported (the audit trail keeps it)');
    const failed = judgeRole('w', 'o/r', 'write', { error: 'GitHub could not tell (503)' });
    assert.equal(failed.trusted, false);
    assert.match((failed as { detail: string }).detail, /refused until GitHub answers/);
  });

  it("GitHub's answer as a role: role_name first, a custom role by its legacy permission, anything else none", () => {
    assert.equal(roleFromGithub({ permission: 'read', role_name: 'triage' }), 'triage');
    assert.equal(roleFromGithub({ permission: 'write', role_name: 'maintain' }), 'maintain');
    assert.equal(roleFromGithub({ permission: 'write', role_name: 'security-champion' }), 'write');
    assert.equal(roleFromGithub({ permission: 'none' }), 'none');
    assert.equal(roleFromGithub({ permission: 'superuser' }), 'none');
    assert.equal(roleFromGithub({}), 'none');
  });
});

describe('webhook signatures (raw bytes, rotation)', () => {
  it('agrees with @octokit/webhooks-methods: current and previous secret accepted; altered, truncated, upper-case, empty refused', async () => {
    const { sign } = await import('@octokit/webhooks-methods');
    const { signatureMatches } = await import('../../src/api/webhooks/signature.js');
    const body = JSON.stringify({ hello: 'wörld', n: 1 });
    const raw = Buffer.from(body);
    const current = 'current-secret-0123456789';
    const previous = 'previous-secret-0123456789';
    const byCurrent = await sign(current, body);
    assert.equal(signatureMatches(raw, byCurrent, [current, previous]), true);
    assert.equal(signatureMatches(raw, await sign(previous, body), [current, previous]), true);
    assert.equal(signatureMatches(raw, await sign('another-secret-0123456789', body), [current, previous]), false);
    assert.equal(signatureMatches(Buffer.from(body.replace('1', '2')), byCurrent, [current]), false);
    assert.equal(signatureMatches(raw, byCurrent.slice(0, -2), [current]), false);
    assert.equal(signatureMatches(raw, byCurrent.toUpperCase(), [current]), false);
    assert.equal(signatureMatches(Buffer.alloc(0), byCurrent, [current]), false);
    assert.equal(signatureMatches(raw, byCurrent.replace('sha256=', 'sha1='), [current]), false);
  });
});
