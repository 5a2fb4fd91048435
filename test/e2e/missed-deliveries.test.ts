import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { realParts } from '../support/suite.js';
import { startBerth, type TestBerth } from '../support/berth.js';
import { deliver, rulesFile, WEBHOOK_SECRET } from '../support/github.js';
import { GithubStandin } from '../support/github-standin.js';
import { waitUntil } from '../support/wait.js';
import { Redis } from 'ioredis';
import { berthKeys } from '../../src/core/keys.js';

const reviewRequest = (number: number) => {
  const payload = JSON.parse(
    JSON.stringify((examples as any[]).find((e) => e.name === 'pull_request').examples.find((x: any) => x.action === 'review_requested')),
  );
  payload.requested_reviewer = { login: 'octocat' };
  payload.pull_request.number = number;
  payload.number = number;
  return payload;
};
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

/**
 * GitHub does not redeliver a failed delivery by itself. berth lists the App's deliveries, asks
 * for the ones that failed (or that it never recorded while it was watching) to be delivered again,
 * and the redelivery comes through the normal, signed route: exactly one task.
 */
describe('missed webhook deliveries', () => {
  const parts = realParts();
  let github: GithubStandin;
  let berth: TestBerth;
  const failed = randomUUID();
  const tooOld = randomUUID();
  const receivedBeforeWatching = randomUUID();
  const neverRecorded = randomUUID();
  const crashedBeforeAdd = randomUUID();

  before(async () => {
    github = new GithubStandin();
    github.defaultRole = 'write';
    github.installations.set('codertocat/hello-world', 1);
    await github.listen();
    // GitHub's record: a delivery that failed while berth was down; one too old to redeliver; many
    // that arrived fine before this berth was watching (two pages of them).
    github.addHookDelivery({
      guid: tooOld,
      delivered_at: ago(3.5 * 24 * 3600_000),
      redelivery: false,
      status_code: 502,
      event: 'pull_request',
      action: 'review_requested',
      payload: reviewRequest(31),
    });
    github.addHookDelivery({
      guid: failed,
      delivered_at: ago(10 * 60_000),
      redelivery: false,
      status_code: 0,
      event: 'pull_request',
      action: 'review_requested',
      payload: reviewRequest(32),
    });
    // berth recorded it as becoming a task, then died before the add (no job): GitHub says it timed out.
    github.addHookDelivery({
      guid: crashedBeforeAdd,
      delivered_at: ago(8 * 60_000),
      redelivery: false,
      status_code: 0,
      event: 'pull_request',
      action: 'review_requested',
      payload: reviewRequest(35),
    });
    github.addHookDelivery({
      guid: receivedBeforeWatching,
      delivered_at: ago(9 * 60_000),
      redelivery: false,
      status_code: 202,
      event: 'pull_request',
      action: 'review_requested',
      payload: reviewRequest(33),
    });
    for (let i = 0; i < 150; i++)
      github.addHookDelivery({
        guid: randomUUID(),
        delivered_at: ago(5 * 60_000),
        redelivery: false,
        status_code: 202,
        event: 'ping',
        action: null,
        payload: { zen: 'x' },
      });
    const env = parts.env({
      GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
      WEBHOOK_RULES_FILE: rulesFile({ botLogin: 'octocat', trust: { owners: ['Codertocat'] }, rules: [{ on: 'pull_request.review_requested', kind: 'echo' }] }),
      GITHUB_APP_ID: github.appId,
      GITHUB_APP_PRIVATE_KEY: github.privateKey,
      GITHUB_API_URL: github.url,
      CHECKOUT: 'never',
      WEBHOOK_REDELIVERY_INTERVAL: '1s',
    });
    // The trace of a berth that recorded a delivery as becoming a task and died before the add.
    const client = new Redis(parts.redis.url);
    await client.set(berthKeys(env.QUEUE_NAME!).deliverySeen(crashedBeforeAdd), 'task');
    client.disconnect();
    berth = await startBerth(env);
    parts.berths.push(berth);
    github.redeliverTo(berth.url, WEBHOOK_SECRET);
  });

  after(() => github.close());

  it('asks GitHub again for what failed or was never recorded, once; reports what is too old; one task per delivery', async () => {
    // A delivery GitHub counts as answered while berth was watching, which berth never recorded (a proxy answered it).
    github.addHookDelivery({
      guid: neverRecorded,
      delivered_at: new Date().toISOString(),
      redelivery: false,
      status_code: 200,
      event: 'pull_request',
      action: 'review_requested',
      payload: reviewRequest(34),
    });
    // A delivery that became a task which ran and was then removed (board Remove, Clean): never resurrected.
    const removed = randomUUID();
    const sent = await deliver(berth.url, 'pull_request', reviewRequest(36), { delivery: removed });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    await berth.waitFor(sent.body.id, ['completed'], 30_000);
    await (await berth.queue.getJob(sent.body.id))!.remove();
    github.addHookDelivery({
      guid: removed,
      delivered_at: new Date().toISOString(),
      redelivery: false,
      status_code: 202,
      event: 'pull_request',
      action: 'review_requested',
      payload: reviewRequest(36),
    });
    for (const guid of [failed, neverRecorded, crashedBeforeAdd]) {
      const task = await waitUntil(
        async () => {
          const answer = await berth.api('GET', `/api/tasks/gh-${guid}`);
          return answer.status === 200 && ['completed', 'failed'].includes(answer.body.state) ? answer.body : null;
        },
        `the redelivered ${guid} ran`,
        30_000,
      );
      assert.equal(task.state, 'completed', JSON.stringify(task));
    }
    await new Promise((r) => setTimeout(r, 3_000)); // a fixed wait: three more passes, to show nothing is asked twice
    const asked = github.redeliveryRequests.map((id) => github.hookDeliveries.find((d) => d.id === id)!.guid);
    assert.deepEqual(asked.sort(), [failed, neverRecorded, crashedBeforeAdd].sort(), 'asked once each, and for nothing else');
    const redelivered = github.hookDeliveries.filter((d) => d.redelivery);
    assert.ok(
      redelivered.every((d) => d.status_code === 202),
      'the redeliveries went through the signed route',
    );
    assert.equal((await berth.queue.getJobCounts('completed')).completed, 3, 'one task per missed delivery');
    assert.equal((await berth.api('GET', `/api/tasks/gh-${tooOld}`)).status, 404, 'the old one was not retried');
    assert.match(await berth.metrics.registry.getSingleMetricAsString('berth_webhook_deliveries_lost_total'), /berth_webhook_deliveries_lost_total 1/);
    assert.match(await berth.metrics.registry.getSingleMetricAsString('berth_webhook_redeliveries_total'), /berth_webhook_redeliveries_total 3/);
    assert.ok(github.calls.filter((c) => c.path === '/app/hook/deliveries' && c.query.get('cursor')).length > 0, 'it read past the first page');
  });
});
