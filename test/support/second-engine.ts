import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import Dockerode from 'dockerode';
import { waitUntil } from './wait.js';

export interface SecondEngine {
  host: string;
  docker: Dockerode;
  stop(): Promise<void>;
  /** Stops dockerd (SIGTERM, as an upgrade would), keeps it down `downMs`, starts it again on the same state. */
  restart(downMs: number): Promise<void>;
}

const docker = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

/**
 * A second Docker engine on this machine with its own socket, data-root, exec-root, pidfile and
 * bridge. Never `--bridge none`: that deletes the first engine's docker0.
 */
export async function startSecondEngine(images: string[], extraArgs: string[] = []): Promise<SecondEngine> {
  const name = 'br-berth2';
  const socket = '/run/berth-d2.sock';
  const ip = (args: string[]) => execFileSync('ip', args, { stdio: 'ignore' });
  try {
    ip(['link', 'del', name]);
  } catch {
    // not there
  }
  ip(['link', 'add', name, 'type', 'bridge']);
  ip(['addr', 'add', '10.231.77.1/24', 'dev', name]);
  ip(['link', 'set', name, 'up']);
  mkdirSync('/var/lib/berth-d2', { recursive: true });
  rmSync(socket, { force: true });
  const spawnDaemon = (): ChildProcess =>
    spawn(
      'dockerd',
      ['--host', `unix://${socket}`, '--data-root', '/var/lib/berth-d2', '--exec-root', '/run/berth-d2', '--pidfile', '/run/berth-d2.pid', '--bridge', name, '--iptables=false', '--containerd-namespace', 'berth-d2', '--containerd-plugins-namespace', 'berth-d2-plugins', ...extraArgs],
      { stdio: 'ignore' },
    );
  let child = spawnDaemon();
  const client = new Dockerode({ socketPath: socket });
  const ready = () => waitUntil(async () => client.ping().then(() => true, () => false), 'second dockerd', 60_000, 250);
  const stopDaemon = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  await ready();
  for (const image of images) {
    // Its data-root outlives a run: an image already there need not be copied again.
    const present = await client.getImage(image).inspect().then(() => true, () => false);
    if (!present) execFileSync('sh', ['-c', `${docker} save ${image} | ${docker} -H unix://${socket} load -q`], { stdio: 'ignore' });
  }
  return {
    host: `unix://${socket}`,
    docker: client,
    async restart(downMs) {
      await stopDaemon();
      await new Promise((r) => setTimeout(r, downMs));
      child = spawnDaemon();
      await ready();
    },
    async stop() {
      const list = await client.listContainers({ all: true }).catch(() => []);
      await Promise.all(list.map((c) => client.getContainer(c.Id).remove({ force: true }).catch(() => {})));
      await stopDaemon();
      try {
        ip(['link', 'del', name]);
      } catch {
        // gone
      }
    },
  };
}
