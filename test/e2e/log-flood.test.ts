import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { berthNodeFlags, ensureWorkerImage } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startApiProcess, type ApiProcess } from '../support/berth.js';
import type { NodeProcess } from '../support/node-process.js';

/**
 * Output without newlines cannot hurt the dispatcher: 100 MiB of it, through a real container with
 * the json-file cap raised to 200m, streamed into the job log by a real berth process (API and
 * consumer in one, as production runs it) while the API keeps answering.
 */
describe('a 100 MiB flood without a newline', () => {
  let redis: TestRedis;
  let server: ApiProcess;
  let berth: NodeProcess;
  let url: string;

  before(async () => {
    const image = await ensureWorkerImage();
    redis = await startRedis();
    server = await startApiProcess(redis, image, {
      WORKER_LOG_MAX_SIZE: '200m',
      AGENT_COMMAND_FLOOD: 'node /agents/flood.mjs',
      WORKER_ENV: 'MODEL_KEY',
      MODEL_KEY: 'sk-secret-model-key-42',
      NODE_OPTIONS: berthNodeFlags(),
    });
    ({ url, process: berth } = server);
  });
  after(async () => {
    await server.stop();
    await redis.stop();
  });

  const api = (method: string, path: string, body?: unknown) => server.call(method, path, body);
  const waitDone = async (id: string, sample: () => Promise<void>) => {
    for (;;) {
      await sample();
      const { body } = await api('GET', `/api/tasks/${id}`);
      if (['completed', 'failed'].includes(body.state)) return body;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('costs the dispatcher a bounded amount of memory; the API answers throughout; the job log holds one cut line', async () => {
    // Warm up with a small flood, so idle means "has run a task", then measure.
    const warm = await api('POST', '/api/tasks', { kind: 'flood', repo: 'octo/widgets', prompt: '1' });
    await waitDone(warm.body.id, async () => {});
    await new Promise((r) => setTimeout(r, 1000)); // a fixed wait: let the warm-up's garbage settle before reading idle
    const idle = berth.rssMiB();

    let peak = idle;
    let slowest = 0;
    const { body } = await api('POST', '/api/tasks', { kind: 'flood', repo: 'octo/widgets', prompt: '100' });
    const task = await waitDone(body.id, async () => {
      peak = Math.max(peak, berth.rssMiB());
      const started = Date.now();
      const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
      assert.equal(health.status, 200);
      slowest = Math.max(slowest, Date.now() - started);
    });
    assert.equal(task.state, 'completed', JSON.stringify(task));
    assert.deepEqual(task.result, { flooded: 100 });
    console.log(`flood: idle ${idle} MiB, peak ${peak} MiB (+${Math.round(peak - idle)}), slowest /healthz ${slowest} ms`);
    assert.ok(peak - idle < 50, `RSS grew from ${idle} to ${peak} MiB`);
    assert.ok(slowest < 1_000, `/healthz took ${slowest} ms`);
    const { body: logs } = await api('GET', `/api/tasks/${body.id}/logs`);
    const shown = JSON.stringify(logs.lines.map((l: string) => l.slice(0, 80)));
    assert.deepEqual(
      logs.lines.filter((l: string) => l !== ''),
      [logs.lines[0], logs.lines[1], '{"flooded":100}'],
      shown,
    );
    assert.equal(logs.lines[0], 'using key ***', 'the WORKER_ENV value is masked');
    assert.match(logs.lines[1], /^x{1000,} \[berth\] line cut at 2000 characters/);
    assert.ok(!JSON.stringify(logs.lines).includes('sk-secret-model-key-42'));
  });
});
