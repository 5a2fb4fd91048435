import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { startPriority } from '../../src/core/start-priority.js';
import { realParts } from '../support/suite.js';
import { recordEvents } from '../support/docker.js';
import { startBerth, TEST_TOKEN, type TestBerth } from '../support/berth.js';
import { startMetricsServer } from '../../src/core/metrics-server.js';
import type { BerthMetrics } from '../../src/core/metrics.js';

const metricsOf = (berth: TestBerth): BerthMetrics => berth.metrics;

const PUBLIC = new Set(['/healthz', '/readyz']);
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('operator surface: board behind auth, logs, retry, replay, list', () => {
  const parts = realParts();
  let berth: TestBerth;

  before(async () => {
    berth = await startBerth(
      parts.env({
        TASK_ATTEMPTS: '1',
        AGENT_COMMAND_FLAKY: 'node /agents/flaky.mjs',
        BOARD_PASSWORD: 'board-password-123',
        GITHUB_WEBHOOK_SECRET: 'webhook-secret-0123456789',
      }),
    );
    parts.berths.push(berth);
  });

  it('every route of the running server except health refuses anonymous and wrong credentials', async () => {
    const routes = berth.app.berthRoutes.filter((r) => !PUBLIC.has(r.url) && r.method !== 'OPTIONS');
    assert.ok(
      routes.some((r) => r.url.startsWith('/admin/queues/api/')),
      'board JSON API enumerated',
    );
    assert.ok(
      routes.some((r) => r.url.includes('static')),
      'board assets enumerated',
    );
    assert.ok(routes.some((r) => r.url === '/api/tasks/:id/retry'));
    for (const route of routes) {
      const path = route.url.replace(/:[A-Za-z]+/g, 'x').replace('*', 'x.js');
      for (const authorization of [undefined, 'Bearer wrong-token', basic('admin', 'wrong-password'), basic('mallory', 'board-password-123')]) {
        const response = await fetch(`${berth.url}${path}`, { method: route.method, headers: authorization ? { authorization } : {} });
        assert.equal(response.status, 401, `${route.method} ${route.url} with ${authorization ?? 'nothing'}`);
      }
    }
    const board = await fetch(`${berth.url}/admin/queues`, { headers: { authorization: basic('admin', 'board-password-123') } });
    assert.equal(board.status, 200);
    assert.match(await board.text(), /<html/i);
    const boardApi = await fetch(`${berth.url}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    assert.equal(boardApi.status, 200);
    const anonymousBoard = await fetch(`${berth.url}/admin/queues`);
    assert.match(anonymousBoard.headers.get('www-authenticate') ?? '', /^Basic/);
  });

  it('a failed task shows its streamed logs and reason; retry (API and board) runs a new attempt in a new container', async () => {
    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'flaky', repo: 'octo/widgets' });
    const failed = await berth.waitFor(body.id, ['failed']);
    assert.equal(failed.failedReason, 'exit code 3');
    const logs = (await berth.api('GET', `/api/tasks/${body.id}/logs`)).body;
    assert.ok(logs.lines.includes('flaky agent, attempt 1'), JSON.stringify(logs));
    assert.ok(logs.lines.includes('first attempt always fails'));

    const retry = await berth.api('POST', `/api/tasks/${body.id}/retry`);
    assert.equal(retry.status, 200);
    const again = await berth.api('POST', `/api/tasks/${body.id}/retry`);
    assert.equal(again.status, 200, 'idempotent while it runs');
    const done = await berth.waitFor(body.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.deepEqual(done.result, { attempt: 2 });
    assert.equal((await berth.api('POST', `/api/tasks/${body.id}/retry`)).status, 409, 'a completed task is replayed, not retried');

    // The board's own retry button calls this endpoint.
    const second = (await berth.api('POST', '/api/tasks', { kind: 'flaky', repo: 'octo/widgets', number: 2 })).body.id;
    await berth.waitFor(second, ['failed']);
    const boardRetry = await fetch(`${berth.url}/admin/queues/api/queues/${berth.config.QUEUE_NAME}/${second}/retry`, {
      method: 'PUT',
      headers: { authorization: basic('admin', 'board-password-123') },
    });
    assert.equal(boardRetry.status, 204, await boardRetry.text());
    assert.equal((await berth.waitFor(second, ['completed', 'failed'])).state, 'completed');
    await recorder.stop();
    const creates = recorder.events.filter((e) => e.action === 'create');
    assert.deepEqual(creates.map((e) => `${e.jobId === body.id ? 'first' : 'second'}#${e.attempt}`).sort(), ['first#1', 'first#2', 'second#1', 'second#2']);
  });

  it('replay queues a new linked task with the same input; replaying again is idempotent', async () => {
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets', prompt: 'same input' });
    await berth.waitFor(body.id, ['completed']);
    const replay = await berth.api('POST', `/api/tasks/${body.id}/replay`);
    assert.equal(replay.status, 202);
    assert.notEqual(replay.body.id, body.id);
    const again = await berth.api('POST', `/api/tasks/${body.id}/replay`);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, replay.body.id);
    const other = await berth.api('POST', `/api/tasks/${body.id}/replay`, { idempotencyKey: 'second' });
    assert.notEqual(other.body.id, replay.body.id);
    const replayed = await berth.waitFor(replay.body.id, ['completed']);
    assert.equal(replayed.replayOf, body.id);
    assert.equal((replayed.result as { echo: string }).echo, 'same input');
  });

  it('bulk retry of failed tasks since a time, and listing with filters and paging', async () => {
    const since = new Date().toISOString();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await berth.api('POST', '/api/tasks', { kind: 'flaky', repo: 'octo/bulk', number: 10 + i })).body.id);
    for (const id of ids) await berth.waitFor(id, ['failed']);
    const bulk = await berth.api('POST', `/api/tasks/retry?state=failed&since=${encodeURIComponent(since)}`);
    assert.equal(bulk.status, 200);
    assert.deepEqual([...bulk.body.retried].sort(), [...ids].sort());
    for (const id of ids) assert.equal((await berth.waitFor(id, ['completed', 'failed'])).state, 'completed');
    assert.equal((await berth.api('POST', `/api/tasks/retry?state=failed&since=${encodeURIComponent(since)}`)).body.count, 0, 'idempotent');

    const page1 = (await berth.api('GET', '/api/tasks?repo=octo/bulk&limit=2')).body;
    assert.equal(page1.tasks.length, 2);
    assert.ok(page1.nextCursor !== null);
    const page2 = (await berth.api('GET', `/api/tasks?repo=octo/bulk&limit=2&cursor=${page1.nextCursor}`)).body;
    assert.equal(page2.tasks.length, 1);
    assert.deepEqual(new Set([...page1.tasks, ...page2.tasks].map((t: { id: string }) => t.id)), new Set(ids));
    const completedEcho = (await berth.api('GET', '/api/tasks?state=completed&kind=echo')).body.tasks;
    assert.ok(completedEcho.every((t: { kind: string; state: string }) => t.kind === 'echo' && t.state === 'completed'));
    assert.equal((await berth.api('GET', '/api/tasks?state=bogus')).status, 400);
  });

  it('/metrics (behind the token) counts what the earlier tests ran', async () => {
    assert.equal((await fetch(`${berth.url}/metrics`)).status, 401);
    const response = await fetch(`${berth.url}/metrics`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const text = await response.text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    assert.ok(value(/^berth_launches_total (\d+)/m) >= 8, 'launches counted');
    assert.ok(value(/^berth_completions_total (\d+)/m) >= 5);
    assert.ok(value(/^berth_failures_total\{reason="exit_code"\} (\d+)/m) >= 5, 'flaky first attempts');
    assert.ok(value(/^berth_tasks\{state="completed"\} (\d+)/m) >= 5);
    assert.match(text, /^berth_queue_depth \d+/m);
    assert.match(text, /^berth_running_containers \d+/m);
    assert.match(text, /^berth_container_start_seconds_bucket\{le="1"\} \d+/m);
    assert.match(text, /^berth_task_duration_seconds_count \d+/m);
  });

  it('METRICS_PORT serves /metrics alone, without a token, on its own bind', async () => {
    const server = await startMetricsServer(metricsOf(berth), '127.0.0.1', 0);
    try {
      const address = server.server.address() as { port: number };
      const response = await fetch(`http://127.0.0.1:${address.port}/metrics`);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /^berth_launches_total \d+/m);
      assert.equal((await fetch(`http://127.0.0.1:${address.port}/api/tasks`)).status, 404, 'nothing else on that bind');
    } finally {
      await server.close();
    }
  });

  it('serves an OpenAPI document generated from the zod schemas, behind credentials', async () => {
    assert.equal((await fetch(`${berth.url}/docs/json`)).status, 401);
    const doc = (await (await fetch(`${berth.url}/docs/json`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).json()) as any;
    assert.ok(doc.openapi.startsWith('3.'));
    for (const path of ['/api/tasks', '/api/tasks/{id}', '/api/tasks/{id}/cancel', '/api/tasks/{id}/retry', '/api/tasks/{id}/replay', '/api/tasks/{id}/logs'])
      assert.ok(doc.paths[path], path);
    const body = doc.paths['/api/tasks'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required, ['kind', 'repo']);
    assert.equal(body.additionalProperties, false, 'unknown fields are rejected, and the document says so');
    const ui = await fetch(`${berth.url}/docs`, { headers: { authorization: basic('admin', 'board-password-123') } });
    assert.equal(ui.status, 200);
  });

  it('read-only board refuses writes', async () => {
    const viewer = await startBerth(parts.env({ BOARD_READ_ONLY: 'true' }), { consumer: false });
    try {
      const { body } = await viewer.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets' });
      const response = await fetch(`${viewer.url}/admin/queues/api/queues/${viewer.config.QUEUE_NAME}/${body.id}/retry`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      assert.equal(response.status, 405);
    } finally {
      await viewer.close();
    }
  });

  it('the board cannot inject, rewrite or wipe tasks, nor override concurrency; its pages cannot be framed', async () => {
    const viewer = await startBerth(parts.env(), { consumer: false });
    try {
      const q = viewer.config.QUEUE_NAME;
      const { body } = await viewer.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets' });
      const auth = { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' };
      const attempts: Array<[string, string, unknown]> = [
        ['POST', `/admin/queues/api/queues/${q}/add`, { name: 'x', data: { kind: 'echo', repo: 'evil/repo', installationId: 1 }, options: {} }],
        ['PATCH', `/admin/queues/api/queues/${q}/${body.id}/update-data`, { data: { kind: 'echo', repo: 'evil/repo', installationId: 666 } }],
        ['PUT', `/admin/queues/api/queues/${q}/obliterate`, undefined],
        ['PUT', `/admin/queues/api/queues/${q}/empty`, undefined],
        ['PUT', `/admin/queues/api/queues/${q}/concurrency`, { concurrency: 500 }],
        ['PUT', `/admin/queues/api/queues/${q}/rate-limit`, { max: 1, duration: 60000 }],
        ['PATCH', `/admin/queues/api/queues/${q}/${body.id}/priority`, { priority: 99 }],
        ['PATCH', `/admin/queues/api/queues/${q}/${body.id}/delay`, { delay: 1 }],
        // The same refused actions, spelled as the router decodes them but a pattern over the raw URL would not match.
        ['POST', `/admin/queues/api/queues/${q}/%61dd`, { name: 'x', data: { kind: 'echo', repo: 'evil/repo' }, options: {} }],
        ['PATCH', `/admin/queues/api/queues/${q}/${body.id}/update-dat%61`, { data: { kind: 'echo', repo: 'evil/repo', prompt: 'leak it' } }],
        ['PUT', `/admin/queues/api/queues/${q}/obliterat%65`, undefined],
        ['PUT', `/admin/queues/api/queues/${q}/%65mpty`, undefined],
        ['POST', `/admin/queues/api/queues/${q}/%2561dd`, { name: 'x', data: { kind: 'echo', repo: 'evil/repo' }, options: {} }],
        ['POST', `/admin/queues/api/queues/${q}//add`, { name: 'x', data: { kind: 'echo', repo: 'evil/repo' }, options: {} }],
        ['POST', `/admin/queues/api/queues/${q}/add/`, { name: 'x', data: { kind: 'echo', repo: 'evil/repo' }, options: {} }],
        ['POST', `/admin/queues/api/queues/${q}/ADD`, { name: 'x', data: { kind: 'echo', repo: 'evil/repo' }, options: {} }],
        ['POST', `/%61dmin/queues/api/queues/${q}/add`, { name: 'x', data: { kind: 'echo', repo: 'evil/repo' }, options: {} }],
        ['PUT', `/admin/queues/api/queues/${q}/concurrenc%79`, { concurrency: 500 }],
      ];
      for (const [method, path, payload] of attempts) {
        const response = await fetch(`${viewer.url}${path}`, { method, headers: auth, ...(payload === undefined ? {} : { body: JSON.stringify(payload) }) });
        // Refused by berth (403), or matched by no route at all (404): never carried out.
        assert.ok([403, 404].includes(response.status), `${method} ${path}: ${response.status}`);
        if (response.status === 403) assert.match(((await response.json()) as { message: string }).message, /does not allow/);
      }
      for (const [method, path] of attempts.slice(0, 8)) {
        const response = await fetch(`${viewer.url}${path}`, { method, headers: auth, body: '{}' });
        assert.equal(response.status, 403, `${method} ${path} is refused by name`);
      }
      // Nothing changed, as Redis tells it.
      const job = await viewer.queue.getJob(body.id);
      assert.equal(job?.data.repo, 'octo/widgets');
      assert.equal(job?.data.installationId, undefined);
      assert.equal(job?.data.prompt, undefined);
      assert.equal(job?.opts.priority, startPriority(0, 1), "the start priority berth gave it (level 0, fair rank 1), not the board's");
      assert.deepEqual(await viewer.queue.getJobCounts('waiting', 'prioritized', 'delayed'), { waiting: 0, prioritized: 1, delayed: 0 });
      assert.equal(await viewer.queue.getGlobalConcurrency(), null);
      // Views and the allowed actions still work.
      const promote = await fetch(`${viewer.url}/admin/queues/api/queues/${q}/promote`, { method: 'PUT', headers: auth });
      assert.notEqual(promote.status, 403);
      for (const page of ['/admin/queues', '/docs/']) {
        const response = await fetch(`${viewer.url}${page}`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
        assert.equal(response.status, 200, page);
        assert.equal(response.headers.get('x-frame-options'), 'DENY', page);
        assert.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, page);
      }
    } finally {
      await viewer.close();
    }
  });
});
