import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { installDeadlines } from '../../src/api/deadlines.js';
import { installErrorHandler } from '../../src/api/errors.js';

/** The API's per-request deadline (src/api/deadlines.ts), through real Fastify requests on a port. */
describe('request deadlines', () => {
  const build = async () => {
    const app = Fastify();
    installErrorHandler(app);
    installDeadlines(app, 300, 50);
    app.post('/hangs', async () => new Promise(() => {}));
    app.post('/slow-own-deadline', { config: { deadlineMs: 1_000 } }, async () => new Promise((resolve) => setTimeout(() => resolve({ done: true }), 600)));
    app.post('/fast', async (request) => ({ got: request.body }));
    app.get('/callback', (_request, reply) => {
      setTimeout(() => reply.send({ late: 'but fine' }), 500);
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address() as { port: number };
    return { app, url: `http://127.0.0.1:${address.port}` };
  };
  const post = async (url: string, body = { a: 1 }) => {
    const started = Date.now();
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: response.status, body: await response.json(), ms: Date.now() - started };
  };

  it('a POST with a body whose handler hangs is answered 503 at its deadline (at most one tick late)', async () => {
    const { app, url } = await build();
    try {
      const hung = await post(`${url}/hangs`);
      assert.equal(hung.status, 503);
      assert.match(hung.body.message, /could not answer in time/);
      assert.ok(hung.ms >= 290 && hung.ms < 1_000, `answered after ${hung.ms} ms`);
    } finally {
      await app.close();
    }
  });

  it('a route with its own deadline gets it; fast handlers and callback-style handlers are untouched', async () => {
    const { app, url } = await build();
    try {
      const slow = await post(`${url}/slow-own-deadline`);
      assert.equal(slow.status, 200, JSON.stringify(slow.body));
      assert.deepEqual(slow.body, { done: true });
      assert.deepEqual((await post(`${url}/fast`, { a: 2 })).body, { got: { a: 2 } });
      const callback = await fetch(`${url}/callback`);
      assert.equal(callback.status, 200);
      assert.deepEqual(await callback.json(), { late: 'but fine' });
    } finally {
      await app.close();
    }
  });
});
