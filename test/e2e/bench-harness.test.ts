import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { ROOT } from '../support/image.js';

const run = promisify(execFile);

// The harness itself, at toy sizes, so it cannot rot between benchmark runs. No figure is checked:
// performance claims live in docs/benchmarks.md, measured by `npm run bench` on a quiet machine.
describe('bench harness (toy sizes)', () => {
  it('runs every scenario but recovery end to end and writes a table and JSON', async () => {
    const results = mkdtempSync(join(tmpdir(), 'berth-bench-'));
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'bench/main.ts'),
        '--only',
        'latency,throughput,ingest,footprint,scale,swarm,egress,fair',
        '--latency-tasks',
        '2',
        '--short-tasks',
        '4',
        '--concurrency',
        '2',
        '--ingest-seconds',
        '1',
        '--ingest-connections',
        '4',
        '--footprint-workers',
        '2',
        '--queued-tasks',
        '200',
        '--swarm-tasks',
        '2',
        '--egress-mib',
        '4',
        '--results',
        results,
      ],
      { cwd: ROOT, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const latest = JSON.parse(readFileSync(join(results, 'latest.json'), 'utf8'));
    for (const name of ['latency', 'throughput', 'ingest', 'footprint', 'scale', 'swarm', 'egress', 'fair']) {
      assert.ok(!latest.scenarios[name].error, `${name}: ${latest.scenarios[name].error}`);
      assert.ok(latest.scenarios[name].rows.length > 0, `${name} has rows`);
    }
    assert.equal(latest.machine.cores > 0, true);
    assert.match(stdout, /\| dispatch latency \| median, 2 tasks \|/);
    assert.match(stdout, /\| webhook ingest \| deliveries\/s/);
    assert.match(stdout, /\| swarm: dispatch latency \| median, 2 tasks \|/);
    assert.match(stdout, /\| egress \| stream 4 MiB through a tunnel, MiB\/s \|/);
    assert.equal(latest.scenarios.throughput.raw.berthFailed, 0);
    assert.equal(latest.scenarios.ingest.raw.berth.non2xx, 0);
  });
});
