import { parse } from 'shell-quote';

export type CommandLineResult = { ok: true; argv: string[] } | { ok: false; error: string };

/**
 * Splits an operator-written command line the way a POSIX shell splits words (quotes and
 * backslashes respected) so the worker can exec it without a shell. Anything a shell would
 * *interpret* (pipes, redirections, `&&`, globs, comments) is refused rather than silently
 * passed through as a literal, because the operator clearly expected a shell to act on it.
 * `$VARS` are kept literally: there is no shell to expand them.
 */
export function splitCommandLine(line: string): CommandLineResult {
  // shell-quote keeps backticks as literals; a shell would substitute them, so refuse.
  if (line.includes('`')) return { ok: false, error: 'contains a backtick (command substitution); berth runs commands without a shell' };
  const entries = parse(line, (name) => `$${name}`);
  const argv: string[] = [];
  for (const entry of entries) {
    if (typeof entry === 'string') {
      argv.push(entry);
      continue;
    }
    if ('op' in entry && entry.op === 'glob') {
      return { ok: false, error: `contains a glob (${entry.pattern}); berth runs commands without a shell` };
    }
    if ('comment' in entry) {
      return { ok: false, error: 'contains a # comment; berth runs commands without a shell' };
    }
    const op = 'op' in entry ? entry.op : String(entry);
    return { ok: false, error: `contains the shell operator '${op}'; berth runs commands without a shell (wrap it in a script)` };
  }
  if (argv.length === 0) return { ok: false, error: 'is empty' };
  return { ok: true, argv };
}
