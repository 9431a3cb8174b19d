// tsrun completion bash: a bash completion script generated from commander's own definitions
// (so a new command or flag completes without editing this file), completing container names
// (`tsrun ps -a`), image names (`tsrun images --format json`) and networks at run time.
import type { Argument, Command, Option } from 'commander';
import { TsrunError } from '../src/errors.js';
import { action } from './common.js';
import { writeOut } from './out.js';

export function register(program: Command): void {
  program
    .command('completion')
    .description('Print a shell completion script (bash)')
    .usage('bash')
    .argument('<shell>', 'only bash for now')
    .addHelpText('after', '\nInstall for every shell:  tsrun completion bash > /etc/bash_completion.d/tsrun\nThis shell only:          source <(tsrun completion bash)')
    .action(action(async (shell: string) => {
      if (shell !== 'bash') throw new TsrunError('EINVAL_FLAG', `unsupported shell "${shell}": only bash`);
      writeOut(bashCompletion(program));
    }));
}

/** What a positional argument completes to. */
type ArgKind = 'container' | 'image' | 'object' | 'network' | 'command' | 'shell' | 'stop' | 'none';

interface Spec {
  /** "run", "image ls", "" for the program itself. */
  path: string;
  options: string[];
  /** Flags that take a value (the next word is not a positional). */
  valueOptions: string[];
  /** Value completions by flag (-v → files, --network → networks, ...). */
  valueKinds: Array<[flags: string[], kind: string]>;
  subcommands: string[];
  args: ArgKind[];
  /** The last positional repeats (`<container...>`). */
  variadic: boolean;
}

function argKind(path: string, arg: Argument): ArgKind {
  const name = arg.name();
  if (path === 'help' || path.endsWith(' help')) return 'command';
  if (/container/.test(name)) return 'container';
  if (name === 'image' || name === 'images' || name === 'source') return 'image';
  if (name === 'command') return 'stop';
  if (name === 'shell') return 'shell';
  if (name === 'name' && path === 'inspect') return 'object';
  if (name === 'name' && path.startsWith('network ')) return path === 'network create' ? 'none' : 'network';
  if (name === 'name' && (path === 'pull' || path === 'push')) return 'image';
  return 'none';
}

/** Values some flags take, wherever they appear; `-f` means file names. */
const VALUE_KINDS: Record<string, string> = {
  '--network': 'networks',
  '--volume': 'files',
  '--env-file': 'files',
  '--input': 'files',
  '--root': 'dirs',
  '--pull': 'words:missing always never',
  '--restart': 'words:no always unless-stopped on-failure',
  '--format': 'words:json table',
  '--signal': 'words:SIGTERM SIGKILL SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2 SIGSTOP SIGCONT',
  '--type': 'words:container image',
  '--ipc': 'words:host',
  '--pid': 'words:host',
  '--uts': 'words:host',
  '--userns': 'words:host private auto',
  '--platform': 'words:linux/amd64 linux/arm64 linux/arm/v7',
  '--cap-add': 'words:ALL NET_ADMIN SYS_ADMIN SYS_PTRACE SYS_TIME NET_RAW',
  '--cap-drop': 'words:ALL CHOWN NET_RAW SETUID SETGID',
};

function flagsOf(o: Option): string[] {
  return [o.short, o.long].filter((f): f is string => f !== undefined);
}

function specOf(path: string, cmd: Command): Spec {
  const help = cmd.createHelp();
  const options = help.visibleOptions(cmd);
  const valueOpts = options.filter((o) => o.required || o.optional);
  const kinds = new Map<string, string[]>();
  for (const o of valueOpts) {
    const kind = o.long ? VALUE_KINDS[o.long] : undefined;
    if (kind) kinds.set(kind, [...(kinds.get(kind) ?? []), ...flagsOf(o)]);
  }
  const args = cmd.registeredArguments.map((a) => argKind(path, a));
  return {
    path,
    options: options.flatMap(flagsOf),
    valueOptions: valueOpts.flatMap(flagsOf),
    valueKinds: [...kinds].map(([kind, flags]) => [flags, kind]),
    subcommands: help.visibleCommands(cmd).flatMap((c) => [c.name(), ...c.aliases()]),
    args,
    variadic: cmd.registeredArguments.at(-1)?.variadic === true,
  };
}

/** Every command and subcommand, under its name and its aliases. */
function specs(program: Command): Spec[] {
  const out: Spec[] = [specOf('', program)];
  const help = program.createHelp();
  for (const cmd of help.visibleCommands(program)) {
    for (const name of [cmd.name(), ...cmd.aliases()]) {
      out.push(specOf(name, cmd));
      for (const sub of cmd.createHelp().visibleCommands(cmd)) {
        for (const subName of [sub.name(), ...sub.aliases()]) {
          if (subName !== 'help') out.push(specOf(`${name} ${subName}`, sub));
        }
      }
    }
  }
  return out;
}

const fnName = (path: string) => `_tsrun_cmd_${path.replace(/[^a-z0-9]+/gi, '_') || 'root'}`;

function caseFor(spec: Spec): string {
  const lines: string[] = [];
  lines.push(`${fnName(spec.path)}() {`);
  lines.push(`  vopts=" ${spec.valueOptions.join(' ')} "`);
  lines.push(`  opts="${spec.options.join(' ')}"`);
  lines.push(`  subs="${spec.subcommands.join(' ')}"`);
  lines.push(`  args="${spec.args.join(' ')}"`);
  lines.push(`  variadic=${spec.variadic ? 1 : 0}`);
  if (spec.valueKinds.length > 0) {
    lines.push('  case "$prev" in');
    for (const [flags, kind] of spec.valueKinds) lines.push(`    ${flags.join('|')}) valuekind="${kind}" ;;`);
    lines.push('  esac');
  }
  lines.push('}');
  return lines.join('\n');
}

export function bashCompletion(program: Command): string {
  const all = specs(program);
  const root = all[0]!;
  const groups = all.filter((s) => s.path !== '' && !s.path.includes(' ') && s.subcommands.length > 0).map((s) => s.path);
  const dispatch = all.map((s) => `    '${s.path}') ${fnName(s.path)} ;;`).join('\n');
  return `# bash completion for tsrun                                   -*- shell-script -*-
# Generated by \`tsrun completion bash\` from tsrun's own command definitions.
# Every shell:  tsrun completion bash > /etc/bash_completion.d/tsrun
# This shell:   source <(tsrun completion bash)

# Global options seen on the line (--root DIR) are passed on to the lookups,
# so \`tsrun --root /tmp/store rm <TAB>\` lists the containers of that store.
__tsrun_q() { command tsrun "\${__tsrun_global[@]}" "$@" 2>/dev/null; }
__tsrun_containers() { __tsrun_q ps -a --format '{{.Names}}'; }
__tsrun_images() {
  __tsrun_q images --format json |
    sed -n 's/.*"Repository":"\\([^"]*\\)".*"Tag":"\\([^"]*\\)".*/\\1:\\2/p' | grep -v '<none>'
}
# bridge, host and none always exist; these are the networks made with \`tsrun network create\`.
__tsrun_networks() { __tsrun_q network ls | awk 'NR > 1 && $2 != "bridge" && $2 != "host" && $2 != "none" { print $2 }'; }

${all.map(caseFor).join('\n')}

__tsrun_spec() {
  vopts='' opts='' subs='' args='' variadic=0 valuekind=''
  case "$1" in
${dispatch}
  esac
}

_tsrun() {
  # Split the line ourselves (up to the cursor): COMP_WORDS breaks image names at ':'.
  local line=\${COMP_LINE:0:COMP_POINT}
  local -a words
  read -ra words <<<"$line"
  [[ $line =~ [[:space:]]$ ]] && words+=("")
  local cword=$(( \${#words[@]} - 1 ))
  local cur=\${words[cword]} prev=''
  (( cword > 0 )) && prev=\${words[cword-1]}
  local vopts opts subs args variadic valuekind
  local -a __tsrun_global=()

  # Find the command (and the subcommand of a group), skipping global options and their values.
  local path='' i=1 w
  __tsrun_spec ''
  local rootvopts=$vopts
  while (( i < cword )); do
    w=\${words[i]}
    case "$w" in
      --root) __tsrun_global+=("$w" "\${words[i+1]}"); i=$((i + 2)); continue ;;
      --root=*) __tsrun_global+=("$w") ;;
      -*) [[ $rootvopts == *" $w "* ]] && i=$((i + 1)) ;;
      *) path=$w; i=$((i + 1)); break ;;
    esac
    i=$((i + 1))
  done
  case " ${groups.join(' ')} " in
    *" $path "*)
      while (( i < cword )); do
        w=\${words[i]}
        if [[ $w != -* ]]; then path="$path $w"; i=$((i + 1)); break; fi
        i=$((i + 1))
      done ;;
  esac

  __tsrun_spec "$path"
  COMPREPLY=()
  if [[ -n $valuekind ]]; then
    case "$valuekind" in
      files) compopt -o filenames 2>/dev/null; COMPREPLY=( $(compgen -f -- "$cur") ) ;;
      dirs) compopt -o filenames 2>/dev/null; COMPREPLY=( $(compgen -d -- "$cur") ) ;;
      networks) COMPREPLY=( $(compgen -W "bridge none host $(__tsrun_networks)" -- "$cur") ) ;;
      words:*) COMPREPLY=( $(compgen -W "\${valuekind#words:}" -- "$cur") ) ;;
    esac
    return 0
  fi
  # The value of a flag such as --name or -e: nothing to offer.
  [[ -n $prev && $vopts == *" $prev "* ]] && return 0
  if [[ -z $path || ( -n $subs && $path != *" "* ) ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
    else
      COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
    fi
    return 0
  fi

  # Which positional is being completed: count the words after the command that are not
  # options or option values.
  local n=0
  while (( i < cword )); do
    w=\${words[i]}
    if [[ $w == -* ]]; then
      [[ $w != *=* && $vopts == *" $w "* ]] && i=$((i + 1))
    else
      n=$((n + 1))
    fi
    i=$((i + 1))
  done
  local -a kinds=( $args )
  local kind=\${kinds[n]} j
  if [[ -z $kind && $variadic == 1 && \${#kinds[@]} -gt 0 ]]; then kind=\${kinds[-1]}; fi
  # Past the image of \`run IMAGE COMMAND...\` every word belongs to the container's command.
  for (( j = 0; j < n && j < \${#kinds[@]}; j++ )); do
    [[ \${kinds[j]} == stop ]] && kind=stop
  done
  if [[ $kind == stop ]]; then compopt -o default 2>/dev/null; return 0; fi
  if [[ $cur == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
    return 0
  fi
  local list=''
  case "$kind" in
    container) list=$(__tsrun_containers) ;;
    image) list=$(__tsrun_images) ;;
    object) list="$(__tsrun_containers) $(__tsrun_images)" ;;
    network) list="bridge $(__tsrun_networks)" ;;
    command) list="${root.subcommands.join(' ')}" ;;
    shell) list='bash' ;;
    *) return 0 ;;
  esac
  COMPREPLY=( $(compgen -W "$list" -- "$cur") )
  # The line was split at spaces only; bash inserts after the last ':' of the word.
  if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
    local colon_prefix=\${cur%"\${cur##*:}"} k
    for k in "\${!COMPREPLY[@]}"; do COMPREPLY[k]=\${COMPREPLY[k]#"$colon_prefix"}; done
  fi
  return 0
}

complete -F _tsrun tsrun
`;
}
