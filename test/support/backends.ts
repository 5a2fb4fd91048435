import type Dockerode from 'dockerode';
import { LABEL } from '../../src/core/labels.js';
import { docker as hostDocker, removeQueueContainers } from './docker.js';
import { startSwarm, type TestSwarm } from './swarm.js';

/**
 * The launch backends the shared scenarios run against: the host engine (containers), and a
 * single-node swarm on an engine of its own (services). `env` points berth at it; `docker` is the
 * engine where the worker containers appear, so tests read Docker's own events there.
 */
export interface TestBackend {
  name: 'docker' | 'swarm';
  env: Record<string, string>;
  docker: Dockerode;
  /** berth's services for a queue (swarm only; containers are counted on `docker`). */
  services(queue: string): Promise<number>;
  /** Removes a queue's leftovers (services, containers). */
  clean(queue: string): Promise<void>;
  stop(): Promise<void>;
}

export const BACKENDS = ['docker', 'swarm'] as const;

export async function startBackend(name: (typeof BACKENDS)[number], image: string): Promise<TestBackend> {
  if (name === 'docker') {
    return { name, env: {}, docker: hostDocker, services: async () => 0, clean: async (queue) => void (await removeQueueContainers(queue)), stop: async () => {} };
  }
  const swarm: TestSwarm = await startSwarm(1, [image], 'berth-sw', 98);
  const client = swarm.manager.docker;
  const list = (queue: string) => client.listServices({ filters: { label: [`${LABEL.managed}=true`, `${LABEL.queue}=${queue}`] } });
  return {
    name,
    // Swarm services have no `none` network: berth's own swarm-scoped bridge, inter-container traffic off.
    env: { LAUNCHER: 'swarm', DOCKER_HOST: swarm.manager.host, WORKER_NETWORK: 'berth-workers' },
    docker: client,
    services: async (queue) => (await list(queue)).length,
    async clean(queue) {
      for (const service of await list(queue)) await client.getService(service.ID).remove().catch(() => {});
      await removeQueueContainers(queue, client);
    },
    stop: () => swarm.stop(),
  };
}
