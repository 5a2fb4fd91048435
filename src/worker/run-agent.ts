import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { oomKills } from './oom.js';
import { EXIT } from '../core/exit-codes.js';
import type { WorkerTask } from '../core/task.js';
import type { WorkerResultLine } from '../core/worker-protocol.js';

export interface AgentRun {
  argv: string[];
  task: WorkerTask;
  /** Where task.json and result.json live (outside the checkout, so they never show in git status). */
  workDir: string;
  /** The agent's working directory: the checkout when there is one. */
  cwd?: string;
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** The worker's own process, whose SIGTERM/SIGINT are forwarded to the agent. */
  signals: NodeJS.EventEmitter;
}

/**
 * Runs the agent command without a shell. The task is given three ways so any agent can take
 * it: JSON on stdin, a file ($BERTH_TASK_FILE), and BERTH_TASK itself. The agent's result is
 * $BERTH_RESULT_FILE if it wrote one, else its last stdout line when that is JSON.
 */
export function runAgent(run: AgentRun): Promise<WorkerResultLine> {
  const started = Date.now();
  const taskFile = join(run.workDir, 'task.json');
  const resultFile = join(run.workDir, 'result.json');
  writeFileSync(taskFile, JSON.stringify(run.task));

  return new Promise((resolve) => {
    const child = spawn(run.argv[0]!, run.argv.slice(1), {
      cwd: run.cwd ?? run.workDir,
      env: { ...run.env, BERTH_TASK_FILE: taskFile, BERTH_RESULT_FILE: resultFile },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let lastLine = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      run.stdout.write(chunk);
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) lastLine = line;
      if (pending.length > 65_536) pending = pending.slice(-65_536);
    });
    child.stderr.on('data', (chunk: Buffer) => run.stderr.write(chunk));
    child.stdin.on('error', () => {}); // an agent that never reads stdin is fine
    child.stdin.end(JSON.stringify(run.task));
    const oomBefore = oomKills();

    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const onTerm = forward('SIGTERM');
    const onInt = forward('SIGINT');
    run.signals.on('SIGTERM', onTerm);
    run.signals.on('SIGINT', onInt);

    let spawnError: NodeJS.ErrnoException | null = null;
    child.on('error', (error: NodeJS.ErrnoException) => {
      spawnError = error;
    });
    child.on('close', (code, signal) => {
      run.signals.off('SIGTERM', onTerm);
      run.signals.off('SIGINT', onInt);
      if (pending.trim()) lastLine = pending;
      const durationMs = Date.now() - started;
      if (spawnError) {
        const missing = spawnError.code === 'ENOENT' || spawnError.code === 'EACCES';
        resolve({
          exitCode: missing ? EXIT.noRetry : 1,
          durationMs,
          result: null,
          error: missing ? `agent command cannot be run (${spawnError.code}): ${run.argv[0]}` : spawnError.message,
        });
        return;
      }
      const exitCode = signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1);
      const oom = signal === 'SIGKILL' && (oomKills() ?? 0) > (oomBefore ?? 0);
      resolve({
        exitCode,
        durationMs,
        result: readResult(resultFile, lastLine),
        ...(oom
          ? { oomKilled: true, error: 'agent killed by SIGKILL: out of memory (the kernel OOM-killed it at the memory limit)' }
          : signal
            ? { error: `agent killed by ${signal}` }
            : {}),
      });
    });
  });
}

function readResult(resultFile: string, lastLine: string): unknown {
  if (existsSync(resultFile)) {
    const text = readFileSync(resultFile, 'utf8');
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  try {
    const parsed: unknown = JSON.parse(lastLine);
    return typeof parsed === 'object' ? parsed : null;
  } catch {
    return null;
  }
}
