import type { Command } from 'commander';
import { TributaryError } from '../errors.ts';

/**
 * Shell completion generated from the command definitions themselves, so it cannot drift from them: commands, each
 * command's options, and file names after -c/--config. zsh uses the same function through bashcompinit.
 */
export function completionScript(shell: string, program: Command): string {
  if (shell !== 'bash' && shell !== 'zsh') {
    throw new TributaryError('operator', `no completion for shell "${shell}"`, { hint: 'Use bash or zsh.' });
  }
  const commands = program.commands.map((c) => c.name());
  const cases = program.commands
    .filter((c) => c.name() !== 'completion')
    .map((c) => {
      const flags = c.options.flatMap((o) => [o.short, o.long].filter((f): f is string => Boolean(f)));
      return `    ${c.name()}) opts="${[...flags, '-h', '--help'].join(' ')}" ;;`;
    })
    .join('\n');
  const bash = `_tributary() {
  local cur prev cmd opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd="\${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${commands.join(' ')} --help --version" -- "$cur") )
    return
  fi
  case "$prev" in
    -c|--config) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
  esac
  case "$cmd" in
${cases}
    completion) opts="bash zsh" ;;
    *) opts="" ;;
  esac
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
}
complete -o default -F _tributary tributary
`;
  return shell === 'bash' ? bash : `autoload -U +X bashcompinit && bashcompinit\n${bash}`;
}
