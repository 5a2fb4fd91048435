import { unlessMissing } from './docker-api.js';
import { hostname } from 'node:os';
import type Dockerode from 'dockerode';
import { DEFAULT_WORKER_NETWORK } from '../../core/config.js';
import { LABEL } from '../../core/labels.js';

/**
 * Workers get a network of their own. The default one is a bridge berth creates with
 * inter-container traffic off (`enable_icc=false`), so a worker reaches the internet (GitHub, model
 * APIs) but not other containers on it, other workers included. Whatever network is configured,
 * it must not be one berth itself or its Redis is attached to: a worker there could talk to Redis
 * (every task, every lock) or to berth's API directly.
 */
export async function prepareWorkerNetwork(docker: Dockerode, name: string, redisUrl: string): Promise<void> {
  if (name === 'none') return;
  const existing = (await unlessMissing(docker.getNetwork(name).inspect())) as { Driver?: string; Options?: Record<string, string> } | null;
  // berth's name on a network someone else made, with workers able to reach each other: not berth's.
  if (existing && name === DEFAULT_WORKER_NETWORK && existing.Driver === 'bridge' && existing.Options?.['com.docker.network.bridge.enable_icc'] !== 'false') {
    throw new Error(
      `WORKER_NETWORK: the existing '${name}' network lets containers on it reach each other (inter-container traffic on); berth's own is made with com.docker.network.bridge.enable_icc=false. Remove it (docker network rm ${name}) and berth creates its own, or name another network in WORKER_NETWORK.`,
    );
  }
  if (!existing) {
    if (name !== DEFAULT_WORKER_NETWORK)
      throw new Error(`WORKER_NETWORK: network '${name}' does not exist on this engine (create it, or leave WORKER_NETWORK unset for berth's own)`);
    await docker
      .createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Options: { 'com.docker.network.bridge.enable_icc': 'false' },
        Labels: { [LABEL.managed]: 'true' },
      })
      .catch((error: { statusCode?: number }) => {
        if (error.statusCode !== 409) throw error; // another consumer made it first
      });
  }
  const shared = await networksOfBerthAndRedis(docker, new URL(redisUrl).hostname);
  if (shared.has(name))
    throw new Error(
      `WORKER_NETWORK: '${name}' is a network berth or its Redis is attached to; workers there could reach them. Use a network of their own (leave WORKER_NETWORK unset).`,
    );
}

/**
 * Networks of the container berth runs in (Docker names it by its short id, the default host
 * name) and of the container serving Redis (by container name, compose service, network alias or
 * address). Empty when neither runs in a container on this engine.
 */
export async function networksOfBerthAndRedis(docker: Dockerode, redisHost: string, selfHost = hostname()): Promise<Set<string>> {
  const networks = new Set<string>();
  const bare = redisHost.replace(/^\[|\]$/g, '');
  for (const container of await docker.listContainers()) {
    if (container.Labels?.[LABEL.managed] === 'true') continue;
    const attached = Object.entries(container.NetworkSettings?.Networks ?? {});
    const names = container.Names.map((n) => n.replace(/^\//, ''));
    const isSelf = container.Id.startsWith(selfHost);
    const isRedis =
      names.includes(bare) ||
      container.Labels?.['com.docker.compose.service'] === bare ||
      attached.some(([, net]) => net.IPAddress === bare || (net as { Aliases?: string[] | null }).Aliases?.includes(bare));
    if (isSelf || isRedis) for (const [network] of attached) networks.add(network);
  }
  return networks;
}
