// Signed deliveries per second, enqueued, with autocannon at N connections for S seconds, against two
// baselines: a bare Fastify route that verifies the same HMAC and LPUSHes the body
// (bench/baselines/bare-server.mjs), and the peer a user would write with berth's own packages —
// Fastify + @octokit/webhooks verifyAndReceive + BullMQ Queue.add keyed by the delivery id
// (bench/baselines/peer-server.mjs).
// Both servers run as their own process on plain node against the same redis-server; autocannon
// runs here and loads them in turn, two rounds each, alternating. Every delivery is a distinct pull request, so each one really
// goes through rule match, trust and a BullMQ add (no deduplication short-cut).
import { createHmac, randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import examples from '@octokit/webhooks-examples/api.github.com/index.json' with { type: 'json' };
import { startNodeProcess } from '../../test/support/node-process.js';
import { freePort, startRedis } from '../../test/support/redis.js';
import { uniqueQueue } from '../../test/support/berth.js';
import { rulesFile, WEBHOOK_SECRET } from '../../test/support/github.js';
import { startDispatcher } from '../support/dispatcher.js';
import { ratio, type ScenarioResult } from '../support/report.js';
import type { BenchContext } from './context.js';

const MARKER = 987654321;
const ROUNDS = 2;
const template = (() => {
  // biome-ignore lint/suspicious/noExplicitAny: a payload library's examples, read by path
  const events = examples as Array<{ name: string; examples: Array<Record<string, any>> }>;
  const payload = structuredClone(events.find((e) => e.name === 'pull_request')!.examples.find((x) => x.action === 'review_requested')!);
  payload.number = MARKER;
  payload.pull_request.number = MARKER;
  return JSON.stringify(payload);
})();

async function load(url: string, connections: number, seconds: number) {
  let n = 0;
  return autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: '/webhooks/github',
        setupRequest: (request) => {
          const body = template.replaceAll(String(MARKER), String(++n));
          request.body = body;
          request.headers = {
            'content-type': 'application/json',
            'x-github-event': 'pull_request',
            'x-github-delivery': randomUUID(),
            'x-hub-signature-256': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`,
          };
          return request;
        },
      },
    ],
  });
}

export async function webhookIngest(ctx: BenchContext): Promise<ScenarioResult> {
  const { ingestConnections: connections, ingestSeconds: seconds } = ctx.options;
  const redis = await startRedis();
  const client = new Redis(redis.url);
  const rounds: Record<'bare' | 'peer' | 'berth', autocannon.Result[]> = { bare: [], peer: [], berth: [] };
  const cpuSeconds = { bare: 0, peer: 0, berth: 0 };
  const port = await freePort();
  const peerPort = await freePort();
  const bare = startNodeProcess(
    { REDIS_URL: redis.url, PORT: String(port), WEBHOOK_SECRET, QUEUE_NAME: uniqueQueue('bare') },
    { entry: 'bench/baselines/bare-server.mjs', readyMsg: 'listening', captureLogs: false },
  );
  const peer = startNodeProcess(
    { REDIS_URL: redis.url, PORT: String(peerPort), WEBHOOK_SECRET, QUEUE_NAME: uniqueQueue('peer') },
    { entry: 'bench/baselines/peer-server.mjs', readyMsg: 'listening', captureLogs: false },
  );
  const berth = await startDispatcher(
    redis,
    'berth:unused',
    {
      CONSUMER_IN_PROCESS: 'false',
      GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
      WEBHOOK_RULES_FILE: rulesFile({ botLogin: 'octocat', trust: { owners: ['Codertocat'] } }),
      AGENT_COMMAND_REVIEW: 'true',
    },
    false,
  );
  try {
    await bare.ready;
    await peer.ready;
    const urls = { bare: `http://127.0.0.1:${port}`, peer: `http://127.0.0.1:${peerPort}`, berth: berth.url };
    const servers = { bare, peer, berth: berth.process };
    const sides = ['bare', 'peer', 'berth'] as const;
    for (const side of sides) await load(urls[side], connections, 3); // warm-up
    // Alternate the sides so a noisy neighbour's burst lands on all alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of sides) {
        const cpuBefore = servers[side].cpuSeconds();
        rounds[side].push(await load(urls[side], connections, seconds));
        cpuSeconds[side] += servers[side].cpuSeconds() - cpuBefore;
        await client.unlink('bare:deliveries'); // 25 KB per delivery: keep Redis small between rounds
        ctx.progress(round * sides.length + sides.indexOf(side) + 1, ROUNDS * sides.length, `ingest ${side}`);
      }
    }
  } finally {
    await bare.kill('SIGTERM');
    await peer.kill('SIGTERM');
    await berth.stop();
    client.disconnect();
    await redis.stop();
  }
  const summary = (results: autocannon.Result[], cpu: number) => {
    const total = (pick: (r: autocannon.Result) => number) => results.reduce((sum, r) => sum + pick(r), 0);
    return {
      cpuMicrosPerDelivery: Math.round((cpu * 1e6) / total((r) => r.requests.total)),
      perSecond: Math.round(total((r) => r.requests.total) / total((r) => r.duration)),
      // autocannon gives percentiles per run; the worse round's p99 is the honest one to quote.
      p50: Math.max(...results.map((r) => r.latency.p50)),
      p99: Math.max(...results.map((r) => r.latency.p99)),
      requests: total((r) => r.requests.total),
      non2xx: total((r) => r.non2xx),
      errors: total((r) => r.errors),
      timeouts: total((r) => r.timeouts),
      rounds: results.map((r) => ({ perSecond: Math.round(r.requests.average), p99: r.latency.p99 })),
    };
  };
  const ours = summary(rounds.berth, cpuSeconds.berth);
  const base = summary(rounds.bare, cpuSeconds.bare);
  const same = summary(rounds.peer, cpuSeconds.peer);
  const measure = `${connections} connections, ${ROUNDS}× ${seconds} s`;
  const clean = ours.non2xx + ours.errors + ours.timeouts === 0;
  return {
    rows: [
      {
        scenario: 'webhook ingest',
        measure: `deliveries/s vs the peer (same packages), ${measure}`,
        berth: String(ours.perSecond),
        baseline: `${same.perSecond} (Fastify + @octokit/webhooks + Queue.add)`,
        ratio: ratio(ours.perSecond, same.perSecond),
        target: '≥ 0.7x, every answer 2xx',
        met: ours.perSecond / same.perSecond >= 0.7 && clean,
      },
      {
        scenario: 'webhook ingest',
        measure: 'p99 latency vs the peer',
        berth: `${ours.p99} ms`,
        baseline: `${same.p99} ms`,
        ratio: ratio(ours.p99, same.p99),
        target: '≤ 2x',
        met: ours.p99 <= 2 * same.p99,
      },
      {
        scenario: 'webhook ingest',
        measure: 'server CPU per delivery vs the peer',
        berth: `${ours.cpuMicrosPerDelivery} µs`,
        baseline: `${same.cpuMicrosPerDelivery} µs`,
        ratio: ratio(ours.cpuMicrosPerDelivery, same.cpuMicrosPerDelivery),
        target: '',
        met: null,
      },
      {
        scenario: 'webhook ingest',
        measure: 'deliveries/s vs the bare route',
        berth: String(ours.perSecond),
        baseline: `${base.perSecond} (Fastify + HMAC + LPUSH)`,
        ratio: ratio(ours.perSecond, base.perSecond),
        target: '',
        met: null,
      },
      {
        scenario: 'webhook ingest',
        measure: 'p99 latency / CPU per delivery vs the bare route',
        berth: `${ours.p99} ms / ${ours.cpuMicrosPerDelivery} µs`,
        baseline: `${base.p99} ms / ${base.cpuMicrosPerDelivery} µs`,
        ratio: '',
        target: '',
        met: null,
      },
    ],
    raw: { connections, seconds, rounds: ROUNDS, berth: ours, peer: same, baseline: base },
  };
}
