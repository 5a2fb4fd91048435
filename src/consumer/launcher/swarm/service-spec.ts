import { envList } from '../docker-api.js';
import { parseBind, type WorkloadSpec } from '../launcher.js';

/**
 * Operator placement, never from a request. Constraints only: swarm weighs placement preferences
 * (spread) among one service's own tasks, and each berth attempt is a service of one task, so a
 * spread preference would never move anything. Across services swarm's scheduler already favours
 * the node with the fewest tasks.
 */
export interface SwarmPlacement {
  /** e.g. `node.labels.berth==worker`, `node.role==worker`. */
  constraints: string[];
  /** How long a task may wait for a node that can take it before the attempt fails with the scheduler's reason. */
  scheduleTimeoutMs: number;
}

/**
 * Where a swarm worker goes that should have no network: an overlay of berth's own that is
 * internal (no gateway off it, no route to the node, the host or the internet: checked here) and
 * not attachable. Only other such workers are on it, and they serve nothing.
 */
export const SEALED_NETWORK = 'berth-sealed';

/** When berth stopped a service (ms since epoch): the service stays, as the attempt's fence, until removed. */
export const STOPPED_LABEL = 'berth.stopped-at';
/** Swarm names are DNS labels: at most 63 of [A-Za-z0-9_-], starting and ending alphanumeric. */
export const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,61}[a-zA-Z0-9]$/;
/** Where a worker finds its secrets (JSON, name → value); the worker's entrypoint reads them into its environment. */
export const SECRETS_FILE = '/run/secrets/berth-env';

/** The name of an attempt's swarm secret: its service's, so the two go together and are found together. */
export function secretNameFor(serviceName: string): string {
  return `${serviceName}-env`;
}

/**
 * The neutral spec as a service of one replica that is never restarted (`restart-condition none`):
 * one task, run at most once, placed by operator rules. Not a replicated-job service, though that
 * is what it is: on Docker 20.10 a removed job service leaves its finished task and container on
 * the node for good (moby/moby#44312), and "nothing left behind" comes first. Swarm restarts
 * neither kind after an exit or a lost node.
 */
export function serviceSpec(
  spec: WorkloadSpec,
  placement: Pick<SwarmPlacement, 'constraints'>,
  secret?: { id: string; name: string },
): Record<string, unknown> {
  return {
    Name: spec.name,
    Labels: spec.labels,
    Mode: { Replicated: { Replicas: 1 } },
    // Workers serve nothing: no virtual IP, no IPVS load balancer to set up per task.
    EndpointSpec: { Mode: 'dnsrr' },
    TaskTemplate: {
      ContainerSpec: {
        Image: spec.image,
        // Swarm cannot set no-new-privileges (moby/moby#41371): the worker and all it starts get it from setpriv (util-linux).
        Command: ['setpriv', '--no-new-privs', '--', ...spec.command],
        Args: [],
        User: `${spec.uid}:${spec.gid}`,
        Dir: spec.workingDir,
        // Never the secrets: a service's Env is in the raft store, every manager's inspect and PreviousSpec.
        Env: envList({ ...spec.env, ...(secret ? { BERTH_SECRETS_FILE: SECRETS_FILE } : {}) }),
        Labels: spec.labels,
        // Readable by the worker's user only, on the node's tmpfs; swarm never returns the data.
        Secrets: secret
          ? [
              {
                SecretID: secret.id,
                SecretName: secret.name,
                File: { Name: SECRETS_FILE.split('/').pop(), UID: String(spec.uid), GID: String(spec.gid), Mode: 0o400 },
              },
            ]
          : undefined,
        Init: true,
        ReadOnly: true,
        // The image's HEALTHCHECK probes berth's API; a worker has none (and a task would sit in `starting`).
        Healthcheck: { Test: ['NONE'] },
        StopSignal: 'SIGTERM',
        StopGracePeriod: spec.stopGraceMs * 1e6,
        CapabilityDrop: ['ALL'],
        CapabilityAdd: spec.capAdd.length ? spec.capAdd : undefined,
        Mounts: [
          // Swarm's tmpfs takes a size and a mode, not an owner, and its folder's mode from the image (/work is 1777 in berth's).
          { Type: 'tmpfs', Target: '/work', TmpfsOptions: { SizeBytes: spec.tmpfsBytes, Mode: 0o1777 } },
          { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: spec.tmpfsBytes, Mode: 0o1777 } },
          ...spec.binds.map((bind) => {
            const { source, target, readOnly } = parseBind(bind);
            return { Type: 'bind', Source: source, Target: target, ReadOnly: readOnly };
          }),
          ...spec.volumes.map((v) => ({ Type: 'volume', Source: v.source, Target: v.target, ReadOnly: v.readOnly })),
        ],
      },
      Resources: { Limits: { MemoryBytes: spec.memoryBytes, NanoCPUs: spec.nanoCpus, Pids: spec.pidsLimit } },
      RestartPolicy: { Condition: 'none', MaxAttempts: 0 },
      Placement: {
        Constraints: placement.constraints,
      },
      // No network (EGRESS=proxy or none) is berth's sealed overlay on a swarm: services cannot have none.
      Networks: [{ Target: spec.network === 'none' ? SEALED_NETWORK : spec.network }],
      LogDriver: { Name: 'json-file', Options: { 'max-size': spec.logMaxSize, 'max-file': '1' } },
    },
  };
}
