import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { realParts } from '../support/suite.js';
import { startBerth, type TestBerth } from '../support/berth.js';
import { Redis } from 'ioredis';
import { deliver, rulesFile, WEBHOOK_SECRET } from '../support/github.js';

describe('backpressure instead of unbounded growth', () => {
  const parts = realParts();
  let berth: TestBerth;
  let env: Record<string, string>;

  before(async () => {
    env = parts.env({
      MAX_QUEUED_TASKS: '5',
      MAX_QUEUED_PER_REPO: '3',
      GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
      WEBHOOK_RULES_FILE: rulesFile({
        botLogin: 'octocat',
        trust: { owners: ['Codertocat'], permission: 'none' },
        rules: [{ on: 'pull_request.review_requested', kind: 'echo' }],
      }),
    });
    berth = await startBerth(env, { consumer: false });
    parts.berths.push(berth);
  });

  const submit = (repo: string) => berth.api('POST', '/api/tasks', { kind: 'echo', repo });

  it('per repository and in all: 429 with a clear message over the cap; deliveries ignored; nothing queued is dropped', async () => {
    const first = [];
    for (let i = 0; i < 3; i++) first.push((await submit('octo/a')).status);
    assert.deepEqual(first, [202, 202, 202]);
    const overRepo = await fetch(`${berth.url}/api/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.API_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'echo', repo: 'octo/a' }),
    });
    assert.equal(overRepo.status, 429);
    assert.equal(overRepo.headers.get('retry-after'), '30');
    assert.match(((await overRepo.json()) as { message: string }).message, /octo\/a has 3 tasks queued \(MAX_QUEUED_PER_REPO=3\)/);
    assert.deepEqual([(await submit('octo/b')).status, (await submit('octo/b')).status], [202, 202]);
    const overAll = await submit('octo/c');
    assert.equal(overAll.status, 429);
    assert.match(overAll.body.message, /berth has 5 tasks queued \(MAX_QUEUED_TASKS=5\)/);

    const payload = JSON.parse(
      JSON.stringify((examples as any[]).find((e) => e.name === 'pull_request').examples.find((x: any) => x.action === 'review_requested')),
    );
    payload.requested_reviewer = { login: 'octocat' };
    const hook = await deliver(berth.url, 'pull_request', payload);
    assert.equal(hook.status, 202);
    assert.match(hook.body.ignored, /MAX_QUEUED_TASKS=5/);
    assert.equal(await berth.queue.count(), 5, 'nothing dropped, nothing added');
  });

  it('a cancelled task frees its place (a stale entry is pruned at the cap); running tasks free theirs', async () => {
    const { body } = await berth.api('GET', '/api/tasks?repo=octo/a&state=waiting');
    assert.equal((await berth.api('POST', `/api/tasks/${body.tasks[0].id}/cancel`)).status, 200);
    assert.equal((await submit('octo/a')).status, 202, 'the cancelled one no longer counts');

    const consumer = await startBerth({ ...env, QUEUE_NAME: env.QUEUE_NAME! });
    try {
      await new Promise<void>((resolve) => {
        const check = async () =>
          (await berth.queue.getJobCounts('waiting', 'active')).waiting === 0 && (await berth.queue.getJobCounts('active')).active === 0
            ? resolve()
            : setTimeout(check, 200);
        void check();
      });
      assert.deepEqual(
        [(await submit('octo/a')).status, (await submit('octo/a')).status, (await submit('octo/a')).status],
        [202, 202, 202],
        'room again once they ran',
      );
    } finally {
      await consumer.close();
    }
  });
  it('a full Redis (maxmemory reached): 503 naming the cause, nothing written, the counter and the gauge an alert reads', async () => {
    const admin = new Redis(parts.redis.url);
    try {
      const before = await berth.queue.count();
      const used = Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))![1]);
      await admin.config('SET', 'maxmemory', String(used - 1024));
      const response = await submit('octo/full');
      assert.equal(response.status, 503);
      assert.match(response.body.message, /^Redis is full \(it reached its maxmemory\) and refused the write; nothing was queued/);
      await admin.config('SET', 'maxmemory', '0');
      assert.equal(await berth.queue.count(), before, 'nothing was queued');
      const metrics = await (await fetch(`${berth.url}/metrics`, { headers: { authorization: `Bearer ${env.API_TOKEN}` } })).text();
      assert.match(metrics, /^berth_redis_full_total 1$/m);
      assert.match(metrics, /^berth_redis_memory_used_ratio 0$/m, 'no maxmemory again: the ratio reads 0');
      await admin.config('SET', 'maxmemory', String(used * 2));
      const ratio = Number(
        /^berth_redis_memory_used_ratio (\S+)$/m.exec(
          await (await fetch(`${berth.url}/metrics`, { headers: { authorization: `Bearer ${env.API_TOKEN}` } })).text(),
        )![1],
      );
      assert.ok(ratio > 0.3 && ratio < 0.9, `ratio ${ratio}`);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
    }
  });
});
