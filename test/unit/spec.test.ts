import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/core/config.js';
import { buildContainerSpec } from '../../src/consumer/launcher/spec.js';

const config = parseConfig({
  REDIS_URL: 'redis://127.0.0.1:6379',
  API_TOKEN: 'a'.repeat(32),
  WORKER_IMAGE: 'berth:local',
  AGENT_COMMAND_REVIEW: 'agent review',
  WORKER_ENV: 'MODEL_KEY',
});

describe('container spec', () => {
  it('is hardened and built from config only; the task is data in BERTH_TASK', () => {
    const task = { id: 't-1', attempt: 2, kind: 'review', repo: 'a/b', prompt: '"; Privileged: true' };
    const spec = buildContainerSpec(config, { name: 'n', task }, { MODEL_KEY: 'k', OTHER: 'no' });
    assert.equal(spec.Image, 'berth:local');
    assert.equal(spec.User, '10001:10001');
    assert.deepEqual(spec.HostConfig?.CapDrop, ['ALL']);
    assert.deepEqual(spec.HostConfig?.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(spec.HostConfig?.ReadonlyRootfs, true);
    assert.equal(spec.HostConfig?.Init, true);
    assert.equal(spec.HostConfig?.Privileged, false);
    assert.deepEqual(spec.HostConfig?.Binds, []);
    assert.equal(spec.HostConfig?.Memory, 2 * 1024 ** 3);
    assert.equal(spec.HostConfig?.NanoCpus, 2e9);
    assert.equal(spec.Labels?.['berth.attempt'], '2');
    const env = spec.Env ?? [];
    assert.deepEqual(JSON.parse(env.find((e) => e.startsWith('BERTH_TASK='))!.slice(11)), task);
    assert.deepEqual(JSON.parse(env.find((e) => e.startsWith('BERTH_COMMAND='))!.slice(14)), ['agent', 'review']);
    assert.ok(env.includes('MODEL_KEY=k'));
    assert.ok(!env.some((e) => e.startsWith('OTHER=')), 'only allow-listed host variables pass');
  });

  it('refuses a kind without a configured command', () => {
    assert.throws(() => buildContainerSpec(config, { name: 'n', task: { id: 't', attempt: 1, kind: 'deploy', repo: 'a/b' } }), /AGENT_COMMAND_DEPLOY/);
  });
});
