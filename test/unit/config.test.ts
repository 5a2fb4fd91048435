import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { agentCommandFor, ConfigError, kindPriority, parseConfig, tokenPermissionsFor } from '../../src/core/config.js';
import { taskRequestSchema } from '../../src/core/task.js';
import { buildWorkloadSpec } from '../../src/consumer/launcher/spec.js';
import { memoryCheck } from '../../src/cli/doctor.js';
import { rulesFile } from '../support/github.js';

const valid = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  API_TOKEN: 'a'.repeat(32),
  WORKER_IMAGE: 'berth:local',
  AGENT_COMMAND_REVIEW: 'agent review --fast',
};

function problems(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('config', () => {
  it('applies the documented defaults', () => {
    const config = parseConfig(valid);
    assert.equal(config.HOST, '127.0.0.1');
    assert.equal(config.PORT, 3000);
    assert.equal(config.WORKER_MEMORY, 2 * 1024 ** 3);
    assert.equal(config.WORKER_CPUS, 2);
    assert.equal(config.TASK_TIMEOUT, 45 * 60_000);
    assert.equal(config.TASK_ATTEMPTS, 3);
    assert.equal(config.TASK_BACKOFF, 30_000);
    assert.equal(config.GLOBAL_CONCURRENCY, 0);
    assert.deepEqual({ ...config.agentCommands }, { review: ['agent', 'review', '--fast'] });
    assert.deepEqual(config.workerEntrypoint, ['node', '/app/dist/worker/main.js']);
  });

  it('priorities: TASK_PRIORITY_<KIND> from -10 to 10, for a configured kind; the API range in order', () => {
    const config = parseConfig({ ...valid, TASK_PRIORITY_REVIEW: '3', API_PRIORITY_MIN: '-2', API_PRIORITY_MAX: '4' });
    assert.deepEqual({ ...config.priorities }, { review: 3 });
    assert.equal(kindPriority(config.priorities, 'review'), 3);
    assert.equal(kindPriority(config.priorities, 'other'), 0);
    assert.equal(kindPriority(config.priorities, 'constructor'), 0, 'no prototype lookups');
    assert.deepEqual(problems({ ...valid, TASK_PRIORITY_REVIEW: '11' }), [
      "TASK_PRIORITY_REVIEW: expected a whole number from -10 to 10 (higher starts first), got '11'",
    ]);
    assert.deepEqual(problems({ ...valid, TASK_PRIORITY_REVIEW: 'high' }), [
      "TASK_PRIORITY_REVIEW: expected a whole number from -10 to 10 (higher starts first), got 'high'",
    ]);
    assert.deepEqual(problems({ ...valid, TASK_PRIORITY_NOPE: '1' }), ["TASK_PRIORITY_NOPE: no AGENT_COMMAND_NOPE for the kind 'nope'"]);
    assert.deepEqual(problems({ ...valid, API_PRIORITY_MIN: '3', API_PRIORITY_MAX: '1' }), ['API_PRIORITY_MIN (3) is above API_PRIORITY_MAX (1)']);
  });

  it('accepts 30s, 45m and plain milliseconds for durations', () => {
    assert.equal(parseConfig({ ...valid, TASK_TIMEOUT: '30s' }).TASK_TIMEOUT, 30_000);
    assert.equal(parseConfig({ ...valid, TASK_TIMEOUT: '45m' }).TASK_TIMEOUT, 2_700_000);
    assert.equal(parseConfig({ ...valid, TASK_TIMEOUT: '1500' }).TASK_TIMEOUT, 1500);
    assert.equal(parseConfig({ ...valid, TASK_BACKOFF: '2h' }).TASK_BACKOFF, 7_200_000);
  });

  it('lists every problem at once', () => {
    const found = problems({
      PORT: '99999',
      TASK_TIMEOUT: 'soon',
      WORKER_MEMORY: 'lots',
      WORKER_CPUS: 'many',
      TASK_ATTEMPTS: '0',
      WORKER_USER: '0:0',
      WORKER_NETWORK: 'host',
      AGENT_COMMAND_REVIEW: 'agent | tee log',
      CONSUMER_IN_PROCESS: 'maybe',
    });
    const keys = found.map((p) => p.split(':')[0]);
    for (const key of [
      'REDIS_URL',
      'API_TOKEN',
      'WORKER_IMAGE',
      'PORT',
      'TASK_TIMEOUT',
      'WORKER_MEMORY',
      'WORKER_CPUS',
      'TASK_ATTEMPTS',
      'WORKER_USER',
      'WORKER_NETWORK',
      'AGENT_COMMAND_REVIEW',
      'CONSUMER_IN_PROCESS',
    ]) {
      assert.ok(keys.includes(key), `${key} missing from ${JSON.stringify(found, null, 1)}`);
    }
    assert.match(found.find((p) => p.startsWith('REDIS_URL'))!, /required/);
    assert.match(found.find((p) => p.startsWith('TASK_TIMEOUT'))!, /'soon'/);
  });

  it('requires at least one agent command and a long enough token', () => {
    const { AGENT_COMMAND_REVIEW: _, ...noCommand } = valid;
    assert.match(problems(noCommand).join('\n'), /AGENT_COMMAND_<KIND>: no task kind configured/);
    assert.match(problems({ ...valid, API_TOKEN: 'short' }).join('\n'), /API_TOKEN: must be at least 24/);
  });

  it('splits agent commands like a shell, with quotes, and runs no shell', () => {
    const config = parseConfig({ ...valid, AGENT_COMMAND_IMPLEMENT: `copilot --prompt "fix it, \\"now\\"" 'single $HOME' plain\\ space` });
    assert.deepEqual(config.agentCommands.implement, ['copilot', '--prompt', 'fix it, "now"', 'single $HOME', 'plain space']);
    assert.equal(parseConfig({ ...valid, AGENT_COMMAND_X: '' }).agentCommands.x, undefined, 'empty means unset');
    for (const bad of ['a && b', 'a > out', 'a; b', 'a *.txt', 'a # comment', 'a `b`']) {
      const found = problems({ ...valid, AGENT_COMMAND_X: bad });
      assert.ok(
        found.some((p) => p.startsWith('AGENT_COMMAND_X')),
        `${bad}: ${found}`,
      );
    }
  });

  it('refuses binds that expose the Docker socket or the host root', () => {
    for (const bind of ['/var/run/docker.sock:/var/run/docker.sock', '/run/docker.sock:/d', '/:/host', '/var/run:/x', 'relative:/x']) {
      assert.ok(
        problems({ ...valid, WORKER_BINDS: bind }).some((p) => p.startsWith('WORKER_BINDS')),
        bind,
      );
    }
    assert.deepEqual(parseConfig({ ...valid, WORKER_BINDS: '/srv/cache:/cache:ro' }).WORKER_BINDS, ['/srv/cache:/cache:ro']);
  });

  it('treats an empty variable as unset', () => {
    assert.equal(parseConfig({ ...valid, PORT: '' }).PORT, 3000);
  });

  it('binds are checked on normalised paths: sockets, engine state, /proc and / however spelled, and their ancestors', () => {
    for (const host of [
      '//',
      '/var/./run/docker.sock',
      '/run/.',
      '/var/run/',
      '/proc/1/root',
      '/var/lib/docker/volumes',
      '/var/lib',
      '/run/containerd/containerd.sock',
      '/srv/../var/lib/docker',
      '/sys/fs',
    ]) {
      assert.ok(
        problems({ ...valid, WORKER_BINDS: `${host}:/x` }).some((p) => p.startsWith('WORKER_BINDS')),
        host,
      );
    }
    // Resolved paths: a symlink to the engine's socket is the socket; user runtimes (rootless) are refused.
    const dir = mkdtempSync('/tmp/berth-bind-');
    symlinkSync('/var/run/docker.sock', `${dir}/innocent`);
    symlinkSync('/var/lib', `${dir}/lib`);
    for (const host of [`${dir}/innocent`, `${dir}/lib/docker/volumes`, '/run/user/1000/docker.sock', '/run/user/1000']) {
      assert.ok(
        problems({ ...valid, WORKER_BINDS: `${host}:/x` }).some((p) => p.startsWith('WORKER_BINDS')),
        host,
      );
    }
    assert.deepEqual(parseConfig({ ...valid, WORKER_BINDS: '/srv/cache/:/cache:ro' }).WORKER_BINDS, ['/srv/cache/:/cache:ro']);
  });

  it('WORKER_USER is read as numbers: 00 and 0000:1 are root and refused; the gid defaults to the uid', () => {
    for (const user of ['0', '00', '0000:1', '1000:0', 'root', '-1', '1000:'])
      assert.ok(
        problems({ ...valid, WORKER_USER: user }).some((p) => p.startsWith('WORKER_USER')),
        user,
      );
    assert.equal(parseConfig({ ...valid, WORKER_USER: '01000' }).WORKER_USER, '1000:1000');
  });

  it("WORKER_ENV refuses berth's own secrets", () => {
    for (const name of [
      'API_TOKEN',
      'GITHUB_APP_PRIVATE_KEY',
      'GITHUB_APP_PRIVATE_KEY_FILE',
      'GITHUB_WEBHOOK_SECRET',
      'GITHUB_WEBHOOK_SECRET_PREVIOUS',
      'REDIS_URL',
      'BOARD_PASSWORD',
      'GITHUB_TOKEN',
      'BERTH_TASK',
    ]) {
      assert.ok(
        problems({ ...valid, WORKER_ENV: `MODEL_KEY,${name}` }).some((p) => p.includes(`'${name}'`)),
        name,
      );
    }
    assert.deepEqual(parseConfig({ ...valid, WORKER_ENV: 'ANTHROPIC_API_KEY' }).WORKER_ENV, ['ANTHROPIC_API_KEY']);
  });

  it('a kind named after an Object method finds no command', () => {
    const config = parseConfig(valid);
    for (const kind of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) assert.equal(agentCommandFor(config, kind), undefined, kind);
    assert.deepEqual(agentCommandFor(config, 'review'), ['agent', 'review', '--fast']);
  });

  it('per-kind token permissions: defaults by kind, overrides parsed and checked', () => {
    const config = parseConfig({ ...valid, AGENT_COMMAND_LINT: 'lint', GITHUB_TOKEN_PERMISSIONS_LINT: 'contents:read, statuses:write' });
    assert.deepEqual(tokenPermissionsFor(config.tokenPermissions, 'lint'), { contents: 'read', statuses: 'write' });
    assert.deepEqual(tokenPermissionsFor(config.tokenPermissions, 'review'), { contents: 'read', pull_requests: 'write', issues: 'read' });
    assert.deepEqual(tokenPermissionsFor(config.tokenPermissions, 'other'), { contents: 'read' });
    assert.ok(problems({ ...valid, GITHUB_TOKEN_PERMISSIONS_REVIEW: 'contents:admin' }).some((p) => p.startsWith('GITHUB_TOKEN_PERMISSIONS_REVIEW')));
    assert.ok(problems({ ...valid, GITHUB_TOKEN_PERMISSIONS_NOPE: 'contents:read' }).some((p) => /no AGENT_COMMAND_NOPE/.test(p)));
  });

  it("requests: a ref may not start with '-', a repository name may not be . or ..", () => {
    assert.equal(taskRequestSchema.safeParse({ kind: 'review', repo: 'octo/widgets', ref: '--upload-pack=touch /tmp/x' }).success, false);
    assert.equal(taskRequestSchema.safeParse({ kind: 'review', repo: 'octo/..' }).success, false);
    assert.equal(taskRequestSchema.safeParse({ kind: 'review', repo: 'octo/.' }).success, false);
    assert.equal(taskRequestSchema.safeParse({ kind: 'review', repo: 'octo/.github', ref: 'main' }).success, true);
  });

  it('DOCKER_HOST: plain TCP only to loopback or when explicitly allowed; TLS needs readable certificates', () => {
    assert.ok(problems({ ...valid, DOCKER_HOST: 'tcp://10.1.2.3:2375' }).some((p) => /plain TCP to 10.1.2.3/.test(p)));
    assert.equal(parseConfig({ ...valid, DOCKER_HOST: 'tcp://127.0.0.1:2375' }).DOCKER_HOST, 'tcp://127.0.0.1:2375');
    assert.equal(parseConfig({ ...valid, DOCKER_HOST: 'tcp://10.1.2.3:2375', DOCKER_ALLOW_PLAINTEXT: 'true' }).DOCKER_ALLOW_PLAINTEXT, true);
    assert.ok(
      problems({ ...valid, DOCKER_HOST: 'tcp://10.1.2.3:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent' }).some((p) =>
        /DOCKER_CERT_PATH: cannot read ca.pem/.test(p),
      ),
    );
    assert.ok(problems({ ...valid, DOCKER_HOST: 'ssh://x' }).some((p) => /unsupported scheme/.test(p)));
  });

  it('secrets can come from files (compose secrets): a trailing newline is not part of them; not both ways at once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-secrets-'));
    writeFileSync(join(dir, 'token'), `${'t'.repeat(30)}\n`);
    writeFileSync(join(dir, 'hook'), 'hook-secret-0123456789');
    const { API_TOKEN: _, ...noToken } = valid;
    const config = parseConfig({ ...noToken, API_TOKEN_FILE: join(dir, 'token'), GITHUB_WEBHOOK_SECRET_FILE: join(dir, 'hook') });
    assert.equal(config.API_TOKEN, 't'.repeat(30));
    assert.equal(config.GITHUB_WEBHOOK_SECRET, 'hook-secret-0123456789');
    assert.ok(problems({ ...valid, API_TOKEN_FILE: join(dir, 'token') }).some((p) => /API_TOKEN and API_TOKEN_FILE: set one/.test(p)));
    assert.ok(problems({ ...noToken, API_TOKEN_FILE: join(dir, 'missing') }).some((p) => /API_TOKEN_FILE: cannot read/.test(p)));
  });
});

describe("doctor's Redis memory check", () => {
  const config = { RESULT_MAX_SIZE: 64 * 1024, KEEP_COMPLETED: 7 * 86_400_000 };
  it('no maxmemory is a warning that says Redis grows until the machine runs out', () => {
    const check = memoryCheck({ usedBytes: 5 << 20, maxBytes: 0 }, config);
    assert.equal(check.ok && check.warn, true);
    assert.match(
      check.detail,
      /^no maxmemory: Redis grows until the machine runs out \(5\.0 MiB used\); a finished task keeps at most 4\.0 MiB .* for KEEP_COMPLETED=7d/,
    );
  });
  it('plenty of room passes and says how many worst-case tasks fit; near full warns; over 90% fails', () => {
    const roomy = memoryCheck({ usedBytes: 100 << 20, maxBytes: 4 * 2 ** 30 }, config);
    assert.equal(roomy.ok, true);
    assert.equal(roomy.warn, undefined);
    assert.match(roomy.detail, /^100 MiB of 4\.0 GiB used \(2%\);.*room for 1006 more such task\(s\)$/);
    assert.equal(memoryCheck({ usedBytes: 80, maxBytes: 100 * 2 ** 30 }, config).ok, true);
    const tight = memoryCheck({ usedBytes: 100 << 20, maxBytes: 400 << 20 }, config);
    assert.equal(tight.warn, true, 'room for fewer than 100 chatty tasks');
    const full = memoryCheck({ usedBytes: 95, maxBytes: 100 }, config);
    assert.equal(full.ok, false);
    assert.match(full.fix ?? '', /at maxmemory the API answers 503/);
  });
});

describe('names that clash with a shell, and a split network', () => {
  const base = { REDIS_URL: 'redis://127.0.0.1:6379', API_TOKEN: 'a'.repeat(32), WORKER_IMAGE: 'berth:local', AGENT_COMMAND_REVIEW: 'agent' };
  it('BERTH_CHECKOUT, BERTH_HOST and BERTH_PORT win over the plain names a shell may hold for something else', () => {
    assert.throws(() => parseConfig({ ...base, CHECKOUT: '/home/me/src' }), /CHECKOUT/);
    const config = parseConfig({
      ...base,
      CHECKOUT: '/home/me/src',
      BERTH_CHECKOUT: 'never',
      HOST: 'my-laptop',
      BERTH_HOST: '127.0.0.1',
      PORT: '8080',
      BERTH_PORT: '3100',
    });
    assert.deepEqual([config.CHECKOUT, config.HOST, config.PORT], ['never', '127.0.0.1', 3100]);
  });
  it("workers get a GitHub API address of their own (WORKER_GITHUB_API_URL), berth's by default", () => {
    const task = { id: 't', attempt: 1, kind: 'review', repo: 'o/r' };
    const own = buildWorkloadSpec(
      parseConfig({ ...base, EGRESS: 'open', GITHUB_API_URL: 'http://127.0.0.1:9000/api/v3', WORKER_GITHUB_API_URL: 'https://ghe.internal/api/v3/' }),
      { name: 'n', task },
    );
    assert.equal(own.env.GITHUB_API_URL, 'https://ghe.internal/api/v3');
    const same = buildWorkloadSpec(parseConfig({ ...base, EGRESS: 'open', GITHUB_API_URL: 'https://ghe.example/api/v3' }), { name: 'n', task });
    assert.equal(same.env.GITHUB_API_URL, 'https://ghe.example/api/v3');
  });
});

describe('schedules in the rules file', () => {
  const withSchedules = (schedules: unknown[]) => ({ ...valid, WEBHOOK_RULES_FILE: rulesFile({ schedules }) });
  const base = { id: 'nightly', cron: '0 3 * * *', repo: 'octo/app', kind: 'review' };
  it('a cron of 5 or 6 fields in an IANA time zone, for a configured kind, each id once', () => {
    const [schedule] = parseConfig(withSchedules([{ ...base, timezone: 'Europe/Berlin' }])).webhookRules.schedules;
    assert.deepEqual({ ...schedule }, { ...base, timezone: 'Europe/Berlin', enabled: true });
    assert.match(problems(withSchedules([{ ...base, cron: 'every night' }])).join('\n'), /schedules\.0\.cron: 'every night' has 2 fields; a cron has 5/);
    assert.match(problems(withSchedules([{ ...base, cron: '61 3 * * *' }])).join('\n'), /schedules\.0\.cron: '61 3 \* \* \*' is not a cron expression/);
    assert.match(
      problems(withSchedules([{ ...base, timezone: 'Mars/Olympus' }])).join('\n'),
      /schedules\.0\.timezone: 'Mars\/Olympus' is not an IANA time zone/,
    );
    assert.match(problems(withSchedules([base, base])).join('\n'), /schedules\.1\.id: 'nightly' names two schedules/);
    assert.match(problems(withSchedules([{ ...base, kind: 'deploy' }])).join('\n'), /schedule 'nightly': no AGENT_COMMAND_DEPLOY for the kind 'deploy'/);
    assert.match(problems(withSchedules([{ ...base, repo: 'not a repo' }])).join('\n'), /schedules\.0\.repo/);
  });
});
