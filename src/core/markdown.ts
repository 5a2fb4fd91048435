/**
 * Untrusted text (file names, added lines, an agent's summary) inside markdown berth posts. A file
 * named with a backtick, an `@org/team` or a link must not break out of its code span and make
 * berth's bot mention a team or link somewhere on a fork's pull request.
 */

/** `@name` no longer mentions anyone: a zero-width joiner after the `@` (GitHub links only `@` + name). */
export function neutraliseMentions(text: string): string {
  return text.replace(/@(?=[A-Za-z0-9_-])/g, '@\u2060');
}

/**
 * An inline code span that holds `text` verbatim: fenced with more backticks than any run inside,
 * padded so a leading or trailing backtick stays inside, on one line. `inTable`: `|` escaped too
 * (GitHub ends a table cell at an unescaped pipe even inside code).
 */
export function codeSpan(text: string, options: { inTable?: boolean } = {}): string {
  let inner = text.replace(/[\r\n]+/g, ' ');
  if (options.inTable) inner = inner.replace(/\|/g, '\\|');
  const longest = Math.max(0, ...[...inner.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = inner.startsWith('`') || inner.endsWith('`') || inner.startsWith(' ') ? ' ' : '';
  return `${fence}${pad}${inner}${pad}${fence}`;
}
