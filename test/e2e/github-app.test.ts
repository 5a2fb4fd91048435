import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { createTaskQueue } from '../../src/core/queue.js';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { everyRedisValue } from '../support/redis-scan.js';
import { queueContainers, recordEvents } from '../support/docker.js';
import { realParts } from '../support/suite.js';
import { startBerth } from '../support/berth.js';
import { deliver, rulesFile, WEBHOOK_SECRET } from '../support/github.js';
import { waitUntil } from '../support/wait.js';
import { GithubStandin, type IssuedToken } from '../support/github-standin.js';

type Example = Record<string, any>;
const example = (event: string, action: string): Example =>
  JSON.parse(
    JSON.stringify((examples as Array<{ name: string; examples: Example[] }>).find((e) => e.name === event)!.examples.find((x) => x.action === action)),
  );

describe('GitHub App tokens and superseded reviews (real Octokit against a local GitHub stand-in)', () => {
  const parts = realParts();
  const { berths } = parts;

  /**
   * Worker tokens: the ones without `checks` (reports ask for it; a worker does not) and without
   * `metadata` alone (what the webhook route asks GitHub for the sender's role with).
   */
  const workerTokensOf = (github: GithubStandin) =>
    [...github.tokens.values()].filter((t) => t.permissions?.checks === undefined && t.permissions?.metadata === undefined);

  it('mints a repository-scoped token at launch; it reaches the container and nothing else', async () => {
    const github = new GithubStandin();
    github.defaultRole = 'write';
    await github.listen();
    github.installations.set('octo-org/widgets', 4242);
    github.installations.set('codertocat/hello-world', 1);
    const logs: string[] = [];
    try {
      const berth = await startBerth(
        parts.env({
          GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
          WEBHOOK_RULES_FILE: rulesFile({ botLogin: 'octocat', trust: { owners: ['Codertocat', 'octo-org'] } }),
          AGENT_COMMAND_REVIEW: 'node /agents/token.mjs',
          GITHUB_APP_ID: github.appId,
          GITHUB_APP_PRIVATE_KEY: github.privateKey,
          GITHUB_API_URL: github.url,
          // The fixture repositories exist only in name here: no checkout.
          CHECKOUT: 'never',
        }),
        { logSink: (line) => logs.push(line) },
      );
      berths.push(berth);
      const fromWebhook = await deliver(berth.url, 'pull_request', example('pull_request', 'review_requested'));
      assert.equal(fromWebhook.status, 202, JSON.stringify(fromWebhook.body));
      const fromApi = await berth.api('POST', '/api/tasks', { kind: 'review', repo: 'octo-org/widgets', number: 9 });
      const viaWebhook = await berth.waitFor(fromWebhook.body.id, ['completed', 'failed']);
      const viaApi = await berth.waitFor(fromApi.body.id, ['completed', 'failed']);
      assert.equal(viaWebhook.state, 'completed', JSON.stringify(viaWebhook));
      assert.equal(viaApi.state, 'completed', JSON.stringify(viaApi));

      const workerTokens = workerTokensOf(github);
      assert.equal(workerTokens.length, 2);
      // The two tasks start in either order: each token is told apart by what it was minted for.
      const scoped = workerTokens.map((t) => ({ installationId: t.installationId, repositories: t.repositories }));
      assert.deepEqual(
        scoped.sort((a, b) => a.installationId - b.installationId),
        [
          { installationId: 1, repositories: ['Hello-World'] },
          { installationId: 4242, repositories: ['widgets'] },
        ],
      );
      const first = workerTokens.find((t) => t.installationId === 1)!;
      const second = workerTokens.find((t) => t.installationId === 4242)!;
      const sha = (token: string) => createHash('sha256').update(token).digest('hex');
      assert.deepEqual(viaWebhook.result, { tokenSha256: sha(first.token), auth: 'token' });
      assert.deepEqual(viaApi.result, { tokenSha256: sha(second.token), auth: 'token' });
      assert.deepEqual(
        first.permissions,
        { contents: 'read', pull_requests: 'write', issues: 'read' },
        "a review worker's token has what reviewing needs, no more",
      );
      await waitUntil(() => workerTokens.every((t) => t.revoked), 'worker tokens revoked once their containers exited', 10_000);

      // An API task for a repository outside the trust settings: refused before any token exists.
      github.installations.set('elsewhere/secrets', 999);
      const outside = await berth.api('POST', '/api/tasks', { kind: 'review', repo: 'elsewhere/secrets' });
      const refused = await berth.waitFor(outside.body.id, ['completed', 'failed']);
      assert.equal(refused.state, 'failed');
      assert.match(refused.failedReason, /^refused: installation 999 of elsewhere is not allowed/);
      assert.equal([...github.tokens.values()].filter((t) => t.installationId === 999).length, 0, 'no token minted for it');

      // Jobs that reached Redis without the API (the board once, a script): held to the API's rules
      // by the consumer before anything is minted; failed, not retried.
      // Reports of the tasks above may still land (each with a report token of its own): count the
      // tokens these jobs could have got, a worker's, or any at all for the out-of-scope repository.
      const earlier = new Set(github.tokens.keys());
      const mintedForInjected = () =>
        [...github.tokens.values()].filter((t) => !earlier.has(t.token) && (t.permissions?.checks === undefined || t.repositories.includes('secrets'))).length;
      const injected = async (id: string, data: Record<string, unknown>) => {
        await berth.queue.add(
          'task' as never,
          { kind: 'review', repo: 'octo-org/widgets', source: 'api', submittedAt: Date.now(), submissionId: id, ...data } as never,
          { jobId: id, attempts: 3 },
        );
        return berth.waitFor(id, ['completed', 'failed']);
      };
      const dashRef = await injected('injected-ref', { ref: '--upload-pack=touch /tmp/pwned' });
      assert.match(dashRef.failedReason, /invalid task data: .*ref: must not start with '-'/);
      const foreignInstallation = await injected('injected-installation', { installationId: 1 });
      assert.match(foreignInstallation.failedReason, /refused: installation 1 does not own octo-org\/widgets/);
      const outsideScope = await injected('injected-scope', { repo: 'elsewhere/secrets' });
      assert.match(outsideScope.failedReason, /refused: installation 999 of elsewhere is not allowed/);
      for (const task of [dashRef, foreignInstallation, outsideScope]) assert.equal(task.attempts, 1, `${task.id} not retried`);
      assert.equal(mintedForInjected(), 0, 'nothing minted for them (reports outside the scope mint nothing either)');

      const everything = await everyRedisValue(parts.redis.url);
      assert.ok(everything.length > 1000, 'the scan saw the queue');
      const captured = logs.join('\n');
      assert.ok(captured.includes('started container'), 'the logs were captured');
      for (const { token } of github.tokens.values()) {
        assert.ok(!everything.includes(token), 'token found in Redis');
        assert.ok(!captured.includes(token), 'token found in the logs');
      }
    } finally {
      await github.close();
    }
  });

  /** A GitHub stand-in where every actor may write and octo-org/widgets is installation 4242. */
  const widgetsStandin = async () => {
    const github = new GithubStandin();
    github.defaultRole = 'write';
    await github.listen();
    github.installations.set('octo-org/widgets', 4242);
    return github;
  };
  /** berth as that stand-in's App, trusting octo-org; no checkout (the repositories exist in name only). */
  const appEnv = (github: GithubStandin, overrides: Record<string, string>) =>
    parts.env({
      WEBHOOK_RULES_FILE: rulesFile({ botLogin: 'octocat', trust: { owners: ['octo-org'] } }),
      GITHUB_APP_ID: github.appId,
      GITHUB_APP_PRIVATE_KEY: github.privateKey,
      GITHUB_API_URL: github.url,
      CHECKOUT: 'never',
      ...overrides,
    });

  it('a token minted for a workload that could not be created is revoked (no container will end with it)', async () => {
    const github = await widgetsStandin();
    try {
      const berth = await startBerth(
        appEnv(github, { AGENT_COMMAND_REVIEW: 'node /agents/token.mjs', WORKER_IMAGE: `berth-not-built-here:${process.pid}`, TASK_ATTEMPTS: '1' }),
      );
      berths.push(berth);
      const { body } = await berth.api('POST', '/api/tasks', { kind: 'review', repo: 'octo-org/widgets' });
      const task = await berth.waitFor(body.id, ['completed', 'failed']);
      assert.match(task.failedReason, /^worker image berth-not-built-here/);
      const workerTokens = workerTokensOf(github);
      assert.equal(workerTokens.length, 1, 'the token was minted before the create failed');
      await waitUntil(() => workerTokens[0]!.revoked, 'the unused token revoked', 10_000);
    } finally {
      await github.close();
    }
  });

  it('the reconciler revokes the token of a container it retires (its job removed while no consumer watched it)', async () => {
    const github = await widgetsStandin();
    const env = appEnv(github, { AGENT_COMMAND_REVIEW: 'node /agents/sleep.mjs', RECONCILE_INTERVAL: '500ms' });
    try {
      const first = await startBerth(env);
      const recorder = await recordEvents(first.config.QUEUE_NAME);
      const { body } = await first.api('POST', '/api/tasks', { kind: 'review', repo: 'octo-org/widgets', prompt: '120' });
      await waitUntil(() => recorder.events.some((e) => e.action === 'start' && e.jobId === body.id), 'the container started', 30_000);
      // A planned shutdown of the consumer hands the job back and leaves the container running, unwatched.
      berths.push(first);
      await first.consumer!.close();
      const [workerToken] = workerTokensOf(github) as [IssuedToken];
      assert.equal(workerToken.revoked, false, 'still in use by the running container');
      const queue = createTaskQueue(first.config);
      await (await queue.getJob(body.id))!.remove();
      await queue.close();
      const second = await startBerth(env);
      berths.push(second);
      await waitUntil(() => recorder.events.some((e) => e.action === 'destroy' && e.jobId === body.id), 'the reconciler removed the container', 30_000);
      await waitUntil(() => workerToken.revoked, "the retired container's token revoked", 10_000);
      const revokes = github.calls.filter((c) => c.method === 'DELETE' && c.path === '/installation/token' && c.token === workerToken.token);
      assert.ok(
        revokes.some((c) => c.from === '127.0.0.1' && c.status === 204),
        'by berth (the worker cannot reach this stand-in)',
      );
      await recorder.stop();
    } finally {
      await github.close();
    }
  });

  it('a push to a PR supersedes its running review: the old container stops, a new review runs', async () => {
    const berth = await startBerth(
      parts.env({
        GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        // No App here to ask for roles: this test is about superseding, so the operator opted out of asking.
        WEBHOOK_RULES_FILE: rulesFile({ botLogin: 'octocat', trust: { owners: ['Codertocat'], permission: 'none' } }),
        AGENT_COMMAND_REVIEW: 'node /agents/sleep.mjs 6',
        WORKER_STOP_GRACE: '5s',
      }),
    );
    berths.push(berth);
    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    const first = await deliver(berth.url, 'pull_request', example('pull_request', 'review_requested'));
    await waitUntil(() => recorder.events.some((e) => e.action === 'start' && e.jobId === first.body.id), 'first review running');
    const push = await deliver(berth.url, 'pull_request', example('pull_request', 'synchronize'));
    assert.equal(push.status, 202, JSON.stringify(push.body));
    assert.equal(push.body.superseded, first.body.id);
    assert.notEqual(push.body.id, first.body.id);
    const superseded = await berth.waitFor(first.body.id, ['cancelled', 'completed', 'failed'], 20_000);
    assert.equal(superseded.state, 'cancelled', JSON.stringify(superseded));
    const second = await berth.waitFor(push.body.id, ['completed', 'failed'], 30_000);
    assert.equal(second.state, 'completed');
    assert.equal(second.ref, example('pull_request', 'synchronize').pull_request.head.sha);
    await waitUntil(async () => (await queueContainers(berth.config.QUEUE_NAME)).length === 0, 'nothing left');
    await recorder.stop();
    const died = recorder.events.find((e) => e.action === 'die' && e.jobId === first.body.id)!;
    const started = recorder.events.find((e) => e.action === 'start' && e.jobId === first.body.id)!;
    assert.ok(died.time - started.time < 5500, 'the superseded review was stopped, not run to its end');
  });
});
