import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { renderConfigDocs } from '../../scripts/config-docs.js';

it('docs/configuration.md matches the config schema (regenerate: npx tsx scripts/config-docs.ts)', () => {
  assert.equal(readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8'), renderConfigDocs());
});
