import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';

const ROOT = new URL('../..', import.meta.url).pathname;
const pages = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

it('every picture and local link in the README and docs/ points at a file that exists', () => {
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(ROOT, page), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      if (!existsSync(join(ROOT, dirname(page), target!))) broken.push(`${page}: ${target}`);
    }
  }
  assert.deepEqual(broken, []);
});

it('the tour shows pictures the tests take, and the check run the round trip recorded', () => {
  const tour = readFileSync(join(ROOT, 'docs/tour.md'), 'utf8');
  const pictures = [...tour.matchAll(/!\[[^\]]*\]\((img\/[^)]+)\)/g)].map((m) => m[1]!);
  assert.deepEqual(pictures, ['img/board-failed-task-logs.png', 'img/board-after-retry.png', 'img/prometheus-berth-tasks.png']);
  const refresh = readFileSync(join(ROOT, 'scripts/refresh-tour.sh'), 'utf8');
  for (const picture of pictures) assert.match(refresh, new RegExp(`docs/${picture.replace('.', '\\.')}`), `refresh-tour.sh copies ${picture}`);
  assert.match(tour, /> \*\*berth\/review\*\* — completed, success/);
});
