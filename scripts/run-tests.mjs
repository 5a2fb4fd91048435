#!/usr/bin/env node
// Runs every test file under test/ with Node's test runner, one file at a time (the end-to-end
// files share one Docker engine and a 2-core machine), then prints a plain closing line.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const walk = (dir) => readdirSync(dir).flatMap((name) => {
  const path = join(dir, name);
  return statSync(path).isDirectory() ? walk(path) : path.endsWith('.test.ts') ? [path] : [];
});
const only = process.argv.slice(2);
// Unit tests first: they fail fast and need no engine.
const files = (only.length ? only : [...walk(join(root, 'test/unit')), ...walk(join(root, 'test/e2e'))]).map((f) => f.replace(root, ''));
mkdirSync(join(root, 'test-output'), { recursive: true });
const tap = join(root, 'test-output/results.tap');
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=600000', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
  { cwd: root, stdio: 'inherit' },
);
const summary = readFileSync(tap, 'utf8');
const count = (key) => Number((summary.match(new RegExp(`^# ${key} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
console.log(`\ntests: ${count('pass')} passed, ${count('fail')} failed${count('skipped') ? `, ${count('skipped')} skipped` : ''}`);
process.exit(result.status ?? 1);
