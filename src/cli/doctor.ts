import { Redis } from 'ioredis';
import { formatByteSize } from '../core/byte-size.js';
import { formatDuration } from '../core/duration.js';
import pino from 'pino';
import { EgressGate } from '../consumer/egress-gate.js';
import type { Launcher, Workload } from '../consumer/launcher/launcher.js';
import { readRedisMemory, worstCaseTaskBytes, type RedisMemory } from '../core/redis-memory.js';
import { JOB_LOG_MAX_LINES, LINE_MAX_CHARS } from '../consumer/log-stream.js';
import { ConfigError, parseConfig, type Config } from '../core/config.js';
import { launcherFromConfig } from '../consumer/launcher/from-config.js';
import { buildWorkloadSpec } from '../consumer/launcher/spec.js';

export interface Check {
  name: string;
  ok: boolean;
  /** Passes, but an operator should know (shown as `warn`; the exit code stays 0). */
  warn?: boolean;
  detail: string;
  fix?: string;
}

const PROBE = `
const fs = require('fs');
const status = fs.readFileSync('/proc/self/status', 'utf8');
const field = (k) => (status.match(new RegExp('^' + k + ':\\\\s*(\\\\S+)', 'm')) || [])[1];
let rootWritable = true;
try { fs.writeFileSync('/berth-probe', ''); } catch { rootWritable = false; }
let workWritable = false;
try { fs.writeFileSync('/work/probe', 'x'); workWritable = true; } catch {}
const targets = JSON.parse(process.env.PROBE_TARGETS || '[]');
const reach = (t) => new Promise((resolve) => {
  const socket = require('net').connect({ host: t.host, port: t.port, timeout: 1500 });
  const done = (ok) => { socket.destroy(); resolve([t.name, ok]); };
  socket.on('connect', () => done(true)); socket.on('timeout', () => done(false)); socket.on('error', () => done(false));
});
Promise.all(targets.map(reach)).then((reached) => {
  console.log(JSON.stringify({ uid: process.getuid(), capEff: field('CapEff'), noNewPrivs: field('NoNewPrivs'), rootWritable, workWritable, socket: fs.existsSync('/var/run/docker.sock'), reached: Object.fromEntries(reached) }));
});
`;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * Whether Redis has room for what berth keeps: a finished task holds at most its job log and its
 * result for KEEP_COMPLETED. Without maxmemory, Redis grows until the machine kills it; near its
 * maxmemory, the API starts answering 503 and agents' results cannot be recorded.
 */
export function memoryCheck(memory: RedisMemory, config: Pick<Config, 'RESULT_MAX_SIZE' | 'KEEP_COMPLETED'>): Check {
  const perTask = worstCaseTaskBytes(JOB_LOG_MAX_LINES, LINE_MAX_CHARS, config.RESULT_MAX_SIZE);
  const keep = `KEEP_COMPLETED=${formatDuration(config.KEEP_COMPLETED)}`;
  const each = `a finished task keeps at most ${formatByteSize(perTask)} (its log, ${JOB_LOG_MAX_LINES} lines, and its result, RESULT_MAX_SIZE) for ${keep}`;
  if (memory.maxBytes === 0) {
    return {
      name: 'redis memory',
      ok: true,
      warn: true,
      detail: `no maxmemory: Redis grows until the machine runs out (${formatByteSize(memory.usedBytes)} used); ${each}`,
      fix: 'give Redis a maxmemory (redis-server --maxmemory 2gb) sized for your task rate times KEEP_COMPLETED',
    };
  }
  const used = memory.usedBytes / memory.maxBytes;
  const room = Math.max(0, Math.floor((memory.maxBytes - memory.usedBytes) / perTask));
  const detail = `${formatByteSize(memory.usedBytes)} of ${formatByteSize(memory.maxBytes)} used (${Math.round(used * 100)}%); ${each}: room for ${room} more such task(s)`;
  if (used >= 0.9)
    return {
      name: 'redis memory',
      ok: false,
      detail,
      fix: "free room now: a shorter KEEP_COMPLETED, the board's Clean of finished tasks, or a larger maxmemory; at maxmemory the API answers 503",
    };
  if (used >= 0.75 || room < 100)
    return { name: 'redis memory', ok: true, warn: true, detail, fix: 'raise maxmemory or shorten KEEP_COMPLETED before Redis fills' };
  return { name: 'redis memory', ok: true, detail };
}

const silentLogger = pino({ level: 'silent' });

/** What workers can reach, and whether the egress proxy that decides it runs. */
async function egressCheck(config: Config, launcher: Launcher): Promise<Check> {
  if (config.EGRESS === 'open') {
    return {
      name: 'egress',
      ok: true,
      warn: true,
      detail: `EGRESS=open: workers reach whatever ${config.WORKER_NETWORK === 'none' ? 'nothing (WORKER_NETWORK=none)' : 'this host can route to: the internet, private ranges, the metadata service'}, and hold any model key WORKER_ENV gives them`,
      fix: 'EGRESS=proxy (the default): an allowlist per task, and model keys kept by the proxy (docs/security.md)',
    };
  }
  if (config.EGRESS === 'none') return { name: 'egress', ok: true, detail: 'EGRESS=none: workers have no network at all' };
  const gate = new EgressGate(config, launcher, silentLogger);
  await gate.refresh();
  const proxies = await launcher.egressProxies(config.QUEUE_NAME).catch(() => []);
  const current = proxies.find((p) => p.name === gate.spec.name);
  const reach = `GitHub (${new URL(config.GITHUB_SERVER_URL).host}), ${config.EGRESS_HOSTS.length} more host(s) for every kind, model providers: ${config.egress.providers.map((p) => p.name).join(', ') || 'none'}`;
  const keys = config.WORKER_ENV.filter((name) => /KEY|TOKEN|SECRET/i.test(name));
  if (keys.length)
    return {
      name: 'egress',
      ok: true,
      warn: true,
      detail: `WORKER_ENV gives workers ${keys.join(', ')}: a key in a worker can be sent anywhere the allowlist reaches`,
      fix: 'configure the provider on berth (EGRESS_PROVIDERS, PROVIDER_<NAME>_KEY_FILE) and drop it from WORKER_ENV: the proxy adds the key',
    };
  if (!current)
    return {
      name: 'egress',
      ok: true,
      warn: true,
      detail: `proxy ${gate.spec.name} is not running yet (${reach})`,
      fix: "berth's consumer starts it when it starts; see docker logs of the proxy if it does not stay up",
    };
  return {
    name: 'egress',
    ok: current.running,
    detail: `proxy ${current.name} ${current.running ? 'running' : 'not running'}; workers reach ${reach}${proxies.length > 1 ? `; ${proxies.length - 1} older version(s) kept for running attempts` : ''}`,
    ...(current.running ? {} : { fix: `docker start ${current.name}; docker logs ${current.name}` }),
  };
}

/** Checks what berth needs, in order; later checks are skipped when an earlier one they need failed. */
export async function runDoctor(env: NodeJS.ProcessEnv): Promise<Check[]> {
  const checks: Check[] = [];
  let config: Config | null = null;
  try {
    config = parseConfig(env);
    checks.push({
      name: 'configuration',
      ok: true,
      detail: `${Object.keys(config.agentCommands).length} task kind(s): ${Object.keys(config.agentCommands).join(', ')}`,
    });
    if (!config.BOARD_PASSWORD) {
      checks.push({
        name: 'board password',
        ok: true,
        warn: true,
        detail: 'BOARD_PASSWORD is unset: the API token doubles as the board password',
        fix: 'set BOARD_PASSWORD, so people who only look at the board never hold the API token',
      });
    }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    checks.push({ name: 'configuration', ok: false, detail: error.problems.join('; '), fix: 'set the variables listed (docs/configuration.md)' });
    return checks;
  }

  const redis = new Redis(config.REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: 2000,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
    const policy = ((await redis.config('GET', 'maxmemory-policy')) as string[])[1];
    const aof = ((await redis.config('GET', 'appendonly')) as string[])[1];
    const warnings = [policy !== 'noeviction' ? `maxmemory-policy is ${policy}` : '', aof !== 'yes' ? 'appendonly is off' : ''].filter(Boolean);
    checks.push({
      name: 'redis',
      ok: warnings.length === 0,
      detail: warnings.length ? warnings.join('; ') : `${config.REDIS_URL} answers; noeviction, AOF on`,
      ...(warnings.length ? { fix: 'run Redis with --maxmemory-policy noeviction --appendonly yes (queued tasks must never be evicted or lost)' } : {}),
    });
    checks.push(memoryCheck(await readRedisMemory(redis), config));
  } catch (error) {
    checks.push({
      name: 'redis',
      ok: false,
      detail: `${config.REDIS_URL} does not answer (${(error as Error).message})`,
      fix: 'start Redis (scripts/up.sh starts one) or correct REDIS_URL',
    });
  } finally {
    redis.disconnect();
  }

  const launcher = launcherFromConfig(config);
  try {
    await launcher.ping();
    const engine = await launcher.describe();
    checks.push({ name: 'docker engine', ok: true, detail: engine.engine });
    if (engine.backend === 'swarm') {
      await launcher.engineId();
      const nnp = engine.securityOptions.some((option) => option.includes('no-new-privileges'));
      checks.push({
        name: 'swarm',
        ok: (engine.nodes ?? 0) > 0,
        detail: `${engine.nodes ?? 0} node(s) ready for workers; swarm services cannot set no-new-privileges (moby/moby#41371), so the worker starts under setpriv --no-new-privs${nnp ? ' (and the manager engine sets it engine-wide)' : ''}`,
        ...((engine.nodes ?? 0) > 0
          ? {}
          : { fix: 'join worker nodes (docker swarm join) or make the manager available (docker node update --availability active)' }),
      });
    }
  } catch (error) {
    checks.push({
      name: 'docker engine',
      ok: false,
      detail: `${config.DOCKER_HOST ?? 'unix:///var/run/docker.sock'} does not answer (${(error as Error).message})`,
      fix: 'start dockerd (scripts/start-docker.sh) and make its socket readable by berth (DOCKER_GID in compose)',
    });
    return checks;
  }

  try {
    await launcher.checkImage(config.WORKER_IMAGE);
    checks.push({ name: 'worker image', ok: true, detail: config.WORKER_IMAGE });
  } catch {
    checks.push({
      name: 'worker image',
      ok: false,
      detail: `${config.WORKER_IMAGE} is not on this engine`,
      fix: `scripts/build-image.sh ${config.WORKER_IMAGE}`,
    });
    return checks;
  }

  checks.push(await egressCheck(config, launcher));

  // What a worker could reach on its network: Redis, berth's API, the cloud metadata service.
  const targets: Array<{ name: string; host: string; port: number }> = [];
  if (config.EGRESS === 'open' && config.WORKER_NETWORK !== 'none') {
    try {
      await launcher.prepareNetwork(config.WORKER_NETWORK, config.REDIS_URL);
    } catch (error) {
      checks.push({
        name: 'worker network',
        ok: false,
        detail: (error as Error).message,
        fix: 'leave WORKER_NETWORK unset (berth makes its own) or name a network of the workers alone',
      });
      return checks;
    }
    const gateway = await launcher.networkGateway(config.WORKER_NETWORK);
    const seen = (host: string) => (LOOPBACK.has(host) || host === '0.0.0.0' ? gateway : host.replace(/^\[|\]$/g, ''));
    const redisUrl = new URL(config.REDIS_URL);
    targets.push({ name: `Redis (${redisUrl.hostname}:${redisUrl.port || 6379})`, host: seen(redisUrl.hostname), port: Number(redisUrl.port || 6379) });
    // berth bound to loopback is out of a container's reach by construction.
    if (!LOOPBACK.has(config.HOST)) targets.push({ name: `berth's API (${config.HOST}:${config.PORT})`, host: seen(config.HOST), port: config.PORT });
    targets.push({ name: 'the cloud metadata service (169.254.169.254)', host: '169.254.169.254', port: 80 });
  }

  const [kind] = Object.keys(config.agentCommands) as [string];
  const spec = buildWorkloadSpec(config, {
    name: launcher.nameFor(config.QUEUE_NAME, `doctor-${process.pid}-${Date.now()}`, 1),
    task: { id: 'doctor', attempt: 1, kind, repo: 'berth/doctor' },
  });
  spec.command = ['node', '-e', PROBE];
  spec.env.PROBE_TARGETS = JSON.stringify(targets.filter((t) => t.host));
  spec.labels = { 'berth.doctor': 'true' };
  let probeWorkload: Workload | null = null;
  try {
    probeWorkload = (await launcher.createOrAdopt(spec)).workload;
    await probeWorkload.untilRunning();
    await probeWorkload.untilExited();
    const output = (await probeWorkload.tail()).trim().split('\n').pop() ?? '';
    const probe = JSON.parse(output) as {
      uid: number;
      capEff: string;
      noNewPrivs: string;
      rootWritable: boolean;
      workWritable: boolean;
      socket: boolean;
      reached: Record<string, boolean>;
    };
    const problems = [
      probe.uid === 0 ? 'runs as root' : '',
      /^0+$/.test(probe.capEff) ? '' : `has capabilities (CapEff ${probe.capEff})`,
      probe.noNewPrivs === '1' ? '' : 'no-new-privileges is not in effect',
      probe.rootWritable ? 'root filesystem is writable' : '',
      probe.workWritable ? '' : '/work is not writable',
      probe.socket ? 'the Docker socket is visible' : '',
    ].filter(Boolean);
    checks.push({
      name: 'worker hardening',
      ok: problems.length === 0,
      detail: problems.length
        ? problems.join('; ')
        : `probe ran as uid ${probe.uid}, no capabilities, no-new-privileges, read-only root, writable /work, no socket`,
      ...(problems.length ? { fix: 'check WORKER_USER, WORKER_CAP_ADD and WORKER_BINDS; a rootless or userns engine may report differently' } : {}),
    });
    const reached = Object.entries(probe.reached ?? {})
      .filter(([, ok]) => ok)
      .map(([name]) => name);
    checks.push({
      name: 'worker network',
      ok: !reached.some((name) => name.startsWith('Redis')),
      warn: reached.length > 0,
      detail:
        config.EGRESS !== 'open'
          ? `EGRESS=${config.EGRESS}: workers have no network (loopback only)${config.EGRESS === 'proxy' ? "; berth's egress proxy is their only way out" : ''}`
          : config.WORKER_NETWORK === 'none'
            ? 'WORKER_NETWORK=none: workers reach nothing'
            : reached.length
              ? `a worker on ${config.WORKER_NETWORK} can reach ${reached.join(', ')}`
              : `a worker on ${config.WORKER_NETWORK} reaches none of Redis, berth's API or the metadata service`,
      ...(reached.length
        ? {
            fix: 'bind Redis and berth to addresses workers cannot route to; block the rest in DOCKER-USER, e.g. iptables -I DOCKER-USER -i br-<id> -d 169.254.169.254 -j DROP (docs/security.md)',
          }
        : {}),
    });
  } catch (error) {
    checks.push({
      name: 'worker hardening',
      ok: false,
      detail: `probe container failed: ${(error as Error).message}`,
      fix: 'run the probe by hand: docker run --rm --read-only --cap-drop ALL WORKER_IMAGE node -e 1',
    });
  } finally {
    await probeWorkload?.remove().catch(() => {});
  }
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const rows = checks.map((c) => [c.ok ? (c.warn ? 'warn' : 'pass') : 'FAIL', c.name, c.detail, c.fix ?? '']);
  const header = ['', 'CHECK', 'DETAIL', 'FIX'];
  const widths = header.map((h, i) => Math.min(70, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
