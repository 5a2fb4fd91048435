// What berth's egress proxy adds to an agent's traffic, beside the same traffic without it, in one
// run on loopback: the proxy (dist/egress/main.js, its own process, as in its container) between a
// client here and an upstream here. Per-request latency, sequential, for a plain request (the proxy
// forwarding it) and for a new CONNECT tunnel per request (what HTTPS costs: the tunnel is set up
// per connection); streaming throughput through a tunnel and through the model route with its
// usage meter, against the same bytes fetched directly.
import http from 'node:http';
import type net from 'node:net';
import { signGrant } from '../../src/egress/credential.js';
import { startNodeProcess } from '../../test/support/node-process.js';
import { freePort } from '../../test/support/redis.js';
import { ratio, type ScenarioResult } from '../support/report.js';
import { summarize } from '../support/stats.js';
import type { BenchContext } from './context.js';

const SECRET = 'bench-egress-secret-0123456789abcdef';
const ADMIN = 'bench-egress-admin-0123456789abcdef';
const CHUNK = Buffer.alloc(64 * 1024, 'x');

/** The paced stream's rate: a link faster than any model API streams, about 0.8 Gbit/s. */
const PACED_MIB_S = 100;

/** `bytes` at PACED_MIB_S: each millisecond, the chunks the rate has come due for. */
function paced(response: http.ServerResponse, bytes: number): void {
  const started = performance.now();
  let sent = 0;
  const tick = () => {
    const due = Math.min(bytes, ((performance.now() - started) / 1000) * PACED_MIB_S * 1024 * 1024);
    while (sent < due) {
      response.write(CHUNK);
      sent += CHUNK.length;
    }
    if (sent >= bytes) response.end();
    else setTimeout(tick, 1);
  };
  tick();
}

function upstream(streamBytes: number): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    if (request.url === '/small') return response.end('ok');
    if (request.url === '/paced') {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Up to 64 MiB: 0.64 s a stream at the rate.
      return paced(response, Math.min(streamBytes, 64 * 1024 * 1024));
    }
    const sse = request.url?.startsWith('/model');
    response.writeHead(200, { 'content-type': sse ? 'text/event-stream' : 'application/octet-stream' });
    if (sse) response.write(`event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":1,"output_tokens":1}}}\n\n`);
    let sent = 0;
    const pump = () => {
      while (sent < streamBytes) {
        sent += CHUNK.length;
        const chunk = sse ? Buffer.from(`data: {"type":"content_block_delta","delta":{"text":"${CHUNK.toString('utf8', 0, 4000)}"}}\n\n`) : CHUNK;
        if (sse) sent += chunk.length - CHUNK.length;
        if (!response.write(chunk)) return void response.once('drain', pump);
      }
      response.end();
    };
    pump();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const timed = async (work: () => Promise<void>) => {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e6;
};

function get(options: http.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(options, (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.length));
      response.on('end', () => resolve(bytes));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

/** A CONNECT tunnel through the proxy, then a request inside it. */
function viaTunnel(proxyPort: number, auth: string, target: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const connect = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: target, headers: { 'proxy-authorization': auth } });
    connect.on('connect', (response, socket) => {
      if (response.statusCode !== 200) return reject(new Error(`CONNECT ${response.statusCode}`));
      get({ createConnection: () => socket as net.Socket, host: 'localhost', path }).then(resolve, reject);
    });
    connect.on('error', reject);
    connect.end();
  });
}

export async function egressProxy(ctx: BenchContext): Promise<ScenarioResult> {
  const samples = ctx.options.latencyTasks * 5;
  const streamBytes = ctx.options.egressMib * 1024 * 1024;
  const up = await upstream(streamBytes);
  const upPort = (up.address() as net.AddressInfo).port;
  const proxyPort = await freePort();
  const proxy = startNodeProcess(
    {
      EGRESS_SECRETS: SECRET,
      EGRESS_ADMIN_TOKEN: ADMIN,
      EGRESS_SOCKET: `/tmp/berth-bench-egress-${process.pid}.sock`,
      EGRESS_STATE_DIR: `/tmp/berth-bench-egress-${process.pid}`,
      EGRESS_LISTEN_PORT: String(proxyPort),
      LOG_LEVEL: 'info',
      EGRESS_PROVIDERS_JSON: JSON.stringify([{ name: 'bench', url: `http://localhost:${upPort}/model`, key: 'k', api: 'anthropic' }]),
    },
    { entry: 'dist/egress/main.js', readyMsg: 'egress proxy listening', captureLogs: true },
  );
  await proxy.ready;
  const credential = signGrant(
    {
      attempt: 'bench#1',
      kind: 'bench',
      hosts: ['localhost'],
      ports: [upPort],
      allowPrivate: ['127.0.0.0/8', '::1/128'],
      providers: ['bench'],
      expiresAt: Date.now() + 3_600_000,
    },
    SECRET,
  );
  const auth = `Basic ${Buffer.from(`berth:${credential}`).toString('base64')}`;
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const direct: number[] = [];
  const forwarded: number[] = [];
  const directNew: number[] = [];
  const tunnelled: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      // Alternating, so drift on a noisy machine lands on both sides.
      direct.push(await timed(() => get({ host: '127.0.0.1', port: upPort, path: '/small', agent: keepAlive }).then(() => {})));
      forwarded.push(
        await timed(() =>
          get({
            host: '127.0.0.1',
            port: proxyPort,
            path: `http://localhost:${upPort}/small`,
            headers: { 'proxy-authorization': auth },
            agent: keepAlive,
          }).then(() => {}),
        ),
      );
      directNew.push(await timed(() => get({ host: '127.0.0.1', port: upPort, path: '/small', agent: false }).then(() => {})));
      tunnelled.push(await timed(() => viaTunnel(proxyPort, auth, `localhost:${upPort}`, '/small').then(() => {})));
      ctx.progress(i + 1, samples, 'request latency');
    }
    const throughput = async (fetchBytes: () => Promise<number>) => {
      let bytes = 0;
      const ms = await timed(async () => void (bytes = await fetchBytes()));
      return bytes / 1024 / 1024 / (ms / 1000);
    };
    const rounds = {
      direct: [] as number[],
      tunnel: [] as number[],
      model: [] as number[],
      modelDirect: [] as number[],
      pacedDirect: [] as number[],
      pacedTunnel: [] as number[],
      proxyCpuMsPerMiB: [] as number[],
    };
    for (let round = 0; round < 3; round++) {
      rounds.direct.push(await throughput(() => get({ host: '127.0.0.1', port: upPort, path: '/stream', agent: false })));
      const cpuBefore = proxy.cpuSeconds();
      rounds.tunnel.push(await throughput(() => viaTunnel(proxyPort, auth, `localhost:${upPort}`, '/stream')));
      rounds.proxyCpuMsPerMiB.push(Math.round(((proxy.cpuSeconds() - cpuBefore) * 1000 * 100) / ctx.options.egressMib) / 100);
      rounds.pacedDirect.push(await throughput(() => get({ host: '127.0.0.1', port: upPort, path: '/paced', agent: false })));
      rounds.pacedTunnel.push(await throughput(() => viaTunnel(proxyPort, auth, `localhost:${upPort}`, '/paced')));
      rounds.modelDirect.push(await throughput(() => get({ host: '127.0.0.1', port: upPort, path: '/model/v1/messages', agent: false })));
      rounds.model.push(
        await throughput(() =>
          get({ host: '127.0.0.1', port: proxyPort, path: '/model/bench/v1/messages', headers: { 'x-api-key': credential }, agent: false }),
        ),
      );
      ctx.progress(round + 1, 3, 'streaming throughput');
    }
    const s = { direct: summarize(direct), forwarded: summarize(forwarded), directNew: summarize(directNew), tunnelled: summarize(tunnelled) };
    const median = (values: number[]) => summarize(values).median;
    const t = {
      direct: median(rounds.direct),
      tunnel: median(rounds.tunnel),
      modelDirect: median(rounds.modelDirect),
      model: median(rounds.model),
      pacedDirect: median(rounds.pacedDirect),
      pacedTunnel: median(rounds.pacedTunnel),
      proxyCpu: median(rounds.proxyCpuMsPerMiB),
    };
    const added = (a: { median: number }, b: { median: number }) => Math.round((a.median - b.median) * 100) / 100;
    return {
      rows: [
        {
          scenario: 'egress',
          measure: 'plain request, keep-alive: p50 (p99) ms',
          berth: `${s.forwarded.median} (${s.forwarded.p99})`,
          baseline: `${s.direct.median} (${s.direct.p99}) direct`,
          ratio: `+${added(s.forwarded, s.direct)} ms`,
          target: 'added p50 < 2 ms',
          met: added(s.forwarded, s.direct) < 2,
        },
        {
          scenario: 'egress',
          measure: 'new HTTPS-style tunnel per request: p50 (p99) ms',
          berth: `${s.tunnelled.median} (${s.tunnelled.p99})`,
          baseline: `${s.directNew.median} (${s.directNew.p99}) direct, new connection`,
          ratio: `+${added(s.tunnelled, s.directNew)} ms`,
          target: 'added p50 < 2 ms',
          met: added(s.tunnelled, s.directNew) < 2,
        },
        {
          scenario: 'egress',
          measure: `stream ${ctx.options.egressMib} MiB through a tunnel, MiB/s`,
          berth: String(Math.round(t.tunnel)),
          baseline: `${Math.round(t.direct)} direct`,
          ratio: ratio(t.tunnel, t.direct),
          target: '>= 0.9x',
          met: t.tunnel / t.direct >= 0.9,
        },
        {
          scenario: 'egress',
          measure: `a ${PACED_MIB_S} MiB/s stream (a link faster than any model's) through a tunnel, MiB/s`,
          berth: String(Math.round(t.pacedTunnel)),
          baseline: `${Math.round(t.pacedDirect)} direct`,
          ratio: ratio(t.pacedTunnel, t.pacedDirect),
          target: '>= 0.9x',
          met: t.pacedTunnel / t.pacedDirect >= 0.9,
        },
        {
          scenario: 'egress',
          measure: "the proxy's CPU per MiB tunnelled, ms",
          berth: String(t.proxyCpu),
          baseline: '—',
          ratio: `${Math.round(1000 / t.proxyCpu)} MiB/s per core`,
          target: '—',
          met: true,
        },
        {
          scenario: 'egress',
          measure: 'SSE through the model route (key swap, usage meter), MiB/s',
          berth: String(Math.round(t.model)),
          baseline: `${Math.round(t.modelDirect)} direct`,
          ratio: ratio(t.model, t.modelDirect),
          target: '>= 0.9x',
          met: t.model / t.modelDirect >= 0.9,
        },
      ],
      raw: { samples, latencyMs: s, throughputMiBs: rounds, proxyRssMiB: proxy.rssMiB() },
    };
  } finally {
    keepAlive.destroy();
    await proxy.kill('SIGTERM');
    up.close();
  }
}
