import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './image.js';

export interface NodeProcess {
  child: ChildProcess;
  /** pino lines (parsed) the process printed so far; empty when logs are not captured. */
  lines: Array<Record<string, unknown>>;
  /** When the process logged its ready line, by the bench's clock; `readyLine` has the process's own. */
  ready: Promise<number>;
  readyLine: Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  kill(signal: NodeJS.Signals): Promise<void>;
  count(msg: string): number;
  /** Resident set size, from /proc, in MiB. */
  rssMiB(): number;
  /** CPU time used so far (user + system, all threads), from /proc, in seconds. */
  cpuSeconds(): number;
}

export interface ProcessOptions {
  /** Relative to the repository: a .ts entry runs through tsx, a built .js or .mjs entry on plain node. */
  entry: string;
  /** The JSON log line `msg` (or its beginning) that means ready. */
  readyMsg: string;
  /** Parse and keep every log line (the default); off for load tests, where the parsing would compete for CPU. */
  captureLogs?: boolean;
}

/** A real consumer process (src/consumer/main.ts), as production runs it, with its own env. */
export function startConsumerProcess(env: Record<string, string>): NodeProcess {
  return startNodeProcess(env, { entry: 'src/consumer/main.ts', readyMsg: 'consumer started' });
}

/** Consumer processes a test starts, every one SIGKILLed by `killAll` (in its after hook). */
export function consumerProcesses(): { start: (env: Record<string, string>) => NodeProcess; killAll: () => Promise<void> } {
  const started: NodeProcess[] = [];
  return {
    start: (env) => {
      const child = startConsumerProcess(env);
      started.push(child);
      return child;
    },
    killAll: async () => {
      for (const child of started) await child.kill('SIGKILL');
    },
  };
}

/** A node process that logs JSON lines (berth's entrypoints, the bench baselines), with its own env. */
export function startNodeProcess(env: Record<string, string>, options: ProcessOptions, argv: string[] = []): NodeProcess {
  const { entry, readyMsg, captureLogs = true } = options;
  const args = [...(entry.endsWith('.ts') ? ['--import', 'tsx'] : []), join(ROOT, entry), ...argv];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env, LOG_LEVEL: env.LOG_LEVEL === 'silent' || !env.LOG_LEVEL ? 'info' : env.LOG_LEVEL },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let readyResolve!: (line: Record<string, unknown>) => void;
  const readyLine = new Promise<Record<string, unknown>>((resolve) => (readyResolve = resolve));
  let buffer = '';
  let waitingForReady = true;
  child.stdout!.on('data', (chunk: Buffer) => {
    if (!captureLogs && !waitingForReady) return;
    buffer += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (captureLogs) lines.push(parsed);
        if (waitingForReady && String(parsed.msg).startsWith(readyMsg)) {
          waitingForReady = false;
          readyResolve(parsed);
        }
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
      if (process.env.BERTH_TEST_VERBOSE && stderr) process.stderr.write(`${entry} stderr: ${stderr}\n`);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  return {
    child,
    lines,
    ready: readyLine.then(() => Date.now()),
    readyLine,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
    count: (msg) => lines.filter((l) => l.msg === msg).length,
    rssMiB() {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return match ? Math.round((Number(match[1]) / 1024) * 10) / 10 : NaN;
    },
    cpuSeconds() {
      // Fields 14 and 15 of /proc/PID/stat (utime, stime), in clock ticks; the name field may hold spaces.
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
  };
}
