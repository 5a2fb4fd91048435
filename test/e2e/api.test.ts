import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { pino } from 'pino';
import Dockerode from 'dockerode';
import { buildApi } from '../../src/api/server.js';
import { CancelBook } from '../../src/core/cancel.js';
import { parseConfig } from '../../src/core/config.js';
import { createTaskQueue } from '../../src/core/queue.js';
import { DockerLauncher } from '../../src/consumer/launcher/docker.js';
import { Redis } from 'ioredis';
import { realParts } from '../support/suite.js';
import { startRedis } from '../support/redis.js';
import { startBerth, testEnv, TEST_TOKEN, type TestBerth } from '../support/berth.js';

describe('API: authentication, validation and idempotency (no consumer running)', () => {
  const parts = realParts({ image: false });
  let berth: TestBerth;

  before(async () => {
    berth = await startBerth(parts.env({ BODY_LIMIT: '16k' }), { consumer: false });
    parts.berths.push(berth);
  });

  const post = (body: string | undefined, headers: Record<string, string> = {}) =>
    fetch(`${berth.url}/api/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json', ...headers },
      body,
    });

  it('refuses requests without a token or with a wrong one, and queues nothing', async () => {
    for (const authorization of [
      undefined,
      'Bearer wrong',
      `Bearer ${TEST_TOKEN}x`,
      `Basic ${Buffer.from(`x:${TEST_TOKEN}`).toString('base64')}`,
      TEST_TOKEN,
      `bearer ${TEST_TOKEN}`,
    ]) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization) headers.authorization = authorization;
      const response = await fetch(`${berth.url}/api/tasks`, { method: 'POST', headers, body: JSON.stringify({ kind: 'echo', repo: 'a/b' }) });
      assert.equal(response.status, 401, String(authorization));
      const get = await fetch(`${berth.url}/api/tasks/whatever`, { headers: authorization ? { authorization } : {} });
      assert.equal(get.status, 401);
    }
    assert.equal(await berth.queue.count(), 0);
  });

  it('answers client mistakes with 4xx and a readable message, never 500', async () => {
    const cases: Array<[string, Promise<Response>, number, RegExp]> = [
      ['bad JSON', post('{"kind": "echo", '), 400, /JSON/i],
      ['empty body', post(''), 400, /empty/i],
      ['not an object', post('[1,2]'), 400, /expected object/i],
      ['missing repo', post(JSON.stringify({ kind: 'echo' })), 400, /repo/],
      ['bad repo', post(JSON.stringify({ kind: 'echo', repo: '../etc' })), 400, /owner\/name/],
      ['wrong type', post(JSON.stringify({ kind: 'echo', repo: 'a/b', number: 'seven' })), 400, /number/],
      ['unknown field', post(JSON.stringify({ kind: 'echo', repo: 'a/b', priority: 1 })), 400, /priority/],
      ['unknown kind', post(JSON.stringify({ kind: 'deploy', repo: 'a/b' })), 400, /known kinds: echo, exit, oom, sleep/],
      ['a kind named after an Object method', post(JSON.stringify({ kind: 'constructor', repo: 'a/b' })), 400, /unknown kind 'constructor'/],
      ['a ref that reads as a git option', post(JSON.stringify({ kind: 'echo', repo: 'a/b', ref: '--upload-pack=x' })), 400, /must not start with '-'/],
      ['a repository named ..', post(JSON.stringify({ kind: 'echo', repo: 'a/..' })), 400, /owner\/name/],
      ['too large', post(JSON.stringify({ kind: 'echo', repo: 'a/b', prompt: 'x'.repeat(20_000) })), 413, /larger than/],
      ['form body', post('kind=echo', { 'content-type': 'application/x-www-form-urlencoded' }), 415, /application\/json/],
      ['text body', post('hello', { 'content-type': 'text/plain' }), 415, /application\/json/],
    ];
    for (const [name, request, status, message] of cases) {
      const response = await request;
      const body = (await response.json()) as { message: string };
      assert.equal(response.status, status, `${name}: ${JSON.stringify(body)}`);
      assert.match(body.message, message, name);
    }
    assert.equal(await berth.queue.count(), 0, 'nothing queued by any of them');
  });

  it('returns 404 for an unknown task id', async () => {
    const response = await berth.api('GET', '/api/tasks/t-nope');
    assert.equal(response.status, 404);
    assert.match(response.body.message, /no task t-nope/);
  });

  it('maps the same idempotencyKey to the same task, never a second', async () => {
    const body = { kind: 'echo', repo: 'octo/widgets', number: 7, idempotencyKey: 'pr-7-review' };
    const first = await berth.api('POST', '/api/tasks', body);
    assert.equal(first.status, 202);
    const results = await Promise.all(Array.from({ length: 10 }, () => berth.api('POST', '/api/tasks', body)));
    for (const again of results) {
      assert.equal(again.status, 200);
      assert.equal(again.body.id, first.body.id);
      assert.equal(again.body.state, 'waiting');
    }
    assert.equal(await berth.queue.count(), 1);
    const conflicting = await berth.api('POST', '/api/tasks', { ...body, number: 8 });
    assert.equal(conflicting.status, 409);
    const task = await berth.api('GET', `/api/tasks/${first.body.id}`);
    assert.equal(task.body.number, 7);
    assert.equal(task.body.state, 'waiting');
    assert.equal(task.body.container, null);
  });

  it('logs one line per request, and none for a probe that answered well', async () => {
    const lines: string[] = [];
    const logged = await startBerth(parts.env(), { consumer: false, logSink: (line) => lines.push(line) });
    parts.berths.push(logged);
    for (let i = 0; i < 3; i++) await fetch(`${logged.url}/readyz`);
    await logged.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/logs' });
    await logged.api('GET', '/api/tasks/no-such-task');
    const requests = lines.map((l) => JSON.parse(l)).filter((l) => l.reqId);
    assert.deepEqual(
      requests.map((l) => [l.msg, l.method, l.url, l.statusCode]),
      [
        ['request', 'POST', '/api/tasks', 202],
        ['request', 'GET', '/api/tasks/no-such-task', 404],
      ],
    );
  });

  it('serves /healthz and /readyz without a token', async () => {
    assert.equal((await fetch(`${berth.url}/healthz`)).status, 200);
    const ready = await fetch(`${berth.url}/readyz`);
    assert.equal(ready.status, 200);
  });
});

describe('readiness names the dependency that is down', () => {
  it('503 naming redis when Redis is down, and docker when the engine is unreachable', async () => {
    const redis = await startRedis();
    const config = parseConfig(testEnv(redis, 'berth:unused'));
    const queue = createTaskQueue(config);
    const probeRedis = new Redis(redis.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    probeRedis.on('error', () => {});
    await new Promise((resolve) => probeRedis.once('ready', resolve));
    const goodDocker = new DockerLauncher(new Dockerode());
    const badDocker = new DockerLauncher(new Dockerode({ socketPath: '/nonexistent/docker.sock' }));
    const build = (launcher: DockerLauncher) =>
      buildApi({
        config,
        queue,
        cancels: new CancelBook(probeRedis, config.QUEUE_NAME, 1000),
        logger: pino({ level: 'silent' }),
        probes: [
          { name: 'redis', check: async () => void (await probeRedis.ping()) },
          { name: 'docker', check: () => launcher.ping() },
        ],
      });
    const good = await build(goodDocker);
    const bad = await build(badDocker);
    try {
      assert.equal((await good.inject({ url: '/readyz' })).statusCode, 200);
      const dockerDown = await bad.inject({ url: '/readyz' });
      assert.equal(dockerDown.statusCode, 503);
      assert.deepEqual(dockerDown.json().unreachable, ['docker']);
      await redis.kill();
      const redisDown = await good.inject({ url: '/readyz' });
      assert.equal(redisDown.statusCode, 503);
      assert.deepEqual(redisDown.json().unreachable, ['redis']);
      assert.equal((await good.inject({ url: '/healthz' })).statusCode, 200, 'alive even when dependencies are not');
    } finally {
      await good.close();
      await bad.close();
      probeRedis.disconnect();
      await queue.close().catch(() => {});
    }
  });
});
