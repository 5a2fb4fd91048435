import type { Command } from 'commander';

/**
 * A bash completion script for the CLI, read from its own command tree, so it can never list a
 * command or option the CLI does not have. zsh takes it after `autoload -U bashcompinit && bashcompinit`.
 */
export function bashCompletion(program: Command): string {
  const flags = (command: Command) =>
    command.options
      .map((o) => o.long)
      .filter(Boolean)
      .join(' ');
  const name = program.name();
  const top = program.commands.map((c) => c.name());
  const cases: string[] = [];
  for (const command of program.commands) {
    const subs = command.commands.map((c) => c.name());
    if (subs.length === 0) {
      cases.push(`    ${command.name()}) words="${flags(command)}" ;;`);
      continue;
    }
    cases.push(`    ${command.name()})`);
    cases.push(`      if [ "$COMP_CWORD" -eq 2 ]; then words="${subs.join(' ')}"; else case "\${COMP_WORDS[2]}" in`);
    for (const sub of command.commands) cases.push(`        ${sub.name()}) words="${flags(sub)}" ;;`);
    cases.push('      esac; fi ;;');
  }
  return [
    `# ${name} completion for bash: eval "$(${name} completion)" (e.g. in ~/.bashrc)`,
    `_${name}() {`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own expansion, not a template
    '  local cur="${COMP_WORDS[COMP_CWORD]}" words=""',
    '  if [ "$COMP_CWORD" -eq 1 ]; then',
    `    words="${top.join(' ')} ${flags(program)}"`,
    '  else',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own expansion, not a template
    '    case "${COMP_WORDS[1]}" in',
    ...cases,
    '    esac',
    '  fi',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    `complete -F _${name} ${name}`,
    '',
  ].join('\n');
}
