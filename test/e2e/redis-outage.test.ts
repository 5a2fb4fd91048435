import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { Redis } from 'ioredis';
import { queueContainers, recordEvents } from '../support/docker.js';
import { ensureWorkerImage } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startApiProcess, type ApiProcess } from '../support/berth.js';
import { deliver, rulesFile, WEBHOOK_SECRET } from '../support/github.js';
import { waitUntil } from '../support/wait.js';

/**
 * Redis stops for 30 s while four agents run, under a real berth process (API and consumer in one,
 * as production runs it). Containers keep running; the consumer finishes every task once; the API
 * answers 503 with Retry-After at once (never a hang, never a task queued later); one takeover at
 * most per job afterwards. Then Redis hangs instead (SIGSTOP, connections open): 503 at the deadline.
 */
describe('a 30 s Redis outage mid-flight', () => {
  let redis: TestRedis;
  let api: ApiProcess;
  let url: string;
  let queue: string;

  before(async () => {
    const image = await ensureWorkerImage();
    redis = await startRedis({ aof: true });
    api = await startApiProcess(redis, image, {
      AGENT_COMMAND_SLEEP: 'node /agents/sleep.mjs',
      GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
      WEBHOOK_RULES_FILE: rulesFile({
        botLogin: 'octocat',
        trust: { owners: ['Codertocat'], permission: 'none' },
        rules: [{ on: 'pull_request.review_requested', kind: 'sleep' }],
      }),
    });
    ({ url, queue } = api);
  });
  after(async () => {
    await api.stop();
    await redis.stop();
  });

  const call = (method: string, path: string, body?: unknown) => api.call(method, path, body);

  it('containers keep running, every task completes once, submits get 503 at once and never become tasks', async () => {
    const recorder = await recordEvents(queue);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await call('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '40' })).body.id);
    await waitUntil(() => recorder.events.filter((e) => e.action === 'start').length === 4, 'four containers running', 60_000);

    await redis.stop();
    const stoppedAt = Date.now();
    const refused = await call('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/refused', prompt: '1' });
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.retryAfter, '5');
    assert.ok(refused.ms < 2_500, `answered in ${refused.ms} ms`);
    const payload = JSON.parse(
      JSON.stringify((examples as any[]).find((e) => e.name === 'pull_request').examples.find((x: any) => x.action === 'review_requested')),
    );
    payload.requested_reviewer = { login: 'octocat' };
    const hook = await deliver(url, 'pull_request', payload);
    assert.equal(hook.status, 503, JSON.stringify(hook.body));
    const ready = await call('GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.body.unreachable, ['redis']);
    assert.equal((await queueContainers(queue)).filter((c) => c.State === 'running').length, 4, 'containers keep running');
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - stoppedAt)))); // a fixed wait: Redis stays down 30 s
    await redis.start();

    for (const id of ids) {
      const task = await waitUntil(
        async () => {
          const answer = await call('GET', `/api/tasks/${id}`).catch(() => null);
          return answer && ['completed', 'failed'].includes(answer.body.state) ? answer.body : null;
        },
        `task ${id} finished`,
        60_000,
        250,
      );
      assert.equal(task.state, 'completed', JSON.stringify(task));
      assert.equal(task.attempts, 1);
    }
    await waitUntil(async () => (await queueContainers(queue)).length === 0, 'containers removed');
    await recorder.stop();
    for (const id of ids) assert.equal(recorder.events.filter((e) => e.action === 'create' && e.jobId === id).length, 1, `one container for ${id}`);
    assert.equal(recorder.events.filter((e) => e.action === 'create').length, 4, 'nothing else was launched');

    // What was refused during the outage never became a task, then or later.
    const client = new Redis(redis.url);
    const jobs = await client
      .keys(`bull:${queue}:*`)
      .then((keys) => keys.filter((k) => /^bull:[^:]+:[kt]-|^bull:[^:]+:gh-/.test(k) && !k.endsWith(':logs') && !k.endsWith(':lock')));
    client.disconnect();
    assert.deepEqual(jobs.sort(), ids.map((id) => `bull:${queue}:${id}`).sort());
    const takeovers = api.process.lines.filter((l) => l.msg === 'took over a job whose consumer is gone');
    assert.ok(takeovers.length <= ids.length, `${takeovers.length} takeovers for ${ids.length} jobs`);
  });

  it('a Redis that hangs with its connection open: the API and the webhook answer 503 at their deadline; the delivery resent afterwards is one task', async () => {
    const payload = JSON.parse(
      JSON.stringify((examples as any[]).find((e) => e.name === 'pull_request').examples.find((x: any) => x.action === 'review_requested')),
    );
    payload.requested_reviewer = { login: 'octocat' };
    payload.pull_request.number = payload.number = 4242;
    redis.pause();
    try {
      const [submit, hook] = await Promise.all([
        call('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/hung', prompt: '1' }),
        (async () => {
          const started = Date.now();
          return { ...(await deliver(url, 'pull_request', payload, { delivery: 'hung-redis-delivery' })), ms: Date.now() - started };
        })(),
      ]);
      // The API's per-request deadline (src/api/deadlines.ts), on a POST with a body: Fastify's own never fired there.
      assert.equal(submit.status, 503, JSON.stringify(submit.body));
      assert.equal(submit.retryAfter, '5');
      assert.ok(submit.ms >= 4_900 && submit.ms < 8_000, `task API answered in ${submit.ms} ms`);
      assert.equal(hook.status, 503, JSON.stringify(hook.body));
      assert.match(hook.body.message, /could not answer in time/);
      assert.ok(hook.ms >= 4_900 && hook.ms < 8_000, `webhook answered in ${hook.ms} ms`);
    } finally {
      redis.resume();
    }
    // The sender retries (GitHub's redelivery keeps the id): one task, whether or not the hung
    // attempt's commands landed once Redis woke up.
    const again = await deliver(url, 'pull_request', payload, { delivery: 'hung-redis-delivery' });
    assert.equal(again.status, 202, JSON.stringify(again.body));
    assert.equal(again.body.id, 'gh-hung-redis-delivery');
    const client = new Redis(redis.url);
    const jobs = await client.keys(`bull:${queue}:gh-hung-redis-delivery*`);
    client.disconnect();
    assert.deepEqual(
      jobs.filter((k) => !k.endsWith(':logs') && !k.endsWith(':lock')),
      [`bull:${queue}:gh-hung-redis-delivery`],
    );
  });
});
