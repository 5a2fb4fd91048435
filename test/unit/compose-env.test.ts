import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

it('.env.example lists every variable compose.yaml reads, and nothing it does not', () => {
  const read_ = new Set([...read('compose.yaml').matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!));
  const listed = new Set([...read('.env.example').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]!));
  assert.deepEqual(
    [...read_].filter((v) => !listed.has(v)),
    [],
    'read by compose.yaml, missing from .env.example',
  );
  assert.deepEqual(
    [...listed].filter((v) => !read_.has(v)),
    [],
    'in .env.example, not read by compose.yaml',
  );
});

it('compose.yaml passes secrets as files and mounts the rules file read-only', () => {
  const compose = read('compose.yaml');
  for (const name of ['API_TOKEN', 'GITHUB_WEBHOOK_SECRET', 'GITHUB_WEBHOOK_SECRET_PREVIOUS', 'GITHUB_APP_PRIVATE_KEY', 'BOARD_PASSWORD']) {
    assert.match(compose, new RegExp(`^\\s+${name}_FILE: /run/secrets/`, 'm'), name);
    assert.doesNotMatch(compose, new RegExp(`^\\s+${name}:`, 'm'), `${name} as an environment value`);
  }
  assert.match(compose, /WEBHOOK_RULES_FILE: \/etc\/berth\/webhook-rules.json/);
  assert.match(compose, /:\/etc\/berth\/webhook-rules.json:ro/);
  assert.match(compose, /--maxmemory-policy", "noeviction"/);
});
