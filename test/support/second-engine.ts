import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import Dockerode from 'dockerode';
import { waitUntil } from './wait.js';

export interface SecondEngine {
  host: string;
  docker: Dockerode;
  /** The engine's own address: its bridge's (host namespace) or its namespace's. */
  address: string;
  stop(): Promise<void>;
  /** Stops dockerd (SIGTERM, as an upgrade would), keeps it down `downMs`, starts it again on the same state. */
  restart(downMs: number): Promise<void>;
  /** SIGKILLs dockerd and every container process it ran: the machine is gone. `start()` brings it back. */
  crash(): Promise<void>;
  start(): Promise<void>;
}

export interface EngineOptions {
  /** Names its socket, folders, bridge and containerd namespace. */
  name: string;
  /** This engine's address, `a.b.c.d/24`: on its own bridge, or inside its own network namespace when `netns` is set. */
  address: string;
  /** Run in a network namespace (made here) linked to the host bridge `netns.bridge`, whose address is `netns.gateway`. */
  netns?: { bridge: string; gateway: string };
  /** Address pool for the networks this engine makes, so they never shadow the host engine's. */
  addressPool?: string;
  images?: string[];
  extraArgs?: string[];
}

/**
 * dockerd inside a network namespace, in a mount namespace of its own. Not `ip netns exec`: that
 * remounts /sys and so hides the cgroup mounts dockerd needs. Only /sys's view of network devices
 * is swapped for the namespace's; the host name is the engine's, so swarm tells its nodes apart.
 */
const IN_NAMESPACE = `
name=$1; shift
mount --make-rprivate /
mkdir -p /run/$name-sysfs
mount -t sysfs sysfs /run/$name-sysfs
mount --bind /run/$name-sysfs/class/net /sys/class/net
mount --bind /run/$name-sysfs/devices/virtual/net /sys/devices/virtual/net
hostname $name
exec dockerd "$@"`;

const docker = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
export const ip = (args: string[]) => execFileSync('ip', args, { stdio: 'ignore' });
/** Runs a clean-up step that may find its object already gone. */
export const quietly = (action: () => void) => {
  try {
    action();
  } catch {
    // already gone
  }
};

/** An engine a run that died midway left running: stopped, so this run starts on a clean slate. */
async function stopLeftover(pidfile: string): Promise<void> {
  if (!existsSync(pidfile)) return;
  const pid = Number(readFileSync(pidfile, 'utf8').trim());
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (pid > 0 && alive()) {
    process.kill(pid, 'SIGTERM');
    await waitUntil(async () => !alive(), `leftover dockerd ${pid} gone`, 30_000, 100);
  }
  rmSync(pidfile, { force: true });
}

/**
 * A second Docker engine on this machine with its own socket, data-root, exec-root, pidfile and
 * bridge. Never `--bridge none`: that deletes the first engine's docker0.
 */
export async function startSecondEngine(images: string[], extraArgs: string[] = []): Promise<SecondEngine> {
  return startEngine({ name: 'berth-d2', address: '10.231.77.1/24', images, extraArgs });
}

/**
 * An engine of its own. With `netns`, it lives in a network namespace with its own host name
 * (a UTS namespace), so several engines on this machine can form one swarm, each with its own
 * address and ports, as separate machines would.
 */
export async function startEngine(options: EngineOptions): Promise<SecondEngine> {
  const { name } = options;
  const socket = `/run/${name}.sock`;
  const bridge = `br-${name}`.slice(0, 15);
  const address = options.address.split('/')[0]!;
  const netns = options.netns ? name : null;
  if (netns) {
    quietly(() => ip(['netns', 'del', netns]));
    const veth = `ve-${name}`.slice(0, 15);
    quietly(() => ip(['link', 'del', veth]));
    ip(['netns', 'add', netns]);
    ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    ip(['link', 'set', veth, 'master', options.netns!.bridge, 'up']);
    ip(['-n', netns, 'addr', 'add', options.address, 'dev', 'eth0']);
    ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
    ip(['-n', netns, 'link', 'set', 'lo', 'up']);
    ip(['-n', netns, 'route', 'add', 'default', 'via', options.netns!.gateway]);
  }
  // The engine's default bridge: in the host namespace it needs its own address; in a namespace of its own, any.
  const inNs = (args: string[]) => (netns ? ['-n', netns, ...args] : args);
  quietly(() => ip(inNs(['link', 'del', bridge])));
  ip(inNs(['link', 'add', bridge, 'type', 'bridge']));
  ip(inNs(['addr', 'add', netns ? '10.231.66.1/24' : options.address, 'dev', bridge]));
  ip(inNs(['link', 'set', bridge, 'up']));
  mkdirSync(`/var/lib/${name}`, { recursive: true });
  await stopLeftover(`/run/${name}.pid`);
  rmSync(socket, { force: true });
  const args = [
    '--host',
    `unix://${socket}`,
    '--data-root',
    `/var/lib/${name}`,
    '--exec-root',
    `/run/${name}`,
    '--pidfile',
    `/run/${name}.pid`,
    // In a namespace of its own an engine's iptables rules touch only that namespace; in the host's, none at all.
    '--bridge',
    bridge,
    ...(netns ? [] : ['--iptables=false']),
    '--containerd-namespace',
    name,
    '--containerd-plugins-namespace',
    `${name}-plugins`,
    ...(options.addressPool ? ['--default-address-pool', `base=${options.addressPool},size=24`] : []),
    ...(options.extraArgs ?? []),
  ];
  // Its log, for when a test needs to know what the engine did (one file across restarts).
  const log = openSync(`/var/log/${name}.log`, 'a');
  const spawnDaemon = (): ChildProcess =>
    netns
      ? spawn('nsenter', [`--net=/run/netns/${netns}`, 'unshare', '--mount', '--uts', 'sh', '-c', IN_NAMESPACE, 'sh', name, ...args], {
          stdio: ['ignore', log, log],
        })
      : spawn('dockerd', args, { stdio: ['ignore', log, log] });
  let child = spawnDaemon();
  const client = new Dockerode({ socketPath: socket });
  const ready = () =>
    waitUntil(
      async () =>
        client.ping().then(
          () => true,
          () => false,
        ),
      `engine ${name}`,
      60_000,
      250,
    );
  const stopDaemon = (signal: NodeJS.Signals = 'SIGTERM') =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      // Through `nsenter … unshare … exec dockerd`, the child is dockerd itself.
      child.kill(signal);
    });
  await ready();
  for (const image of options.images ?? []) {
    // Its data-root outlives a run: an image already there need not be copied again.
    const present = await client
      .getImage(image)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    if (!present) execFileSync('sh', ['-c', `${docker} save ${image} | ${docker} -H unix://${socket} load -q`], { stdio: 'ignore' });
  }
  return {
    host: `unix://${socket}`,
    docker: client,
    address,
    async restart(downMs) {
      await stopDaemon();
      await new Promise((r) => setTimeout(r, downMs));
      child = spawnDaemon();
      await ready();
    },
    async crash() {
      const running = await client.listContainers().catch(() => []);
      const pids = await Promise.all(
        running.map((c) =>
          client
            .getContainer(c.Id)
            .inspect()
            .then(
              (i) => i.State.Pid,
              () => 0,
            ),
        ),
      );
      await stopDaemon('SIGKILL');
      // Each container's init: killing it ends everything in that container's pid namespace.
      for (const pid of pids) if (pid > 0) quietly(() => process.kill(pid, 'SIGKILL'));
    },
    async start() {
      child = spawnDaemon();
      await ready();
    },
    async stop() {
      const list = await client.listContainers({ all: true }).catch(() => []);
      await Promise.all(
        list.map((c) =>
          client
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => {}),
        ),
      );
      await stopDaemon();
      quietly(() => ip(inNs(['link', 'del', bridge])));
      if (netns) {
        quietly(() => ip(['netns', 'del', netns]));
        quietly(() => ip(['link', 'del', `ve-${name}`.slice(0, 15)]));
      }
    },
  };
}
