import type Dockerode from 'dockerode';
import { managedLabelFilter } from '../../src/core/labels.js';
import { docker as hostDocker, queueContainers, removeQueueContainers } from './docker.js';
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
  /** What a queue still has there: its containers on `docker`, and its services (swarm). */
  leftovers(queue: string): Promise<number>;
  /** Removes a queue's leftovers (services, containers). */
  clean(queue: string): Promise<void>;
  stop(): Promise<void>;
}

export const BACKENDS = ['docker', 'swarm'] as const;
export type BackendName = (typeof BACKENDS)[number];

export async function startBackend(name: BackendName, image: string): Promise<TestBackend> {
  if (name === 'docker') {
    return {
      name,
      env: {},
      docker: hostDocker,
      leftovers: async (queue) => (await queueContainers(queue)).length,
      clean: async (queue) => void (await removeQueueContainers(queue)),
      stop: async () => {},
    };
  }
  const swarm: TestSwarm = await startSwarm(1, [image], 'berth-sw', 98);
  const client = swarm.manager.docker;
  const list = (queue: string) => client.listServices({ filters: { label: managedLabelFilter(queue) } });
  return {
    name,
    env: swarm.env,
    docker: client,
    leftovers: async (queue) => (await queueContainers(queue, client)).length + (await list(queue)).length,
    async clean(queue) {
      for (const service of await list(queue))
        await client
          .getService(service.ID)
          .remove()
          .catch(() => {});
      await removeQueueContainers(queue, client);
    },
    stop: () => swarm.stop(),
  };
}
