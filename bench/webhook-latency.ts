// Webhook ingest latency: berth's real POST /webhooks/github (verify → parse → rule → trust →
// enqueue in BullMQ) against a bare Fastify route that verifies the same HMAC and LPUSHes the raw
// body to Redis, both in this process, against one real redis-server, one after the other.
//   npx tsx bench/webhook-latency.ts [--requests 2000] [--concurrency 8]
// Prints a table and writes bench/results/webhook-latency.json.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { startRedis } from '../test/support/redis.js';
import { startBerth, testEnv } from '../test/support/berth.js';
import { rulesFile, WEBHOOK_SECRET } from '../test/support/github.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const REQUESTS = arg('requests', 2000);
const CONCURRENCY = arg('concurrency', 8);

const template = (examples as Array<{ name: string; examples: Array<Record<string, any>> }>).find((e) => e.name === 'pull_request')!.examples.find((x) => x.action === 'review_requested')!;
const bodyFor = (n: number) => {
  const payload = JSON.parse(JSON.stringify(template));
  payload.pull_request.number = n + 1; // a distinct PR each time: every delivery really enqueues
  payload.number = n + 1;
  return JSON.stringify(payload);
};
const signature = (body: string) => `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`;

async function run(url: string): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < REQUESTS) {
      const n = next++;
      const body = bodyFor(n);
      const started = performance.now();
      const response = await fetch(`${url}/webhooks/github`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signature(body) },
        body,
      });
      await response.arrayBuffer();
      latencies.push(performance.now() - started);
      if (response.status !== 202) throw new Error(`status ${response.status}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return latencies;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const summary = (latencies: number[], seconds: number) => {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { requests: sorted.length, perSecond: Math.round(sorted.length / seconds), p50: +quantile(sorted, 0.5).toFixed(2), p99: +quantile(sorted, 0.99).toFixed(2), max: +sorted[sorted.length - 1]!.toFixed(2) };
};

const redis = await startRedis();
try {
  // Baseline: the least a webhook receiver can do.
  const raw = new Redis(redis.url);
  const bare = Fastify();
  bare.removeAllContentTypeParsers();
  bare.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_r, body, done) => done(null, body));
  bare.post('/webhooks/github', async (request, reply) => {
    const body = request.body as Buffer;
    const expected = Buffer.from(`sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`);
    const given = Buffer.from(String(request.headers['x-hub-signature-256'] ?? ''));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reply.status(401).send();
    await raw.lpush('bare:deliveries', body);
    return reply.status(202).send({ ok: true });
  });
  const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });

  const berth = await startBerth(
    testEnv(redis, 'berth:unused', { GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET, WEBHOOK_RULES_FILE: rulesFile({ botLogin: 'octocat', trust: { owners: ['Codertocat'] } }), AGENT_COMMAND_REVIEW: 'true' }),
    { consumer: false },
  );

  await run(bareUrl); // warm-up both
  await run(berth.url);
  const results: Record<string, ReturnType<typeof summary>> = {};
  for (const [name, url] of [['bare Fastify + HMAC + LPUSH', bareUrl], ['berth /webhooks/github', berth.url]] as const) {
    await berth.queue.obliterate({ force: true });
    const started = performance.now();
    const latencies = await run(url);
    results[name] = summary(latencies, (performance.now() - started) / 1000);
  }
  const [baseline, ours] = Object.values(results) as [ReturnType<typeof summary>, ReturnType<typeof summary>];
  console.log(`\nwebhook ingest, ${REQUESTS} signed deliveries, ${CONCURRENCY} concurrent, ${cpus().length} cores\n`);
  console.log('| route | req/s | p50 ms | p99 ms | max ms |');
  console.log('|---|---|---|---|---|');
  for (const [name, r] of Object.entries(results)) console.log(`| ${name} | ${r.perSecond} | ${r.p50} | ${r.p99} | ${r.max} |`);
  console.log(`\nberth / baseline: throughput ${(ours.perSecond / baseline.perSecond).toFixed(2)}x, p99 ${(ours.p99 / baseline.p99).toFixed(2)}x; berth p99 ${ours.p99} ms (target < 50 ms)`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/webhook-latency.json', import.meta.url),
    JSON.stringify({ date: new Date().toISOString(), machine: { cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), cpu: cpus()[0]?.model }, requests: REQUESTS, concurrency: CONCURRENCY, results }, null, 2),
  );
  await berth.close();
  await bare.close();
  raw.disconnect();
} finally {
  await redis.stop();
}
