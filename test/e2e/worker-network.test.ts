// test-resources: berth-workers
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { realParts } from '../support/suite.js';
import { docker, recordEvents } from '../support/docker.js';
import { createTestNetwork, type TestNetwork } from '../support/docker-network.js';
import { startBerth, type TestBerth } from '../support/berth.js';
import { waitUntil } from '../support/wait.js';
import { DEFAULT_WORKER_NETWORK } from '../../src/core/config.js';
import { prepareWorkerNetwork } from '../../src/consumer/launcher/worker-network.js';

describe('what a worker can reach', () => {
  const parts = realParts();
  let berth: TestBerth;
  let network: TestNetwork;
  const extra: string[] = [];

  before(async () => {
    network = await createTestNetwork('berth-redisnet');
    // Leave WORKER_NETWORK unset (empty): berth's own network.
    berth = await startBerth(
      parts.env({
        EGRESS: 'open',
        WORKER_NETWORK: '',
        AGENT_COMMAND_CONNECT: 'node /agents/connect.mjs',
        AGENT_COMMAND_SLEEP: 'node /agents/sleep.mjs',
      }),
    );
    parts.berths.push(berth);
  });
  after(async () => {
    for (const id of extra)
      await docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => {});
    await network.remove();
  });

  it("by default workers run on berth's own bridge, where they cannot reach other containers", async () => {
    const net = await docker.getNetwork(DEFAULT_WORKER_NETWORK).inspect();
    assert.equal(net.Options?.['com.docker.network.bridge.enable_icc'], 'false');
    // Another container on the same network, listening.
    const listener = await docker.createContainer({
      Image: parts.image,
      Entrypoint: ['node', '-e', "require('net').createServer((s) => s.end('hi')).listen(8080)"],
      User: '10001:10001',
      HostConfig: { NetworkMode: DEFAULT_WORKER_NETWORK },
    });
    extra.push(listener.id);
    await listener.start();
    const address = (await listener.inspect()).NetworkSettings.Networks[DEFAULT_WORKER_NETWORK]!.IPAddress;

    const recorder = await recordEvents(berth.config.QUEUE_NAME);
    const { body } = await berth.api('POST', '/api/tasks', { kind: 'connect', repo: 'octo/widgets', prompt: `${address}:8080` });
    const started = await waitUntil(() => recorder.events.find((e) => e.action === 'start'), 'worker started');
    const attached = Object.keys((await docker.getContainer(started.id).inspect()).NetworkSettings.Networks);
    const task = await berth.waitFor(body.id, ['completed', 'failed'], 60_000);
    await recorder.stop();
    assert.deepEqual(attached, [DEFAULT_WORKER_NETWORK]);
    assert.equal(task.state, 'completed', JSON.stringify(task));
    assert.equal(task.result.reachable, false, `a worker reached ${address}:8080 (${task.result.why})`);

    // The same probe on an ordinary bridge (inter-container traffic on) does connect: the probe can tell.
    await docker.getNetwork(network.name).connect({ Container: listener.id });
    const reachableAddress = (await listener.inspect()).NetworkSettings.Networks[network.name]!.IPAddress;
    const peer = await docker.createContainer({
      Image: parts.image,
      Entrypoint: ['node', '/agents/connect.mjs'],
      Env: [`BERTH_TASK=${JSON.stringify({ prompt: `${reachableAddress}:8080` })}`],
      User: '10001:10001',
      HostConfig: { NetworkMode: network.name, Binds: [`${berth.config.WORKER_BINDS[0]}`] },
    });
    extra.push(peer.id);
    await peer.start();
    await peer.wait();
    const output = ((await peer.logs({ stdout: true, stderr: true })) as unknown as Buffer).toString('utf8');
    assert.match(output, /"reachable":true/, 'on an ordinary bridge the same probe connects');
  });

  it("a network Redis (or berth) is attached to is refused; a network of the workers' own is fine", async () => {
    const fakeRedis = await docker.createContainer({
      name: `fake-redis-${process.pid}`,
      Image: parts.image,
      Entrypoint: ['sleep', '60'],
      HostConfig: { NetworkMode: network.name },
    });
    extra.push(fakeRedis.id);
    await fakeRedis.start();
    await assert.rejects(
      prepareWorkerNetwork(docker, network.name, `redis://fake-redis-${process.pid}:6379`),
      /is a network berth or its Redis is attached to/,
    );
    await assert.rejects(prepareWorkerNetwork(docker, 'no-such-network-here', parts.redis.url), /does not exist/);
    await prepareWorkerNetwork(docker, DEFAULT_WORKER_NETWORK, `redis://fake-redis-${process.pid}:6379`);
  });

  it('a berth-workers network someone made with inter-container traffic on is refused, and left as it was', async () => {
    // The earlier tests' containers hold endpoints on it.
    for (const id of extra.splice(0))
      await docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => {});
    await docker.getNetwork(DEFAULT_WORKER_NETWORK).remove();
    const planted = await docker.createNetwork({ Name: DEFAULT_WORKER_NETWORK, Driver: 'bridge' });
    try {
      await assert.rejects(
        prepareWorkerNetwork(docker, DEFAULT_WORKER_NETWORK, parts.redis.url),
        /lets containers on it reach each other .*docker network rm berth-workers/,
      );
      const after = await docker.getNetwork(DEFAULT_WORKER_NETWORK).inspect();
      assert.equal(after.Id, planted.id, 'berth changed nothing');
    } finally {
      await planted.remove();
      await prepareWorkerNetwork(docker, DEFAULT_WORKER_NETWORK, parts.redis.url);
    }
    assert.equal((await docker.getNetwork(DEFAULT_WORKER_NETWORK).inspect()).Options?.['com.docker.network.bridge.enable_icc'], 'false');
  });
});
