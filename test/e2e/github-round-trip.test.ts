import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { queueContainers, recordEvents } from '../support/docker.js';
import { createTestNetwork, type TestNetwork } from '../support/docker-network.js';
import { realParts } from '../support/suite.js';
import { startBerth } from '../support/berth.js';
import { deliver, rulesFile, WEBHOOK_SECRET } from '../support/github.js';
import { GithubStandin, type CheckRun, type PullFixture } from '../support/github-standin.js';
import { everyRedisValue } from '../support/redis-scan.js';
import { waitUntil } from '../support/wait.js';
import { ROOT } from '../support/image.js';

type Example = Record<string, any>;
const example = (event: string, action: string): Example =>
  JSON.parse(
    JSON.stringify((examples as Array<{ name: string; examples: Example[] }>).find((e) => e.name === event)!.examples.find((x) => x.action === action)),
  );

const REPO = 'octo-org/widgets';
const INSTALLATION = 77;

/** A real issue_comment payload, aimed at our fixture repository. */
function comment(body: string, number: number, options: { pull?: boolean; association?: string; id?: number } = {}): Example {
  const payload = example('issue_comment', 'created');
  payload.repository.full_name = REPO;
  payload.repository.name = 'widgets';
  payload.repository.owner.login = 'octo-org';
  payload.installation = { id: INSTALLATION, node_id: 'x' };
  payload.issue.number = number;
  if (options.pull === false) delete payload.issue.pull_request;
  else payload.issue.pull_request = { url: `https://api.github.com/repos/${REPO}/pulls/${number}` };
  payload.comment.body = body;
  payload.comment.id = options.id ?? Math.floor(Math.random() * 1e9);
  payload.comment.author_association = options.association ?? 'MEMBER';
  payload.comment.user.type = 'User';
  return payload;
}

function checkRunEvent(action: 'rerequested' | 'requested_action', taskId: string, appId: string, identifier?: string): Example {
  const payload = example('check_run', action);
  payload.repository.full_name = REPO;
  payload.repository.owner.login = 'octo-org';
  payload.installation = { id: INSTALLATION, node_id: 'x' };
  payload.check_run.external_id = taskId;
  payload.check_run.app.id = Number(appId);
  payload.sender.type = 'User';
  if (identifier) payload.requested_action = { identifier };
  return payload;
}

describe('GitHub round trip: checkout, 👀, check runs, comments, buttons (real git, Docker and Octokit against a GitHub stand-in)', () => {
  const parts = realParts();
  const { berths } = parts;
  let network: TestNetwork;
  let github: GithubStandin;
  let pull: PullFixture;

  const env = (overrides: Record<string, string> = {}) =>
    parts.env({
      GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
      WEBHOOK_RULES_FILE: rulesFile({
        botLogin: 'berth-test[bot]',
        trust: { owners: ['octo-org'] },
        rules: [
          { on: 'issue_comment.created', command: '/agent review', kind: 'review' },
          { on: 'issue_comment.created', command: '/agent implement', kind: 'implement', promptFromArguments: true },
          { on: 'issue_comment.created', command: '/agent fail', kind: 'exit' },
        ],
      }),
      GITHUB_APP_ID: github.appId,
      GITHUB_APP_PRIVATE_KEY: github.privateKey,
      GITHUB_API_URL: github.url,
      GITHUB_SERVER_URL: github.url,
      PUBLIC_URL: 'https://berth.example.test',
      EGRESS: 'open',
      WORKER_NETWORK: network.name,
      AGENT_COMMAND_REVIEW: 'node /app/dist/worker/agents/review-diff.js',
      AGENT_COMMAND_IMPLEMENT: 'node /agents/checkout-probe.mjs',
      AGENT_COMMAND_PROBE: 'node /agents/checkout-probe.mjs',
      ...overrides,
    });
  const runsFor = (taskId: string): CheckRun[] => github.checkRuns.filter((c) => c.external_id === taskId);
  const finalRun = (taskId: string) => waitUntil(() => runsFor(taskId).find((c) => c.status === 'completed'), `check run of ${taskId} completed`, 30_000);

  before(async () => {
    network = await createTestNetwork();
    github = new GithubStandin();
    github.defaultRole = 'write';
    await github.listen(network.gateway);
    pull = github.makeRepository(REPO, INSTALLATION, { number: 7 });
  });
  after(async () => {
    await github.close();
    await network.remove();
  });

  it('a /agent review comment: 👀 at once, a check run queued → in progress → success on the pinned head, the example agent reviews the checked-out diff', async () => {
    const logs: string[] = [];
    // Depth 1: the checkout must deepen by itself until the merge base with main is there.
    const berth = await startBerth(env({ CHECKOUT_DEPTH: '1' }), { logSink: (line) => logs.push(line) });
    berths.push(berth);
    const payload = comment('/agent review', 7);
    const sent = await deliver(berth.url, 'issue_comment', payload);
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const id = sent.body.id as string;
    // The reaction does not wait for the task.
    await waitUntil(() => github.reactions.find((r) => r.commentId === payload.comment.id), '👀 reaction', 10_000);
    const probe = await berth.api('POST', '/api/tasks', { kind: 'probe', repo: REPO, number: 7 });

    const task = await berth.waitFor(id, ['completed', 'failed'], 90_000);
    assert.equal(task.state, 'completed', JSON.stringify(task));
    const run = await finalRun(id);
    assert.equal(runsFor(id).length, 1, 'one check run per task');
    assert.equal(run.name, 'berth/review');
    assert.equal(run.head_sha, pull.headSha, 'the check run is on the pull request head, resolved from a comment that carries no sha');
    assert.equal(run.conclusion, 'success');
    // Level-triggered: a task that starts at once is first shown running (the queued state is shown below, on a task that waits).
    assert.deepEqual(
      run.history
        .map((h) => h.status)
        .filter((s, i, all) => s !== all[i - 1])
        .slice(-2),
      ['in_progress', 'completed'],
    );
    assert.match(run.output.summary, /Reviewed 2 changed files against main: 1 TODO\/FIXME line added/);
    assert.match(run.output.summary, /Attempts used: 1 of 3/);
    assert.equal(run.details_url, `https://berth.example.test/admin/queues/queue/${berth.config.QUEUE_NAME}/${id}`);
    // The check run as GitHub got it, for the tour in docs/tour.md (test-output/, refreshed by every run).
    mkdirSync(join(ROOT, 'test-output'), { recursive: true });
    writeFileSync(
      join(ROOT, 'test-output/check-run.md'),
      [`**${run.name}** — ${run.status}, ${run.conclusion}`, '', `**${run.output.title}**`, '', run.output.summary, '', run.output.text ?? ''].join('\n'),
    );
    assert.deepEqual(
      github.reactions.filter((r) => r.commentId === payload.comment.id).map((r) => r.content),
      ['eyes'],
    );

    // The example agent's review, posted with the task's own token, on the pinned commit.
    const review = github.reviews.find((r) => r.pull === 7)!;
    assert.ok(review, 'the agent posted a review');
    assert.equal(review.body.commit_id, pull.headSha);
    assert.deepEqual(
      review.body.comments.map((c: any) => [c.path, c.line]),
      [['client.js', 2]],
    );

    // What the agent saw: the repository at the pinned sha, the base branch there for a three-dot diff.
    const seen = (await berth.waitFor(probe.body.id, ['completed', 'failed'], 90_000)).result;
    assert.equal(seen.cwd, '/work/repo');
    assert.equal(seen.repoDir, '/work/repo');
    assert.equal(seen.head, pull.headSha);
    assert.deepEqual(seen.diff.sort(), ['client.js', 'notes.md'], "main...HEAD is the pull request's own change, though main moved on");
    assert.equal(seen.tokenInGit, false, 'the token is nowhere in /work/repo/.git');
    assert.equal(seen.remote, `${github.url}/${REPO}.git`, 'no credentials in the remote URL');
    assert.equal(seen.shallow, 'true');
    assert.equal(seen.fetchOk, true, "the agent's own git authenticates through the helper");
    assert.equal(seen.status, '', 'task and result files are outside the checkout');

    // Tokens: every git request carried a valid token scoped to the repository; none is stored or logged.
    const gitCalls = github.calls.filter((c) => c.path.includes('.git/') && c.auth === 'token');
    assert.ok(gitCalls.length >= 2, 'git fetched through the stand-in');
    // The worker gave its own token back (from its own address, not berth's loopback) before it exited.
    const workerToken = gitCalls.find((c) => c.from !== '127.0.0.1')?.token;
    assert.ok(workerToken, 'git came from a worker');
    const revokes = github.calls.filter((c) => c.method === 'DELETE' && c.path === '/installation/token' && c.token === workerToken);
    assert.ok(
      revokes.some((c) => c.from === gitCalls.find((g) => g.token === workerToken)!.from),
      `revoked from the worker itself: ${JSON.stringify(revokes.map((c) => c.from))}`,
    );
    const reportTokens = github.calls.filter((c) => c.path.includes('/check-runs') && c.auth === 'token').map((c) => github.tokens.get(c.token!)!);
    assert.ok(
      reportTokens.length > 0 &&
        reportTokens.every((t) => t.repositories.join() === 'widgets' && t.permissions?.checks === 'write' && t.permissions?.contents === undefined),
      'reports use a repository-scoped token without contents access',
    );
    const everything = await everyRedisValue(parts.redis.url);
    const captured = logs.join('\n');
    for (const { token } of github.tokens.values()) {
      assert.ok(!everything.includes(token), 'a token is in Redis');
      assert.ok(!captured.includes(token), 'a token is in the logs');
    }
    await waitUntil(async () => (await queueContainers(berth.config.QUEUE_NAME)).length === 0, 'containers removed');
  });

  it('failure: one check run ends failed with the reason and attempts; an issue task gets one comment', async () => {
    // A backoff long enough for the reporter to show the retry while the task waits, however loaded the machine.
    const berth = await startBerth(env({ TASK_ATTEMPTS: '2', TASK_BACKOFF: '3s' }));
    berths.push(berth);
    const onPull = await berth.api('POST', '/api/tasks', { kind: 'exit', repo: REPO, number: 7, prompt: '3' });
    const onIssue = await deliver(berth.url, 'issue_comment', comment('/agent fail', 12, { pull: false }));
    assert.equal(onIssue.status, 202, JSON.stringify(onIssue.body));

    assert.equal((await berth.waitFor(onPull.body.id, ['completed', 'failed'], 90_000)).state, 'failed');
    const run = await finalRun(onPull.body.id);
    assert.equal(runsFor(onPull.body.id).length, 1, 'retries update the same check run');
    assert.equal(run.conclusion, 'failure');
    assert.match(run.output.title, /Failed: the agent exited with code 3/);
    assert.match(run.output.summary, /Attempts used: 2 of 2/);
    assert.match(run.output.text ?? '', /exiting with 3 on attempt 2/, 'the last lines of output');
    assert.ok(
      run.history.some((h) => h.status === 'queued' && /Retrying/.test(h.output.title)),
      'the retry showed on the check run',
    );

    const issueTask = await berth.waitFor(onIssue.body.id, ['completed', 'failed'], 90_000);
    assert.equal(issueTask.state, 'failed');
    // An empty list is truthy: wait for the comment itself.
    const ours = () => github.comments.filter((c) => c.issue === 12 && c.body.includes(`berth-task:${onIssue.body.id}`));
    await waitUntil(() => ours().length > 0, 'failure comment', 30_000);
    await new Promise((r) => setTimeout(r, 1500)); // a fixed wait, to show that no second comment follows
    const posted = ours();
    assert.equal(github.comments.filter((c) => c.issue === 12).length, 1, JSON.stringify(posted));
    assert.match(posted[0]!.body, /could not finish the `exit` task.*the agent exited with code 3/s);
    assert.match(posted[0]!.body, /Attempts used: 2 of 2/);
    assert.equal(runsFor(onIssue.body.id).length, 0, 'an issue task has no check run');
  });

  it('live progress: while a task runs, its check run shows how long it has run and its latest output', async () => {
    const berth = await startBerth(env({ REPORT_PROGRESS_INTERVAL: '1s', TASK_ATTEMPTS: '1' }));
    berths.push(berth);
    // 8 s at one update a second: room for a reporter slowed down by a loaded machine.
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: REPO, number: 7, prompt: '8' });
    assert.equal((await berth.waitFor(body.id, ['completed', 'failed'], 90_000)).state, 'completed');
    const run = await finalRun(body.id);
    const live = run.history.filter((h) => h.status === 'in_progress' && / so far\.$/.test(h.output.summary));
    assert.ok(live.length >= 2, `updated while it ran: ${run.history.map((h) => `${h.status} ${h.output.summary}`).join(' | ')}`);
    assert.notEqual(live[0]!.output.summary, live.at(-1)!.output.summary, 'the time it has run moves on');
    assert.ok(
      live.some((h) => /sleeping 8s/.test(h.output.text ?? '')),
      'with the latest lines of its output',
    );
  });

  it('clone failures are classified: no such repository fails at once; a 503 from the git server is retried; an issue task gets the default branch', async () => {
    const berth = await startBerth(env({ TASK_BACKOFF: '100ms' }));
    berths.push(berth);
    github.installations.set('octo-org/missing', INSTALLATION);
    const missing = await berth.api('POST', '/api/tasks', { kind: 'probe', repo: 'octo-org/missing' });
    const failed = await berth.waitFor(missing.body.id, ['completed', 'failed'], 60_000);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.failedReason, 'checkout failed: repository octo-org/missing not found or no access');
    assert.equal(failed.attempts, 1, 'not retried');

    github.fail(/widgets\.git\/info\/refs/, 503, 1);
    const flaky = await berth.api('POST', '/api/tasks', { kind: 'probe', repo: REPO });
    const done = await berth.waitFor(flaky.body.id, ['completed', 'failed'], 60_000);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.equal(done.attempts, 2, 'the 503 cost one attempt, then the clone worked');
    const main = github.calls.find((c) => c.path.endsWith('widgets.git/info/refs') && c.status === 503);
    assert.ok(main, 'the git server did answer 503');
    assert.equal(done.result.head.length, 40);
    assert.deepEqual(done.result.diff, [], 'on the default branch, main...HEAD is empty');
  });

  it('a request refused for a full queue is told on its issue, once per issue and day, however often it is asked', async () => {
    // No consumer yet: the first task stays queued and fills its repository's cap of one.
    const base = env({ MAX_QUEUED_PER_REPO: '1', TASK_ATTEMPTS: '1', CONSUMER_ID: 'gh-notice' });
    const berth = await startBerth(base, { consumer: false });
    berths.push(berth);
    const queued = await deliver(berth.url, 'issue_comment', comment('/agent fail', 31, { pull: false }));
    assert.equal(queued.status, 202);
    assert.ok(queued.body.id, JSON.stringify(queued.body));
    for (const text of ['/agent implement second', '/agent implement second, again']) {
      const refused = await deliver(berth.url, 'issue_comment', comment(text, 32, { pull: false }));
      assert.match(refused.body.ignored, /^octo-org\/widgets has 1 tasks queued \(MAX_QUEUED_PER_REPO=1\)/, JSON.stringify(refused.body));
    }
    parts.consumer(base);
    // The queued task's own comment (it runs and fails) comes after the notices were added: a canary.
    await berth.waitFor(queued.body.id, ['completed', 'failed'], 90_000);
    await waitUntil(() => github.comments.some((c) => c.issue === 31), 'the first task reported on its issue', 30_000);
    const notices = await waitUntil(() => {
      const found = github.comments.filter((c) => c.issue === 32);
      return found.length ? found : null;
    }, 'the refusal told on its issue');
    assert.equal(notices.length, 1, `one notice, not one per refused request: ${JSON.stringify(notices)}`);
    assert.match(
      notices[0]!.body,
      /^berth did not start a `implement` task for this: octo-org\/widgets has 1 tasks queued \(MAX_QUEUED_PER_REPO=1\); try again when some have run\.$/,
    );
  });

  for (const point of ['report-after-check-run', 'report-after-comment'] as const) {
    it(`exactly once as GitHub sees it: the consumer SIGKILLed at ${point}, then restarted`, async () => {
      const base = env({ CONSUMER_ID: `gh-${point}`, TASK_ATTEMPTS: '1' });
      const berth = await startBerth(base, { consumer: false });
      berths.push(berth);
      const first = parts.consumer({ ...base, BERTH_TEST_CRASH_AT: point });
      await first.ready;
      const body = point === 'report-after-check-run' ? { kind: 'probe', repo: REPO, number: 7 } : { kind: 'exit', repo: REPO, number: 13, prompt: '3' };
      const { body: created } = await berth.api('POST', '/api/tasks', body);
      assert.equal((await first.exited).signal, 'SIGKILL');
      const second = parts.consumer(base);
      try {
        const task = await berth.waitFor(created.id, ['completed', 'failed'], 90_000);
        if (point === 'report-after-check-run') {
          assert.equal(task.state, 'completed', JSON.stringify(task));
          const run = await finalRun(created.id);
          assert.equal(run.conclusion, 'success');
          assert.equal(runsFor(created.id).length, 1, 'no duplicate check run');
          assert.equal(github.callsTo('POST', /\/check-runs$/).filter((c) => c.body.external_id === created.id).length, 1);
        } else {
          assert.equal(task.state, 'failed');
          await waitUntil(() => github.comments.some((c) => c.issue === 13), 'comment');
          await new Promise((r) => setTimeout(r, 2000)); // a fixed wait, to show that no second comment follows
          assert.equal(github.comments.filter((c) => c.issue === 13).length, 1, 'no duplicate comment');
        }
      } finally {
        await second.kill('SIGTERM');
      }
    });
  }

  it('GitHub answering 500, then 429 with a reset: the task finishes on time, the reports land afterwards', async () => {
    const berth = await startBerth(env());
    berths.push(berth);
    const reset = Math.ceil((Date.now() + 4_000) / 1000);
    github.fail(/check-runs/, 500, 3);
    github.fail(/check-runs|reactions/, 429, 2, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) });
    const started = Date.now();
    const payload = comment('/agent implement tidy up', 7);
    const sent = await deliver(berth.url, 'issue_comment', payload);
    const task = await berth.waitFor(sent.body.id, ['completed', 'failed'], 90_000);
    assert.equal(task.state, 'completed', JSON.stringify(task));
    const took = Date.now() - started;
    const run = await finalRun(sent.body.id);
    assert.equal(run.conclusion, 'success');
    assert.equal(runsFor(sent.body.id).length, 1);
    assert.ok(github.calls.some((c) => c.status === 429) && github.calls.some((c) => c.status === 500), 'GitHub failed for a while');
    await waitUntil(() => github.reactions.some((r) => r.commentId === payload.comment.id), 'the 👀 lands after the rate limit resets', 30_000);
    const reacted = github.callsTo('POST', /reactions$/).find((c) => c.body.content === 'eyes' && c.path.includes(String(payload.comment.id)))!;
    assert.ok(reacted.at >= reset * 1000, 'not before the reset GitHub named');
    assert.ok(took < 60_000, `the task was not held up by GitHub (${took} ms)`);
  });

  it('Re-run replays the task with a check run of its own; Cancel stops a running task; a waiting task shows queued', async () => {
    const berth = await startBerth(env({ AGENT_COMMAND_SLEEP: 'node /agents/sleep.mjs', WORKER_CONCURRENCY: '1' }));
    berths.push(berth);
    const original = await berth.api('POST', '/api/tasks', { kind: 'probe', repo: REPO, number: 7 });
    await berth.waitFor(original.body.id, ['completed'], 90_000);
    await finalRun(original.body.id);
    // A read-only clicker replays nothing (GitHub shows the button; berth asks GitHub for the role).
    const readOnly = checkRunEvent('rerequested', original.body.id, github.appId);
    readOnly.sender.login = 'read-only-clicker';
    github.setRole(REPO, 'read-only-clicker', 'read');
    const refusedClick = await deliver(berth.url, 'check_run', readOnly);
    assert.match(refusedClick.body.detail, /read-only-clicker has read permission/);
    // One signed click body under three delivery ids: one replay at most.
    const click = checkRunEvent('rerequested', original.body.id, github.appId);
    click.check_run.head_sha = pull.headSha;
    const body = JSON.stringify(click);
    const clicks = [];
    for (let i = 0; i < 3; i++) clicks.push(await deliver(berth.url, 'check_run', click, { body }));
    const rerun = clicks[0]!;
    assert.equal(rerun.status, 202, JSON.stringify(rerun.body));
    assert.equal(rerun.body.replayOf, original.body.id);
    assert.deepEqual(
      clicks.slice(1).map((c) => c.body.duplicate),
      ['replayed body', 'replayed body'],
      JSON.stringify(clicks.map((c) => c.body)),
    );
    assert.equal(
      (await berth.queue.getJobs(['waiting', 'active', 'completed', 'failed', 'prioritized', 'delayed'])).filter((j) => j?.data.replayOf === original.body.id)
        .length,
      1,
      'one replay in Redis',
    );
    assert.equal((await berth.queue.getJob(rerun.body.id))?.data.ref, click.check_run.head_sha, "the replay is pinned to the check run's own head_sha");
    assert.equal((await berth.waitFor(rerun.body.id, ['completed', 'failed'], 90_000)).state, 'completed');
    assert.equal((await finalRun(rerun.body.id)).conclusion, 'success');
    const again = await deliver(berth.url, 'check_run', click, { delivery: rerun.delivery, body });
    assert.equal(again.body.id, rerun.body.id, 'a redelivered click does not replay twice');

    const foreign = await deliver(berth.url, 'check_run', checkRunEvent('rerequested', original.body.id, '999'));
    assert.match(foreign.body.ignored, /not a check run of berth/);

    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    const long = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: REPO, number: 7, prompt: '60' });
    await waitUntil(() => recorder.events.some((e) => e.action === 'start' && e.jobId === long.body.id), 'sleep task running', 60_000);
    await waitUntil(
      () => runsFor(long.body.id).find((c) => c.status === 'in_progress' && c.actions.length === 1),
      'the Cancel button is offered while it runs',
    );
    // One container at a time: this task waits behind the long one, and its check run says so.
    const waiting = await berth.api('POST', '/api/tasks', { kind: 'probe', repo: REPO, number: 7 });
    const queued = await waitUntil(() => runsFor(waiting.body.id).find((c) => c.status === 'queued'), 'a queued check run for the waiting task');
    assert.equal(queued.output.title, 'Queued');
    const cancel = await deliver(berth.url, 'check_run', checkRunEvent('requested_action', long.body.id, github.appId, 'berth-cancel'));
    assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
    assert.equal((await berth.waitFor(long.body.id, ['cancelled', 'completed', 'failed'], 30_000)).state, 'cancelled');
    const run = await finalRun(long.body.id);
    assert.equal(run.conclusion, 'cancelled');
    assert.equal((await berth.waitFor(waiting.body.id, ['completed', 'failed'], 60_000)).state, 'completed');
    const waited = await finalRun(waiting.body.id);
    assert.deepEqual(
      waited.history.map((h) => h.status).filter((s, i, all) => s !== all[i - 1]),
      ['queued', 'in_progress', 'completed'],
    );
    await recorder.stop();
    assert.ok(
      recorder.events.some((e) => e.action === 'die' && e.jobId === long.body.id),
      'its container was stopped',
    );
  });

  it("what berth publishes is masked; it reports only inside the trust scope; a stranger's marker does not suppress its comment; every report token is revoked", async () => {
    const modelKey = 'sk-test-model-key-0123456789abcdef';
    // Tokens minted before this test include those of consumers SIGKILLed mid-report above (left to expire).
    const earlier = new Set(github.tokens.keys());
    const berth = await startBerth(env({ AGENT_COMMAND_LEAK: 'node /agents/leak.mjs', WORKER_ENV: 'MODEL_API_KEY', TASK_ATTEMPTS: '1' }), {
      hostEnv: { MODEL_API_KEY: modelKey },
    });
    berths.push(berth);
    const leak = await berth.api('POST', '/api/tasks', { kind: 'leak', repo: REPO, number: 7 });
    const done = await berth.waitFor(leak.body.id, ['completed', 'failed'], 90_000);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    const run = await finalRun(leak.body.id);
    const workerToken = [...github.tokens.values()].find(
      (t) =>
        !earlier.has(t.token) &&
        t.repositories.join() === 'widgets' &&
        t.permissions?.contents === 'read' &&
        t.permissions?.checks === undefined &&
        t.permissions?.metadata === undefined,
    );
    const published = [
      JSON.stringify(run),
      JSON.stringify(done),
      JSON.stringify((await berth.api('GET', `/api/tasks/${leak.body.id}/logs`)).body),
      await everyRedisValue(parts.redis.url),
    ];
    for (const text of published) {
      assert.ok(!text.includes(modelKey.slice(0, 12)), `the model key (or its start) is published: ${text.slice(0, 300)}`);
      for (const { token } of github.tokens.values()) assert.ok(!text.includes(token), 'a token is published');
    }
    assert.match(run.output.summary, /the key is \*\*\*; the token is \*\*\*/);
    assert.match(run.output.title, /the token is \*\*\*/);
    assert.ok(workerToken, "the leak agent's own token was minted");

    // Outside the trust scope (an API task): refused before a token, and nothing at all reported there.
    github.installations.set('elsewhere/secrets', 999);
    const outside = await berth.api('POST', '/api/tasks', { kind: 'leak', repo: 'elsewhere/secrets', number: 3 });
    assert.equal((await berth.waitFor(outside.body.id, ['completed', 'failed'], 60_000)).state, 'failed');
    const issueTask = randomUUID();
    // A stranger pre-posts berth's marker for a task to come; berth still posts its own comment.
    github.comments.push({
      id: 999_001,
      repo: REPO,
      issue: 14,
      body: `<!-- berth-task:gh-${issueTask} -->`,
      created_at: new Date(Date.now() + 60_000).toISOString(),
      user: { login: 'mallory' },
      performed_via_github_app: null,
    });
    const failing = await deliver(berth.url, 'issue_comment', comment('/agent fail', 14, { pull: false }), { delivery: issueTask });
    assert.equal((await berth.waitFor(failing.body.id, ['completed', 'failed'], 60_000)).state, 'failed');
    await waitUntil(
      () => github.comments.find((c) => c.issue === 14 && c.performed_via_github_app?.id === Number(github.appId)),
      "berth's own failure comment",
      30_000,
    );
    assert.equal(
      github.calls.filter((c) => c.path.startsWith('/repos/elsewhere/secrets/') && c.path !== '/repos/elsewhere/secrets/installation').length,
      0,
      'no GitHub call for the out-of-scope repository',
    );
    assert.equal([...github.tokens.values()].filter((t) => t.repositories.includes('secrets')).length, 0, 'no token for it');
    // Report tokens are minted per report and revoked after it, like worker tokens after their container.
    const reportTokens = () => [...github.tokens.values()].filter((t) => t.permissions?.checks === 'write' && !earlier.has(t.token));
    assert.ok(reportTokens().length > 0);
    await waitUntil(() => reportTokens().every((t) => t.revoked), 'every report token revoked', 15_000);
  });

  it("a fork's pull request: /agent implement is refused before any container or worker token; from the base repository it runs at the pinned sha", async () => {
    const berth = await startBerth(env());
    berths.push(berth);
    github.addPull(REPO, { number: 21, headSha: pull.headSha, baseRef: 'main', headRepo: 'mallory/widgets' });
    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    const workerTokens = () => [...github.tokens.values()].filter((t) => t.permissions?.checks === undefined && t.permissions?.metadata === undefined).length;
    const tokensBefore = workerTokens();
    const fromFork = await deliver(berth.url, 'issue_comment', comment('/agent implement do it', 21));
    assert.equal(fromFork.status, 202, JSON.stringify(fromFork.body));
    const refused = await berth.waitFor(fromFork.body.id, ['failed', 'completed'], 60_000);
    assert.equal(refused.state, 'failed');
    assert.match(refused.failedReason, /refused: implement tasks are not started from forks \(pull request head is mallory\/widgets\)/);
    assert.equal(refused.attempts, 1);
    const run = await finalRun(fromFork.body.id);
    assert.match(run.output.summary, /not started from forks/);

    const fromBase = await deliver(berth.url, 'issue_comment', comment('/agent implement do it', 7));
    const ran = await berth.waitFor(fromBase.body.id, ['completed', 'failed'], 90_000);
    assert.equal(ran.state, 'completed', JSON.stringify(ran));
    assert.equal(ran.result.head, pull.headSha);
    await recorder.stop();
    assert.equal(recorder.events.filter((e) => e.action === 'create' && e.jobId === fromFork.body.id).length, 0, 'no container for the fork');
    assert.equal(recorder.events.filter((e) => e.action === 'create' && e.jobId === fromBase.body.id).length, 1);
    assert.equal(workerTokens() - tokensBefore, 1, 'one worker token: for the base repository task only');
  });

  it("an outside contributor's /agent review awaits approval: no container, no token; a reader's Approve is refused; a writer's runs it on the commit it was shown for", async () => {
    const logs: string[] = [];
    const berth = await startBerth(env(), { logSink: (line) => logs.push(line) });
    berths.push(berth);
    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    // A worker's token is the one that can read the code; berth's own (reports, role and head lookups) cannot.
    const workerTokens = () => [...github.tokens.values()].filter((t) => t.permissions?.contents !== undefined).length;
    const tokensBefore = workerTokens();
    github.setRole(REPO, 'outsider', 'read');
    const asked = comment('/agent review', 7, { association: 'CONTRIBUTOR' });
    asked.comment.user.login = 'outsider';
    const sent = await deliver(berth.url, 'issue_comment', asked);
    assert.deepEqual([sent.status, sent.body.state], [202, 'awaiting-approval'], JSON.stringify(sent.body));
    const id = sent.body.id as string;
    const gate = await waitUntil(() => runsFor(id).find((c) => c.name === 'berth/review: approval'), 'the approval check run', 30_000);
    assert.deepEqual([gate.status, gate.conclusion, gate.head_sha], ['completed', 'action_required', pull.headSha]);
    assert.deepEqual(
      (gate.actions as Array<{ identifier: string }>).map((a) => a.identifier),
      ['berth-approve'],
    );
    assert.match(gate.output.summary, /outsider \(CONTRIBUTOR\) is not an owner, member or collaborator/);
    const held = (await berth.api('GET', `/api/tasks/${id}`)).body;
    assert.deepEqual([held.state, held.approval.state, held.approval.minimum], ['awaiting-approval', 'pending', 'write']);
    // Promoted behind the approval's back (the board's Promote): the consumer puts it back to wait.
    await (await berth.queue.getJob(id))!.promote();
    await waitUntil(() => logs.some((l) => l.includes('promoted without an approval')), 'the consumer putting it back', 30_000);
    assert.equal((await berth.api('GET', `/api/tasks/${id}`)).body.state, 'awaiting-approval');

    // A reader's click: GitHub is asked, and says read.
    github.setRole(REPO, 'some-reader', 'read');
    const readerClick = checkRunEvent('requested_action', id, github.appId, 'berth-approve');
    readerClick.sender.login = 'some-reader';
    readerClick.check_run.head_sha = pull.headSha;
    const refused = await deliver(berth.url, 'check_run', readerClick);
    assert.match(refused.body.detail, /some-reader has read permission on octo-org\/widgets; write is needed/, JSON.stringify(refused.body));
    // A click on an approval shown for another commit approves nothing.
    const stale = checkRunEvent('requested_action', id, github.appId, 'berth-approve');
    stale.sender.login = 'maintainer';
    stale.check_run.head_sha = 'f'.repeat(40);
    assert.match((await deliver(berth.url, 'check_run', stale)).body.ignored, /shown for fffffff/);
    assert.equal((await berth.api('GET', `/api/tasks/${id}`)).body.state, 'awaiting-approval');
    assert.equal(recorder.events.filter((e) => e.jobId === id).length, 0, 'no container while it waits');
    assert.equal(workerTokens(), tokensBefore, 'no worker token while it waits');

    const click = checkRunEvent('requested_action', id, github.appId, 'berth-approve');
    click.sender.login = 'maintainer';
    click.check_run.head_sha = pull.headSha;
    const approved = await deliver(berth.url, 'check_run', click);
    assert.deepEqual([approved.body.approvedBy, approved.body.sha], ['maintainer', pull.headSha], JSON.stringify(approved.body));
    const task = await berth.waitFor(id, ['completed', 'failed'], 90_000);
    assert.equal(task.state, 'completed', JSON.stringify(task));
    assert.deepEqual([task.approval.state, task.approval.approvedBy, task.approval.approvedSha], ['approved', 'maintainer', pull.headSha]);
    const run = await waitUntil(() => runsFor(id).find((c) => c.name === 'berth/review' && c.status === 'completed'), "the task's own check run", 30_000);
    assert.deepEqual([run.head_sha, run.conclusion], [pull.headSha, 'success']);
    assert.equal(gate.history.length, 1, 'the approval run was made once and left as it was');
    await recorder.stop();
    assert.equal(recorder.events.filter((e) => e.action === 'create' && e.jobId === id).length, 1, 'one container, after the approval');
    assert.equal(workerTokens() - tokensBefore, 1, 'one worker token, minted after the approval');

    // The audit trail of that round trip, read back by a restarted berth after the task itself is gone.
    await waitUntil(
      async () => (await berth.api('GET', `/api/audit?task=${id}`)).body.entries.some((e: { type: string }) => e.type === 'token-revoked'),
      'the token given back, in the audit trail',
      30_000,
    );
    // The test berth's close obliterates its queue: every job of it, this one too, is removed from Redis.
    await berth.close();
    const again = await startBerth(env({ QUEUE_NAME: berth.config.QUEUE_NAME }), { consumer: false });
    berths.push(again);
    assert.equal((await again.api('GET', `/api/tasks/${id}`)).status, 404, 'the task is gone');
    const { body: trail } = await again.api('GET', `/api/audit?task=${id}&format=jsonl`);
    const entries = String(trail)
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, any>);
    const types = entries.map((e) => e.type);
    for (const type of ['requested', 'approval-requested', 'approval-refused', 'approved', 'token-minted', 'token-revoked', 'finished'])
      assert.ok(types.includes(type), `${type} in ${types.join(', ')}`);
    assert.ok(types.indexOf('approved') < types.indexOf('token-minted'), 'no token before the approval');
    const requested = entries.find((e) => e.type === 'requested')!;
    assert.deepEqual([requested.source, requested.actor, requested.delivery], ['github', 'outsider', sent.delivery]);
    assert.deepEqual(
      entries.filter((e) => e.type === 'approval-refused').map((e) => e.by),
      ['some-reader', 'maintainer'],
      'the reader, and the click on a stale commit',
    );
    assert.equal(entries.find((e) => e.type === 'approved')!.by, 'maintainer');
    const minted = entries.find((e) => e.type === 'token-minted')!;
    assert.deepEqual([minted.repository, minted.installationId, minted.permissions.contents], [REPO, INSTALLATION, 'read']);
    assert.deepEqual(entries.find((e) => e.type === 'finished')!.state, 'completed');
    const writes = entries.filter((e) => e.type === 'github-write');
    assert.ok(
      writes.some((w) => w.what === 'check-run.created' && w.status === 'action_required'),
      JSON.stringify(writes),
    );
    assert.ok(
      writes.some((w) => w.what === 'check-run.updated' && w.status === 'success'),
      JSON.stringify(writes),
    );
    assert.ok(
      writes.some((w) => w.what === 'reaction'),
      'the 👀',
    );
    assert.ok(!JSON.stringify(entries).includes('ghs_'), 'no token in the audit trail');
  });

  it('a push after the request drops the pending approval; an issue gets one comment saying how to approve; unapproved requests expire with a neutral check run', async () => {
    const berth = await startBerth(
      env({
        WEBHOOK_RULES_FILE: rulesFile({
          botLogin: 'berth-test[bot]',
          trust: { owners: ['octo-org'], approval: { expireAfterHours: 0.002 } },
          rules: [
            { on: 'issue_comment.created', command: '/agent review', kind: 'review' },
            { on: 'issue_comment.created', command: '/agent implement', kind: 'implement', promptFromArguments: true },
          ],
        }),
      }),
    );
    berths.push(berth);
    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    github.setRole(REPO, 'outsider', 'read');
    github.addPull(REPO, { number: 31, headSha: pull.headSha, baseRef: 'main', headRepo: REPO });
    const ask = async (body: string, number: number, options: { pull?: boolean } = {}) => {
      const payload = comment(body, number, { association: 'CONTRIBUTOR', ...options });
      payload.comment.user.login = 'outsider';
      const sent = await deliver(berth.url, 'issue_comment', payload);
      assert.equal(sent.body.state, 'awaiting-approval', JSON.stringify(sent.body));
      return sent.body.id as string;
    };
    const first = await ask('/agent review', 31);
    await waitUntil(() => runsFor(first).find((c) => c.name === 'berth/review: approval'), 'the approval check run', 30_000);
    // The contributor pushes; then a writer approves what was shown for the old head.
    const moved = execFileSync('git', ['-C', join(github.gitRoot, `${REPO}.git`), 'rev-parse', 'main'], { encoding: 'utf8' }).trim();
    github.addPull(REPO, { number: 31, headSha: moved, baseRef: 'main', headRepo: REPO });
    const approve = comment('/agent approve', 31);
    approve.comment.user.login = 'maintainer';
    const answer = await deliver(berth.url, 'issue_comment', approve);
    assert.match(
      answer.body.ignored,
      new RegExp(`moved to ${moved.slice(0, 7)} after approval was asked for ${pull.headSha.slice(0, 7)}`),
      JSON.stringify(answer.body),
    );
    const dropped = await berth.waitFor(first, ['cancelled'], 10_000);
    assert.equal(dropped.failure.cause, 'superseded');

    // An issue has no check run: one comment says who may approve and how.
    const onIssue = await ask('/agent implement tidy up', 9, { pull: false });
    const note = await waitUntil(() => github.comments.find((c) => c.body.includes(`<!-- berth-approval:${onIssue} -->`)), 'the approval comment', 30_000);
    assert.match(note.body, /with a comment `\/agent approve`/);

    // Nobody approves: both end unapproved, never run; the pull request's run is neutral.
    github.addPull(REPO, { number: 31, headSha: pull.headSha, baseRef: 'main', headRepo: REPO });
    const second = await ask('/agent review', 31);
    const expired = await berth.waitFor(second, ['cancelled', 'failed', 'completed'], 30_000);
    assert.deepEqual([expired.state, expired.failure.cause], ['cancelled', 'unapproved'], JSON.stringify(expired));
    const run = await waitUntil(() => runsFor(second).find((c) => c.name === 'berth/review' && c.status === 'completed'), 'the neutral check run', 30_000);
    assert.deepEqual([run.conclusion, run.output.title], ['neutral', 'Not approved']);
    assert.equal((await berth.waitFor(onIssue, ['cancelled', 'failed', 'completed'], 30_000)).failure.cause, 'unapproved');
    assert.equal(github.comments.filter((c) => c.body.includes(`<!-- berth-approval:${onIssue} -->`)).length, 1, 'one comment');
    await recorder.stop();
    assert.equal(recorder.events.filter((e) => [first, onIssue, second].includes(e.jobId ?? '')).length, 0, 'none of them ever had a container');
  });
});
