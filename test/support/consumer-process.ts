import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './image.js';

export interface ConsumerProcess {
  child: ChildProcess;
  /** pino lines (parsed) the process printed so far. */
  lines: Array<Record<string, unknown>>;
  ready: Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  kill(signal: NodeJS.Signals): Promise<void>;
  count(msg: string): number;
}

/** A real consumer process (src/consumer/main.ts), as production runs it, with its own env. */
export function startConsumerProcess(env: Record<string, string>): ConsumerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/consumer/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env, LOG_LEVEL: env.LOG_LEVEL === 'silent' || !env.LOG_LEVEL ? 'info' : env.LOG_LEVEL },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let readyResolve!: (at: number) => void;
  const ready = new Promise<number>((resolve) => (readyResolve = resolve));
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        lines.push(parsed);
        if (parsed.msg === 'consumer started') readyResolve(Date.now());
      } catch {
        // not a log line
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
    if (process.env.BERTH_TEST_VERBOSE) process.stderr.write(chunk);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => {
      if (process.env.BERTH_TEST_VERBOSE && stderr) process.stderr.write(`consumer stderr: ${stderr}\n`);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  return {
    child,
    lines,
    ready,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
    count: (msg) => lines.filter((l) => l.msg === msg).length,
  };
}
