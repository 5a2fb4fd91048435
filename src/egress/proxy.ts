import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { rootCertificates } from 'node:tls';
import type { Logger } from 'pino';
import { judgeAddress, judgeTarget, normaliseHost, type Allowlist, type Decision } from './allowlist.js';
import { verifyGrant, type Grant } from './credential.js';
import type { EgressEntry } from '../core/egress-record.js';
import type { EgressLedger } from './ledger.js';
import type { Revocations } from './revocations.js';
import { UsageTap } from './usage.js';
import { budgetReached, spendOf, type PriceTable } from '../core/spend.js';

/** A model provider berth's proxy calls with the operator's key. */
export interface ModelProvider {
  name: string;
  /** Where its API is, e.g. https://api.anthropic.com or https://api.openai.com/v1. */
  url: string;
  key: string;
  /** How the key is presented: Anthropic's `x-api-key`, or a bearer token (OpenAI and most others). */
  api: 'anthropic' | 'openai';
}

export interface ProxyOptions {
  /** Secrets credentials may be signed with (the current one first). */
  secrets: string[];
  /** Reads an attempt's record: `GET /_berth/attempts/<attempt>` with this in `x-berth-admin`. */
  adminToken: string;
  providers: ModelProvider[];
  /** The operator's prices, for USD budgets (none: only token budgets bite). */
  prices?: PriceTable;
  ledger: EgressLedger;
  /** Credentials given back early (a setup phase's); refused from then on. */
  revocations: Revocations;
  logger: Logger;
  /** Extra CA certificates (PEM) for upstream TLS, e.g. a GitHub Enterprise Server's or a test CA. */
  extraCa?: string[];
  /** Name resolution; the system resolver by default. */
  resolve?: (host: string) => Promise<string[]>;
  connectTimeoutMs?: number;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host'];
export const MODEL_PATH = '/model/';

/**
 * berth's egress proxy: the only way out for a worker. Three doors, each behind the attempt's
 * signed credential: CONNECT tunnels and plain HTTP requests to hosts on the attempt's allowlist
 * (names only, checked again on the addresses they resolve to), and `/model/<provider>/…`, where
 * the proxy swaps the attempt's credential for the operator's key and meters the usage the
 * provider reports. Every decision is recorded per attempt.
 */
export function createEgressProxy(options: ProxyOptions): http.Server {
  const resolve = options.resolve ?? (async (host: string) => (await lookup(host, { all: true })).map((a) => a.address));
  const ca = options.extraCa?.length ? [...rootCertificates, ...options.extraCa] : undefined;
  const providers = new Map(options.providers.map((p) => [p.name, p]));
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const log = options.logger;

  const authenticate = (header: string | undefined): { grant: Grant; credential: string } | { status: number; reason: string } => {
    const match = /^Basic\s+(.+)$/i.exec(header ?? '');
    if (!match) return { status: 407, reason: "the proxy needs this attempt's credential (HTTPS_PROXY as berth set it)" };
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const credential = decoded.slice(decoded.indexOf(':') + 1);
    const verified = check(credential);
    return verified.ok ? { grant: verified.grant, credential } : { status: 407, reason: verified.reason };
  };
  const check = (credential: string): ReturnType<typeof verifyGrant> => {
    const verified = verifyGrant(credential, options.secrets);
    if (verified.ok && options.revocations.has(credential))
      return { ok: false, reason: `the ${verified.grant.phase ?? 'attempt'} credential of ${verified.grant.attempt} was given back` };
    if (verified.ok && options.revocations.ended(verified.grant.attempt))
      return { ok: false, reason: `attempt ${verified.grant.attempt} has ended; its credential died with it` };
    return verified;
  };

  /** The first address of `host` the attempt may reach, or the refusal. */
  const admit = async (grant: Grant, host: string, port: number): Promise<{ address: string } | { refused: string }> => {
    const list: Allowlist = grant;
    const target = judgeTarget(list, host, port);
    if (!target.allowed) return { refused: target.reason };
    let addresses: string[];
    try {
      addresses = await resolve(normaliseHost(host));
    } catch (error) {
      return { refused: `${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
    }
    let last: Decision = { allowed: false, reason: `${host} has no address` };
    for (const address of addresses) {
      last = judgeAddress(list, host, address);
      if (last.allowed) return { address };
    }
    return { refused: (last as { reason: string }).reason };
  };

  const note = (grant: Grant, entry: Omit<EgressEntry, 'at'>) => {
    options.ledger.record(grant.attempt, { at: Date.now(), ...entry });
    if (entry.decision === 'refused') log.info({ attempt: grant.attempt, host: entry.host, port: entry.port, reason: entry.reason }, 'egress refused');
  };

  const server = http.createServer((request, response) => {
    void handleRequest(request, response).catch((error) => {
      log.warn({ err: error }, 'egress request failed');
      if (!response.headersSent) refuse(response, 502, `berth egress: ${(error as Error).message}`);
      else response.destroy();
    });
  });

  async function handleRequest(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = request.url ?? '/';
    if (url === '/healthz') return void response.end('ok');
    if (url.startsWith('/_berth/attempts/')) {
      if (request.headers['x-berth-admin'] !== options.adminToken) return refuse(response, 403, 'berth egress: not berth');
      options.ledger.flush();
      const attempt = decodeURIComponent(url.slice('/_berth/attempts/'.length));
      // Reading an attempt's record after its end also ends its credentials (until they would have expired).
      if (request.method === 'POST') options.revocations.endAttempt(attempt, Date.now() + 86_400_000);
      const record = options.ledger.read(attempt);
      response.writeHead(record ? 200 : 404, { 'content-type': 'application/json' });
      return void response.end(JSON.stringify(record));
    }
    if (url === '/_berth/over-budget') {
      if (request.headers['x-berth-admin'] !== options.adminToken) return refuse(response, 403, 'berth egress: not berth');
      response.writeHead(200, { 'content-type': 'application/json' });
      return void response.end(JSON.stringify(options.ledger.overBudgetAttempts()));
    }
    if (url.startsWith(MODEL_PATH)) return model(request, response);
    if ((url === '/_berth/narrow' || url === '/_berth/end') && request.method === 'POST') {
      // The worker's entrypoint gives back its setup credential before the agent starts (narrow),
      // and all of its attempt's once the agent has exited (end).
      const auth = authenticate(request.headers['proxy-authorization']);
      if ('status' in auth) return refuse(response, auth.status, `berth egress: ${auth.reason}`);
      if (url === '/_berth/end') options.revocations.endAttempt(auth.grant.attempt, auth.grant.expiresAt);
      else options.revocations.revoke(auth.credential, auth.grant.expiresAt);
      log.info({ attempt: auth.grant.attempt, phase: auth.grant.phase ?? 'agent', scope: url.slice('/_berth/'.length) }, 'credential given back');
      response.writeHead(204);
      return void response.end();
    }
    if (!/^http:\/\//i.test(url))
      return refuse(response, 400, 'berth egress: send requests through the proxy as a proxy (absolute URL), or to /model/<provider>/ for a model API');
    const auth = authenticate(request.headers['proxy-authorization']);
    if ('status' in auth) return refuse(response, auth.status, `berth egress: ${auth.reason}`, { 'proxy-authenticate': 'Basic realm="berth-egress"' });
    const target = new URL(url);
    const port = Number(target.port || 80);
    const admitted = await admit(auth.grant, target.hostname, port);
    if ('refused' in admitted) {
      note(auth.grant, { via: 'http', host: normaliseHost(target.hostname), port, decision: 'refused', reason: admitted.refused, bytesIn: 0, bytesOut: 0 });
      return refuse(response, 403, `berth egress refused ${target.hostname}:${port}: ${admitted.refused}`);
    }
    const headers = forwardHeaders(request.headers);
    headers.host = target.host;
    const upstream = http.request({
      host: admitted.address,
      port,
      method: request.method,
      path: `${target.pathname}${target.search}`,
      headers,
      timeout: connectTimeoutMs,
    });
    await relay(request, response, upstream, (bytesIn, bytesOut) =>
      note(auth.grant, { via: 'http', host: normaliseHost(target.hostname), port, decision: 'allowed', bytesIn, bytesOut }),
    );
  }

  async function model(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const rest = (request.url ?? '').slice(MODEL_PATH.length);
    const name = rest.split(/[/?]/)[0] ?? '';
    const provider = providers.get(name);
    const presented = (request.headers['x-api-key'] as string | undefined) ?? /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
    const verified = check(presented);
    if (!verified.ok) return refuse(response, 401, `berth egress: ${verified.reason} (the model API key in a worker is its attempt credential)`);
    const grant = verified.grant;
    if (!provider || !grant.providers.includes(name)) {
      note(grant, {
        via: 'model',
        host: name,
        port: 0,
        decision: 'refused',
        reason: `model provider '${name}' is not configured for this task`,
        bytesIn: 0,
        bytesOut: 0,
      });
      return refuse(response, 403, `berth egress: model provider '${name}' is not configured for this task (EGRESS_PROVIDERS)`);
    }
    const spent = budgetSpent(grant);
    if (spent) {
      options.ledger.overBudget(grant.attempt, spent);
      note(grant, { via: 'model', host: name, port: 0, decision: 'refused', reason: `budget: ${spent}`, bytesIn: 0, bytesOut: 0 });
      // 400, not 429: SDKs retry a 429, and a spent budget does not come back.
      return budgetRefusal(response, provider.api, `berth: this task's model budget is spent (${spent}); no more model calls for it`);
    }
    const base = new URL(provider.url);
    const target = new URL(`${base.pathname.replace(/\/$/, '')}${rest.slice(name.length) || '/'}`, base);
    const headers = forwardHeaders(request.headers);
    delete headers['x-api-key'];
    delete headers.authorization;
    if (provider.api === 'anthropic') headers['x-api-key'] = provider.key;
    else headers.authorization = `Bearer ${provider.key}`;
    headers.host = target.host;
    const client = target.protocol === 'https:' ? https : http;
    const upstream = client.request(target, { method: request.method, headers, timeout: connectTimeoutMs, ...(ca ? { ca } : {}) });
    let tap: UsageTap | null = null;
    await relay(
      request,
      response,
      upstream,
      (bytesIn, bytesOut) => {
        note(grant, {
          via: 'model',
          host: target.hostname,
          port: Number(target.port || (target.protocol === 'https:' ? 443 : 80)),
          decision: 'allowed',
          bytesIn,
          bytesOut,
        });
        if (tap) options.ledger.addUsage(grant.attempt, tap.end(), tap.model);
      },
      (upstreamResponse) => {
        tap = new UsageTap(String(upstreamResponse.headers['content-type'] ?? ''));
        return (chunk) => tap!.write(chunk);
      },
    );
  }

  /** Why the task's budget is spent, counting its earlier attempts; null while it is not. */
  function budgetSpent(grant: Grant): string | null {
    if (!grant.budget) return null;
    const record = options.ledger.read(grant.attempt);
    const now = spendOf(record?.byModel ?? {}, options.prices ?? {});
    return budgetReached(grant.budget, { tokens: grant.budget.spentTokens + now.tokens, usd: grant.budget.spentUsd + now.usd, unpriced: now.unpriced });
  }

  server.on('connect', (request: http.IncomingMessage, client: Duplex, head: Buffer) => {
    void tunnel(request, client, head).catch((error) => {
      log.warn({ err: error }, 'egress tunnel failed');
      client.destroy();
    });
  });

  async function tunnel(request: http.IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    client.on('error', () => {});
    const auth = authenticate(request.headers['proxy-authorization']);
    if ('status' in auth)
      return void client.end(
        `HTTP/1.1 ${auth.status} Proxy Authentication Required\r\nproxy-authenticate: Basic realm="berth-egress"\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nberth egress: ${auth.reason}\n`,
      );
    const { host, port } = splitAuthority(request.url ?? '');
    const admitted = await admit(auth.grant, host, port);
    if ('refused' in admitted) {
      note(auth.grant, { via: 'connect', host: normaliseHost(host), port, decision: 'refused', reason: admitted.refused, bytesIn: 0, bytesOut: 0 });
      return void client.end(
        `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nx-berth-egress: refused\r\nconnection: close\r\n\r\nberth egress refused ${host}:${port}: ${admitted.refused}\n`,
      );
    }
    const upstream = net.connect({ host: admitted.address, port, timeout: connectTimeoutMs, noDelay: true });
    upstream.once('connect', () => {
      upstream.setTimeout(0);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      // Bytes are counted by the sockets themselves: no listener on the hot path.
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.once('timeout', () => upstream.destroy(new Error('connect timed out')));
    let done = false;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      const bytesIn = upstream.bytesRead;
      note(auth.grant, {
        via: 'connect',
        host: normaliseHost(host),
        port,
        decision: 'allowed',
        bytesIn,
        bytesOut: upstream.bytesWritten,
        ...(error && bytesIn === 0 ? { reason: `upstream: ${error.message}` } : {}),
      });
      if (error && bytesIn === 0 && !client.destroyed)
        client.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nberth egress: ${host}:${port}: ${error.message}\n`);
      else client.destroy();
      upstream.destroy();
    };
    upstream.on('error', finish);
    upstream.on('close', () => finish());
    client.on('close', () => finish());
  }

  return server;
}

/** Pipes a request upstream and its response back, streamed; `done` gets the byte counts once. */
function relay(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  upstream: http.ClientRequest,
  done: (bytesIn: number, bytesOut: number) => void,
  tapFor?: (upstreamResponse: http.IncomingMessage) => (chunk: Buffer) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let bytesIn = 0;
    let bytesOut = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      done(bytesIn, bytesOut);
      resolve();
    };
    request.on('data', (chunk: Buffer) => (bytesOut += chunk.length));
    request.pipe(upstream);
    upstream.on('timeout', () => upstream.destroy(new Error('the upstream did not answer in time')));
    upstream.on('error', (error) => {
      if (!response.headersSent) reject(error);
      else {
        response.destroy();
        finish();
      }
    });
    upstream.on('response', (upstreamResponse) => {
      upstream.setTimeout(0);
      const tap = tapFor?.(upstreamResponse);
      response.writeHead(upstreamResponse.statusCode ?? 502, forwardHeaders(upstreamResponse.headers));
      // Each chunk goes out as it arrives (SSE): no buffering beyond the socket's own.
      response.flushHeaders();
      upstreamResponse.on('data', (chunk: Buffer) => {
        bytesIn += chunk.length;
        tap?.(chunk);
      });
      upstreamResponse.pipe(response);
      upstreamResponse.on('end', finish);
      upstreamResponse.on('error', finish);
      response.on('close', () => {
        upstreamResponse.destroy();
        finish();
      });
    });
  });
}

function forwardHeaders(headers: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.includes(name)) out[name] = value;
  return out;
}

function refuse(response: http.ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain', 'x-berth-egress': 'refused', ...headers });
  response.end(`${message}\n`);
}

/** `host:port` or `[v6]:port` of a CONNECT line. */
export function splitAuthority(authority: string): { host: string; port: number } {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(authority) ?? /^([^:]+):(\d+)$/.exec(authority);
  if (!match) return { host: authority, port: 443 };
  return { host: match[1]!, port: Number(match[2]) };
}

/** A refusal in the provider's own error shape, so the agent's SDK shows berth's words. */
function budgetRefusal(response: http.ServerResponse, api: ModelProvider['api'], message: string): void {
  const body =
    api === 'anthropic'
      ? { type: 'error', error: { type: 'invalid_request_error', message } }
      : { error: { message, type: 'invalid_request_error', code: 'berth_budget_exceeded' } };
  response.writeHead(400, { 'content-type': 'application/json', 'x-berth-egress': 'budget' });
  response.end(JSON.stringify(body));
}
