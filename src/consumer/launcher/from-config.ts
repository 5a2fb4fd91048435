import type { Config } from '../../core/config.js';
import { DockerLauncher, dockerClient } from './docker.js';
import type { Launcher } from './launcher.js';
import { SwarmLauncher } from './swarm/launcher.js';

/** The backend LAUNCHER names, on the engine DOCKER_HOST names (a swarm manager for `swarm`). */
export function launcherFromConfig(config: Config): Launcher {
  const docker = dockerClient(config.dockerEndpoint);
  if (config.LAUNCHER === 'swarm')
    return new SwarmLauncher(docker, { constraints: config.SWARM_CONSTRAINTS, scheduleTimeoutMs: config.SWARM_SCHEDULE_TIMEOUT });
  return new DockerLauncher(docker);
}
