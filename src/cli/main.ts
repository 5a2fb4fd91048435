#!/usr/bin/env node
import { setTimeout as delay } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { BerthClient, CliError } from './client.js';
import { formatChecks, runDoctor } from './doctor.js';
import { terminalSafe } from './terminal-text.js';
import { localSettings } from './local-settings.js';
import { bashCompletion } from './completion.js';
import { parseDuration } from '../core/duration.js';
import { styleText } from 'node:util';

process.title = 'berth';
/** What scripts/up.sh wrote for the berth it runs; the environment wins. */
const local = localSettings();
const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const FINAL = new Set(['completed', 'failed', 'cancelled']);
const STATE_COLOURS: Record<string, Parameters<typeof styleText>[0]> = {
  completed: 'green',
  failed: 'red',
  cancelled: 'gray',
  active: 'cyan',
  waiting: 'yellow',
  delayed: 'yellow',
  'awaiting-approval': 'magenta',
};
/** A state in its colour where stdout is a terminal (NO_COLOR and FORCE_COLOR respected), else as it is. */
const paint = (state: string, text = state): string =>
  STATE_COLOURS[state] ? styleText(STATE_COLOURS[state]!, text, { validateStream: true, stream: process.stdout }) : text;

const program = new Command()
  .name('berth')
  .description('Operate a running berth: tasks, logs, retries, replays.')
  .version(version, '-V, --version')
  .addOption(new Option('--url <url>', 'berth API address').env('BERTH_URL').default(local.BERTH_URL ?? 'http://127.0.0.1:3000'))
  // No --token flag: a token in argv is visible to every user of the machine (ps, /proc/<pid>/cmdline).
  .addOption(new Option('--token-file <path>', 'a file holding the API token (or set BERTH_TOKEN)').env('BERTH_TOKEN_FILE'))
  .showHelpAfterError();

const client = () => {
  const { url, tokenFile: given } = program.opts<{ url: string; tokenFile?: string }>();
  let value = process.env.BERTH_TOKEN ?? process.env.API_TOKEN;
  const tokenFile = given ?? (value ? undefined : (process.env.API_TOKEN_FILE ?? local.API_TOKEN_FILE));
  if (tokenFile) {
    try {
      value = readFileSync(tokenFile, 'utf8').trim();
    } catch (error) {
      throw new CliError(`cannot read the token file ${tokenFile} (${(error as Error).message})`);
    }
  }
  if (!value) throw new CliError('no token: set BERTH_TOKEN or pass --token-file');
  return new BerthClient(url, value);
};
const print = (value: unknown): void => {
  process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`);
};

const tasks = program.command('tasks').description('list and act on tasks');
tasks
  .command('list')
  .description('newest first')
  .option('--state <state>', 'awaiting-approval|waiting|active|delayed|completed|failed|cancelled')
  .option('--repo <owner/name>')
  .option('--kind <kind>')
  .option('--limit <n>', 'at most this many', '20')
  .option('--json', 'print JSON')
  .action(async (options: { state?: string; repo?: string; kind?: string; limit: string; json?: boolean }) => {
    const query = new URLSearchParams({
      limit: options.limit,
      ...(options.state ? { state: options.state } : {}),
      ...(options.repo ? { repo: options.repo } : {}),
      ...(options.kind ? { kind: options.kind } : {}),
    });
    // biome-ignore lint/suspicious/noExplicitAny: task views printed as a table
    const { body } = await client().request<{ tasks: Array<Record<string, any>>; nextCursor: number | null }>('GET', `/api/tasks?${query}`);
    if (options.json) {
      print(body);
      return;
    }
    const rows = body.tasks.map((t) => [t.id, t.state, t.kind, `${t.repo}${t.number ? `#${t.number}` : ''}`, String(t.attempts), t.failedReason ?? '']);
    const header = ['ID', 'STATE', 'KIND', 'REPO', 'ATTEMPTS', 'REASON'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    // Padded before it is coloured: escape sequences have no width on screen.
    for (const [index, row] of [header, ...rows].entries())
      print(
        row
          .map((cell, i) => (index > 0 && i === 1 ? paint(cell, cell.padEnd(widths[i]!)) : cell.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      );
  });
tasks
  .command('show <id>')
  .description('one task as JSON')
  .action(async (id: string) => {
    print((await client().request('GET', `/api/tasks/${encodeURIComponent(id)}`)).body);
  });
tasks
  .command('logs <id>')
  .description("the container's output (terminal escape sequences stripped)")
  .option('--raw', 'print the lines exactly as stored, escape sequences included')
  .option('-f, --follow', 'keep printing new lines as they come, until the task finishes')
  .action(async (id: string, options: { raw?: boolean; follow?: boolean }) => {
    const api = client();
    const path = `/api/tasks/${encodeURIComponent(id)}`;
    // `count` is every line the task ever logged; the list keeps the latest: what is new is its tail.
    let seen = 0;
    for (;;) {
      const state = options.follow ? (await api.request<{ state: string }>('GET', path)).body.state : 'completed';
      const { body } = await api.request<{ lines: string[]; count: number }>('GET', `${path}/logs`);
      const fresh = Math.min(body.lines.length, Math.max(0, body.count - seen));
      for (const line of body.lines.slice(body.lines.length - fresh)) print(options.raw ? line : terminalSafe(line));
      seen = body.count;
      // Read after the state: once the task is final, the lines printed are all it will have.
      if (FINAL.has(state)) return;
      await delay(1_000);
    }
  });
for (const action of ['retry', 'replay', 'cancel'] as const) {
  tasks
    .command(`${action} <id>`)
    .description(
      {
        retry: 'run a failed or cancelled task again, as a new attempt',
        replay: 'queue a new task with the same input',
        cancel: 'stop a running task or drop a waiting one',
      }[action],
    )
    .action(async (id: string) => {
      print((await client().request('POST', `/api/tasks/${encodeURIComponent(id)}/${action}`)).body);
    });
}

program
  .command('enqueue')
  .description('submit a task (an unknown kind is answered with the kinds berth runs)')
  .requiredOption('--kind <kind>', 'required: the task kind, one of AGENT_COMMAND_<KIND>')
  .requiredOption('--repo <owner/name>', 'required: the repository the agent works on')
  .option('--ref <ref>', 'branch, tag or commit to check out (default: the repository default branch)')
  .option('--number <n>', 'the issue or pull request number', (value) => {
    if (!/^[1-9]\d*$/.test(value)) throw new CliError(`--number: expected an issue or pull request number, got '${value}'`);
    return value;
  })
  .option('--prompt <text>', 'what the agent is asked')
  .option('--priority <level>', 'start priority, -10 to 10, higher first (within the API_PRIORITY_MIN..MAX berth allows)', (value) => {
    if (!/^-?\d+$/.test(value)) throw new CliError(`--priority: expected a whole number from -10 to 10, got '${value}'`);
    return value;
  })
  .option('--idempotency-key <key>', 'the same key twice makes one task')
  .option('--wait', 'wait until the task finishes; exit 1 unless it completed')
  .option('--timeout <seconds>', 'with --wait: give up after this long', '3600')
  .action(
    async (options: {
      kind: string;
      repo: string;
      ref?: string;
      number?: string;
      prompt?: string;
      priority?: string;
      idempotencyKey?: string;
      wait?: boolean;
      timeout: string;
    }) => {
      const api = client();
      const body = {
        kind: options.kind,
        repo: options.repo,
        ...(options.ref ? { ref: options.ref } : {}),
        ...(options.number ? { number: Number(options.number) } : {}),
        ...(options.prompt ? { prompt: options.prompt } : {}),
        ...(options.priority !== undefined ? { priority: Number(options.priority) } : {}),
        ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
      };
      const { body: created } = await api.request<{ id: string; state: string }>('POST', '/api/tasks', body);
      print(created.id);
      if (!options.wait) return;
      const deadline = Date.now() + Number(options.timeout) * 1000;
      const interactive = process.stderr.isTTY === true;
      const bar = new SingleBar(
        { format: '{state} {bar} {duration_formatted} {container}', stream: process.stderr, hideCursor: true, noTTYOutput: false },
        undefined,
      );
      if (interactive) bar.start(3, 0, { state: created.state, container: '' });
      let last = '';
      const stages: Record<string, number> = { waiting: 0, delayed: 0, active: 1, completed: 3, failed: 3, cancelled: 3 };
      for (;;) {
        // biome-ignore lint/suspicious/noExplicitAny: a task view printed as it comes
        const { body: task } = await api.request<Record<string, any>>('GET', `/api/tasks/${created.id}`);
        if (interactive) bar.update(stages[task.state] ?? 0, { state: task.state.padEnd(9), container: task.container?.name ?? '' });
        else if (task.state !== last) process.stderr.write(`${task.state}\n`);
        last = task.state;
        if (FINAL.has(task.state)) {
          if (interactive) bar.stop();
          print(task);
          process.exitCode = task.state === 'completed' ? 0 : 1;
          return;
        }
        if (Date.now() > deadline) {
          if (interactive) bar.stop();
          throw new CliError(`still ${task.state} after ${options.timeout}s`);
        }
        await delay(500);
      }
    },
  );

program
  .command('kinds')
  .description('the task kinds this berth runs (AGENT_COMMAND_<KIND>), with their start priority and budget')
  .option('--json', 'print JSON')
  .action(async (options: { json?: boolean }) => {
    const { body } = await client().request<{
      kinds: Array<{ kind: string; priority: number; budget: { tokens?: number; usd?: number } | null; setup: boolean }>;
      apiPriority: { min: number; max: number };
    }>('GET', '/api/kinds');
    if (options.json) return print(body);
    for (const k of body.kinds) {
      const budget = k.budget ? [k.budget.tokens ? `${k.budget.tokens} tokens` : '', k.budget.usd ? `$${k.budget.usd}` : ''].filter(Boolean).join(', ') : '';
      print([k.kind, `priority ${k.priority}`, budget ? `budget ${budget}` : '', k.setup ? 'setup phase' : ''].filter(Boolean).join('  '));
    }
    if (body.apiPriority.min !== 0 || body.apiPriority.max !== 0) print(`API tasks may ask for priority ${body.apiPriority.min}..${body.apiPriority.max}`);
  });

program
  .command('audit')
  .description('the audit trail: who asked for each task, who approved it, its tokens, its egress, every GitHub write (newest first)')
  .option('--task <id>', "one task's entries")
  .option('--since <time>', 'entries since an ISO time, or a duration ago (e.g. 1d, 30m)')
  .option('--limit <n>', 'at most this many entries', '100')
  .option('--json', 'print JSON')
  .option('--jsonl', 'export as JSON lines, oldest first')
  .action(async (options: { task?: string; since?: string; limit: string; json?: boolean; jsonl?: boolean }) => {
    const query = new URLSearchParams({ limit: options.limit });
    if (options.task) query.set('task', options.task);
    if (options.since) {
      const ago = parseDuration(options.since);
      query.set('since', ago !== null ? new Date(Date.now() - ago).toISOString() : options.since);
    }
    if (options.jsonl) query.set('format', 'jsonl');
    // biome-ignore lint/suspicious/noExplicitAny: audit entries printed as they come
    const { body } = await client().request<any>('GET', `/api/audit?${query}`);
    if (options.jsonl) return void process.stdout.write(typeof body === 'string' ? body : `${JSON.stringify(body)}\n`);
    if (options.json) return print(body);
    for (const entry of body.entries as Array<Record<string, unknown>>) {
      const { id: _id, at, task, type, ...rest } = entry;
      const details = Object.entries(rest)
        .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
        .join(' ');
      print(terminalSafe(`${at}  ${task}  ${type}  ${details}`));
    }
  });

program
  .command('completion')
  .description('print a bash completion script: eval "$(berth completion)"')
  .action(() => {
    process.stdout.write(bashCompletion(program));
  });

program
  .command('doctor')
  .description("check config, Redis, the Docker engine, the worker image and the workers' hardening (reads berth's own environment)")
  .action(async () => {
    const checks = await runDoctor({ ...local, ...process.env });
    print(formatChecks(checks));
    process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
  });

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`berth: ${error instanceof CliError ? error.message : (error as Error).stack}\n`);
  process.exitCode = error instanceof CliError ? 1 : 2;
});
