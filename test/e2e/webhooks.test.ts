import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, beforeEach, describe, it } from 'node:test';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { sign } from '@octokit/webhooks-methods';
import { realParts } from '../support/suite.js';
import { startBerth, type TestBerth } from '../support/berth.js';
import { deliver, PREVIOUS_SECRET, rulesFile, WEBHOOK_SECRET } from '../support/github.js';
import { GithubStandin } from '../support/github-standin.js';

type Example = Record<string, any>;
const examplesOf = (event: string): Example[] => (examples as Array<{ name: string; examples: Example[] }>).find((e) => e.name === event)!.examples;
const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const RULES = {
  botLogin: 'octocat',
  trust: { owners: ['Codertocat'] },
  rules: [
    { on: 'issues.labeled', label: 'agent:implement', kind: 'implement' },
    { on: 'pull_request.labeled', label: 'agent:review', kind: 'review' },
    { on: 'pull_request.labeled', label: 'agent:implement', kind: 'implement' },
    { on: 'pull_request.review_requested', kind: 'review' },
    { on: 'issue_comment.created', command: '/agent review', kind: 'review' },
    { on: 'issue_comment.created', command: '/agent implement', kind: 'implement', promptFromArguments: true },
    { on: 'pull_request.synchronize', kind: 'review', supersede: true },
  ],
};

describe('GitHub webhooks: verified, trusted, idempotent (real route, real Redis, real payloads)', () => {
  const parts = realParts({ image: false });
  let berth: TestBerth;
  let github: GithubStandin;

  before(async () => {
    // Trust is decided on the role GitHub reports: everyone is an admin here unless a test says otherwise.
    github = new GithubStandin();
    github.defaultRole = 'admin';
    // The example payloads' repository; some examples carry no installation, so berth looks it up.
    github.installations.set('codertocat/hello-world', 1);
    await github.listen();
    berth = await startBerth(
      parts.env({
        GITHUB_APP_ID: github.appId,
        GITHUB_APP_PRIVATE_KEY: github.privateKey,
        GITHUB_API_URL: github.url,
        GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        GITHUB_WEBHOOK_SECRET_PREVIOUS: PREVIOUS_SECRET,
        WEBHOOK_RULES_FILE: rulesFile(RULES),
        AGENT_COMMAND_REVIEW: 'node /agents/echo.mjs',
        AGENT_COMMAND_IMPLEMENT: 'node /agents/echo.mjs',
      }),
      { consumer: false },
    );
    parts.berths.push(berth);
  });
  beforeEach(async () => {
    await berth.queue.obliterate({ force: true });
    // berth's own keys too: each test starts with no delivery body seen before.
    const client = new Redis(parts.redis.url);
    const keys = await client.keys(`berth:${berth.config.QUEUE_NAME}:*`);
    if (keys.length) await client.del(...keys);
    client.disconnect();
  });
  after(() => github.close());

  const jobOf = async (delivery: string) => (await berth.queue.getJob(`gh-${delivery}`))!.data;

  it('every example payload of the handled events: the expected task or the expected ignore reason', async () => {
    let checked = 0;
    for (const event of ['issues', 'pull_request', 'issue_comment', 'ping', 'installation', 'push']) {
      for (const payload of examplesOf(event)) {
        await berth.queue.obliterate({ force: true });
        const response = await deliver(berth.url, event, payload);
        const key = `${event}.${payload.action ?? ''}`;
        checked++;
        if (event === 'ping') {
          assert.deepEqual([response.status, response.body], [202, { ignored: 'ping' }]);
        } else if (key === 'pull_request.review_requested') {
          assert.equal(response.status, 202, JSON.stringify(response.body));
          const data = await jobOf(response.delivery);
          assert.deepEqual(
            {
              kind: data.kind,
              repo: data.repo,
              number: data.number,
              ref: data.ref,
              installationId: data.installationId,
              deliveryId: data.deliveryId,
              source: data.source,
            },
            {
              kind: 'review',
              repo: payload.repository.full_name,
              number: payload.pull_request.number,
              ref: payload.pull_request.head.sha,
              installationId: payload.installation?.id,
              deliveryId: response.delivery,
              source: 'github',
            },
          );
        } else if (key === 'pull_request.synchronize') {
          const data = await jobOf(response.delivery);
          assert.equal(data.kind, 'review');
          assert.equal(data.ref, payload.pull_request.head.sha);
        } else if (['issues.labeled', 'pull_request.labeled', 'issue_comment.created'].includes(key)) {
          assert.deepEqual([response.status, response.body], [202, { ignored: `no rule matches this ${key}` }], `${key}: ${JSON.stringify(response.body)}`);
          assert.equal(await berth.queue.count(), 0);
        } else {
          assert.equal(response.status, 202);
          assert.match(response.body.ignored, /is not acted on$/, key);
          assert.equal(await berth.queue.count(), 0);
        }
      }
    }
    assert.ok(checked > 70, `checked ${checked} examples`);
  });

  it('labels and comment commands from the examples, retargeted, queue tasks with the right fields', async () => {
    for (const original of examplesOf('issues').filter((p) => p.action === 'labeled')) {
      await berth.queue.obliterate({ force: true });
      const payload = clone(original);
      payload.label.name = 'agent:implement';
      const response = await deliver(berth.url, 'issues', payload);
      assert.equal(response.status, 202, JSON.stringify(response.body));
      const data = await jobOf(response.delivery);
      assert.equal(data.kind, 'implement');
      assert.equal(data.number, payload.issue.number);
      // The issue author's text is data for the agent, labelled untrusted, never the instruction.
      assert.equal(data.prompt, undefined);
      assert.deepEqual(data.untrusted, { source: 'issue', title: payload.issue.title, body: payload.issue.body ?? '' });
      assert.equal('token' in data, false);
    }
    for (const original of examplesOf('issue_comment').filter((p) => p.action === 'created')) {
      for (const [body, kind, prompt] of [
        ['/agent review', 'review', undefined],
        ['/agent implement add a retry to the client\nthanks', 'implement', 'add a retry to the client\nthanks'],
      ] as const) {
        await berth.queue.obliterate({ force: true });
        const payload = clone(original);
        payload.comment.body = body;
        const response = await deliver(berth.url, 'issue_comment', payload);
        const data = await jobOf(response.delivery);
        assert.equal(data.kind, kind, JSON.stringify(response.body));
        assert.equal(data.prompt, prompt);
        assert.equal(data.repo, 'Codertocat/Hello-World');
      }
    }
  });

  it('signatures: wrong secret, sha1 only, truncated, body changed after signing, empty body are refused; the previous secret is accepted', async () => {
    const payload = clone(examplesOf('pull_request').find((p) => p.action === 'review_requested')!);
    const body = JSON.stringify(payload);
    const good = await sign(WEBHOOK_SECRET, body);
    const cases: Array<[string, Parameters<typeof deliver>[3]]> = [
      ['wrong secret', { secret: 'not-the-secret-at-all-000' }],
      ['no signature', { secret: null }],
      ['sha1 only', { secret: null, headers: { 'x-hub-signature': 'sha1=0123456789abcdef0123456789abcdef01234567' } }],
      ['truncated', { secret: null, headers: { 'x-hub-signature-256': good.slice(0, -2) } }],
      ['body changed', { secret: null, body: body.replace('"number":2', '"number":3'), headers: { 'x-hub-signature-256': good } }],
      ['empty body', { secret: null, body: '', headers: { 'x-hub-signature-256': good } }],
      ['upper-case hex', { secret: null, headers: { 'x-hub-signature-256': good.toUpperCase() } }],
    ];
    for (const [name, options] of cases) {
      const response = await deliver(berth.url, 'pull_request', payload, options);
      assert.equal(response.status, 401, name);
    }
    assert.equal(await berth.queue.count(), 0, 'nothing queued');
    const rotated = await deliver(berth.url, 'pull_request', payload, { secret: PREVIOUS_SECRET });
    assert.equal(rotated.status, 202);
    assert.ok(rotated.body.id);
  });

  it('bad input: malformed JSON 400, wrong content type 415, over 25 MB 413, bad headers 400, wrong types 400', async () => {
    const payload = examplesOf('pull_request').find((p) => p.action === 'review_requested')!;
    assert.equal((await deliver(berth.url, 'pull_request', null, { body: '{"action": "review_requested", ' })).status, 400);
    assert.equal((await deliver(berth.url, 'pull_request', null, { body: '[1]' })).status, 400);
    const form = await deliver(berth.url, 'pull_request', payload, { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.status, 415);
    const huge = await deliver(berth.url, 'pull_request', null, { body: `{"x":"${'a'.repeat(26 * 1024 * 1024)}"}` });
    assert.equal(huge.status, 413);
    assert.equal((await deliver(berth.url, 'pull_request', payload, { headers: { 'x-github-event': '../../etc' } })).status, 400);
    assert.equal((await deliver(berth.url, 'pull_request', payload, { delivery: 'a:b' })).status, 400);
    const wrongType = clone(payload);
    wrongType.pull_request.number = 'two';
    const typed = await deliver(berth.url, 'pull_request', wrongType);
    assert.equal(typed.status, 400);
    assert.match(typed.body.message, /pull_request.number/);
    assert.equal(await berth.queue.count(), 0);
  });

  it('unsigned uploads are refused before their body is read: 12 concurrent 20 MB ones cost under 100 MiB, /healthz answers', async () => {
    const { request } = await import('node:http');
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const port = Number(new URL(berth.url).port);
    const upload = () =>
      new Promise<number>((resolve) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/webhooks/github',
            headers: {
              'content-type': 'application/json',
              'content-length': String(20 * 1024 * 1024),
              'x-github-event': 'pull_request',
              'x-github-delivery': randomUUID(),
            },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', () => resolve(-1));
        let sent = 0;
        // Written lazily from one small buffer: the 20 MB exist only on the wire.
        const pump = () => {
          while (sent < 20 * 1024 * 1024 && !req.destroyed) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      });
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const statuses = await Promise.all(Array.from({ length: 12 }, upload));
    clearInterval(sampler);
    console.log(`unsigned uploads: statuses ${JSON.stringify(statuses)}; RSS ${(before / 2 ** 20).toFixed(0)} → peak ${(peak / 2 ** 20).toFixed(0)} MiB`);
    assert.ok(
      statuses.every((s) => s === 401),
      JSON.stringify(statuses),
    );
    assert.ok(peak - before < 100 * 2 ** 20, `RSS grew ${((peak - before) / 2 ** 20).toFixed(0)} MiB`);
    assert.equal((await fetch(`${berth.url}/healthz`)).status, 200);
    assert.equal(await berth.queue.count(), 0);
  });

  /** What waits for approval: delayed jobs whose data says so; nothing a consumer could take. */
  const awaiting = async () => {
    const counts = await berth.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
    const delayed = await berth.queue.getDelayed();
    return {
      startable: counts.waiting! + counts.prioritized! + counts.active!,
      held: delayed
        .filter((j) => j.data.approval?.state === 'pending')
        .map((j) => j.id!)
        .sort(),
    };
  };

  it('trust: an untrusted commenter waits for approval; bots, foreign installations, disallowed forks start nothing', async () => {
    const comment = clone(examplesOf('issue_comment').find((p) => p.action === 'created')!);
    comment.comment.body = '/agent review';
    comment.comment.author_association = 'CONTRIBUTOR';
    const contributor = await deliver(berth.url, 'issue_comment', comment);
    assert.deepEqual([contributor.status, contributor.body.state], [202, 'awaiting-approval'], JSON.stringify(contributor.body));
    const held = (await berth.queue.getJob(contributor.body.id))!.data.approval!;
    assert.deepEqual([held.state, held.requestedBy, held.minimum], ['pending', comment.comment.user.login, 'write']);
    assert.match(held.reason, /\(CONTRIBUTOR\) is not an owner, member or collaborator/);
    assert.deepEqual(await awaiting(), { startable: 0, held: [contributor.body.id] }, 'held, not startable');
    await berth.queue.obliterate({ force: true });

    const labeled = clone(examplesOf('pull_request').find((p) => p.action === 'labeled')!);
    labeled.label.name = 'agent:review';
    labeled.sender.type = 'Bot';
    assert.equal((await deliver(berth.url, 'pull_request', labeled)).body.ignored, 'untrusted sender');

    const foreign = clone(examplesOf('pull_request').find((p) => p.action === 'labeled')!);
    foreign.label.name = 'agent:review';
    foreign.repository.full_name = 'mallory/Hello-World';
    foreign.repository.owner.login = 'mallory';
    const foreignResponse = await deliver(berth.url, 'pull_request', foreign);
    assert.equal(foreignResponse.body.ignored, 'untrusted sender');
    assert.match(foreignResponse.body.detail, /installation .* not allowed/);

    const fork = clone(examplesOf('pull_request').find((p) => p.action === 'labeled')!);
    fork.pull_request.head.repo.full_name = 'someone/Hello-World';
    fork.label.name = 'agent:implement';
    assert.equal((await deliver(berth.url, 'pull_request', fork)).body.ignored, 'untrusted sender');
    fork.label.name = 'agent:review';
    assert.equal((await deliver(berth.url, 'pull_request', fork)).status, 202);
    assert.equal(await berth.queue.count(), 1, 'only the fork review was queued');
  });

  it('trust is the role GitHub reports, not author_association: a MEMBER with read and a triage labeller wait for approval, a failed lookup starts nothing; a writer starts it', async () => {
    const repo = 'Codertocat/Hello-World';
    const comment = clone(examplesOf('issue_comment').find((p) => p.action === 'created')!);
    comment.comment.body = '/agent review';
    comment.comment.author_association = 'MEMBER';
    comment.comment.user.login = 'org-reader';
    github.setRole(repo, 'org-reader', 'read');
    const reader = await deliver(berth.url, 'issue_comment', comment);
    assert.equal(reader.body.state, 'awaiting-approval', JSON.stringify(reader.body));
    assert.match(
      (await berth.queue.getJob(reader.body.id))!.data.approval!.reason,
      /org-reader has read permission on Codertocat\/Hello-World; write is needed/,
    );

    const labeled = clone(examplesOf('issues').find((p) => p.action === 'labeled')!);
    labeled.label.name = 'agent:implement';
    labeled.sender.login = 'triager';
    github.setRole(repo, 'triager', 'triage');
    const triage = await deliver(berth.url, 'issues', labeled);
    assert.match((await berth.queue.getJob(triage.body.id))!.data.approval!.reason, /triager has triage permission/);

    const lookups = github.calls.filter((c) => c.path.endsWith('/collaborators/outage-user/permission')).length;
    labeled.sender.login = 'outage-user';
    github.fail(/collaborators\/outage-user\/permission/, 503, 10);
    const outage = await deliver(berth.url, 'issues', labeled);
    assert.equal(outage.status, 202);
    assert.match(outage.body.detail, /GitHub could not tell outage-user's permission.*refused until GitHub answers/);
    assert.ok(github.calls.filter((c) => c.path.endsWith('/collaborators/outage-user/permission')).length > lookups, 'GitHub was asked');
    assert.equal(outage.body.ignored, 'untrusted sender', 'a failed lookup is no approvable refusal');
    assert.deepEqual(await awaiting(), { startable: 0, held: [reader.body.id, triage.body.id].sort() }, 'nothing startable');

    labeled.sender.login = 'writer';
    github.setRole(repo, 'writer', 'write');
    const writer = await deliver(berth.url, 'issues', labeled);
    assert.ok(writer.body.id, JSON.stringify(writer.body));
    // The writer asked for what the triager's request holds: that is its approval.
    assert.equal(writer.body.id, triage.body.id, JSON.stringify(writer.body));
    const approved = (await berth.queue.getJob(triage.body.id))!;
    assert.deepEqual([approved.data.approval?.state, approved.data.approval?.approvedBy, await approved.getState()], ['approved', 'writer', 'prioritized']);
    const asked = github.calls.find((c) => c.path === `/repos/${repo}/collaborators/writer/permission`)!;
    assert.deepEqual(github.tokens.get(asked.token!)?.permissions, { metadata: 'read' }, 'asked with a metadata-read token');
  });

  it('redelivery of one delivery id is a no-op; a second trigger while one waits is deduplicated', async () => {
    const payload = examplesOf('pull_request').find((p) => p.action === 'review_requested')!;
    const delivery = randomUUID();
    const first = await deliver(berth.url, 'pull_request', payload, { delivery });
    const again = await deliver(berth.url, 'pull_request', payload, { delivery });
    assert.equal(first.body.id, `gh-${delivery}`);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.body.duplicate, 'delivery already received');
    // A second trigger is another event: another body (here, another sender asked).
    const other = await deliver(berth.url, 'pull_request', { ...clone(payload), sender: { ...payload.sender, login: 'hubot' } });
    assert.equal(other.body.id, first.body.id);
    assert.match(other.body.ignored, /already queued/);
    // The same signed body replayed under a new delivery id is not an event at all.
    const replayed = await deliver(berth.url, 'pull_request', payload);
    assert.equal(replayed.status, 202);
    assert.match(replayed.body.ignored, new RegExp(`the same body was delivered before as ${delivery}`));
    assert.equal(await berth.queue.count(), 1);
  });

  it('intake limits: a trickled upload is cut off at REQUEST_TIMEOUT; WEBHOOK_BODY_LIMIT answers 413', async () => {
    const strict = await startBerth(
      parts.env({
        GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        WEBHOOK_RULES_FILE: rulesFile(RULES),
        AGENT_COMMAND_REVIEW: 'node /agents/echo.mjs',
        REQUEST_TIMEOUT: '1s',
        WEBHOOK_BODY_LIMIT: '64k',
      }),
      { consumer: false },
    );
    try {
      const { port } = new URL(strict.url);
      const socket = connect(Number(port), '127.0.0.1');
      await once(socket, 'connect');
      const started = Date.now();
      // Signed-looking (unsigned uploads are refused before their body is read), so the body is awaited.
      socket.write(
        `POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\nContent-Length: 50000\r\n\r\n{"a":`,
      );
      let answer = '';
      socket.on('data', (chunk) => (answer += chunk));
      // A server that hangs up may reset rather than close (it did on a loaded machine): both end it
      // (events.once would reject on the reset's 'error', so the close is awaited by hand).
      socket.on('error', () => {});
      const closed = new Promise((resolve) => socket.on('close', resolve));
      // Keep trickling a byte every 200 ms, as a slowloris client would, until the server hangs up.
      const trickle = setInterval(() => socket.writable && socket.write('1'), 200);
      await closed;
      clearInterval(trickle);
      const held = Date.now() - started;
      assert.ok(held < 6_000, `the connection was held ${held} ms`);
      assert.match(answer, /^HTTP\/1.1 408|^$/, 'a 408, or simply closed');
      const payload = examplesOf('pull_request').find((p) => p.action === 'review_requested')!;
      const big = await deliver(strict.url, 'pull_request', { ...clone(payload), padding: 'x'.repeat(70_000) });
      assert.equal(big.status, 413);
      assert.equal(await strict.queue.count(), 0);
    } finally {
      await strict.close();
    }
  });

  it('the route is off without a secret', async () => {
    const plain = await startBerth(parts.env(), { consumer: false });
    try {
      const response = await deliver(plain.url, 'ping', { zen: 'x' });
      assert.equal(response.status, 404);
    } finally {
      await plain.close();
    }
  });

  it('fuzz: 5,000 random and mutated deliveries, half signed: no 5xx, nothing from unsigned ones, memory stable', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const seeds = ['issues', 'pull_request', 'issue_comment'].flatMap((event) => examplesOf(event).map((payload) => ({ event, payload })));
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;
    const mutate = (value: any, depth = 0): any => {
      if (depth > 6 || value === null || typeof value !== 'object') {
        return pick([value, null, 0, -1, 1e308, '', 'x'.repeat(1 + Math.floor(random() * 5000)), [], {}, true, `/agent implement ${'y'.repeat(100)}`]);
      }
      const copy: any = Array.isArray(value) ? [...value] : { ...value };
      const keys = Object.keys(copy);
      for (let i = 0; i < 3 && keys.length; i++) {
        const k = pick(keys);
        copy[k] = random() < 0.5 ? mutate(copy[k], depth + 1) : pick([null, 7, 'str', [], { nested: { deeper: [1, 2, { x: null }] } }]);
      }
      return copy;
    };
    const bodies = (): string => {
      const r = random();
      if (r < 0.15) return randomBytes(Math.floor(random() * 2000)).toString('latin1');
      if (r < 0.3) return JSON.stringify(pick(seeds).payload).slice(0, Math.floor(random() * 3000));
      if (r < 0.4) return '['.repeat(10_000 + Math.floor(random() * 100_000));
      if (r < 0.45) return `{"action":"created","comment":{"body":"${'z'.repeat(1_000_000)}"}}`;
      return JSON.stringify(mutate(pick(seeds).payload));
    };
    const events = ['issues', 'pull_request', 'issue_comment', 'ping', 'push', '', 'x'.repeat(300), 'issues\r\nX-Evil: 1'.replace(/[\r\n]/g, '')];

    const before = await berth.queue.count();
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const unsignedDeliveries: string[] = [];
    const statuses = new Map<number, number>();
    const total = 5000;
    let index = 0;
    const worker = async () => {
      while (index < total) {
        const i = index++;
        const signed = i % 2 === 0;
        const event = random() < 0.85 ? pick(seeds).event : pick(events);
        const body = bodies();
        const delivery = random() < 0.05 ? pick(['', 'has space', '../x', 'a'.repeat(200)]) : randomUUID();
        const headers: Record<string, string> = {};
        if (random() < 0.05) headers['content-type'] = pick(['text/plain', 'application/json; charset=latin1', 'application/JSON']);
        let response: Awaited<ReturnType<typeof deliver>>;
        try {
          response = await deliver(berth.url, event, null, {
            body,
            delivery,
            secret: signed ? WEBHOOK_SECRET : null,
            headers: signed ? headers : { ...headers, ...(random() < 0.5 ? { 'x-hub-signature-256': `sha256=${randomBytes(32).toString('hex')}` } : {}) },
          });
        } catch (error) {
          // Header values Node's fetch refuses to send never reach the server.
          if (String(error).includes('Invalid') || String(error).includes('header')) continue;
          throw error;
        }
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        assert.ok(response.status < 500, `5xx for ${event}: ${JSON.stringify(response.body).slice(0, 200)}`);
        if (!signed) {
          // 401, or 415 when the content type is refused before the signature is even read.
          assert.ok(response.status === 401 || response.status === 415, String(response.status));
          unsignedDeliveries.push(delivery);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    for (const delivery of unsignedDeliveries) assert.equal(await berth.queue.getJob(`gh-${delivery}`), undefined);
    gc();
    const heapAfter = process.memoryUsage().heapUsed;
    console.log(
      `fuzz statuses: ${JSON.stringify(Object.fromEntries(statuses))}; queued ${(await berth.queue.count()) - before}; heap ${(heapBefore / 1e6).toFixed(1)} MB → ${(heapAfter / 1e6).toFixed(1)} MB`,
    );
    assert.ok(heapAfter - heapBefore < 40e6, `heap grew ${(heapAfter - heapBefore) / 1e6} MB`);
  });
});
