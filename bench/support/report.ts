import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** One line of the results table: a berth figure beside its baseline from the same run. */
export interface Row {
  scenario: string;
  measure: string;
  berth: string;
  baseline: string;
  /** berth relative to the baseline, written the way the target is ("1.16x", "+22 ms"). */
  ratio: string;
  target: string;
  /** null when the row has no target. */
  met: boolean | null;
}

export interface ScenarioResult {
  rows: Row[];
  /** Raw figures, kept in the JSON for whoever wants to recompute. */
  raw: Record<string, unknown>;
}

export function machine() {
  const version = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8' }).trim().split('\n')[0]!;
    } catch {
      return null;
    }
  };
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    docker: version('/usr/bin/docker', ['version', '--format', '{{.Server.Version}}']),
    redis: version('redis-server', ['--version'])?.match(/v=(\S+)/)?.[1] ?? null,
  };
}

export function printTable(rows: Row[]): void {
  const header: Row = {
    scenario: 'scenario',
    measure: 'measure',
    berth: 'berth',
    baseline: 'baseline (same run)',
    ratio: 'ratio',
    target: 'target',
    met: null,
  };
  const cells = (r: Row) => [r.scenario, r.measure, r.berth, r.baseline, r.ratio, r.target, r === header ? 'met' : r.met === null ? '' : r.met ? 'yes' : 'NO'];
  console.log(`| ${cells(header).join(' | ')} |`);
  console.log(
    `|${cells(header)
      .map(() => '---')
      .join('|')}|`,
  );
  for (const row of rows) console.log(`| ${cells(row).join(' | ')} |`);
}

export function writeResults(results: Record<string, unknown>, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const body = JSON.stringify(results, null, 2);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(dir, `bench-${stamp}.json`), body);
  writeFileSync(join(dir, 'latest.json'), body);
  return join(dir, 'latest.json');
}

export const ratio = (berth: number, baseline: number) => `${(berth / baseline).toFixed(2)}x`;
