/**
 * The text of the libvirt hook script that `libvirt hook install` writes, and how to recognise one of ours.
 * Pure: no I/O.
 *
 * libvirt (>= 6.5) runs every executable in /etc/libvirt/hooks/qemu.d/ with the arguments
 * `DOMAIN OPERATION SUB-OPERATION EXTRA` and the domain XML on stdin, for every domain. Our script acts for one
 * domain only: `prepare begin` (before QEMU starts) runs `isolate`, `started begin` (the vCPU cgroups exist) runs
 * `partition --profile FILE` (which does nothing unless the profile says partition = true) and, in the background,
 * `measure --profile FILE --after-start` (which does nothing unless the profile sets [measure] after_start), `release end` (after
 * QEMU has gone) runs `release`. It calls node and the tool by absolute, canonical paths (libvirtd gives hooks a minimal environment),
 * keeps the lock wait short (libvirtd waits for its hooks), and logs to syslog because hook output is rarely seen.
 *
 * Before running anything it checks again what `libvirt hook install` checked (src/kernel/hook-targets.ts): node,
 * the tool and the other recorded files, with every directory on the way, and every file under the recorded trees,
 * must be owned by root and writable by nobody else. If not (or node is gone), it runs nothing, logs one line and
 * exits 1 at `prepare begin` (libvirt does not start the domain and shows the line) and 0 at `release end`
 * (libvirt ignores that status). Other operations (reconnect, migrate, ...) exit 0 before any check, so a hook
 * that has become unsafe never stops libvirtd from reconnecting to running domains.
 */

/** The line that marks a hook file as ours. A file without it is never overwritten or removed. */
export const HOOK_MARKER = '# vfio-isolate-hook: 1';
/** Our files in qemu.d are named PREFIX + domain. */
export const HOOK_PREFIX = 'vfio-isolate-';
/** The bound of the measurement the hook starts after "started" (s): the longest window, 3600 s, and a margin. */
export const MEASURE_TIMEOUT_S = 3700;
/** Lock wait for runs started by the hook (ms). */
export const HOOK_LOCK_WAIT_MS = 5000;

/**
 * Domain names we accept: letters, digits and `_ . + -`, not starting with `.` or `-`, at most 128 characters.
 * libvirt allows more, but a name with `/`, whitespace, quotes or shell metacharacters has no business in a file
 * name and a shell script.
 */
export function domainNameProblem(name: string): string | undefined {
  if (name === '') return 'the domain name is empty';
  if (name.length > 128) return 'the domain name is longer than 128 characters';
  if (/^[.-]/.test(name)) return `the domain name "${name}" starts with "${name[0]}"`;
  const bad = /[^A-Za-z0-9_.+-]/.exec(name);
  if (bad) {
    const c = bad[0];
    const shown = /\s/.test(c) ? 'whitespace' : c < ' ' || c === '\x7f' ? 'a control character' : `"${c}"`;
    return `the domain name ${JSON.stringify(name)} contains ${shown}; hooks support names made of letters, digits and _ . + -`;
  }
  return undefined;
}

/** Quote a word for sh: single quotes, with `'` written as `'\''`. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=+,@%-]+$/.test(s) ? `'${s}'` : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A path that can stand in a comment line of the script and be parsed back: no control characters. */
export function pathProblem(p: string): string | undefined {
  if (!p.startsWith('/')) return `${JSON.stringify(p)} is not an absolute path`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(p))
    return `${JSON.stringify(p)} contains a control character (newline, tab, ...)`;
  return undefined;
}

export interface HookScriptOptions {
  domain: string;
  /** Absolute path of the profile. */
  profile: string;
  /** Canonical path of the node binary (process.execPath, resolved). */
  node: string;
  /** Extra node arguments (e.g. the tsx loader when running from the sources). */
  nodeArgs?: readonly string[];
  /** Canonical path of the tool's entry (the bundle). */
  tool: string;
  /** Other files the hook checks before running (canonical), with the directories on the way. */
  files?: readonly string[];
  /** Directories whose every file and subdirectory the hook checks before running (canonical). */
  trees?: readonly string[];
  /** The journal (system path), /run/vfio-isolate/DOMAIN.journal. */
  journal: string;
  /** Directories install created (system paths), removed again by uninstall when empty. */
  created?: readonly string[];
}

export interface HookInfo {
  domain: string;
  profile?: string;
  journal?: string;
  created: string[];
  /** What the hook runs and checks (absent in hooks written before these were recorded). */
  node?: string;
  tool?: string;
  files: string[];
  trees: string[];
}

/**
 * The shell functions that check, at run time, that root alone can change what the hook runs: `check_paths P...`
 * (each P and every directory on the way: exists, owned by uid 0, no group/other write bit, no symlink since
 * install; one stat(1) for all) and `check_trees D...` (every file and directory under the Ds, symlinks followed;
 * one find(1)). On a problem they set `why` and return 1. A few processes per run, not one per path: libvirtd
 * waits for its hooks.
 */
const CHECK_FUNCTIONS: readonly string[] = [
  '# The paths given and every directory on the way to each, one per line, from / down.',
  'prefixes() {',
  '  for f in "$@"; do',
  "    printf '/\\n'",
  '    p=',
  '    rest=${f#/}',
  '    while [ -n "$rest" ]; do',
  '      case $rest in',
  '        */*) p=$p/${rest%%/*}; rest=${rest#*/} ;;',
  '        *) p=$p/$rest; rest= ;;',
  '      esac',
  '      printf \'%s\\n\' "$p"',
  '    done',
  '  done',
  '}',
  '',
  '# check_paths P...: each P and every directory on the way exists, is no symlink (none was at install), belongs',
  '# to root and is not writable by group or others. One stat(1) for all of them.',
  'check_paths() {',
  '  list=$(prefixes "$@")',
  '  oldifs=$IFS',
  "  IFS='",
  "'",
  '  set -f',
  '  for p in $list; do',
  '    if [ ! -e "$p" ] && [ ! -L "$p" ]; then',
  '      why="$p is gone"',
  '      IFS=$oldifs',
  '      set +f',
  '      return 1',
  '    fi',
  '  done',
  "  out=$(stat -c '%F|%u|%a|%n' -- $list 2>/dev/null)",
  '  IFS=$oldifs',
  '  set +f',
  "  while IFS='|' read -r type uid mode name; do",
  '    [ -n "$name" ] || continue',
  '    if [ "$type" = \'symbolic link\' ]; then',
  '      why="$name is a symbolic link now (it was not when the hook was installed)"',
  '      return 1',
  '    fi',
  '    if [ "$uid" != 0 ]; then',
  '      why="$name is owned by uid $uid, not by root"',
  '      return 1',
  '    fi',
  '    m=$((0$mode))',
  '    if [ $((m & 2)) -ne 0 ]; then why="$name is writable by others"; return 1; fi',
  '    if [ $((m & 16)) -ne 0 ]; then why="$name is writable by group"; return 1; fi',
  '  done <<EOT',
  '$out',
  'EOT',
  '  return 0',
  '}',
  '',
  '# check_trees D...: every file and directory under each D (symlinks followed) belongs to root and is not',
  '# writable by group or others. One find(1) for all of them.',
  'check_trees() {',
  '  bad=$(find -L "$@" \\( ! -user 0 -o -perm -020 -o -perm -002 \\) -print 2>/dev/null | head -n 1)',
  '  [ -z "$bad" ] && return 0',
  '  st=$(stat -L -c \'%u %a\' -- "$bad" 2>/dev/null)',
  '  case $st in',
  '    \'\') why="$bad cannot be read" ;;',
  '    \'0 \'*) why="$bad is writable by group or others" ;;',
  '    *) why="$bad is owned by uid ${st%% *}, not by root" ;;',
  '  esac',
  '  return 1',
  '}',
];

/** The hook script for one domain. */
export function renderHookScript(o: HookScriptOptions): string {
  const node = ['"$NODE"', ...(o.nodeArgs ?? []).map(shQuote)].join(' ');
  const trees = (o.trees ?? []).map(shQuote).join(' ');
  const checks = [
    ['check_paths "$NODE" "$TOOL"', ...(o.files ?? []).map(shQuote), ...(o.trees ?? []).map(shQuote)].join(
      ' ',
    ),
    ...(trees ? [`check_trees ${trees}`] : []),
  ];
  const lines = [
    '#!/bin/sh',
    `# vfio-isolate libvirt hook for the domain ${o.domain}: managed by vfio-isolate, do not edit.`,
    HOOK_MARKER,
    `# vfio-isolate-hook-domain: ${o.domain}`,
    `# vfio-isolate-hook-profile: ${o.profile}`,
    `# vfio-isolate-hook-journal: ${o.journal}`,
    ...(o.created ?? []).map((d) => `# vfio-isolate-hook-created: ${d}`),
    `# vfio-isolate-hook-node: ${o.node}`,
    `# vfio-isolate-hook-tool: ${o.tool}`,
    ...(o.files ?? []).map((f) => `# vfio-isolate-hook-file: ${f}`),
    ...(o.trees ?? []).map((d) => `# vfio-isolate-hook-tree: ${d}`),
    `# Remove it with: vfio-isolate libvirt hook uninstall ${o.domain}`,
    '#',
    '# libvirt (>= 6.5) runs every executable in /etc/libvirt/hooks/qemu.d/ for every domain with the arguments',
    '# DOMAIN OPERATION SUB-OPERATION EXTRA (domain XML on stdin). This one acts for the domain above only:',
    '# "prepare begin" (before QEMU starts) isolates the VM CPUs, "started begin" makes its vCPUs isolated partitions if the profile says partition = true (and measures them in the background if it sets [measure] after_start), "release end" (after QEMU has gone) undoes it all.',
    '# A failed isolate (rolled back, nothing changed) makes libvirt refuse to start the domain, with the reason.',
    '# Output goes to syslog (journalctl -t vfio-isolate). It must never call back into libvirt (deadlock).',
    '# Before running node it checks that root alone can change node, the tool and the files above (owner root,',
    '# not writable by group or others, nor any directory on the way); if not, or if node is gone, it runs nothing,',
    '# logs why, and exits 1 at "prepare begin" (the domain does not start) and 0 at "release end".',
    '',
    `[ "$1" = ${shQuote(o.domain)} ] || exit 0`,
    '',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `VFIO_ISOLATE_LOCK_WAIT_MS=${HOOK_LOCK_WAIT_MS}`,
    'export PATH VFIO_ISOLATE_LOCK_WAIT_MS',
    `PROFILE=${shQuote(o.profile)}`,
    `JOURNAL=${shQuote(o.journal)}`,
    `NODE=${shQuote(o.node)}`,
    `TOOL=${shQuote(o.tool)}`,
    '',
    'say() {',
    '  logger -t vfio-isolate -- "$1" 2>/dev/null || :',
    '}',
    '',
    '# Logged, and on stderr (libvirt shows it when the hook fails).',
    'refuse() {',
    '  say "$1"',
    '  printf \'vfio-isolate: %s\\n\' "$1" >&2',
    '}',
    '',
    ...CHECK_FUNCTIONS,
    '',
    'targets_ok() {',
    '  if ! command -v stat >/dev/null 2>&1 || ! command -v find >/dev/null 2>&1; then',
    "    why='stat or find is missing, so who can change the files cannot be checked'",
    '    return 1',
    '  fi',
    ...checks.map((c, i) => `  ${c}${i < checks.length - 1 ? ' &&' : ''}`),
    '}',
    '',
    'run() {',
    '  if [ ! -e "$NODE" ]; then',
    '    refuse "$1 $2 $3: not running vfio-isolate $4: node $NODE is gone (moved or uninstalled since the hook was installed); run vfio-isolate libvirt hook install $1 again with a root-owned node"',
    '    return 1',
    '  fi',
    '  if ! targets_ok; then',
    '    refuse "$1 $2 $3: not running vfio-isolate $4 as root: $why; install vfio-isolate and node root-owned, then run vfio-isolate libvirt hook install $1 again"',
    '    return 1',
    '  fi',
    '  say "$1 $2 $3: vfio-isolate $4"',
    `  out=$(${node} "$TOOL" -u "$JOURNAL" "$4" --profile "$PROFILE" </dev/null 2>&1)`,
    '  rc=$?',
    '  printf \'%s\\n\' "$out" | while IFS= read -r line; do',
    '    [ -n "$line" ] && say "$1: $line"',
    '  done',
    '  if [ "$rc" -ne 0 ]; then',
    '    say "$1 $2 $3: vfio-isolate $4 exited with status $rc"',
    '    printf \'%s\\n\' "$out" >&2',
    '  fi',
    '  return "$rc"',
    '}',
    '',
    '# [measure] after_start = N in the profile: measure the VM CPUs passively for N seconds after "started" and log',
    '# the one-line summary. In the background with every descriptor closed, so the hook returns at once and libvirt',
    '# does not wait; bounded by timeout(1); the tool exits at once when the profile does not ask for it.',
    'measure_later() {',
    '  [ -e "$NODE" ] || return 0',
    '  (',
    '    if ! targets_ok; then',
    '      say "$1 $2 $3: not running vfio-isolate measure as root: $why"',
    '      exit 0',
    '    fi',
    '    bound=',
    `    command -v timeout >/dev/null 2>&1 && bound='timeout -k 10 ${MEASURE_TIMEOUT_S}'`,
    `    out=$($bound ${node} "$TOOL" measure --profile "$PROFILE" --after-start </dev/null 2>&1)`,
    '    rc=$?',
    '    printf \'%s\\n\' "$out" | while IFS= read -r line; do',
    '      [ -n "$line" ] && say "$1: $line"',
    '    done',
    '    [ "$rc" -le 1 ] || say "$1 $2 $3: vfio-isolate measure exited with status $rc"',
    '  ) </dev/null >/dev/null 2>&1 &',
    '}',
    '',
    'case "$2 $3" in',
    '  "prepare begin")',
    '    run "$1" "$2" "$3" isolate',
    '    ;;',
    '  "started begin")',
    '    run "$1" "$2" "$3" partition || :',
    '    measure_later "$1" "$2" "$3"',
    '    ;;',
    '  "release end")',
    '    run "$1" "$2" "$3" release || :',
    '    ;;',
    'esac',
    '',
  ];
  return lines.join('\n');
}

/** Is this file one of ours? (Has the marker line among its first lines.) */
export function isOurHook(text: string): boolean {
  return text.startsWith('#!') && text.split('\n', 12).includes(HOOK_MARKER);
}

/** The domain, profile, journal, created directories and checked targets recorded in one of our hook scripts. */
export function parseHookScript(text: string): HookInfo | undefined {
  if (!isOurHook(text)) return undefined;
  const lines = text.split('\n');
  const header = lines.slice(
    0,
    lines.findIndex((l, i) => i > 0 && !l.startsWith('#')),
  );
  const field = (name: string): string[] =>
    header
      .filter((l) => l.startsWith(`# vfio-isolate-hook-${name}: `))
      .map((l) => l.slice(`# vfio-isolate-hook-${name}: `.length));
  const domain = field('domain')[0];
  if (domain === undefined) return undefined;
  const info: HookInfo = { domain, created: field('created'), files: field('file'), trees: field('tree') };
  const node = field('node')[0];
  if (node !== undefined) info.node = node;
  const tool = field('tool')[0];
  if (tool !== undefined) info.tool = tool;
  const profile = field('profile')[0];
  if (profile !== undefined) info.profile = profile;
  const journal = field('journal')[0];
  if (journal !== undefined) info.journal = journal;
  return info;
}

/** The file name of a domain's hook in qemu.d. */
export function hookFileName(domain: string): string {
  return `${HOOK_PREFIX}${domain}`;
}
