import { execFileSync } from 'node:child_process';
import type Dockerode from 'dockerode';
import { ip, quietly, startEngine, type SecondEngine } from './second-engine.js';
import { waitUntil } from './wait.js';

/**
 * Swarm for tests, never on the host engine: engines each in a network namespace of its own
 * (distinct addresses, ports and host names, one host bridge between them), as separate machines
 * would be. Even a single-node swarm lives in a namespace: a swarm-mode engine restarted in the
 * host's namespace deletes the host engine's docker0.
 */
export interface TestSwarm {
  manager: SecondEngine;
  nodes: SecondEngine[];
  /** What points berth at this swarm: the swarm backend, the manager's socket, berth's own overlay. */
  env: Record<string, string>;
  /** Every engine leaves the swarm and stops; their images stay for the next run. */
  stop(): Promise<void>;
}

/** Node heartbeats every second, so a lost node is noticed in seconds, not the default 5 × 3. */
const HEARTBEAT_NS = 1e9;

async function swarmState(docker: Dockerode): Promise<string> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string } };
  return info.Swarm?.LocalNodeState ?? 'inactive';
}

/**
 * `count` engines named `<name>-1…` on the host bridge `br-<name>` (10.231.<subnet>.0/24), the first
 * the manager, the others workers joined with the swarm's worker token. The manager runs tasks too.
 */
export async function startSwarm(count: number, images: string[], name = 'berth-sw', subnet = 99): Promise<TestSwarm> {
  const bridge = `br-${name}`.slice(0, 15);
  quietly(() => ip(['link', 'del', bridge]));
  ip(['link', 'add', bridge, 'type', 'bridge']);
  ip(['addr', 'add', `10.231.${subnet}.1/24`, 'dev', bridge]);
  ip(['link', 'set', bridge, 'up']);
  // The host engine's FORWARD policy is DROP, and bridged frames pass through iptables here: let
  // the nodes talk to each other over their bridge (and only there).
  const forward = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT'];
  try {
    execFileSync('iptables', ['-C', ...forward], { stdio: 'ignore' });
  } catch {
    execFileSync('iptables', ['-I', ...forward], { stdio: 'ignore' });
  }
  const nodes: SecondEngine[] = [];
  for (let i = 1; i <= count; i++) {
    const node = await startEngine({
      name: `${name}-${i}`,
      address: `10.231.${subnet}.${10 + i}/24`,
      netns: { bridge, gateway: `10.231.${subnet}.1` },
      images,
    });
    // A run that died midway left this engine in its old swarm: start from none.
    if ((await swarmState(node.docker)) !== 'inactive') await node.docker.swarmLeave({ force: true });
    nodes.push(node);
  }
  const [manager] = nodes as [SecondEngine];
  await manager.docker.swarmInit({
    ListenAddr: `${manager.address}:2377`,
    AdvertiseAddr: manager.address,
    Spec: { Dispatcher: { HeartbeatPeriod: HEARTBEAT_NS } },
  });
  const swarm = (await manager.docker.swarmInspect()) as { JoinTokens: { Worker: string } };
  for (const node of nodes.slice(1)) {
    await node.docker.swarmJoin({
      ListenAddr: `${node.address}:2377`,
      AdvertiseAddr: node.address,
      RemoteAddrs: [`${manager.address}:2377`],
      JoinToken: swarm.JoinTokens.Worker,
    });
  }
  await waitUntil(
    async () => ((await manager.docker.listNodes()) as Array<{ Status?: { State?: string } }>).filter((n) => n.Status?.State === 'ready').length === count,
    `${count} swarm node(s) ready`,
    60_000,
  );
  return {
    manager,
    nodes,
    // Swarm services have no `none` network: berth's own overlay, which no standalone container can join.
    env: { LAUNCHER: 'swarm', DOCKER_HOST: manager.host, WORKER_NETWORK: 'berth-workers', EGRESS: 'open' },
    async stop() {
      for (const node of nodes.slice().reverse()) {
        await node.docker.swarmLeave({ force: true }).catch(() => {});
        await node.stop();
      }
      quietly(() => ip(['link', 'del', bridge]));
      quietly(() => execFileSync('iptables', ['-D', ...forward], { stdio: 'ignore' }));
    },
  };
}
