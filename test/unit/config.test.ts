import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/core/config.js';

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
    assert.deepEqual(config.agentCommands, { review: ['agent', 'review', '--fast'] });
    assert.deepEqual(config.workerEntrypoint, ['node', '/app/dist/worker/main.js']);
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
    for (const key of ['REDIS_URL', 'API_TOKEN', 'WORKER_IMAGE', 'PORT', 'TASK_TIMEOUT', 'WORKER_MEMORY', 'WORKER_CPUS', 'TASK_ATTEMPTS', 'WORKER_USER', 'WORKER_NETWORK', 'AGENT_COMMAND_REVIEW', 'CONSUMER_IN_PROCESS']) {
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
      assert.ok(found.some((p) => p.startsWith('AGENT_COMMAND_X')), `${bad}: ${found}`);
    }
  });

  it('refuses binds that expose the Docker socket or the host root', () => {
    for (const bind of ['/var/run/docker.sock:/var/run/docker.sock', '/run/docker.sock:/d', '/:/host', '/var/run:/x', 'relative:/x']) {
      assert.ok(problems({ ...valid, WORKER_BINDS: bind }).some((p) => p.startsWith('WORKER_BINDS')), bind);
    }
    assert.deepEqual(parseConfig({ ...valid, WORKER_BINDS: '/srv/cache:/cache:ro' }).WORKER_BINDS, ['/srv/cache:/cache:ro']);
  });

  it('treats an empty variable as unset', () => {
    assert.equal(parseConfig({ ...valid, PORT: '' }).PORT, 3000);
  });
});
