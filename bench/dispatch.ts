// Dispatch latency and short-task throughput, berth against bare Docker in the same run.
//   npx tsx bench/dispatch.ts [--tasks 100] [--short 300] [--concurrency 8]
// 1. latency: POST /api/tasks → Docker's `start` event for its container, against dockerode
//    create+start of the same image with the same hardened spec (request → `start` event).
// 2. throughput: N tasks whose command exits at once, end to end, at the same concurrency, against
//    (a) a dockerode create/start/wait/remove loop and (b) `docker run -d` / `docker wait` / `docker rm`
//    as child processes.
// Prints a table and writes bench/results/dispatch.json.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { docker, recordEvents, removeQueueContainers } from '../test/support/docker.js';
import { ensureWorkerImage } from '../test/support/image.js';
import { startRedis } from '../test/support/redis.js';
import { startBerth, testEnv, uniqueQueue } from '../test/support/berth.js';
import { parseConfig } from '../src/core/config.js';
import { buildContainerSpec } from '../src/consumer/launcher/spec.js';
import { LABEL } from '../src/core/labels.js';

const run = promisify(execFile);
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const TASKS = arg('tasks', 100);
const SHORT = arg('short', 300);
const CONCURRENCY = arg('concurrency', 8);
const DOCKER_CLI = '/usr/bin/docker';

const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) => +sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(1);
  return { n: sorted.length, median: q(0.5), p99: q(0.99) };
};

async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await work(next++);
  }));
}

const image = await ensureWorkerImage();
const redis = await startRedis();
const results: Record<string, unknown> = {};
try {
  // --- 1. latency, one task at a time so neither side queues ---
  const env = testEnv(redis, image, { WORKER_CONCURRENCY: String(CONCURRENCY), AGENT_COMMAND_NOOP: 'node -e 0', TASK_ATTEMPTS: '1' });
  const berth = await startBerth(env);
  const recorder = await recordEvents(berth.config.QUEUE_NAME);
  const berthLatency: number[] = [];
  for (let i = 0; i < TASKS; i++) {
    const sent = Date.now();
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'noop', repo: 'bench/latency' });
    const started = await new Promise<number>((resolve) => {
      const poll = setInterval(() => {
        const event = recorder.events.find((e) => e.action === 'start' && e.jobId === body.id);
        if (event) {
          clearInterval(poll);
          resolve(event.time);
        }
      }, 2);
    });
    berthLatency.push(started - sent);
    await berth.waitFor(body.id, ['completed', 'failed']);
  }
  await recorder.stop();

  const config = parseConfig({ ...env, QUEUE_NAME: uniqueQueue('bare') });
  const bareRecorder = await recordEvents(config.QUEUE_NAME);
  const bareLatency: number[] = [];
  for (let i = 0; i < TASKS; i++) {
    const spec = buildContainerSpec(config, { name: `bare-${config.QUEUE_NAME}-${i}`, task: { id: `b-${i}`, attempt: 1, kind: 'noop', repo: 'bench/latency' } });
    const sent = Date.now();
    const container = await docker.createContainer(spec);
    await container.start();
    const started = await new Promise<number>((resolve) => {
      const poll = setInterval(() => {
        const event = bareRecorder.events.find((e) => e.action === 'start' && e.jobId === `b-${i}`);
        if (event) {
          clearInterval(poll);
          resolve(event.time);
        }
      }, 2);
    });
    bareLatency.push(started - sent);
    await container.wait();
    await container.remove({ force: true });
  }
  await bareRecorder.stop();
  results.latency = { berth: stats(berthLatency), dockerode: stats(bareLatency) };

  // --- 2. throughput of tasks that exit at once ---
  await berth.queue.obliterate({ force: true });
  let started = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < SHORT; i++) ids.push((await berth.api('POST', '/api/tasks', { kind: 'noop', repo: 'bench/throughput' })).body.id);
  for (const id of ids) await berth.waitFor(id, ['completed', 'failed'], 600_000);
  const berthSeconds = (Date.now() - started) / 1000;
  await berth.close();

  started = Date.now();
  await pool(SHORT, CONCURRENCY, async (i) => {
    const spec = buildContainerSpec(config, { name: `bare-t-${config.QUEUE_NAME}-${i}`, task: { id: `t-${i}`, attempt: 1, kind: 'noop', repo: 'bench/throughput' } });
    const container = await docker.createContainer(spec);
    await container.start();
    await container.wait();
    await container.logs({ stdout: true, stderr: true });
    await container.remove({ force: true });
  });
  const dockerodeSeconds = (Date.now() - started) / 1000;

  started = Date.now();
  await pool(SHORT, CONCURRENCY, async (i) => {
    const name = `cli-${config.QUEUE_NAME}-${i}`;
    await run(DOCKER_CLI, ['run', '-d', '--name', name, '--label', `${LABEL.queue}=${config.QUEUE_NAME}`, '--init', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--network', 'none', '--memory', '256m', '--user', '10001:10001', '--entrypoint', 'node', image, '-e', '0']);
    await run(DOCKER_CLI, ['wait', name]);
    await run(DOCKER_CLI, ['logs', name]);
    await run(DOCKER_CLI, ['rm', '-f', name]);
  });
  const cliSeconds = (Date.now() - started) / 1000;
  await removeQueueContainers(config.QUEUE_NAME);
  const perMinute = (s: number) => Math.round((SHORT / s) * 60);
  results.throughput = { tasks: SHORT, concurrency: CONCURRENCY, berth: perMinute(berthSeconds), dockerode: perMinute(dockerodeSeconds), dockerCli: perMinute(cliSeconds) };

  const latency = results.latency as { berth: ReturnType<typeof stats>; dockerode: ReturnType<typeof stats> };
  const throughput = results.throughput as { berth: number; dockerode: number; dockerCli: number };
  console.log(`\n${cpus().length} cores; ${TASKS} latency samples; ${SHORT} short tasks at concurrency ${CONCURRENCY}\n`);
  console.log('| scenario | berth | baseline | ratio |');
  console.log('|---|---|---|---|');
  console.log(`| dispatch latency median (ms) | ${latency.berth.median} | ${latency.dockerode.median} (dockerode create+start) | ${(latency.berth.median / latency.dockerode.median).toFixed(2)}x, +${(latency.berth.median - latency.dockerode.median).toFixed(1)} ms |`);
  console.log(`| dispatch latency p99 (ms) | ${latency.berth.p99} | ${latency.dockerode.p99} | ${(latency.berth.p99 / latency.dockerode.p99).toFixed(2)}x |`);
  console.log(`| short tasks per minute | ${throughput.berth} | ${throughput.dockerode} (dockerode loop) | ${(throughput.berth / throughput.dockerode).toFixed(2)}x |`);
  console.log(`| short tasks per minute | ${throughput.berth} | ${throughput.dockerCli} (docker CLI run/wait/logs/rm) | ${(throughput.berth / throughput.dockerCli).toFixed(2)}x |`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/dispatch.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine: { cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), cpu: cpus()[0]?.model }, ...results }, null, 2));
} finally {
  await redis.stop();
}
