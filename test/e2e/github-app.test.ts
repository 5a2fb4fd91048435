import assert from 'node:assert/strict';
import { createHash, createPublicKey, createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { Redis } from 'ioredis';
import { githubTokenMinter } from '../../src/consumer/github-token.js';
import { queueContainers, recordEvents } from '../support/docker.js';
import { ensureWorkerImage } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startBerth, testEnv, type TestBerth } from '../support/berth.js';
import { deliver, rulesFile, WEBHOOK_SECRET } from '../support/github.js';
import { waitUntil } from '../support/wait.js';

type Example = Record<string, any>;
const example = (event: string, action: string): Example =>
  JSON.parse(JSON.stringify((examples as Array<{ name: string; examples: Example[] }>).find((e) => e.name === event)!.examples.find((x) => x.action === action)));

/** A stand-in for GitHub's API: checks the App JWT for real and issues installation tokens. */
function fakeGithub(publicKeyPem: string) {
  const issued: Array<{ installationId: number; repositories: string[]; token: string }> = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (c) => (body += c));
    request.on('end', () => {
      const jwt = (request.headers.authorization ?? '').replace(/^bearer /i, '');
      const [header, payload, signature] = jwt.split('.');
      const verifier = createVerify('RSA-SHA256');
      verifier.update(`${header}.${payload}`);
      const validJwt = !!signature && verifier.verify(createPublicKey(publicKeyPem), Buffer.from(signature, 'base64url'));
      const claims = validJwt ? JSON.parse(Buffer.from(payload!, 'base64url').toString()) : null;
      if (!validJwt || claims.iss !== '12345') {
        response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'A JSON web token could not be decoded' }));
        return;
      }
      const tokenRoute = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(request.url ?? '');
      if (request.method === 'POST' && tokenRoute) {
        const token = `ghs_${randomBytes(18).toString('hex')}`;
        const repositories = (JSON.parse(body || '{}') as { repositories?: string[] }).repositories ?? [];
        issued.push({ installationId: Number(tokenRoute[1]), repositories, token });
        response.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: { contents: 'write', pull_requests: 'write' }, repository_selection: 'selected' }));
        return;
      }
      if (request.method === 'GET' && /^\/repos\/[^/]+\/[^/]+\/installation$/.test(request.url ?? '')) {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 4242 }));
        return;
      }
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Not Found' }));
    });
  });
  return { server, issued };
}

async function everyRedisValue(url: string): Promise<string> {
  const redis = new Redis(url);
  const parts: string[] = [];
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'COUNT', '1000');
      cursor = next;
      for (const key of keys) {
        parts.push(key);
        const type = await redis.type(key);
        if (type === 'string') parts.push((await redis.getBuffer(key))?.toString('latin1') ?? '');
        else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
        else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
        else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, '0', '-1')));
        else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      }
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return parts.join('\n');
}

describe('GitHub App tokens and superseded reviews (real Octokit against a local GitHub stand-in)', () => {
  let redis: TestRedis;
  let image: string;
  const berths: TestBerth[] = [];

  before(async () => {
    image = await ensureWorkerImage();
    redis = await startRedis();
  });
  after(async () => {
    for (const berth of berths) await berth.close().catch(() => {});
    await redis.stop();
  });

  it('mints a repository-scoped token at launch; it reaches the container and nothing else', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const github = fakeGithub(publicKey);
    await new Promise<void>((resolve) => github.server.listen(0, '127.0.0.1', resolve));
    const baseUrl = `http://127.0.0.1:${(github.server.address() as { port: number }).port}`;
    const logs: string[] = [];
    try {
      const berth = await startBerth(
        testEnv(redis, image, { GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET, WEBHOOK_RULES_FILE: rulesFile({ botLogin: 'octocat', trust: { owners: ['Codertocat'] } }), AGENT_COMMAND_REVIEW: 'node /agents/token.mjs' }),
        { mintSecrets: githubTokenMinter({ appId: '12345', privateKey, baseUrl }), logSink: (line) => logs.push(line) },
      );
      berths.push(berth);
      const fromWebhook = await deliver(berth.url, 'pull_request', example('pull_request', 'review_requested'));
      assert.equal(fromWebhook.status, 202, JSON.stringify(fromWebhook.body));
      const fromApi = await berth.api('POST', '/api/tasks', { kind: 'review', repo: 'octo-org/widgets', number: 9 });
      const viaWebhook = await berth.waitFor(fromWebhook.body.id, ['completed', 'failed']);
      const viaApi = await berth.waitFor(fromApi.body.id, ['completed', 'failed']);
      assert.equal(viaWebhook.state, 'completed', JSON.stringify(viaWebhook));
      assert.equal(viaApi.state, 'completed', JSON.stringify(viaApi));

      assert.equal(github.issued.length, 2);
      const [first, second] = github.issued as [(typeof github.issued)[0], (typeof github.issued)[0]];
      assert.deepEqual({ installationId: first.installationId, repositories: first.repositories }, { installationId: 1, repositories: ['Hello-World'] });
      assert.deepEqual({ installationId: second.installationId, repositories: second.repositories }, { installationId: 4242, repositories: ['widgets'] });
      const sha = (token: string) => createHash('sha256').update(token).digest('hex');
      assert.deepEqual(viaWebhook.result, { tokenSha256: sha(first.token), auth: 'token' });
      assert.deepEqual(viaApi.result, { tokenSha256: sha(second.token), auth: 'token' });

      const everything = await everyRedisValue(redis.url);
      assert.ok(everything.length > 1000, 'the scan saw the queue');
      const captured = logs.join('\n');
      assert.ok(captured.includes('started container'), 'the logs were captured');
      for (const { token } of github.issued) {
        assert.ok(!everything.includes(token), 'token found in Redis');
        assert.ok(!captured.includes(token), 'token found in the logs');
      }
    } finally {
      github.server.close();
    }
  });

  it('a push to a PR supersedes its running review: the old container stops, a new review runs', async () => {
    const berth = await startBerth(
      testEnv(redis, image, {
        GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        WEBHOOK_RULES_FILE: rulesFile({ botLogin: 'octocat', trust: { owners: ['Codertocat'] } }),
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
