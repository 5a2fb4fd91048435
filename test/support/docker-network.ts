import { randomBytes } from 'node:crypto';
import { docker } from './docker.js';

export interface TestNetwork {
  name: string;
  /** The host's address on this bridge: a server bound here is reachable from its containers. */
  gateway: string;
  remove(): Promise<void>;
}

/** A bridge network of the test's own, so workers reach a stand-in on the host and nothing else new. */
export async function createTestNetwork(prefix = 'berth-test'): Promise<TestNetwork> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  const network = await docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true });
  const info = await network.inspect();
  const gateway = info.IPAM?.Config?.[0]?.Gateway as string | undefined;
  if (!gateway) throw new Error(`network ${name} has no gateway`);
  return {
    name,
    gateway,
    async remove() {
      await network.remove().catch(() => {});
    },
  };
}
