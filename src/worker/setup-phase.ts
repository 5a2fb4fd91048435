import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerTask } from '../core/task.js';
import { giveBackEgress } from './egress-credential.js';
import { runAgent } from './run-agent.js';

const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'];

/**
 * SETUP_COMMAND_<KIND>: runs in the checkout before the agent, reaching what its wider grant allows
 * (package registries). When it ends, the wider credential is given back at the proxy, so the agent
 * after it, which could read it from this process's environment, finds it refused.
 */
export async function runSetupPhase(options: {
  argv: string[];
  task: WorkerTask;
  workDir: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  signals: NodeJS.EventEmitter;
}): Promise<{ ok: true } | { ok: false; exitCode: number; error: string }> {
  const credential = options.env.BERTH_EGRESS_SETUP_CREDENTIAL;
  const env: NodeJS.ProcessEnv = { ...options.env };
  delete env.BERTH_EGRESS_SETUP_CREDENTIAL;
  const relay = env.HTTPS_PROXY ? new URL(env.HTTPS_PROXY) : null;
  if (credential && relay) {
    const wider = `http://berth:${credential}@${relay.host}`;
    for (const name of PROXY_VARIABLES) env[name] = wider;
  }
  options.stdout.write(`berth-worker: setup: ${options.argv.join(' ')}\n`);
  const line = await runAgent({ ...options, env });
  // The setup's result file is not the agent's.
  rmSync(join(options.workDir, 'result.json'), { force: true });
  if (credential && relay) {
    const given = await giveBackEgress(relay, credential, 'narrow');
    if (given !== true)
      return { ok: false, exitCode: 75, error: `setup: could not give the setup's egress credential back (${given}); the agent does not run with it around` };
  }
  if (line.exitCode !== 0)
    return {
      ok: false,
      exitCode: line.exitCode === 78 ? 78 : 75,
      error: `setup: SETUP_COMMAND_${options.task.kind.toUpperCase()} exited with ${line.exitCode}${line.error ? `: ${line.error}` : ''}`,
    };
  return { ok: true };
}
