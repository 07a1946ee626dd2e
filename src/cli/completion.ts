/**
 * Shell completions (bash, zsh, fish) generated from the command table. The scripts know the commands, their
 * subcommands, options (whole words: -ce, -nce), which options take a value and what each positional argument is;
 * values that depend on the machine (cgroups, governors, CPU notation) come from the hidden helper
 * `vfio-isolate __complete KIND PREFIX`. Chained commands: the command being completed is the nearest command name
 * before the cursor (a command name is never an option's value: the parser refuses that).
 */
import { GLOBAL_OPTIONS } from './parse.ts';
import type { ArgSpec, CommandSpec, OptionSpec } from './spec.ts';

import type { Shell } from './table.ts';
export { DYNAMIC_KINDS, SHELLS, type DynamicKind, type Shell } from './table.ts';

const HELP_WORDS = ['-h', '--help'];

/** One completable command: a top-level command or a subcommand, by its full name ("libvirt hook install"). */
export interface CompletionEntry {
  key: string;
  summary: string;
  subs: { name: string; summary: string }[];
  /** Every option word, with its help: `-ce`, `--cpu-exclusive`, ... plus -h/--help. */
  options: { word: string; help: string }[];
  /** Option words that take a value, with the kind of value. */
  valueOptions: { word: string; kind: string }[];
  /** One per positional argument: a kind (`cgroup`, `cpus`, `topic`, ...) or `=a,b` for fixed choices. */
  args: { kind: string; optional: boolean }[];
  /** Another command may follow (report commands run alone). */
  chain: boolean;
}

export function optionWords(o: OptionSpec): string[] {
  return [...(o.short ?? []), `--${o.long}`];
}

function valueKind(o: { complete?: string; choices?: string[] }): string {
  if (o.choices?.length) return `=${o.choices.join(',')}`;
  return o.complete ?? 'none';
}

function argKind(spec: CommandSpec, a: ArgSpec): string {
  // `help TOPIC` takes a command name or "cpus".
  if (spec.name === 'help' && a.name === 'TOPIC' && !a.complete && !a.choices) return 'topic';
  return valueKind(a);
}

export function visible(cmds: readonly CommandSpec[]): CommandSpec[] {
  return cmds.filter((c) => !c.hidden);
}

/** Flatten the table into completion entries (hidden commands left out). */
export function completionEntries(table: readonly CommandSpec[]): CompletionEntry[] {
  const out: CompletionEntry[] = [];
  const walk = (spec: CommandSpec, key: string): void => {
    const subs = spec.subcommands ? visible(spec.subcommands) : [];
    out.push({
      key,
      summary: spec.summary,
      subs: subs.map((s) => ({ name: s.name, summary: s.summary })),
      options: [
        ...spec.options.flatMap((o) => optionWords(o).map((word) => ({ word, help: o.help }))),
        ...HELP_WORDS.map((word) => ({ word, help: 'show help for this command' })),
      ],
      valueOptions: spec.options
        .filter((o) => o.type === 'string')
        .flatMap((o) => optionWords(o).map((word) => ({ word, kind: valueKind(o) }))),
      args: subs.length ? [] : spec.args.map((a) => ({ kind: argKind(spec, a), optional: !a.required })),
      chain: !subs.length && spec.kind !== 'report',
    });
    for (const s of subs) walk(s, `${key} ${s.name}`);
  };
  for (const c of visible(table)) walk(c, c.name);
  return out;
}

const globalWords = (): { word: string; help: string }[] =>
  GLOBAL_OPTIONS.flatMap((o) => optionWords(o).map((word) => ({ word, help: o.help })));
const globalValueWords = (): { word: string; kind: string }[] =>
  GLOBAL_OPTIONS.filter((o) => o.type === 'string').flatMap((o) =>
    optionWords(o).map((word) => ({ word, kind: valueKind(o) })),
  );

/** A single-quoted shell word (bash, zsh and fish all read '...' literally, except that fish also unescapes \\ and \'). */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
function fishQuote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
/** One line of a `_describe` array: "name:description" (colons in the name escaped). */
function describe(name: string, help: string): string {
  return sq(`${name.replace(/:/g, '\\:')}:${help.replace(/\s+/g, ' ')}`);
}

function header(shell: Shell, version: string, load: string, install: string): string {
  return [
    `# ${shell} completion for vfio-isolate ${version}, generated from its command table.`,
    `# Load it into this shell:  ${load}`,
    `# or install it:            ${install}`,
  ].join('\n');
}

// --------------------------------------------------------------------------------------------------------------
// bash

export function bashCompletion(table: readonly CommandSpec[], version: string): string {
  const entries = completionEntries(table);
  const names = visible(table).map((c) => c.name);
  const specCases = entries
    .map((e) => {
      const parts: string[] = [];
      if (e.subs.length) parts.push(`subs=${sq(e.subs.map((s) => s.name).join(' '))}`);
      parts.push(`opts=${sq(e.options.map((o) => o.word).join(' '))}`);
      if (e.valueOptions.length)
        parts.push(`vopts=${sq(e.valueOptions.map((o) => `${o.word}:${o.kind}`).join(' '))}`);
      if (e.args.length)
        parts.push(`args=(${e.args.map((a) => sq((a.optional ? '?' : '') + a.kind)).join(' ')})`);
      if (e.chain) parts.push('chain=1');
      return `    ${sq(e.key)}) ${parts.join('; ')} ;;`;
    })
    .join('\n');
  return `${header(
    'bash',
    version,
    'source <(vfio-isolate completion bash)',
    'vfio-isolate completion bash > /usr/share/bash-completion/completions/vfio-isolate',
  )}

_vfio_isolate_commands=${sq(names.join(' '))}
_vfio_isolate_globals=${sq(
    globalWords()
      .map((o) => o.word)
      .join(' '),
  )}
_vfio_isolate_global_values=${sq(
    globalValueWords()
      .map((o) => `${o.word}:${o.kind}`)
      .join(' '),
  )}

# Sets, for a command given by its full name ("libvirt hook install"): subs (its subcommands), opts (every
# option word), vopts ("WORD:KIND" for the options that take a value), args (one KIND per positional argument,
# "?KIND" when optional, "=a,b" for fixed choices) and chain (1 when another command may follow).
_vfio_isolate_spec() {
  subs='' opts='' vopts='' args=() chain=0
  case $1 in
${specCases}
  esac
}

# _vfio_isolate_in WORD LIST...: is WORD one of LIST?
_vfio_isolate_in() {
  local w=$1 x
  shift
  for x; do [[ $x == "$w" ]] && return 0; done
  return 1
}

# _vfio_isolate_kind WORD VOPTS...: prints the KIND of value the option WORD takes; fails when it takes none.
_vfio_isolate_kind() {
  local w=$1 x
  shift
  for x; do
    if [[ \${x%%:*} == "$w" ]]; then
      printf '%s\\n' "\${x#*:}"
      return 0
    fi
  done
  return 1
}

# _vfio_isolate_values KIND: adds the candidates for a value of KIND to COMPREPLY (uses cur and self).
_vfio_isolate_values() {
  local IFS=$'\\n' kind=$1
  case $kind in
    =*) IFS=$',\\n'; COMPREPLY+=($(compgen -W "\${kind#=}" -- "$cur")) ;;
    cgroup) COMPREPLY+=($(compgen -W "$("$self" __complete cgroups "$cur" 2>/dev/null)" -- "$cur")) ;;
    cpus) COMPREPLY+=($(compgen -W "$("$self" __complete cpus "$cur" 2>/dev/null)" -- "$cur")) ;;
    nodes) COMPREPLY+=($(compgen -W "$("$self" __complete nodes "$cur" 2>/dev/null)" -- "$cur")) ;;
    governor) COMPREPLY+=($(compgen -W "$("$self" __complete governors "$cur" 2>/dev/null)" -- "$cur")) ;;
    file) compopt -o filenames 2>/dev/null; COMPREPLY+=($(compgen -f -- "$cur")) ;;
    shell) COMPREPLY+=($(compgen -W $'bash\\nzsh\\nfish' -- "$cur")) ;;
    domain) COMPREPLY+=($(compgen -W "$(virsh -q -r list --all --name 2>/dev/null)" -- "$cur")) ;;
    pid) COMPREPLY+=($(compgen -W "$(ps -e -o pid= 2>/dev/null | tr -d ' ')" -- "$cur")) ;;
    topic) IFS=$' \\n'; COMPREPLY+=($(compgen -W "$_vfio_isolate_commands cpus" -- "$cur")) ;;
  esac
}

_vfio_isolate() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev='' self=\${COMP_WORDS[0]} cword=$COMP_CWORD
  local i w cmd='' cmdi=0 kind key npos=0 subs opts vopts args chain
  COMPREPLY=()
  (( cword > 0 )) && prev=\${COMP_WORDS[cword-1]}
  # --opt=VALUE: bash splits it into --opt, =, VALUE
  if [[ $cur == = ]]; then
    cur=''
  elif [[ $prev == = ]] && (( cword > 1 )); then
    prev=\${COMP_WORDS[cword-2]}
  fi
  # The command being completed: the nearest command name before the cursor.
  for (( i = cword - 1; i >= 1; i-- )); do
    w=\${COMP_WORDS[i]}
    if _vfio_isolate_in "$w" $_vfio_isolate_commands; then
      cmd=$w cmdi=$i
      # "help COMMAND" is help
      if (( i > 1 )) && [[ \${COMP_WORDS[i-1]} == help ]]; then cmd=help cmdi=$((i - 1)); fi
      break
    fi
  done
  if [[ -z $cmd ]]; then
    if kind=$(_vfio_isolate_kind "$prev" $_vfio_isolate_global_values); then
      _vfio_isolate_values "$kind"
    elif [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$_vfio_isolate_globals" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$_vfio_isolate_commands" -- "$cur"))
    fi
    return 0
  fi
  key=$cmd
  _vfio_isolate_spec "$key"
  i=$((cmdi + 1))
  while [[ -n $subs ]]; do
    if (( i >= cword )); then
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
      fi
      return 0
    fi
    w=\${COMP_WORDS[i]}
    _vfio_isolate_in "$w" $subs || return 0
    key="$key $w"
    _vfio_isolate_spec "$key"
    i=$((i + 1))
  done
  if kind=$(_vfio_isolate_kind "$prev" $vopts); then
    _vfio_isolate_values "$kind"
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return 0
  fi
  # Count the positional arguments already given, skipping options and their values.
  for (( ; i < cword; i++ )); do
    w=\${COMP_WORDS[i]}
    if [[ $w == -?* ]]; then
      if [[ \${COMP_WORDS[i+1]} == = ]]; then
        i=$((i + 2))
      elif _vfio_isolate_kind "$w" $vopts >/dev/null; then
        i=$((i + 1))
      fi
      continue
    fi
    npos=$((npos + 1))
  done
  if (( npos < \${#args[@]} )); then
    kind=\${args[npos]}
    if [[ $kind == '?'* ]]; then
      kind=\${kind#?}
      # an optional argument may be left out: the next command may come instead
      (( chain )) && COMPREPLY+=($(compgen -W "$_vfio_isolate_commands" -- "$cur"))
    fi
    _vfio_isolate_values "$kind"
  elif (( chain )); then
    COMPREPLY=($(compgen -W "$_vfio_isolate_commands" -- "$cur"))
  fi
  return 0
}

complete -F _vfio_isolate vfio-isolate
`;
}

// --------------------------------------------------------------------------------------------------------------
// zsh

export function zshCompletion(table: readonly CommandSpec[], version: string): string {
  const entries = completionEntries(table);
  const cmds = visible(table);
  const arr = (items: string[]): string =>
    items.length ? `(\n      ${items.join('\n      ')}\n    )` : '()';
  const specCases = entries
    .map((e) => {
      const parts: string[] = [];
      if (e.subs.length) parts.push(`subs=${arr(e.subs.map((s) => describe(s.name, s.summary)))}`);
      parts.push(`opts=${arr(e.options.map((o) => describe(o.word, o.help)))}`);
      if (e.valueOptions.length)
        parts.push(`vopts=(${e.valueOptions.map((o) => sq(`${o.word}:${o.kind}`)).join(' ')})`);
      if (e.args.length)
        parts.push(`args=(${e.args.map((a) => sq((a.optional ? '?' : '') + a.kind)).join(' ')})`);
      if (e.chain) parts.push('chain=1');
      return `    (${sq(e.key)})\n    ${parts.join('\n    ')}\n    ;;`;
    })
    .join('\n');
  return `#compdef vfio-isolate
${header(
  'zsh',
  version,
  'source <(vfio-isolate completion zsh)',
  'vfio-isolate completion zsh > "${fpath[1]}/_vfio-isolate"',
)}

# Sets, for a command given by its full name ("libvirt hook install"): subs and opts ("word:description"),
# vopts ("WORD:KIND" for the options that take a value), args (one KIND per positional argument, "?KIND" when
# optional, "=a,b" for fixed choices) and chain (1 when another command may follow).
_vfio_isolate_spec() {
  subs=() opts=() vopts=() args=() chain=0
  case $1 in
${specCases}
  esac
}

# _vfio_isolate_kind WORD VOPTS...: prints the KIND of value the option WORD takes; fails when it takes none.
_vfio_isolate_kind() {
  local w=$1 x
  shift
  for x in "$@"; do
    if [[ \${x%%:*} == "$w" ]]; then
      print -r -- "\${x#*:}"
      return 0
    fi
  done
  return 1
}

# _vfio_isolate_values KIND: offers the candidates for a value of KIND (uses self).
_vfio_isolate_values() {
  local kind=$1
  local -a c
  case $kind in
    ('='*) c=(\${(s:,:)kind#=}) ;;
    (cgroup) c=(\${(f)"$($self __complete cgroups "$PREFIX" 2>/dev/null)"}) ;;
    (cpus) c=(\${(f)"$($self __complete cpus "$PREFIX" 2>/dev/null)"}) ;;
    (nodes) c=(\${(f)"$($self __complete nodes "$PREFIX" 2>/dev/null)"}) ;;
    (governor) c=(\${(f)"$($self __complete governors "$PREFIX" 2>/dev/null)"}) ;;
    (file) _files; return ;;
    (shell) c=(bash zsh fish) ;;
    (domain) c=(\${(f)"$(virsh -q -r list --all --name 2>/dev/null)"}) ;;
    (pid) _pids; return ;;
    (topic) c=(\${_vfio_isolate_cmds%%:*} cpus) ;;
    (*) return 1 ;;
  esac
  c=(\${c:#})
  (( \${#c} )) && compadd -a c
}

_vfio_isolate() {
  local cur=\${words[CURRENT]} prev=\${words[CURRENT-1]} self=\${words[1]}
  local w cmd='' key kind
  local -i i cmdi=0 npos=0 chain=0
  local -a subs opts vopts args names globals globalvals
  local -a _vfio_isolate_cmds
  _vfio_isolate_cmds=${arr(cmds.map((c) => describe(c.name, c.summary)))}
  globals=${arr(globalWords().map((o) => describe(o.word, o.help)))}
  globalvals=(${globalValueWords()
    .map((o) => sq(`${o.word}:${o.kind}`))
    .join(' ')})
  names=(\${_vfio_isolate_cmds%%:*})
  # The command being completed: the nearest command name before the cursor.
  for (( i = CURRENT - 1; i > 1; i-- )); do
    w=\${words[i]}
    if (( \${names[(Ie)$w]} )); then
      cmd=$w
      cmdi=i
      # "help COMMAND" is help
      if (( i > 2 )) && [[ \${words[i-1]} == help ]]; then cmd=help; cmdi=i-1; fi
      break
    fi
  done
  if [[ -z $cmd ]]; then
    if [[ $cur == --*=* ]] && kind=$(_vfio_isolate_kind "\${cur%%=*}" $globalvals); then
      compset -P '*='
      _vfio_isolate_values $kind
    elif kind=$(_vfio_isolate_kind "$prev" $globalvals); then
      _vfio_isolate_values $kind
    elif [[ $cur == -* ]]; then
      _describe -t options 'global option' globals
    else
      _describe -t commands 'vfio-isolate command' _vfio_isolate_cmds
    fi
    return
  fi
  key=$cmd
  _vfio_isolate_spec $key
  i=cmdi+1
  while (( \${#subs} )); do
    if (( i >= CURRENT )); then
      if [[ $cur == -* ]]; then
        _describe -t options 'option' opts
      else
        _describe -t commands 'subcommand' subs
      fi
      return
    fi
    w=\${words[i]}
    names=(\${subs%%:*})
    (( \${names[(Ie)$w]} )) || return 1
    key="$key $w"
    _vfio_isolate_spec $key
    i=i+1
  done
  if [[ $cur == --*=* ]] && kind=$(_vfio_isolate_kind "\${cur%%=*}" $vopts); then
    compset -P '*='
    _vfio_isolate_values $kind
    return
  fi
  if kind=$(_vfio_isolate_kind "$prev" $vopts); then
    _vfio_isolate_values $kind
    return
  fi
  if [[ $cur == -* ]]; then
    _describe -t options 'option' opts
    return
  fi
  # Count the positional arguments already given, skipping options and their values.
  for (( ; i < CURRENT; i++ )); do
    w=\${words[i]}
    if [[ $w == -?* ]]; then
      if [[ $w != *=* ]] && _vfio_isolate_kind "$w" $vopts >/dev/null; then i=i+1; fi
      continue
    fi
    npos=npos+1
  done
  if (( npos < \${#args} )); then
    kind=\${args[npos+1]}
    if [[ $kind == '?'* ]]; then
      kind=\${kind#?}
      # an optional argument may be left out: the next command may come instead
      (( chain )) && _describe -t commands 'vfio-isolate command' _vfio_isolate_cmds
    fi
    _vfio_isolate_values $kind
  elif (( chain )); then
    _describe -t commands 'vfio-isolate command' _vfio_isolate_cmds
  fi
}

if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _vfio_isolate "$@"
else
  compdef _vfio_isolate vfio-isolate
fi
`;
}

// --------------------------------------------------------------------------------------------------------------
// fish

export function fishCompletion(table: readonly CommandSpec[], version: string): string {
  const entries = completionEntries(table);
  const cmds = visible(table);
  const tabbed = (items: { name: string; help: string }[]): string =>
    items.map((i) => fishQuote(`${i.name}\t${i.help.replace(/\s+/g, ' ')}`)).join(' ');
  const specCases = entries
    .map((e) => {
      const lines = [
        `        case ${fishQuote(e.key)}`,
        `            set -g __vfio_isolate_subs ${tabbed(e.subs.map((s) => ({ name: s.name, help: s.summary })))}`,
        `            set -g __vfio_isolate_opts ${tabbed(e.options.map((o) => ({ name: o.word, help: o.help })))}`,
        `            set -g __vfio_isolate_vopts ${e.valueOptions.map((o) => fishQuote(`${o.word}:${o.kind}`)).join(' ')}`,
        `            set -g __vfio_isolate_args ${e.args.map((a) => fishQuote((a.optional ? '?' : '') + a.kind)).join(' ')}`,
        `            set -g __vfio_isolate_chain ${e.chain ? 1 : 0}`,
      ];
      return lines.join('\n');
    })
    .join('\n');
  return `${header(
    'fish',
    version,
    'vfio-isolate completion fish | source',
    'vfio-isolate completion fish > ~/.config/fish/completions/vfio-isolate.fish',
  )}

set -g __vfio_isolate_commands ${tabbed(cmds.map((c) => ({ name: c.name, help: c.summary })))}
set -g __vfio_isolate_globals ${tabbed(globalWords().map((o) => ({ name: o.word, help: o.help })))}
set -g __vfio_isolate_global_values ${globalValueWords()
    .map((o) => fishQuote(`${o.word}:${o.kind}`))
    .join(' ')}

# Sets, for a command given by its full name ("libvirt hook install"): subs and opts ("word<TAB>description"),
# vopts ("WORD:KIND" for the options that take a value), args (one KIND per positional argument, "?KIND" when
# optional, "=a,b" for fixed choices) and chain (1 when another command may follow).
function __vfio_isolate_spec --argument-names key
    set -g __vfio_isolate_subs
    set -g __vfio_isolate_opts
    set -g __vfio_isolate_vopts
    set -g __vfio_isolate_args
    set -g __vfio_isolate_chain 0
    switch $key
${specCases}
    end
end

# __vfio_isolate_kind WORD VOPTS...: prints the KIND of value the option WORD takes; fails when it takes none.
function __vfio_isolate_kind --argument-names w
    for x in $argv[2..-1]
        set -l parts (string split -m 1 : -- $x)
        if test "$parts[1]" = "$w"
            echo $parts[2]
            return 0
        end
    end
    return 1
end

# __vfio_isolate_values KIND SELF CUR: prints the candidates for a value of KIND.
function __vfio_isolate_values --argument-names kind self cur
    switch $kind
        case '=*'
            string split , -- (string sub -s 2 -- $kind)
        case cgroup
            $self __complete cgroups "$cur" 2>/dev/null
        case cpus
            $self __complete cpus "$cur" 2>/dev/null
        case nodes
            $self __complete nodes "$cur" 2>/dev/null
        case governor
            $self __complete governors "$cur" 2>/dev/null
        case file
            __fish_complete_path "$cur"
        case shell
            printf '%s\\n' bash zsh fish
        case domain
            virsh -q -r list --all --name 2>/dev/null
        case pid
            __fish_complete_pids
        case topic
            string replace -r '\\t.*' '' -- $__vfio_isolate_commands
            echo cpus
    end
end

function __vfio_isolate_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l self $words[1]
    set -l n (count $words)
    set -l names (string replace -r '\\t.*' '' -- $__vfio_isolate_commands)
    set -l cmd
    set -l cmdi 0
    # The command being completed: the nearest command name before the cursor.
    set -l i $n
    while test $i -ge 2
        if contains -- $words[$i] $names
            set cmd $words[$i]
            set cmdi $i
            # "help COMMAND" is help
            set -l j (math $i - 1)
            if test $i -gt 2; and test "$words[$j]" = help
                set cmd help
                set cmdi $j
            end
            break
        end
        set i (math $i - 1)
    end
    set -l prev
    test $n -ge 1; and set prev $words[$n]
    set -l kind
    if test -z "$cmd"
        if set kind (__vfio_isolate_kind "$prev" $__vfio_isolate_global_values)
            __vfio_isolate_values $kind $self "$cur"
        else if string match -q -- '-*' "$cur"
            printf '%s\\n' $__vfio_isolate_globals
        else
            printf '%s\\n' $__vfio_isolate_commands
        end
        return 0
    end
    set -l key $cmd
    __vfio_isolate_spec $key
    set i (math $cmdi + 1)
    while test (count $__vfio_isolate_subs) -gt 0
        if test $i -gt $n
            if string match -q -- '-*' "$cur"
                printf '%s\\n' $__vfio_isolate_opts
            else
                printf '%s\\n' $__vfio_isolate_subs
            end
            return 0
        end
        set -l subnames (string replace -r '\\t.*' '' -- $__vfio_isolate_subs)
        contains -- $words[$i] $subnames; or return 0
        set key "$key $words[$i]"
        __vfio_isolate_spec $key
        set i (math $i + 1)
    end
    if string match -q -- '--*=*' "$cur"
        set -l opt (string split -m 1 = -- $cur)
        if set kind (__vfio_isolate_kind $opt[1] $__vfio_isolate_vopts)
            for c in (__vfio_isolate_values $kind $self "$opt[2]")
                echo "$opt[1]=$c"
            end
            return 0
        end
    end
    if set kind (__vfio_isolate_kind "$prev" $__vfio_isolate_vopts)
        __vfio_isolate_values $kind $self "$cur"
        return 0
    end
    if string match -q -- '-*' "$cur"
        printf '%s\\n' $__vfio_isolate_opts
        return 0
    end
    # Count the positional arguments already given, skipping options and their values.
    set -l npos 0
    while test $i -le $n
        set -l w $words[$i]
        if string match -q -- '-?*' "$w"
            if not string match -q -- '*=*' "$w"; and __vfio_isolate_kind "$w" $__vfio_isolate_vopts >/dev/null
                set i (math $i + 1)
            end
        else
            set npos (math $npos + 1)
        end
        set i (math $i + 1)
    end
    if test $npos -lt (count $__vfio_isolate_args)
        set kind $__vfio_isolate_args[(math $npos + 1)]
        if test (string sub -l 1 -- $kind) = '?'
            set kind (string sub -s 2 -- $kind)
            # an optional argument may be left out: the next command may come instead
            test $__vfio_isolate_chain = 1; and printf '%s\\n' $__vfio_isolate_commands
        end
        __vfio_isolate_values $kind $self "$cur"
    else if test $__vfio_isolate_chain = 1
        printf '%s\\n' $__vfio_isolate_commands
    end
    return 0
end

complete -c vfio-isolate -e
complete -c vfio-isolate -f -a '(__vfio_isolate_complete)'
`;
}

export function completionScript(shell: Shell, table: readonly CommandSpec[], version: string): string {
  switch (shell) {
    case 'bash':
      return bashCompletion(table, version);
    case 'zsh':
      return zshCompletion(table, version);
    case 'fish':
      return fishCompletion(table, version);
  }
}
