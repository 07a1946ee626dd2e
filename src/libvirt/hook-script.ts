/**
 * The text of the libvirt hook script that `libvirt hook install` writes, and how to recognise one of ours.
 * Pure: no I/O.
 *
 * libvirt (>= 6.5) runs every executable in /etc/libvirt/hooks/qemu.d/ with the arguments
 * `DOMAIN OPERATION SUB-OPERATION EXTRA` and the domain XML on stdin, for every domain. Our script acts for one
 * domain only: `prepare begin` (before QEMU starts) runs `isolate`, `release end` (after QEMU has gone) runs
 * `release`. It calls node and the tool by absolute paths (libvirtd gives hooks a minimal environment), keeps the
 * lock wait short (libvirtd waits for its hooks), and logs to syslog because hook output is rarely seen.
 */

/** The line that marks a hook file as ours. A file without it is never overwritten or removed. */
export const HOOK_MARKER = '# vfio-isolate-hook: 1';
/** Our files in qemu.d are named PREFIX + domain. */
export const HOOK_PREFIX = 'vfio-isolate-';
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
  /** Absolute path of the node binary (process.execPath). */
  node: string;
  /** Extra node arguments (e.g. the tsx loader when running from the sources). */
  nodeArgs?: readonly string[];
  /** Absolute path of the tool's script (the bundle). */
  tool: string;
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
}

/** The hook script for one domain. */
export function renderHookScript(o: HookScriptOptions): string {
  const node = [o.node, ...(o.nodeArgs ?? [])].map(shQuote).join(' ');
  const lines = [
    '#!/bin/sh',
    `# vfio-isolate libvirt hook for the domain ${o.domain}: managed by vfio-isolate, do not edit.`,
    HOOK_MARKER,
    `# vfio-isolate-hook-domain: ${o.domain}`,
    `# vfio-isolate-hook-profile: ${o.profile}`,
    `# vfio-isolate-hook-journal: ${o.journal}`,
    ...(o.created ?? []).map((d) => `# vfio-isolate-hook-created: ${d}`),
    `# Remove it with: vfio-isolate libvirt hook uninstall ${o.domain}`,
    '#',
    '# libvirt (>= 6.5) runs every executable in /etc/libvirt/hooks/qemu.d/ for every domain with the arguments',
    '# DOMAIN OPERATION SUB-OPERATION EXTRA (domain XML on stdin). This one acts for the domain above only:',
    '# "prepare begin" (before QEMU starts) isolates the VM CPUs, "release end" (after QEMU has gone) undoes it.',
    '# A failed isolate (rolled back, nothing changed) makes libvirt refuse to start the domain, with the reason.',
    '# Output goes to syslog (journalctl -t vfio-isolate). It must never call back into libvirt (deadlock).',
    '',
    `[ "$1" = ${shQuote(o.domain)} ] || exit 0`,
    '',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `VFIO_ISOLATE_LOCK_WAIT_MS=${HOOK_LOCK_WAIT_MS}`,
    'export PATH VFIO_ISOLATE_LOCK_WAIT_MS',
    `PROFILE=${shQuote(o.profile)}`,
    `JOURNAL=${shQuote(o.journal)}`,
    '',
    'say() {',
    '  logger -t vfio-isolate -- "$1" 2>/dev/null || :',
    '}',
    '',
    'run() {',
    '  say "$1 $2 $3: vfio-isolate $4"',
    `  out=$(${node} ${shQuote(o.tool)} -u "$JOURNAL" "$4" --profile "$PROFILE" </dev/null 2>&1)`,
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
    'case "$2 $3" in',
    '  "prepare begin")',
    '    run "$1" "$2" "$3" isolate',
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

/** The domain, profile, journal and created directories recorded in one of our hook scripts. */
export function parseHookScript(text: string): HookInfo | undefined {
  if (!isOurHook(text)) return undefined;
  const field = (name: string): string[] =>
    text
      .split('\n', 40)
      .filter((l) => l.startsWith(`# vfio-isolate-hook-${name}: `))
      .map((l) => l.slice(`# vfio-isolate-hook-${name}: `.length));
  const domain = field('domain')[0];
  if (domain === undefined) return undefined;
  const info: HookInfo = { domain, created: field('created') };
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
