import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/core/config.js';
import { buildContainerSpec } from '../../src/consumer/launcher/docker.js';
import { buildWorkloadSpec } from '../../src/consumer/launcher/spec.js';
import { SwarmLauncher } from '../../src/consumer/launcher/swarm/launcher.js';
import { SEALED_NETWORK, serviceSpec } from '../../src/consumer/launcher/swarm/service-spec.js';
import { proxyServiceSpec } from '../../src/consumer/launcher/swarm/egress.js';
import { EgressGate } from '../../src/consumer/egress-gate.js';
import pino from 'pino';
import { noNewPrivsInEffect } from '../../src/worker/privileges.js';
import { oomKills } from '../../src/worker/oom.js';
import { interpretExit } from '../../src/consumer/outcome.js';
import { formatResultLine } from '../../src/core/worker-protocol.js';

const raw = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  API_TOKEN: 'a'.repeat(32),
  WORKER_IMAGE: 'berth:local',
  AGENT_COMMAND_REVIEW: 'agent review',
  WORKER_ENV: 'MODEL_KEY',
};
const config = parseConfig(raw);

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
    assert.equal(spec.HostConfig?.NetworkMode, 'none', 'EGRESS=proxy (the default): no network, the proxy is the way out');
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

describe('swarm service spec', () => {
  const placement = { constraints: ['node.labels.berth==worker'] };
  const task = { id: 't-1', attempt: 1, kind: 'review', repo: 'a/b', prompt: '", "Constraints": ["node.role==manager"]' };
  const spec = serviceSpec(buildWorkloadSpec({ ...config, EGRESS: 'open' }, { name: 'berth-q-t-1-a1', task }), placement) as any;
  const container = spec.TaskTemplate.ContainerSpec;

  it('applies every hardening setting swarm has, and starts the worker under setpriv --no-new-privs', () => {
    assert.deepEqual(spec.Mode, { Replicated: { Replicas: 1 } });
    assert.equal(spec.TaskTemplate.RestartPolicy.Condition, 'none', 'run at most once: never restarted, not after an exit, not after a lost node');
    assert.deepEqual(spec.EndpointSpec, { Mode: 'dnsrr' });
    assert.deepEqual(container.CapabilityDrop, ['ALL']);
    assert.equal(container.CapabilityAdd, undefined);
    assert.equal(container.ReadOnly, true);
    assert.equal(container.Init, true);
    assert.equal(container.User, '10001:10001');
    assert.deepEqual(container.Command.slice(0, 3), ['setpriv', '--no-new-privs', '--']);
    assert.deepEqual(container.Healthcheck, { Test: ['NONE'] });
    assert.deepEqual(spec.TaskTemplate.Resources.Limits, { MemoryBytes: 2 * 1024 ** 3, NanoCPUs: 2e9, Pids: 512 });
    assert.deepEqual(
      container.Mounts.map((m: any) => [m.Type, m.Target]),
      [
        ['tmpfs', '/work'],
        ['tmpfs', '/tmp'],
      ],
    );
    assert.deepEqual(spec.TaskTemplate.Networks, [{ Target: 'berth-workers' }]);
  });

  it('places by operator config only; the task stays data', () => {
    assert.deepEqual(spec.TaskTemplate.Placement, { Constraints: ['node.labels.berth==worker'] });
    assert.deepEqual(JSON.parse(container.Env.find((e: string) => e.startsWith('BERTH_TASK=')).slice(11)), task);
  });

  it("behind the proxy a worker is on berth's sealed overlay (services cannot have no network), with the proxy's socket volume read-only", () => {
    const gate = new EgressGate(
      { ...config, EGRESS: 'proxy' },
      new SwarmLauncher(null as never, { constraints: [], scheduleTimeoutMs: 1 }),
      pino({ level: 'silent' }),
    );
    const egress = gate.forAttempt({ id: 't-1', attempt: 1, kind: 'review', repo: 'a/b' });
    const sealed = serviceSpec(buildWorkloadSpec({ ...config, EGRESS: 'proxy' }, { name: 'berth-q-t-1-a1', task, egress }), placement) as any;
    assert.deepEqual(sealed.TaskTemplate.Networks, [{ Target: SEALED_NETWORK }]);
    assert.deepEqual(
      sealed.TaskTemplate.ContainerSpec.Mounts.filter((m: any) => m.Type === 'volume'),
      [{ Type: 'volume', Source: gate.spec.name, Target: '/run/berth-egress', ReadOnly: true }],
    );
    assert.ok(
      !sealed.TaskTemplate.ContainerSpec.Env.some((e: string) => e.startsWith('HTTPS_PROXY=')),
      "the credential is in the attempt's secret, not the service",
    );
  });

  it("the proxy is a global service under the workers' hardening; its signing secret and model keys are a swarm secret, not its Env", () => {
    const gate = new EgressGate(
      { ...parseConfig({ ...raw, EGRESS_PROVIDERS: 'anthropic', PROVIDER_ANTHROPIC_KEY: 'sk-ant-real' }) },
      new SwarmLauncher(null as never, { constraints: [], scheduleTimeoutMs: 1 }),
      pino({ level: 'silent' }),
    );
    const proxy = proxyServiceSpec(gate.spec, placement, { id: 's1', name: `${gate.spec.name}-env` }) as any;
    const c = proxy.TaskTemplate.ContainerSpec;
    assert.deepEqual(proxy.Mode, { Global: {} });
    assert.deepEqual(proxy.TaskTemplate.Placement, { Constraints: ['node.labels.berth==worker'] }, 'on every node that can take workers');
    assert.equal(proxy.TaskTemplate.RestartPolicy.Condition, 'any');
    assert.deepEqual(c.Command.slice(0, 3), ['setpriv', '--no-new-privs', '--']);
    assert.deepEqual([c.CapabilityDrop, c.ReadOnly, c.User], [['ALL'], true, '10001:10001']);
    assert.ok(!JSON.stringify(proxy).includes('sk-ant-real'), 'no key in the service');
    assert.ok(!JSON.stringify(proxy).includes(gate.spec.env.EGRESS_SECRETS!), 'no signing secret in the service');
    assert.deepEqual(c.Env, ['EGRESS_ENV_FILE=/run/secrets/berth-egress-env', 'EGRESS_JOURNAL=1']);
    assert.equal(c.Secrets[0].File.Mode, 0o400);
  });

  it('names services within swarm rules, deterministic and distinct per job', () => {
    const launcher = new SwarmLauncher({} as any, { ...placement, scheduleTimeoutMs: 1000 });
    const valid = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,61}[a-zA-Z0-9]$/;
    assert.equal(launcher.nameFor('berth', 't-6f1c', 2), 'berth-berth-t-6f1c-a2');
    for (const id of [`k-${'f'.repeat(60)}`, 'a.b', 'a_b', 'x:y']) assert.match(launcher.nameFor('berth', id, 1), valid);
    assert.notEqual(launcher.nameFor('berth', 'a.b', 1), launcher.nameFor('berth', 'a_b', 1));
    assert.equal(launcher.nameFor('berth', `k-${'f'.repeat(60)}`, 1), launcher.nameFor('berth', `k-${'f'.repeat(60)}`, 1));
  });

  it('refuses what swarm cannot do, and bad placement, at config time', () => {
    const base = {
      REDIS_URL: 'redis://127.0.0.1:6379',
      API_TOKEN: 'a'.repeat(32),
      WORKER_IMAGE: 'berth:local',
      AGENT_COMMAND_REVIEW: 'agent review',
      LAUNCHER: 'swarm',
      EGRESS: 'open',
    };
    assert.doesNotThrow(() => parseConfig({ ...base, EGRESS: 'proxy' }));
    assert.doesNotThrow(() => parseConfig({ ...base, EGRESS: 'none' }));
    assert.throws(() => parseConfig({ ...base, WORKER_NETWORK: 'none' }), /not available to swarm services/);
    assert.throws(() => parseConfig({ ...base, SWARM_CONSTRAINTS: 'node.labels.x' }), /SWARM_CONSTRAINTS/);
    assert.throws(() => parseConfig({ ...base, LAUNCHER: 'kubernetes' }), /LAUNCHER/);
    assert.deepEqual(parseConfig({ ...base, SWARM_CONSTRAINTS: 'node.labels.berth==worker, node.role!=manager' }).SWARM_CONSTRAINTS, [
      'node.labels.berth==worker',
      'node.role!=manager',
    ]);
  });
});

describe('no-new-privileges in the worker', () => {
  it('reads the flag from /proc/self/status', () => {
    assert.equal(noNewPrivsInEffect('Name:\tnode\nNoNewPrivs:\t1\nSeccomp:\t2\n'), true);
    assert.equal(noNewPrivsInEffect('Name:\tnode\nNoNewPrivs:\t0\n'), false);
    assert.equal(noNewPrivsInEffect('Name:\tnode\n'), null);
  });
});

describe('OOM kills seen from inside the worker', () => {
  it('reads the cgroup v2 counter, then v1, and null when neither is there', () => {
    const files: Record<string, string> = { v2: 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n', v1: 'oom_kill_disable 0\nunder_oom 0\noom_kill 5\n' };
    const read = (path: string) => {
      if (!(path in files)) throw new Error('ENOENT');
      return files[path]!;
    };
    assert.equal(oomKills(['v2', 'v1'], read), 2);
    assert.equal(oomKills(['none', 'v1'], read), 5);
    assert.equal(oomKills(['none'], read), null);
  });

  it('makes an agent the kernel killed read as out of memory, on any backend', () => {
    const line = formatResultLine({ exitCode: 137, durationMs: 5, result: null, oomKilled: true, error: 'agent killed by SIGKILL: out of memory' });
    const outcome = interpretExit({ exitCode: 137, oomKilled: false, memoryLimited: true, timedOut: false, timeoutMs: 1000, cancelled: null }, line, {
      retryOnTimeout: false,
    });
    assert.deepEqual(outcome, { status: 'failed', failure: { cause: 'oom' }, retry: true });
  });
});
