import type Dockerode from 'dockerode';
import { LABEL } from '../../src/core/labels.js';
import { AGENTS_DIR } from './berth.js';
import { docker } from './docker.js';
import { createTestNetwork, type TestNetwork } from './docker-network.js';
import { waitUntil } from './wait.js';

/**
 * "The outside world" of an agent, on this machine: a network the test makes, which only berth's
 * egress proxy joins (EGRESS_NETWORKS), with hosts on it by name (test/fixtures/agents/outside-host.mjs).
 */
export interface Outside {
  network: TestNetwork;
  /** The network's range, for EGRESS_ALLOW_PRIVATE. */
  subnet: string;
  /** A host answering HTTP (and HTTPS with `tls`) under `alias`; ROLE=anthropic makes it a fake provider. */
  host(alias: string, role: string, options?: { tls?: { cert: string; key: string }; env?: string[] }): Promise<Dockerode.Container>;
  /** The egress proxies berth started for `queue` (they outlive berth by design). */
  proxies(queue: string): Promise<Dockerode.ContainerInfo[]>;
  /** Removes the hosts, the network, and the proxies (with their volumes) of `queues`. */
  remove(queues: string[]): Promise<void>;
}

export async function createOutside(image: string): Promise<Outside> {
  const network = await createTestNetwork('berth-outside');
  const subnet = ((await docker.getNetwork(network.name).inspect()).IPAM?.Config?.[0]?.Subnet as string) ?? '';
  const hosts: Dockerode.Container[] = [];
  const proxies = async (queue: string) =>
    (await docker.listContainers({ all: true, filters: { label: [`${LABEL.egressProxy}=${queue}`] } })) as Dockerode.ContainerInfo[];
  return {
    network,
    subnet,
    async host(alias, role, options = {}) {
      const container = await docker.createContainer({
        Image: image,
        Entrypoint: ['node', '/agents/outside-host.mjs'],
        Env: [`ROLE=${role}`, ...(options.tls ? [`TLS_CERT=${options.tls.cert}`, `TLS_KEY=${options.tls.key}`] : []), ...(options.env ?? [])],
        Labels: { 'berth.test': 'outside' },
        HostConfig: { NetworkMode: network.name, Binds: [`${AGENTS_DIR}:/agents:ro`] },
        NetworkingConfig: { EndpointsConfig: { [network.name]: { Aliases: [alias] } } },
      });
      hosts.push(container);
      await container.start();
      await waitUntil(async () => String(await container.logs({ stdout: true, stderr: true })).includes('"listening"'), `${alias} listening`, 20_000);
      return container;
    },
    proxies,
    async remove(queues) {
      for (const proxy of (await Promise.all(queues.map((q) => proxies(q).catch(() => [])))).flat()) {
        await docker
          .getContainer(proxy.Id)
          .remove({ force: true, v: true })
          .catch(() => {});
        const name = proxy.Names[0]!.replace(/^\//, '');
        for (const volume of [name, `${name}-state`])
          await docker
            .getVolume(volume)
            .remove()
            .catch(() => {});
      }
      for (const host of hosts) await host.remove({ force: true }).catch(() => {});
      await network.remove();
    },
  };
}
