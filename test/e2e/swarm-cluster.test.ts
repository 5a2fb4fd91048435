// test-resources: extra-engines
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { queueContainers, recordEvents, type DockerEvent } from '../support/docker.js';
import { ensureWorkerImage } from '../support/image.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { AGENTS_DIR, startBerth, testEnv, type TestBerth } from '../support/berth.js';
import { jobEventCounts } from '../support/queue-events.js';
import { startSwarm, type TestSwarm } from '../support/swarm.js';
import { waitUntil } from '../support/wait.js';
import { LABEL } from '../../src/core/labels.js';
import { runCli } from '../support/cli.js';
import net from 'node:net';

/**
 * A real three-node swarm on this machine: three engines, each in its own network namespace with
 * its own address and host name, joined into one swarm. berth talks to the manager only; Docker's
 * own event streams on every node say where each attempt ran and how many containers it got.
 */
describe('swarm backend on a three-node swarm', () => {
  let redis: TestRedis;
  let image: string;
  let swarm: TestSwarm;
  const berths: TestBerth[] = [];
  const start = async (overrides: Record<string, string> = {}) => {
    const berth = await startBerth(testEnv(redis, image, { ...swarm.env, ...overrides }));
    berths.push(berth);
    return berth;
  };
  /** Each node's Docker events for the queue, tagged with the node. */
  const recordAll = async (queue: string) => {
    const recorders = await Promise.all(swarm.nodes.map((node) => recordEvents(queue, node.docker)));
    return {
      events: (): Array<DockerEvent & { node: number }> => recorders.flatMap((r, i) => r.events.map((e) => ({ ...e, node: i + 1 }))),
      stop: () => Promise.all(recorders.map((r) => r.stop())),
    };
  };
  const leftovers = async (queue: string) => {
    const counts = await Promise.all(swarm.nodes.map(async (node) => (await queueContainers(queue, node.docker).catch(() => [])).length));
    const services = await swarm.manager.docker.listServices({ filters: { label: [`${LABEL.queue}=${queue}`] } });
    return counts.reduce((a, b) => a + b, 0) + services.length;
  };

  before(async () => {
    image = await ensureWorkerImage();
    redis = await startRedis({ aof: true });
    swarm = await startSwarm(3, [image], 'berth-mn', 97);
    // Operator labels: every node may take workers; a zone per node, for constraints.
    for (const node of (await swarm.manager.docker.listNodes()) as Array<{ ID: string; Description: { Hostname: string } }>) {
      const info = (await swarm.manager.docker.getNode(node.ID).inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
      const zone = `z${node.Description.Hostname.split('-').pop()}`;
      await swarm.manager.docker
        .getNode(node.ID)
        .update({ _query: { version: info.Version.Index }, _body: { ...info.Spec, Labels: { berth: 'worker', zone } } });
    }
  });
  after(async () => {
    for (const berth of berths) await berth.close().catch(() => {});
    await swarm.stop();
    await redis.stop();
  });

  it('spreads 20 tasks over the nodes; a node lost mid-run: its attempts are retried elsewhere, each task completes once, nothing is left on any node', async () => {
    const berth = await start({ SWARM_CONSTRAINTS: 'node.labels.berth==worker', WORKER_CONCURRENCY: '9', TASK_ATTEMPTS: '3', TASK_BACKOFF: '200ms' });
    const queue = berth.config.QUEUE_NAME;
    const recorder = await recordAll(queue);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '6' })).body.id);
    // Lose the third node (its engine and every container on it, as a power cut would) while it runs tasks.
    await waitUntil(() => recorder.events().filter((e) => e.node === 3 && e.action === 'start').length >= 2, 'node 3 running tasks', 60_000);
    const lostJobs = new Set(
      recorder
        .events()
        .filter((e) => e.node === 3 && e.action === 'start')
        .map((e) => e.jobId),
    );
    await swarm.nodes[2]!.crash();

    const tasks = await Promise.all(ids.map((id) => berth.waitFor(id, ['completed', 'failed'], 240_000)));
    for (const task of tasks) assert.equal(task.state, 'completed', JSON.stringify(task));
    for (const id of lostJobs) {
      const task = tasks.find((t) => t.id === id)!;
      assert.ok(task.attempts >= 2, `${id} ran on the lost node and was retried (attempts ${task.attempts})`);
    }
    for (const id of ids) {
      const counts = await jobEventCounts(redis.url, queue, id);
      assert.equal(counts.completed, 1, `${id}: ${JSON.stringify(counts)}`);
    }
    const starts = recorder.events().filter((e) => e.action === 'start');
    const nodesUsed = new Set(starts.map((e) => e.node));
    console.log(
      `containers started per node: ${[1, 2, 3].map((n) => `${n}: ${starts.filter((e) => e.node === n).length}`).join(', ')}; on the lost node: ${lostJobs.size} task(s), retried: ${[...lostJobs].map((id) => tasks.find((t) => t.id === id)!.attempts).join(', ')} attempts`,
    );
    assert.ok(nodesUsed.size > 1, `tasks ran on nodes ${[...nodesUsed].join(', ')}`);
    const creates = recorder.events().filter((e) => e.action === 'create');
    const perAttempt = new Map<string, number>();
    for (const e of creates) perAttempt.set(`${e.jobId}#${e.attempt}`, (perAttempt.get(`${e.jobId}#${e.attempt}`) ?? 0) + 1);
    assert.deepEqual(
      [...perAttempt.entries()].filter(([, n]) => n > 1),
      [],
      'never two containers for one attempt, on any node',
    );

    // The lost node comes back: swarm removes what it ran for services berth has since removed.
    await swarm.nodes[2]!.start();
    await waitUntil(async () => (await leftovers(queue)) === 0, 'no berth service or container left on any node', 90_000);
    await recorder.stop();
  });

  it("names the node loss in the attempt's failure when no retry is left", async () => {
    const berth = await start({ SWARM_CONSTRAINTS: 'node.labels.zone==z2', TASK_ATTEMPTS: '1' });
    const recorder = await recordEvents(berth.config.QUEUE_NAME, swarm.nodes[1]!.docker);
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '60' });
    await waitUntil(() => recorder.events.some((e) => e.action === 'start'), 'running on node 2', 60_000);
    await swarm.nodes[1]!.crash();
    const task = await berth.waitFor(body.id, ['failed'], 60_000);
    assert.match(task.failedReason, /^swarm: node berth-mn-2 running the task was lost/);
    await recorder.stop();
    await swarm.nodes[1]!.start();
    await waitUntil(async () => (await leftovers(berth.config.QUEUE_NAME)) === 0, 'nothing left once node 2 is back', 90_000);
  });

  it("fails with the scheduler's reason when no node satisfies the operator's constraints", async () => {
    const berth = await start({ SWARM_CONSTRAINTS: 'node.labels.berth==gpu', SWARM_SCHEDULE_TIMEOUT: '3s', TASK_ATTEMPTS: '1' });
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets' });
    const task = await berth.waitFor(body.id, ['failed'], 60_000);
    assert.match(task.failedReason, /^swarm: no node could take the task within 3s: no suitable node/);
    await waitUntil(async () => (await leftovers(berth.config.QUEUE_NAME)) === 0, 'service removed', 30_000);
  });

  it('doctor runs its probe as a swarm task: no capabilities, no-new-privileges (from setpriv), read-only root', async () => {
    const env = testEnv(redis, image, { ...swarm.env, WORKER_BINDS: '' });
    const doctor = await runCli(['doctor'], env);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /^pass\s+docker engine\s+swarm manager, engine .*3 of 3 nodes ready/m);
    assert.match(doctor.stdout, /^pass\s+swarm\s+3 node\(s\) ready for workers; .*setpriv --no-new-privs/m);
    assert.match(doctor.stdout, /^pass\s+worker hardening\s+probe ran as uid 10001, no capabilities, no-new-privileges, read-only root/m);
    const services = await swarm.manager.docker.listServices({ filters: { label: ['berth.doctor=true'] } });
    assert.equal(services.length, 0, 'the probe service is removed');
  });

  it('names a task a node rejected: the image is not on that node', async () => {
    // An image only the manager has: the workers reject the task.
    const manager = swarm.manager.docker;
    const holder = await manager.createContainer({ Image: image, Entrypoint: ['true'], Labels: { 'berth.test': 'only-on-manager' } });
    const committed = await holder.commit({ repo: 'berth-only-on-manager', tag: String(Date.now()) });
    await holder.remove();
    const berth = await start({ WORKER_IMAGE: committed.Id, SWARM_CONSTRAINTS: 'node.role==worker', TASK_ATTEMPTS: '1' });
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'echo', repo: 'octo/widgets' });
    const task = await berth.waitFor(body.id, ['failed'], 60_000);
    assert.match(task.failedReason, /^swarm: the task was rejected on node berth-mn-[23]: .*no such image/i);
    await manager
      .getImage(committed.Id)
      .remove({ force: true })
      .catch(() => {});
  });
  it("keeps the worker's secrets out of the service: a per-attempt swarm secret, readable by the worker, removed with the service", async () => {
    const modelKey = `sk-swarm-model-key-${Date.now()}`;
    const berth = await startBerth(
      testEnv(redis, image, { ...swarm.env, WORKER_ENV: 'MODEL_API_KEY', AGENT_COMMAND_LEAK: 'node /agents/leak.mjs', TASK_ATTEMPTS: '1' }),
      { hostEnv: { MODEL_API_KEY: modelKey } },
    );
    berths.push(berth);
    const queue = berth.config.QUEUE_NAME;
    const manager = swarm.manager.docker;
    const { body: sleeper } = await berth.api('POST', '/api/tasks', { kind: 'sleep', repo: 'octo/widgets', prompt: '8' });
    type Svc = {
      ID: string;
      Spec: { Name: string; TaskTemplate: { ContainerSpec: { Env?: string[]; Secrets?: Array<{ SecretName: string; File: { Mode: number; UID: string } }> } } };
      PreviousSpec?: unknown;
    };
    let service: Svc | undefined;
    await waitUntil(
      async () => {
        service = ((await manager.listServices({ filters: { label: [`${LABEL.jobId}=${sleeper.id}`] } })) as unknown as Svc[])[0];
        return !!service;
      },
      "the attempt's service",
      60_000,
    );
    const inspected = JSON.stringify(await manager.getService(service!.ID).inspect());
    assert.ok(!inspected.includes(modelKey), 'the model key is not in the service spec');
    const env = service!.Spec.TaskTemplate.ContainerSpec.Env ?? [];
    assert.ok(env.includes('BERTH_SECRETS_FILE=/run/secrets/berth-env'), env.join(' '));
    assert.ok(!env.some((e) => e.startsWith('MODEL_API_KEY=')), 'no secret variable in Env');
    const mounted = service!.Spec.TaskTemplate.ContainerSpec.Secrets ?? [];
    assert.deepEqual(
      mounted.map((m) => [m.SecretName, m.File.Mode, m.File.UID]),
      [[`${service!.Spec.Name}-env`, 0o400, '10001']],
    );
    const secrets = (await manager.listSecrets({ filters: { label: [`${LABEL.queue}=${queue}`] } })) as unknown as Array<{
      Spec: { Name: string; Data?: string };
    }>;
    assert.deepEqual(
      secrets.map((x) => x.Spec.Name),
      [`${service!.Spec.Name}-env`],
    );
    assert.equal(secrets[0]!.Spec.Data, undefined, 'swarm never returns the data');
    assert.equal((await berth.waitFor(sleeper.id, ['completed', 'failed'], 60_000)).state, 'completed');

    // The agent does get the key (as environment): it prints it, and berth masks what it prints.
    const { body: leak } = await berth.api('POST', '/api/tasks', { kind: 'leak', repo: 'octo/widgets' });
    const done = await berth.waitFor(leak.id, ['completed', 'failed'], 60_000);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    const text = JSON.stringify(done);
    assert.ok(!text.includes(modelKey), 'masked in the task');
    assert.match(text, /the key is \*\*\*/, 'the worker had the key (it would say no-key) and berth masked it');
    await waitUntil(
      async () => ((await manager.listSecrets({ filters: { label: [`${LABEL.queue}=${queue}`] } })) as unknown[]).length === 0,
      'every attempt secret removed with its service',
      30_000,
    );
  });

  it('EGRESS=proxy on a swarm: a proxy on every node, workers on a sealed overlay reach allowed hosts through it and nothing else; the model key stays with the proxy; the record comes from its journal', async () => {
    const manager = swarm.manager.docker;
    const realKey = `sk-ant-swarm-${process.pid}-real`;
    // The outside world: an overlay of the test's own that only the proxy joins, with hosts on it by name.
    const outside = `berth-outside-${process.pid}`;
    await manager.createNetwork({ Name: outside, Driver: 'overlay', Attachable: true, CheckDuplicate: true } as never);
    const subnet = ((await manager.getNetwork(outside).inspect()).IPAM?.Config?.[0]?.Subnet as string) ?? '';
    const hosts: string[] = [];
    const host = async (alias: string, role: string) => {
      const name = `${alias.replace(/\./g, '-')}-${process.pid}`;
      const created = (await manager.createService({
        Name: name,
        TaskTemplate: {
          ContainerSpec: {
            Image: (await manager.getImage(image).inspect()).Id,
            Command: ['node', '/agents/outside-host.mjs'],
            Env: [`ROLE=${role}`],
            Healthcheck: { Test: ['NONE'] },
            Mounts: [{ Type: 'bind', Source: AGENTS_DIR, Target: '/agents', ReadOnly: true }],
          },
          Networks: [{ Target: outside, Aliases: [alias] }],
        },
        EndpointSpec: { Mode: 'dnsrr' },
      } as never)) as unknown as { id: string };
      hosts.push(name);
      await waitUntil(async () => String(await manager.getService(name).logs({ stdout: true })).includes('"listening"'), `${alias} listening`, 60_000);
      const tasks = (await manager.listTasks({ filters: { service: [created.id] } })) as Array<{
        Status: { State: string };
        NetworksAttachments?: Array<{ Network: { Spec: { Name: string } }; Addresses: string[] }>;
      }>;
      const task = tasks.find((t) => t.Status.State === 'running');
      assert.ok(task, JSON.stringify(tasks.map((t) => t.Status)));
      return task.NetworksAttachments!.find((n) => n.Network.Spec.Name === outside)!.Addresses[0]!.split('/')[0]!;
    };
    const hostListener = net.createServer((socket) => socket.end('host service\n')).listen(0, '0.0.0.0');
    await new Promise((resolve) => hostListener.once('listening', resolve));
    let queue = '';
    try {
      const allowedIp = await host('allowed.test', 'web');
      await host('blocked.test', 'blocked');
      await host('models.test', 'anthropic');
      const berth = await start({
        EGRESS: 'proxy',
        EGRESS_NETWORKS: outside,
        EGRESS_HOSTS: 'allowed.test',
        EGRESS_PORTS: '80',
        EGRESS_ALLOW_PRIVATE: subnet,
        EGRESS_PROVIDERS: 'anthropic',
        PROVIDER_ANTHROPIC_URL: 'http://models.test',
        PROVIDER_ANTHROPIC_KEY: realKey,
        SWARM_CONSTRAINTS: 'node.labels.berth==worker',
        AGENT_COMMAND_EGRESS: 'node /agents/egress-probe.mjs',
        TASK_ATTEMPTS: '1',
      });
      queue = berth.config.QUEUE_NAME;
      const proxyName = (await manager.listServices({ filters: { label: [`${LABEL.egressProxy}=${queue}`] } }))[0]?.Spec?.Name ?? '';
      assert.match(proxyName, /^berth-egress-/, 'berth made the proxy service before any worker');
      await waitUntil(
        async () =>
          ((await manager.listTasks({ filters: { service: [proxyName] } })) as Array<{ Status: { State: string } }>).filter((t) => t.Status.State === 'running')
            .length === 3,
        'a proxy task running on each of the three nodes',
        60_000,
      );
      const proxyService = JSON.stringify(await manager.getService(proxyName).inspect());
      assert.ok(!proxyService.includes(realKey), "the model key is not in the proxy's service spec (a swarm secret holds it)");

      const prompt = JSON.stringify({ allowedIp, gateway: '10.231.97.1', apiPort: (hostListener.address() as net.AddressInfo).port, redisPort: redis.port });
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await berth.api('POST', '/api/tasks', { kind: 'egress', repo: 'octo/widgets', prompt })).body.id);
      const tasks = await Promise.all(ids.map((id) => berth.waitFor(id, ['completed', 'failed'], 120_000)));
      for (const task of tasks) {
        assert.equal(task.state, 'completed', JSON.stringify(task).slice(0, 2000));
        const seen = task.result;
        assert.equal(seen.allowedHttp.status, 200, JSON.stringify(seen.allowedHttp));
        assert.match(seen.allowedHttp.body, /^web GET \/plain host=allowed\.test/);
        assert.equal(seen.blockedHttp.status, 403);
        assert.match(seen.blockedHttp.body, /blocked\.test is not on this task's allowlist/);
        assert.equal(seen.ipLiteral.status, 403);
        assert.equal(seen.noCredential.status, 407);
        // Direct: the outside host's address, the metadata address, the host's and Redis's: no route off the sealed overlay.
        for (const [target, outcome] of Object.entries(seen.direct as Record<string, string>))
          assert.match(outcome, /^(ENETUNREACH|EHOSTUNREACH|timeout)$/, `a direct connection to ${target}: ${outcome}`);
        assert.equal(seen.modelJson.status, 200, JSON.stringify(seen.modelJson));
        assert.match(seen.modelStream.body, /message_stop/);
        assert.ok(!JSON.stringify(seen).includes(realKey), 'the real key is nowhere in the worker');
        // What the proxy journalled, replayed by berth into the task's record.
        assert.ok(task.egress.refused >= 3, JSON.stringify(task.egress));
        assert.ok(task.egress.refusedHosts['blocked.test'] >= 2, JSON.stringify(task.egress.refusedHosts));
        assert.equal(task.egress.usage.requests, 2, JSON.stringify(task.egress.usage));
      }
      const calls = String(await manager.getService(hosts[2]!).logs({ stdout: true }))
        .split('\n')
        .filter((line) => line.includes('"apiKey"'))
        .map((line) => JSON.parse(line.slice(line.indexOf('{'))) as { apiKey: string });
      assert.equal(calls.length, 6, 'two model calls per task reached the provider');
      for (const call of calls) assert.equal(call.apiKey, realKey, 'swapped in by the proxy');

      // berth's shutdown leaves the proxy running.
      await berth.close();
      assert.ok(await manager.getService(proxyName).inspect(), 'the proxy outlives berth');
    } finally {
      hostListener.close();
      for (const name of hosts)
        await manager
          .getService(name)
          .remove()
          .catch(() => {});
      for (const s of await manager.listServices({ filters: { label: [`${LABEL.egressProxy}=${queue}`] } }))
        await manager
          .getService(s.ID)
          .remove()
          .catch(() => {});
      await waitUntil(
        async () =>
          await manager
            .getNetwork(outside)
            .remove()
            .then(
              () => true,
              () => false,
            ),
        'the outside network removed',
        30_000,
      ).catch(() => {});
    }
  });
});
