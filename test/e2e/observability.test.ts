import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { ensureWorkerImage, ROOT } from '../support/image.js';
import { freePort, startRedis, type TestRedis } from '../support/redis.js';
import { testEnv, TEST_TOKEN } from '../support/berth.js';
import { startNodeProcess, type NodeProcess } from '../support/node-process.js';
import { removeQueueContainers } from '../support/docker.js';
import { waitUntil } from '../support/wait.js';

const RULES = join(ROOT, 'deploy/prometheus/berth-alerts.yml');
const DASHBOARD = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/berth-dashboard.json'), 'utf8')) as {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
};

/** Every `expr:` of the alert rules file (single-line or a `|` block). */
function alertExpressions(): Array<{ alert: string; expr: string }> {
  const found: Array<{ alert: string; expr: string }> = [];
  const lines = readFileSync(RULES, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const alert = /^\s+- alert: (\S+)/.exec(lines[i]!)?.[1];
    if (!alert) continue;
    let j = i + 1;
    while (!/^\s+expr:/.test(lines[j]!)) j++;
    let expr = lines[j]!.replace(/^\s+expr:\s*/, '');
    if (expr === '|') {
      const block: string[] = [];
      for (j++; /^\s{10,}/.test(lines[j]!); j++) block.push(lines[j]!.trim());
      expr = block.join(' ');
    }
    found.push({ alert, expr });
  }
  return found;
}

describe('the observability pack against a real Prometheus scraping a real berth', () => {
  let redis: TestRedis;
  let berth: NodeProcess;
  let prometheus: ChildProcess;
  let promUrl: string;
  let queue: string;
  let dir: string;

  before(async () => {
    execFileSync('promtool', ['check', 'rules', RULES], { stdio: 'ignore' });
    const image = await ensureWorkerImage();
    redis = await startRedis();
    const port = await freePort();
    const env = testEnv(redis, image, { PORT: String(port), AGENT_COMMAND_SLEEP: 'node /agents/sleep.mjs' });
    queue = env.QUEUE_NAME!;
    berth = startNodeProcess(env, { entry: 'src/api/main.ts', readyMsg: 'Server listening' });
    await berth.ready;
    const api = (body: unknown) =>
      fetch(`http://127.0.0.1:${port}/api/tasks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    // Some work for the panels to show: successes, a failure with retries, one still running.
    for (const body of [
      { kind: 'echo', repo: 'octo/a' },
      { kind: 'echo', repo: 'octo/b' },
      { kind: 'exit', repo: 'octo/c', prompt: '3' },
      { kind: 'sleep', repo: 'octo/d', prompt: '60' },
    ])
      await api(body);

    dir = mkdtempSync(join(tmpdir(), 'berth-prom-'));
    writeFileSync(join(dir, 'token'), TEST_TOKEN);
    writeFileSync(join(dir, 'berth-alerts.yml'), readFileSync(RULES));
    // The shipped scrape config as written, pointed at this berth and scraping every second.
    const shipped = readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8');
    const config = shipped
      .replaceAll('15s', '1s')
      .replace('/etc/prometheus/berth-api-token', join(dir, 'token'))
      .replaceAll("'berth:3000'", `'127.0.0.1:${port}'`);
    assert.notEqual(config, shipped, 'the shipped config has the parts this test points elsewhere');
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    prometheus = spawn(
      'prometheus',
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
      { stdio: 'ignore' },
    );
    const query = async (expr: string) => ((await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as any).data?.result ?? [];
    // What BerthDown selects on: the scrape target's service label, whatever the job is called.
    await waitUntil(async () => (await query('up{service="berth"} == 1').catch(() => [])).length === 1, 'Prometheus scraping berth', 60_000, 500);
    // Enough samples for rate() and the tasks' outcomes to land in them.
    await waitUntil(
      async () =>
        Number((await query('count_over_time(berth_completions_total[1m])'))[0]?.value[1] ?? 0) >= 5 &&
        Number((await query('sum(berth_completions_total)'))[0]?.value[1] ?? 0) >= 2,
      'several scrapes after the tasks ran',
      60_000,
      500,
    );
  });
  after(async () => {
    prometheus?.kill('SIGTERM');
    await berth?.kill('SIGTERM');
    await removeQueueContainers(queue);
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const query = async (expr: string) =>
    (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as {
      status: string;
      error?: string;
      data: { result: unknown[] };
    };

  it('every dashboard panel query parses and returns data', async () => {
    assert.ok(DASHBOARD.panels.length >= 10);
    for (const panel of DASHBOARD.panels) {
      for (const { expr: template } of panel.targets) {
        // Scoped to the dashboard's job and instance variables; "All" is what Grafana sends as .*.
        assert.match(template, /\{job=~"\$job",instance=~"\$instance"/, `${panel.title}: ${template} follows the variables`);
        const expr = template.replaceAll('$job', '.*').replaceAll('$instance', '.*');
        const answer = await query(expr);
        assert.equal(answer.status, 'success', `${panel.title}: ${expr}: ${answer.error}`);
        assert.ok(answer.data.result.length > 0, `${panel.title}: ${expr} returned no data`);
      }
    }
  });

  it('every alert query parses; the rules load healthy; promtool unit tests pass', async () => {
    const alerts = alertExpressions();
    assert.equal(alerts.length, 15);
    const names = alerts.map((a) => a.alert);
    // Every rule has a runbook section, and the runbook no section without a rule.
    const runbook = readFileSync(join(ROOT, 'docs/runbook.md'), 'utf8');
    const sections = [...runbook.matchAll(/^## (\w+)$/gm)].map((m) => m[1]);
    assert.deepEqual(sections, names, 'docs/runbook.md has one section per rule, in the same order');
    const urls = [...readFileSync(RULES, 'utf8').matchAll(/runbook_url: "docs\/runbook\.md#(\w+)"/g)].map((m) => m[1]);
    assert.deepEqual(
      urls,
      names.map((n) => n.toLowerCase()),
      "each rule's runbook_url names its own section",
    );
    for (const { alert, expr } of alerts) {
      const answer = await query(expr);
      assert.equal(answer.status, 'success', `${alert}: ${answer.error}`);
    }
    const rules = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string }> }> } };
    await waitUntil(
      async () => {
        const loaded = ((await (await fetch(`${promUrl}/api/v1/rules`)).json()) as typeof rules).data.groups.flatMap((g) => g.rules);
        return loaded.length === names.length && loaded.every((r) => r.health === 'ok');
      },
      'rules evaluated healthy',
      20_000,
      500,
    );
    execFileSync('promtool', ['test', 'rules', join(ROOT, 'deploy/prometheus/berth-alerts.test.yml')], { stdio: 'pipe' });
    // Live consumers come from BullMQ's own worker list: the in-process consumer counts.
    const consumers = await query('max(berth_consumers)');
    assert.ok(Number((consumers.data.result[0] as { value: [number, string] }).value[1]) >= 1);
  });

  it("the Prometheus graph page renders berth's metrics in Chromium (the screenshot in docs/operations.md)", async () => {
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
      const expr = 'sum by (state) (berth_tasks)';
      await page.goto(`${promUrl}/graph?g0.expr=${encodeURIComponent(expr)}&g0.tab=0&g0.range_input=1m`);
      await page.waitForSelector('canvas, .graph-chart, svg', { timeout: 20_000 });
      mkdirSync(join(ROOT, 'test-output'), { recursive: true });
      const shot = await page.screenshot({ path: join(ROOT, 'test-output/prometheus-berth-tasks.png') });
      assert.ok(shot.length > 10_000, 'a real picture');
      assert.match(await page.content(), /berth_tasks/);
    } finally {
      await browser.close();
    }
  });
});

describe('a consumer-only process serves /metrics', () => {
  it('behind the API token on HOST:PORT, or without one on METRICS_PORT', async () => {
    const redis = await startRedis();
    const image = await ensureWorkerImage();
    const port = await freePort();
    const metricsPort = await freePort();
    const withToken = startNodeProcess({ ...testEnv(redis, image), PORT: String(port) }, { entry: 'src/consumer/main.ts', readyMsg: 'serving /metrics' });
    const open = startNodeProcess(
      { ...testEnv(redis, image), METRICS_PORT: String(metricsPort) },
      { entry: 'src/consumer/main.ts', readyMsg: 'serving /metrics' },
    );
    try {
      await withToken.ready;
      await open.ready;
      assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 401);
      const authed = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
      assert.equal(authed.status, 200);
      assert.match(await authed.text(), /^berth_consumers \d+/m);
      const plain = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(plain.status, 200);
      assert.match(await plain.text(), /^berth_queue_depth \d+/m);
    } finally {
      await withToken.kill('SIGTERM');
      await open.kill('SIGTERM');
      await redis.stop();
    }
  });
});
