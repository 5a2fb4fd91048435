// berth's benchmark harness: every scenario against real Redis and the real Docker engine, each
// berth figure beside a baseline measured in the same run. Prints one table, writes
// bench/results/latest.json (and a timestamped copy).
//   npm run bench                        all scenarios (about 15 min on 2 cores)
//   npm run bench -- --only ingest,scale  some of them
import { execFileSync } from 'node:child_process';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { ensureWorkerImage, ROOT } from '../test/support/image.js';
import { machine, printTable, writeResults, type Row } from './support/report.js';
import type { BenchContext, BenchOptions } from './scenarios/context.js';
import { dispatchLatency } from './scenarios/dispatch-latency.js';
import { shortTasks } from './scenarios/short-tasks.js';
import { webhookIngest } from './scenarios/webhook-ingest.js';
import { recovery } from './scenarios/recovery.js';
import { footprint } from './scenarios/footprint.js';
import { atScale } from './scenarios/at-scale.js';
import { swarmBackend } from './scenarios/swarm-backend.js';
import { egressProxy } from './scenarios/egress-proxy.js';
import { fairSelection } from './scenarios/fair-selection.js';

const SCENARIOS = {
  latency: dispatchLatency,
  throughput: shortTasks,
  ingest: webhookIngest,
  recovery,
  footprint,
  scale: atScale,
  swarm: swarmBackend,
  egress: egressProxy,
  fair: fairSelection,
};
type ScenarioName = keyof typeof SCENARIOS;

const number = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`not a positive integer: ${value}`);
  return n;
};
const program = new Command('bench')
  .description('Measure berth against bare Docker, BullMQ and Fastify baselines in the same run.')
  .addOption(new Option('--only <names>', `comma-separated scenarios: ${Object.keys(SCENARIOS).join(', ')}`).argParser((v) => v.split(',')))
  .option('--latency-tasks <n>', 'dispatch latency samples per side', number, 100)
  .option('--short-tasks <n>', 'short tasks per side', number, 300)
  .option('--concurrency <n>', 'concurrency for short tasks', number, 8)
  .option('--ingest-seconds <n>', 'webhook load duration per side', number, 20)
  .option('--ingest-connections <n>', 'webhook load connections', number, 64)
  .option('--recovery-tasks <n>', 'running tasks when the consumer is killed', number, 50)
  .option('--footprint-workers <n>', 'running workers for the RSS figure', number, 100)
  .option('--queued-tasks <n>', 'tasks queued for the at-scale figures', number, 100_000)
  .option('--swarm-tasks <n>', 'swarm backend latency samples per side (twice as many short tasks)', number, 30)
  .option('--egress-mib <n>', 'MiB streamed per round through the egress proxy and directly', number, 256)
  .option('--results <dir>', 'where latest.json and the timestamped copy go', `${ROOT}/bench/results`)
  .parse();
const options = program.opts<BenchOptions & { only?: string[]; results: string }>();
const selected = (options.only ?? Object.keys(SCENARIOS)) as ScenarioName[];
for (const name of selected) if (!(name in SCENARIOS)) program.error(`unknown scenario '${name}'; known: ${Object.keys(SCENARIOS).join(', ')}`);

// The dispatcher runs from dist/ on plain node, as in production; build it from this checkout.
execFileSync(process.execPath, [`${ROOT}/node_modules/typescript/bin/tsc`, '-p', `${ROOT}/tsconfig.build.json`], { stdio: 'inherit' });
const image = await ensureWorkerImage();

const bar = new cliProgress.SingleBar(
  { format: '{scenario} [{bar}] {value}/{total} {what}', hideCursor: true, clearOnComplete: true },
  cliProgress.Presets.shades_classic,
);
const rows: Row[] = [];
const results: Record<string, unknown> = { date: new Date().toISOString(), machine: machine(), options, scenarios: {} };
for (const name of selected) {
  const started = Date.now();
  bar.start(1, 0, { scenario: name, what: '' });
  const ctx: BenchContext = {
    image,
    options,
    progress: (done, total, what = '') => {
      bar.setTotal(total);
      bar.update(done, { scenario: name, what });
    },
  };
  try {
    const result = await SCENARIOS[name](ctx);
    bar.stop();
    rows.push(...result.rows);
    (results.scenarios as Record<string, unknown>)[name] = { seconds: Math.round((Date.now() - started) / 1000), rows: result.rows, raw: result.raw };
    console.log(`${name}: done in ${Math.round((Date.now() - started) / 1000)} s`);
  } catch (error) {
    bar.stop();
    console.error(`${name}: failed: ${(error as Error).stack}`);
    (results.scenarios as Record<string, unknown>)[name] = { error: String(error) };
    process.exitCode = 1;
  }
}
const m = results.machine as ReturnType<typeof machine>;
console.log(`\n${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.node}; Docker ${m.docker}; Redis ${m.redis}\n`);
printTable(rows);
console.log(`\nwrote ${writeResults(results, options.results)}`);
