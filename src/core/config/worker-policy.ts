import { realpathSync } from 'node:fs';
import { posix } from 'node:path';

/** berth's own secrets and connection strings, which WORKER_ENV may never copy into a worker. */
export const BERTH_SECRETS =
  /^(API_TOKEN(_FILE)?|REDIS_URL|BOARD_PASSWORD(_FILE)?|GITHUB_APP_PRIVATE_KEY.*|GITHUB_WEBHOOK_SECRET.*|DOCKER_HOST|DOCKER_CERT_PATH)$/;

/** Host paths no worker may see: the engine's and containerd's sockets and state, the kernel's views. */
const SENSITIVE_HOST_PATHS = [
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/containerd',
  '/var/run/containerd',
  '/var/lib/docker',
  '/var/lib/containerd',
  '/proc',
  '/sys',
  '/dev',
  '/etc/docker',
];

/** Why an operator bind must not be given to workers; null when it may. */
export function checkBind(bind: string): string | null {
  const parts = bind.split(':');
  if (parts.length < 2 || parts.length > 3) return 'must be host:container or host:container:ro';
  const [host, container, mode] = parts as [string, string, string | undefined];
  if (!host.startsWith('/') || !container.startsWith('/')) return 'needs absolute paths on both sides';
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') return "mode must be 'ro' or 'rw'";
  // Compared on normalised paths, so `//`, `/var/./run` and `/run/.` are what they are.
  const written = posix.normalize(host).replace(/\/+$/, '') || '/';
  if (written.split('/').includes('..')) return 'must not contain .. segments';
  // Checked where it really leads too: a symlink to the engine's socket is the socket.
  for (const normal of new Set([written, resolvedPath(written)])) {
    const problem = sensitiveBind(normal);
    if (problem) return normal === written ? problem : `leads to ${normal}: ${problem}`;
  }
  return null;
}

/** The path with every symlink resolved, as far as it exists (the rest appended as written). */
function resolvedPath(path: string): string {
  const parts = path.split('/').filter(Boolean);
  for (let n = parts.length; n > 0; n--) {
    try {
      const real = realpathSync(`/${parts.slice(0, n).join('/')}`);
      return posix.join(real, ...parts.slice(n));
    } catch {
      // not there (yet): try its parent
    }
  }
  return path;
}

function sensitiveBind(normal: string): string | null {
  // Rootless engines and user runtimes keep their sockets under /run/user/<uid>.
  if (/^\/(var\/)?run\/user(\/|$)/.test(normal)) return "would expose a user's runtime directory (rootless engine sockets live there); refused";
  if (/docker\.sock$|containerd\.sock$/.test(normal)) return 'would expose a container engine socket; refused';
  for (const sensitive of SENSITIVE_HOST_PATHS) {
    const inside = normal === sensitive || normal.startsWith(`${sensitive}/`);
    const around = sensitive.startsWith(normal === '/' ? '/' : `${normal}/`);
    if (inside || around) return `would expose ${sensitive} (the engine's socket or state, or the host's kernel interfaces); refused`;
  }
  if (normal === '/run' || normal === '/var/run' || normal === '/var') return 'would expose the host runtime directory; refused';
  return null;
}
