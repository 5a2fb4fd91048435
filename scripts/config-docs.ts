// Renders docs/configuration.md from the zod schema in src/core/config.ts.
//   npx tsx scripts/config-docs.ts          write the file
//   npx tsx scripts/config-docs.ts --check  exit 1 when the file is stale (a unit test runs this)
import { readFileSync, writeFileSync } from 'node:fs';
import { envSchema } from '../src/core/config.js';

export function renderConfigDocs(): string {
  const rows = Object.entries(envSchema.shape).map(([name, schema]) => {
    const description = (schema as { description?: string }).description ?? '';
    const fallback = defaultOf(schema);
    return `| \`${name}\` | ${fallback === undefined ? (isOptional(schema) ? '—' : '**required**') : `\`${fallback}\``} | ${description.replace(/\|/g, '\\|')} |`;
  });
  return [
    '# Configuration',
    '',
    '<!-- Generated from src/core/config.ts by `npx tsx scripts/config-docs.ts`; a test fails when this file is stale. -->',
    '',
    'berth reads its settings from environment variables, once, at start. A bad or missing value stops it',
    'with a non-zero exit and one message listing every problem. Durations accept `500ms`, `30s`, `45m`,',
    '`2h`, `1d` or plain milliseconds; sizes accept `512m`, `2g`, `65536k` or bytes. An empty variable counts',
    'as unset.',
    '',
    '| Variable | Default | Meaning |',
    '|---|---|---|',
    ...rows,
    '| `AGENT_COMMAND_<KIND>` | at least one **required** | The command the worker runs for tasks of kind `<kind>` (lowercased), e.g. `AGENT_COMMAND_REVIEW="copilot-agent review --max-turns 40"`. Split into words as a POSIX shell would (quotes and backslashes respected) and run **without** a shell: pipes, redirections, `;`, `&&`, globs and backticks are refused. |',
    "| `TASK_PRIORITY_<KIND>` | `0` | The start priority of tasks of kind `<kind>`, a whole number from -10 to 10: a higher one starts before every lower one, and among tasks of one priority repositories take turns (FAIR_START). A webhook rule's `priority` wins over it; an API task may ask for its own within API_PRIORITY_MIN..API_PRIORITY_MAX. |",
    "| `GITHUB_TOKEN_PERMISSIONS_<KIND>` | `review`: `contents:read,pull_requests:write,issues:read`; `implement`: `contents:write,pull_requests:write,issues:write`; any other kind: `contents:read` | The permissions of the installation token a worker of kind `<kind>` gets (GitHub adds `metadata:read`). The token is scoped to the task's repository and revoked when the container exits. |",
    '',
    'Nothing in a request can change image, mounts, capabilities, limits or network: those come only from',
    'the variables above.',
    '',
  ].join('\n');
}

function defaultOf(schema: unknown): string | undefined {
  let current = schema as { def?: { type?: string; defaultValue?: unknown; innerType?: unknown; in?: unknown } };
  for (let depth = 0; depth < 6 && current?.def; depth++) {
    if (current.def.type === 'default') {
      const value = typeof current.def.defaultValue === 'function' ? (current.def.defaultValue as () => unknown)() : current.def.defaultValue;
      return value === '' ? '(empty)' : String(value);
    }
    current = (current.def.in ?? current.def.innerType) as typeof current;
  }
  return undefined;
}

function isOptional(schema: unknown): boolean {
  return (schema as { safeParse: (v: unknown) => { success: boolean } }).safeParse(undefined).success;
}

const target = new URL('../docs/configuration.md', import.meta.url);
if (process.argv[1]?.endsWith('config-docs.ts')) {
  const text = renderConfigDocs();
  if (process.argv.includes('--check')) {
    const current = readFileSync(target, 'utf8');
    if (current !== text) {
      console.error('docs/configuration.md is stale: run npx tsx scripts/config-docs.ts');
      process.exit(1);
    }
  } else {
    writeFileSync(target, text);
  }
}
