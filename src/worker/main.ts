#!/usr/bin/env node
import { z } from 'zod';
import { EXIT } from '../core/exit-codes.js';
import { workerTaskSchema, type WorkerTask } from '../core/task.js';
import { formatResultLine } from '../core/worker-protocol.js';
import { runAgent } from './run-agent.js';
import { checkout } from './checkout.js';
import { noNewPrivsInEffect } from './privileges.js';
import { readSecretsFile } from '../core/secrets-file.js';
import { revokeOwnToken } from './revoke-token.js';
import { giveBackEgress } from './egress-credential.js';
import { PROXY_WAIT_MS, proxyListening, startEgressRelay } from './egress-relay.js';
import { runSetupPhase } from './setup-phase.js';

/** Entrypoint inside a worker container. Everything it trusts arrives through the environment. */
async function main(): Promise<number> {
  const started = Date.now();
  const fail = (exitCode: number, error: string) => {
    process.stderr.write(`berth-worker: ${error}\n`);
    process.stdout.write(`${formatResultLine({ exitCode, durationMs: Date.now() - started, result: null, error })}\n`);
    return exitCode;
  };

  let task: WorkerTask;
  try {
    task = workerTaskSchema.parse(JSON.parse(process.env.BERTH_TASK ?? ''));
  } catch (error) {
    const detail = error instanceof z.ZodError ? error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') : 'BERTH_TASK is not JSON';
    return fail(EXIT.invalidTask, `invalid task: ${detail}`);
  }
  const argv = commandFrom(process.env.BERTH_COMMAND);
  if (!argv) return fail(EXIT.noRetry, "BERTH_COMMAND must be a JSON array of strings (the operator's AGENT_COMMAND_<KIND>)");
  const setupArgv = process.env.BERTH_SETUP_COMMAND === undefined ? null : commandFrom(process.env.BERTH_SETUP_COMMAND);
  if (setupArgv === undefined) return fail(EXIT.noRetry, "BERTH_SETUP_COMMAND must be a JSON array of strings (the operator's SETUP_COMMAND_<KIND>)");

  // Every backend must give the worker no_new_privs; one that did not is a deployment fault, not the task's.
  if (noNewPrivsInEffect() === false)
    return fail(
      EXIT.noRetry,
      'no-new-privileges is not in effect for the worker; refusing to run the agent (the launcher must set it, or start the worker under setpriv --no-new-privs)',
    );

  let env: NodeJS.ProcessEnv;
  try {
    env = { ...process.env, ...readSecretsFile(process.env.BERTH_SECRETS_FILE) };
  } catch (error) {
    return fail(EXIT.noRetry, `the worker's secrets file ${process.env.BERTH_SECRETS_FILE} could not be read: ${(error as Error).message}`);
  }
  delete env.BERTH_COMMAND;
  delete env.BERTH_SETUP_COMMAND;
  delete env.BERTH_SECRETS_FILE;
  // Past this point the worker may hold a token: every way out gives it back first.
  const failHolding = async (exitCode: number, error: string) => {
    await giveBackEgressCredential(env);
    await giveBackToken(env);
    return fail(exitCode, error);
  };
  // EGRESS=proxy: the only way out, ready before the checkout and the agent need it.
  if (env.BERTH_EGRESS_SOCKET) {
    // On a swarm the node's proxy may still be starting when a worker lands on a new node.
    if (!(await proxyListening(env.BERTH_EGRESS_SOCKET, PROXY_WAIT_MS)))
      return fail(EXIT.tempFail, `berth's egress proxy is not listening at ${env.BERTH_EGRESS_SOCKET} on this node (waited ${PROXY_WAIT_MS / 1000} s)`);
    try {
      await startEgressRelay(env.BERTH_EGRESS_SOCKET, Number(env.BERTH_EGRESS_PORT) || 3128);
    } catch (error) {
      return fail(EXIT.noRetry, `could not start the relay to berth's egress proxy on 127.0.0.1:${env.BERTH_EGRESS_PORT}: ${(error as Error).message}`);
    }
    delete env.BERTH_EGRESS_SOCKET;
  }
  if (!env.GITHUB_TOKEN) env.BERTH_GITHUB_AUTH = 'none';
  const home = process.env.HOME ?? '/work';
  let cwd = home;
  // The consumer asks for a checkout (BERTH_CHECKOUT_DEPTH) per operator config; the agent then
  // starts inside the repository.
  if (env.BERTH_CHECKOUT_DEPTH !== undefined && env.BERTH_REPO_DIR) {
    const result = await checkout(
      {
        repo: task.repo,
        serverUrl: env.GITHUB_SERVER_URL ?? 'https://github.com',
        dir: env.BERTH_REPO_DIR,
        depth: Number(env.BERTH_CHECKOUT_DEPTH) || 0,
        ...(task.pull && task.number !== undefined ? { pull: { number: task.number, ...task.pull } } : {}),
        ...(!task.pull && task.ref && !task.ref.startsWith('refs/pull/') ? { ref: task.ref } : {}),
      },
      env,
    );
    if (!result.ok) return failHolding(result.exitCode, result.error);
    process.stdout.write(`berth-worker: checked out ${task.repo}: ${result.summary}\n`);
    cwd = env.BERTH_REPO_DIR;
  } else {
    delete env.BERTH_REPO_DIR;
  }
  // Stopped while the checkout ran (a cancel, a deadline): the agent never starts.
  if (stoppedBy) return failHolding(EXIT.stopped, `stopped by ${stoppedBy} before the agent started`);
  if (setupArgv) {
    const setup = await runSetupPhase({ argv: setupArgv, task, workDir: home, cwd, env, stdout: process.stdout, stderr: process.stderr, signals: process });
    if (!setup.ok) return failHolding(setup.exitCode, setup.error);
  }
  delete env.BERTH_EGRESS_SETUP_CREDENTIAL;
  if (stoppedBy) return failHolding(EXIT.stopped, `stopped by ${stoppedBy} before the agent started`);
  const line = await runAgent({
    argv,
    task,
    workDir: home,
    cwd,
    env,
    stdout: process.stdout,
    stderr: process.stderr,
    signals: process,
  });
  await giveBackEgressCredential(env);
  await giveBackToken(env);
  process.stdout.write(`\n${formatResultLine(line)}\n`);
  return line.exitCode;
}

/** An argv as the consumer sends it (a JSON array of strings), or undefined when it is not one. */
function commandFrom(text: string | undefined): string[] | undefined {
  try {
    return z
      .array(z.string())
      .min(1)
      .parse(JSON.parse(text ?? ''));
  } catch {
    return undefined;
  }
}

/** The attempt's way out ends with its agent: a credential that leaked is refused from here on. */
async function giveBackEgressCredential(env: NodeJS.ProcessEnv): Promise<void> {
  const credential = env.BERTH_EGRESS_CREDENTIAL;
  if (!credential || !env.HTTPS_PROXY) return;
  const given = await giveBackEgress(new URL(env.HTTPS_PROXY), credential, 'end');
  if (given !== true) process.stderr.write(`berth-worker: could not end the egress credential (${given}); it expires with the task's timeout\n`);
}

/** Before the result line, which must stay the worker's last. */
async function giveBackToken(env: NodeJS.ProcessEnv): Promise<void> {
  const revoked = await revokeOwnToken(env);
  if (revoked !== 'revoked' && revoked !== 'skipped')
    process.stderr.write(`berth-worker: could not revoke the installation token (${revoked}); it expires within the hour\n`);
}

// Handlers must exist before the agent starts so a SIGTERM is forwarded, not fatal to the worker.
// One that comes before the agent starts (during the checkout) is remembered, so the agent is not
// started after its stop, and the workload ends now instead of at the stop's grace.
let stoppedBy: NodeJS.Signals | null = null;
process.on('SIGTERM', () => (stoppedBy ??= 'SIGTERM'));
process.on('SIGINT', () => (stoppedBy ??= 'SIGINT'));
main().then(
  (code) => process.stdout.write('', () => process.exit(code)),
  (error: unknown) => {
    process.stderr.write(`berth-worker: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
