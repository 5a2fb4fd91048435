#!/usr/bin/env node
// Runs every test file under test/ with Node's test runner: the unit files in one process, then
// the Redis-only files (test/redis: a redis-server of their own, no Docker) and the end-to-end
// files BERTH_TEST_CONCURRENCY at a time (default 2), each in its own process. Files
// that share something a second copy would collide with (an extra dockerd with a fixed name and
// address, the host's `berth-workers` network, a compose project) name it on a line
// `// test-resources: a, b`; two files holding the same resource never run at once. A file's output
// is printed whole when it ends, so files never interleave; the closing line counts every file.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith('.test.ts') ? [path] : [];
  });
const relative = (f) => f.replace(root, '');
const only = process.argv.slice(2).map((f) => join(root, f.replace(root, '')));
const chosen = (
  only.length
    ? only.flatMap((f) => (statSync(f).isDirectory() ? walk(f) : [f]))
    : [...walk(join(root, 'test/unit')), ...walk(join(root, 'test/redis')), ...walk(join(root, 'test/e2e'))]
).map(relative);
const unit = chosen.filter((f) => f.startsWith('test/unit/'));
const e2e = chosen.filter((f) => !f.startsWith('test/unit/'));
const concurrency = Math.max(1, Number(process.env.BERTH_TEST_CONCURRENCY ?? 2));
mkdirSync(join(root, 'test-output/files'), { recursive: true });

const args = (tap) => [
  '--import',
  'tsx',
  '--test',
  '--test-concurrency=1',
  '--test-timeout=600000',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${tap}`,
];
const count = (summary, key) => Number((summary.match(new RegExp(`^# ${key} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
const totals = { pass: 0, fail: 0, skipped: 0 };
const failedFiles = [];
const taps = [];
const tally = (file, tap, status) => {
  let summary = '';
  try {
    summary = readFileSync(tap, 'utf8');
  } catch {
    // no report: the process died before writing one
  }
  taps.push(summary);
  for (const key of Object.keys(totals)) totals[key] += count(summary, key);
  if (status !== 0) {
    failedFiles.push(file);
    if (count(summary, 'fail') === 0) totals.fail += 1; // it failed without a failing test: count it
  }
};

const started = Date.now();
if (unit.length) {
  // Unit tests first: they fail fast and need no engine.
  const tap = join(root, 'test-output/files/unit.tap');
  const result = spawnSync(process.execPath, [...args(tap), ...unit], { cwd: root, stdio: 'inherit' });
  tally('test/unit', tap, result.status ?? 1);
}

const resourcesOf = (file) => {
  const line = /^\/\/ test-resources:(.*)$/m.exec(readFileSync(join(root, file), 'utf8'));
  return line
    ? line[1]
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean)
    : [];
};
// Files holding a shared resource first: their chain is the longest, so it should start early.
const pending = e2e.map((file) => ({ file, resources: resourcesOf(file) })).sort((a, b) => b.resources.length - a.resources.length);
const held = new Set();
const seconds = {};
await new Promise((resolve) => {
  let running = 0;
  const next = () => {
    if (pending.length === 0 && running === 0) return resolve();
    while (running < concurrency) {
      const index = pending.findIndex((p) => p.resources.every((r) => !held.has(r)));
      if (index < 0) return;
      const { file, resources } = pending.splice(index, 1)[0];
      running++;
      for (const r of resources) held.add(r);
      const tap = join(root, 'test-output/files', `${file.replace(/[/.]/g, '_')}.tap`);
      const begun = Date.now();
      const output = [];
      const child = spawn(process.execPath, [...args(tap), file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (chunk) => output.push(chunk));
      child.stderr.on('data', (chunk) => output.push(chunk));
      child.on('close', (status) => {
        seconds[file] = Math.round((Date.now() - begun) / 1000);
        process.stdout.write(`\n── ${file} (${seconds[file]} s)\n`);
        process.stdout.write(Buffer.concat(output));
        tally(file, tap, status ?? 1);
        for (const r of resources) held.delete(r);
        running--;
        next();
      });
    }
  };
  next();
});

writeFileSync(join(root, 'test-output/results.tap'), taps.join('\n'));
writeFileSync(join(root, 'test-output/durations.json'), `${JSON.stringify(seconds, null, 2)}\n`);
const took = Math.round((Date.now() - started) / 1000);
if (failedFiles.length) console.log(`\nfailed files: ${failedFiles.join(', ')}`);
console.log(
  `\ntests: ${totals.pass} passed, ${totals.fail} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''} (${Math.floor(took / 60)}m${took % 60}s, ${concurrency} end-to-end files at a time)`,
);
process.exit(failedFiles.length || totals.fail ? 1 : 0);
