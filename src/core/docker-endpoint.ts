import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** How to reach the Docker engine, as the docker CLI reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH. */
export type DockerEndpoint =
  | { kind: 'socket'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number; tls: { ca: Buffer; cert: Buffer; key: Buffer } | null };

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[?::1\]?)$/;

/**
 * Reads the engine address. Whoever talks to the engine owns the host, so a TCP engine is reached
 * over TLS with client certificates (ca.pem, cert.pem, key.pem in DOCKER_CERT_PATH, default
 * ~/.docker), and plain TCP is refused unless it stays on this machine or DOCKER_ALLOW_PLAINTEXT
 * says so. Returns the problem as a string instead of throwing, for the config report.
 */
export function resolveDockerEndpoint(settings: {
  DOCKER_HOST?: string;
  DOCKER_TLS_VERIFY?: boolean;
  DOCKER_CERT_PATH?: string;
  DOCKER_ALLOW_PLAINTEXT?: boolean;
}): DockerEndpoint | string {
  const raw = settings.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `DOCKER_HOST: '${raw}' is not an address like unix:///var/run/docker.sock or tcp://host:2376`;
  }
  if (url.protocol === 'unix:') return { kind: 'socket', socketPath: url.pathname };
  if (url.protocol !== 'tcp:' && url.protocol !== 'https:' && url.protocol !== 'http:')
    return `DOCKER_HOST: unsupported scheme '${url.protocol}' (unix:// or tcp://)`;
  const tls = settings.DOCKER_TLS_VERIFY === true || settings.DOCKER_CERT_PATH !== undefined || url.protocol === 'https:';
  if (!tls) {
    if (!LOOPBACK.test(url.hostname) && settings.DOCKER_ALLOW_PLAINTEXT !== true) {
      return `DOCKER_HOST: plain TCP to ${url.hostname} would hand the engine (root on that host) to anyone on the path; set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or DOCKER_ALLOW_PLAINTEXT=true to accept that`;
    }
    return { kind: 'tcp', host: url.hostname, port: Number(url.port || 2375), tls: null };
  }
  const dir = settings.DOCKER_CERT_PATH ?? join(homedir(), '.docker');
  try {
    return {
      kind: 'tcp',
      host: url.hostname,
      port: Number(url.port || 2376),
      tls: { ca: readFileSync(join(dir, 'ca.pem')), cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) },
    };
  } catch (error) {
    return `DOCKER_CERT_PATH: cannot read ca.pem, cert.pem and key.pem in ${dir} (${(error as Error).message})`;
  }
}
