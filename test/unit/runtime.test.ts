import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { it } from 'node:test';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8'));
const require = createRequire(import.meta.url);

it('runs on Node 24 LTS or newer, as package.json says', () => {
  assert.equal(pkg.engines.node, '>=24');
  assert.ok(Number(process.versions.node.split('.')[0]) >= 24, `tests run on Node ${process.versions.node}`);
});

it('every dependency with an install script is reviewed in allowScripts (npm 11 warns otherwise)', () => {
  const withScripts = Object.entries(lock.packages as Record<string, { hasInstallScript?: boolean }>)
    .filter(([, entry]) => entry.hasInstallScript)
    .map(([path]) => path.split('node_modules/').pop()!);
  assert.ok(withScripts.length > 0);
  for (const name of withScripts) assert.ok(name in pkg.allowScripts, `${name} has an install script nobody decided on`);
});

it("msgpackr-extract's install is allowed because BullMQ's msgpack takes the native path with it", () => {
  assert.equal(pkg.allowScripts['msgpackr-extract'], true);
  assert.equal(require('msgpackr').isNativeAccelerationEnabled, true);
});

it('LICENSE matches the license package.json names', () => {
  assert.equal(pkg.license, 'MIT');
  assert.match(readFileSync(new URL('../../LICENSE', import.meta.url), 'utf8'), /^MIT License\n/);
});
