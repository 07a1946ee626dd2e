/**
 * The manual page vfio-isolate(1), generated from the command table (the same table that drives parsing, help and
 * completions). Deterministic: no date, so the checked-in page can be compared with a fresh generation.
 */
import { NOTATION_HELP } from '../cpus/notation.ts';
import { P } from '../kernel/paths.ts';
import { GLOBAL_OPTIONS } from './parse.ts';
import type { ArgSpec, CommandSpec, OptionSpec } from './spec.ts';
import { usageLine } from './usage.ts';

// --------------------------------------------------------------------------------------------------------------
// roff escaping

/** Escape text for roff: backslashes, hyphens (as \-), non-ASCII characters (as \[uXXXX]). */
export function roffEscape(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\e';
    else if (ch === '-') out += '\\-';
    else if (cp > 0x7e || (cp < 0x20 && ch !== '\t'))
      out += `\\[u${cp.toString(16).toUpperCase().padStart(4, '0')}]`;
    else out += ch;
  }
  return out;
}

/** Prose: escaped, `code` set in bold. */
export function prose(text: string): string {
  return text
    .split(/(`[^`]+`)/)
    .map((part) => (/^`[^`]+`$/.test(part) ? `\\fB${roffEscape(part.slice(1, -1))}\\fR` : roffEscape(part)))
    .join('');
}

/** Code (examples, paths): escaped, and quotes that roff would typeset as curly ones kept straight. */
export function code(text: string): string {
  return roffEscape(text).replace(/'/g, '\\(aq').replace(/`/g, '\\(ga');
}

/** A text line: a leading . or ' would be read as a request, so it is protected with \&. */
function line(text: string): string {
  return /^[.']/.test(text) ? `\\&${text}` : text;
}

/** A macro argument: quoted, inner double quotes as \(dq. */
function arg(text: string): string {
  return `"${text.replace(/"/g, '\\(dq')}"`;
}

const B = (s: string): string => `\\fB${s}\\fR`;
const I = (s: string): string => `\\fI${s}\\fR`;

// --------------------------------------------------------------------------------------------------------------
// pieces

function optionTag(o: OptionSpec): string {
  const names = [...(o.short ?? []), `--${o.long}`].map((n) => B(roffEscape(n))).join(', ');
  return o.type === 'string' ? `${names} ${I(roffEscape(o.valueName ?? 'VALUE'))}` : names;
}

function optionHelp(o: OptionSpec): string {
  return prose(capitalise(o.help) + (o.choices ? ` (one of: ${o.choices.join(', ')})` : '')) + '.';
}

function argHelp(a: ArgSpec): string {
  return (
    prose(
      capitalise(a.help) +
        (a.choices ? ` (one of: ${a.choices.join(', ')})` : '') +
        (a.required ? '' : '; optional'),
    ) + '.'
  );
}

/** The usage line of src/cli/usage.ts, names in bold and placeholders in italics. */
function usage(spec: CommandSpec, full: string): string {
  return usageLine(spec, full, { name: (s) => B(roffEscape(s)), meta: (s) => I(roffEscape(s)) });
}

/**
 * An example command as shell lines: a long chain is broken before each chained command (with `\` continuations),
 * the way the 0.5.2 documentation wrote them; a part still too long is wrapped at word boundaries.
 */
export function exampleLines(example: string, commandNames: readonly string[], width = 72): string[] {
  if (example.length <= width) return [example];
  // an option stays on the line of its value
  const words: string[] = [];
  for (const w of example.split(' ')) {
    const last = words[words.length - 1];
    if (
      last !== undefined &&
      /^-/.test(last.split(' ').pop()!) &&
      !/^-/.test(w) &&
      !commandNames.includes(w)
    ) {
      words[words.length - 1] = `${last} ${w}`;
    } else words.push(w);
  }
  const groups: string[][] = [[]];
  let seenCommand = false;
  for (const w of words) {
    if (commandNames.includes(w)) {
      if (seenCommand) groups.push([]);
      seenCommand = true;
    }
    groups[groups.length - 1]!.push(w);
  }
  const out: string[] = [];
  for (const g of groups) {
    let cur = '';
    for (const w of g) {
      if (cur && (out.length ? 4 : 0) + cur.length + 1 + w.length > width) {
        out.push(cur);
        cur = w;
      } else cur = cur ? `${cur} ${w}` : w;
    }
    if (cur) out.push(cur);
  }
  return out.map((l, i) => `${i ? '    ' : ''}${l}${i < out.length - 1 ? ' \\' : ''}`);
}

function codeBlock(lines: string[]): string[] {
  return ['.RS 4', '.nf', ...lines.map((l) => (l === '' ? '\\&' : line(code(l)))), '.fi', '.RE'];
}

function commandSection(spec: CommandSpec, full: string, names: readonly string[]): string[] {
  const out = [
    `.SS ${arg(roffEscape(full))}`,
    line(usage(spec, full)),
    '.PP',
    line(prose(capitalise(spec.summary)) + '.'),
  ];
  if (spec.description) out.push('.PP', line(prose(spec.description)));
  const subs = spec.subcommands?.filter((s) => !s.hidden) ?? [];
  if (subs.length) {
    out.push('.PP', 'Subcommands:');
    for (const s of subs) out.push('.TP', B(roffEscape(`${full} ${s.name}`)), line(prose(s.summary) + '.'));
  }
  if (spec.args.length) {
    out.push('.PP', 'Arguments:');
    for (const a of spec.args) out.push('.TP', I(roffEscape(a.name)), line(argHelp(a)));
  }
  if (spec.options.length) {
    out.push('.PP', 'Options:');
    for (const o of spec.options) out.push('.TP', optionTag(o), line(optionHelp(o)));
  }
  if (spec.examples?.length) {
    out.push('.PP', `Example${spec.examples.length > 1 ? 's' : ''}:`);
    out.push(...codeBlock(spec.examples.flatMap((e) => exampleLines(e, names))));
  }
  for (const s of subs) out.push(...commandSection(s, `${full} ${s.name}`, names));
  return out;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** NOTATION_HELP as roff: indented "FORM  meaning" rows become a tagged list, other lines paragraphs. */
export function notationSection(text: string): string[] {
  const out: string[] = [];
  let para: string[] = [];
  const flush = (): void => {
    if (para.length) out.push('.PP', line(prose(para.join(' '))));
    para = [];
  };
  for (const raw of text.split('\n')) {
    const row = /^\s{2,}(\S+)\s{2,}(.+)$/.exec(raw);
    if (row) {
      flush();
      out.push('.TP 22', B(code(row[1]!)), line(prose(row[2]!)));
    } else if (raw.trim() === '') flush();
    else {
      if (/:$/.test(raw.trim()) && para.length === 0) {
        out.push('.PP', line(prose(raw.trim())));
        continue;
      }
      para.push(raw.trim());
    }
  }
  flush();
  return out;
}

// --------------------------------------------------------------------------------------------------------------
// the page

const SEED_EXAMPLES: { title: string; text: string; lines: string[] }[] = [
  {
    title: 'Non-NUMA, cgroup v2 (AMD Ryzen 9 5950X)',
    text: "Keep the host (systemd's system.slice and user.slice) on the first seven cores and their SMT siblings; the VM pins its vCPUs to the second CCD (8-15,24-31) and its emulator to core 7 (7,23).",
    lines: [
      'vfio-isolate \\',
      '    cpuset-modify --cpus C0-6,16-22 /system.slice \\',
      '    cpuset-modify --cpus C0-6,16-22 /user.slice',
    ],
  },
  {
    title: 'Non-NUMA, cgroup v1 (6 cores, 12 threads)',
    text: 'Move every process of the root cpuset into a new host.slice that has the first two cores; undo by hand with cpuset-delete (its tasks move back to the parent).',
    lines: [
      'vfio-isolate \\',
      '    cpuset-create --cpus C0-1,6-7 /host.slice \\',
      '    move-tasks / /host.slice',
      '',
      'vfio-isolate cpuset-delete /host.slice',
    ],
  },
  {
    title: 'NUMA, cgroup v1 (AMD Threadripper 1920X)',
    text: 'Give NUMA node 0 to the host and node 1 to the VM; -mm migrates the memory of the moved tasks to node 0.',
    lines: [
      'vfio-isolate \\',
      '    cpuset-create --cpus N0 --mems N0 -mm /host.slice \\',
      '    move-tasks / /host.slice',
    ],
  },
  {
    title: 'Undo file',
    text: 'Journal what a command changes, then undo it.',
    lines: [
      'vfio-isolate -u /tmp/undo_description \\',
      '    cpuset-create --cpus C1-4 /test.slice',
      '',
      'vfio-isolate restore /tmp/undo_description',
    ],
  },
  {
    title: 'IRQ affinity',
    text: 'Keep interrupts off CPUs 2-5 and 8-11, and restore them later.',
    lines: [
      'vfio-isolate -u /tmp/undo_irq irq-affinity mask C2-5,8-11',
      'vfio-isolate restore /tmp/undo_irq',
    ],
  },
  {
    title: 'CPU governor',
    text: 'Run CPUs 2-5 and 8-11 with the performance governor, and restore the previous one later.',
    lines: [
      'vfio-isolate -u /tmp/undo_gov cpu-governor performance C2-5,8-11',
      'vfio-isolate restore /tmp/undo_gov',
    ],
  },
  {
    title: 'A libvirt hook (/etc/libvirt/hooks/qemu)',
    text: "The fully featured example of 0.5.2: isolate when the VM starts, restore when it stops. HCPUS are the host CPUs, MCPUS the VM's.",
    lines: [
      'enable_isolation () {',
      '    vfio-isolate \\',
      '        -u $UNDOFILE \\',
      '        drop-caches \\',
      '        cpuset-modify --cpus C$HCPUS /system.slice \\',
      '        cpuset-modify --cpus C$HCPUS /user.slice \\',
      '        compact-memory \\',
      '        irq-affinity mask C$MCPUS',
      '    taskset -pc $HCPUS 2  # kthreadd only on host cores',
      '}',
      '',
      'disable_isolation () {',
      '    vfio-isolate restore $UNDOFILE',
      '    taskset -pc 0-31 2  # kthreadd reset',
      '}',
    ],
  },
];

const DIFFERENCES = [
  'Errors are one line (`vfio-isolate: ...`, maybe followed by `hint: ...`) instead of a Python traceback, and the exit status tells usage errors (2) from failures (1).',
  'Every command of a chain is checked and planned before anything changes; a failure undoes what was already done.',
  "The undo file is a JSON Lines journal, written before each step; a 0.5.2 pickle is refused (clean it up with 0.5.2's own restore).",
  'A reversed range (`C5-2`), an empty list (`C`, `--cpus ""`) and a CPU that is not present are usage errors; `L`, `P`, `S` and `0x` selectors are new.',
  'cgroup v1 flags (`-ce`, `-mm`, ...) on cgroup v2 are ignored with a warning; `cpuset-create` on v2 leaves values not given empty (inherit).',
  'Commands that write check for root first; new global options `-n`, `--json`, `--force`, `--no-rollback`; new commands such as `isolate`, `release`, `status` and `completion`.',
];

export interface ManOptions {
  version: string;
  /** Global options (default: the parser's). */
  globals?: readonly OptionSpec[];
  notation?: string;
}

/** The whole page, from the command table. */
export function renderMan(table: readonly CommandSpec[], opts: ManOptions): string {
  const cmds = table.filter((c) => !c.hidden);
  const globals = opts.globals ?? GLOBAL_OPTIONS;
  const names = cmds.map((c) => c.name);
  const compat = cmds.filter((c) => c.compat);
  const others = cmds.filter((c) => !c.compat);
  const has = (n: string): boolean => names.includes(n);
  const out: string[] = [
    `.\\" Generated by scripts/gen-man.ts from the command table (src/cli/table.ts). Do not edit:`,
    `.\\" run "npm run man" instead.`,
    `.TH VFIO\\-ISOLATE 1 "" ${arg(`vfio\\-isolate ${roffEscape(opts.version)}`)} "User Commands"`,
    '.\\" left-aligned, no hyphenation: option names and paths stay whole',
    '.ad l',
    '.nh',
    '.SH NAME',
    'vfio\\-isolate \\- partition CPUs, memory nodes and interrupts between the host and VMs',
    '.SH SYNOPSIS',
    `${B('vfio\\-isolate')} [${I('GLOBAL\\-OPTIONS')}] ${I('COMMAND1')} [${I('ARGS')}]... [${I('COMMAND2')} [${I('ARGS')}]...]...`,
    '.br',
    `${B('vfio\\-isolate')} ${B('help')} [${I('COMMAND')}|${B('cpus')}]`,
    '.SH DESCRIPTION',
    line(
      prose(
        'vfio-isolate partitions a Linux machine between the host and virtual machines with guaranteed latency: it restricts cgroup cpusets (cgroup v1 and v2), moves tasks between them, keeps interrupts, kernel threads and workqueues off the CPUs of a VM, sets cpufreq governors, and drops caches or compacts memory before a VM starts.',
      ),
    ),
    '.PP',
    line(
      prose(
        'Several commands may be given in one call; they run in the order given. Every command of the chain is checked and planned first (a later command sees what earlier ones will have done), then the changes are applied one step at a time. If a step fails, the steps already applied are undone, so nothing is left half-done. With `-u FILE` every change is journalled before it is made, and `vfio-isolate restore FILE` undoes it later.',
      ),
    ),
    '.PP',
    line(
      prose(
        `The ${compat.length} commands of vfio-isolate 0.5.2 keep their names, options and meaning, and print nothing on success. Global options come before the first command; a command's options come after the command, before (or, when unambiguous, after) its arguments. Options are whole words: \`-n\` (dry run) never collides with \`-nce\`.`,
      ),
    ),
    '.PP',
    line(
      prose(
        'Commands that change the machine must run as root. Commands that only read (`status`, `topology`, `help`, `completion` and anything with `--dry-run`) run unprivileged.',
      ),
    ),
    '.PP',
    line(
      prose(
        'Install it for root as a root-owned copy, from its packed tarball (`npm pack`, then `sudo npm install -g --ignore-scripts ./vfio-isolate-*.tgz`), never as a link to a clone that a user can write (`npm install -g .`), and run it with a root-owned node. `libvirt hook install` refuses anything else.',
      ),
    ),
    '.SH OPTIONS',
    ...globals.flatMap((o) => ['.TP', optionTag(o), line(optionHelp(o))]),
    '.SH COMMANDS',
    ...(compat.length
      ? [line(prose(`Commands of vfio-isolate 0.5.2: ${compat.map((c) => c.name).join(', ')}.`)), '.PP']
      : []),
    ...(others.length ? [line(prose(`More commands: ${others.map((c) => c.name).join(', ')}.`))] : []),
    ...cmds.flatMap((c) => commandSection(c, c.name, names)),
    '.SH CPU NOTATION',
    ...notationSection(opts.notation ?? NOTATION_HELP),
    '.SH FILES',
    '.TP',
    B(code(P.defaultJournal)),
    line(
      prose(
        `The journal ${has('isolate') ? '`isolate` writes and `release` undoes' : 'of isolate'} when no \`-u FILE\` is given. Like every journal it is kept after it was restored, marked restored, as a record of what happened.`,
      ),
    ),
    '.TP',
    B(code(P.lockFile)),
    line(prose('Held while changes are applied, so that two runs never interleave.')),
    '.TP',
    I('FILE') + ' (' + B('\\-u') + ' ' + I('FILE') + ')',
    line(
      prose(
        'A journal (undo file): JSON Lines, a header line and one record per step, each written and flushed before its step is applied. A journal of an earlier boot or one already restored is replaced, the old one kept as FILE.old; a 0.5.2 pickle or a symlink is refused.',
      ),
    ),
    '.TP',
    B(code(`${P.profileDir}/`)) + I('NAME') + B('.toml'),
    line(
      prose(
        'The profile `--profile NAME` reads (a value with a slash is a path instead). Its keys are described in vfio-isolate.toml(5).',
      ),
    ),
    ...(has('libvirt')
      ? [
          '.TP',
          B(code(`${P.libvirtHooks}/qemu.d/vfio-isolate-`)) + I('DOMAIN'),
          line(
            prose(
              'The hook `libvirt hook install DOMAIN` writes (libvirt 6.5 and later runs every executable in qemu.d/ for every domain; this one acts for DOMAIN only). A file there that vfio-isolate did not write is never replaced or removed. libvirtd notices a newly created hook directory only after it restarts. It records node, the tool and the files they load by canonical paths, and runs them only while root alone can change them (owner root, not writable by group or others, nor any directory on the way).',
            ),
          ),
        ]
      : []),
    '.TP',
    B(code(`${P.cpuDir}, ${P.irqDir}, ${P.vmDir}`)),
    line(
      prose(
        'The kernel interfaces read and written: CPU topology and cpufreq policies, IRQ affinities, drop_caches and compact_memory; cgroups are found through /proc/self/mountinfo.',
      ),
    ),
    '.SH ENVIRONMENT',
    '.TP',
    B('VFIO_ISOLATE_LOCK_WAIT_MS'),
    line(
      prose(
        'How many milliseconds a run waits for the lock of another run before it fails (default 10000; the libvirt hooks use 5000, because libvirtd waits for its hooks).',
      ),
    ),
    '.TP',
    B('NO_COLOR'),
    line(
      prose(
        'When set and not empty, output is never coloured. Otherwise stdout and stderr are each coloured only when they are a terminal and TERM is not dumb.',
      ),
    ),
    '.TP',
    B('FORCE_COLOR'),
    line(
      prose(
        'When set and not empty, output is coloured even when it is not a terminal (`0` or `false`: never).',
      ),
    ),
    '.SH EXIT STATUS',
    '.TP',
    B('0'),
    line(prose('Success.')),
    '.TP',
    B('1'),
    line(
      prose(
        'Failure at run time (a cgroup that does not exist, not root, the kernel refused a value). Changes already made were rolled back first, so nothing is left half-done.' +
          (has('status') ? ' `status` also exits 1 when something movable leaks onto the VM CPUs.' : ''),
      ),
    ),
    '.TP',
    B('2'),
    line(
      prose(
        'Usage error (unknown option, malformed CPU list, missing argument), detected before any change: nothing was changed.',
      ),
    ),
    '.SH EXAMPLES',
    line(prose('The examples of the vfio-isolate 0.5.2 documentation work unchanged.')),
    ...SEED_EXAMPLES.flatMap((e) => [
      '.PP',
      B(prose(e.title)),
      '.br',
      line(prose(e.text)),
      '.PP',
      ...codeBlock(e.lines),
    ]),
    '.SH DIFFERENCES FROM 0.5.2',
    ...DIFFERENCES.flatMap((d) => ['.IP \\(bu 2', line(prose(d))]),
    '.SH SEE ALSO',
    `${B('vfio\\-isolate.toml')}(5), ${B('cgroups')}(7), ${B('cpuset')}(7), ${B('taskset')}(1), ${B('irqbalance')}(1), ${B('virsh')}(1), ${B('systemd.resource\\-control')}(5)`,
    '',
  ];
  return out.join('\n');
}

/** One key of the profile page: name, value, meaning. */
interface ProfileKey {
  key: string;
  value: string;
  help: string;
}

/** The keys of a profile, by table ('' = the top level); test/unit/man.test.ts checks them against ProfileSchema. */
export const PROFILE_KEYS: { table: string; intro: string; keys: ProfileKey[] }[] = [
  {
    table: '',
    intro: 'Top level. Exactly one of vm_cpus and host_cpus must be given.',
    keys: [
      {
        key: 'domain',
        value: 'string',
        help: 'The libvirt domain this profile is for; `libvirt hook install DOMAIN` refuses a profile of another domain. Letters, digits, `_ . + -`.',
      },
      {
        key: 'vm_cpus',
        value: 'CPU set',
        help: 'The CPUs the VM gets; the host keeps every other online CPU.',
      },
      {
        key: 'host_cpus',
        value: 'CPU set',
        help: 'The CPUs the host keeps; the VM gets every other online CPU.',
      },
      {
        key: 'emulator_cpus',
        value: 'CPU set',
        help: "Where QEMU's emulator and I/O threads run (`libvirt cputune`: <emulatorpin>/<iothreadpin>); default: the host's last core.",
      },
    ],
  },
  {
    table: 'isolate',
    intro:
      'What `isolate --profile` (and the hook) does. Every key is optional; the defaults are those of `vfio-isolate isolate`.',
    keys: [
      {
        key: 'cgroups',
        value: 'boolean',
        help: 'Restrict the host cgroups to the host CPUs (default true).',
      },
      { key: 'kthreads', value: 'boolean', help: 'Move movable kernel threads and kthreadd (default true).' },
      { key: 'workqueues', value: 'boolean', help: 'Set the workqueue cpumasks (default true).' },
      {
        key: 'irqs',
        value: 'boolean',
        help: 'Move every movable IRQ and default_smp_affinity (default true).',
      },
      {
        key: 'governor',
        value: 'string or false',
        help: 'Set this cpufreq governor on the VM CPUs (default: none).',
      },
      { key: 'drop_caches', value: 'boolean', help: 'Drop the page cache first (default false).' },
      { key: 'compact_memory', value: 'boolean', help: 'Compact memory first (default false).' },
      { key: 'stop_irqbalance', value: 'boolean', help: 'Stop irqbalance until release (default false).' },
      {
        key: 'partition',
        value: 'boolean',
        help: "Make the running VM's pinned vCPU cgroups isolated cpuset partitions (Linux 6.7+): the libvirt hook runs vfio-isolate partition --profile FILE when the VM has started (default false).",
      },
      {
        key: 'stat_interval',
        value: 'seconds',
        help: 'Set vm.stat_interval, 1 to 86400 (default: unchanged).',
      },
      {
        key: 'vm_cgroup',
        value: 'cgroup',
        help: 'The cgroup of the VMs, left unrestricted (default /machine.slice).',
      },
    ],
  },
  {
    table: 'cputune',
    intro: 'What `libvirt cputune --profile` prints.',
    keys: [
      { key: 'iothreads', value: 'number', help: 'How many <iothreads>, 0 to 64.' },
      { key: 'sched', value: 'fifo or rr', help: 'Real-time scheduling of the vCPU threads (<vcpusched>).' },
      { key: 'priority', value: '1 to 99', help: 'Its priority.' },
      { key: 'iothread_sched', value: 'fifo or rr', help: 'Real-time scheduling of the I/O threads.' },
      { key: 'iothread_priority', value: '1 to 99', help: 'Its priority.' },
    ],
  },
  {
    table: 'measure',
    intro:
      "What `measure --profile` measures (the profile's vm_cpus, unless CPUS are given; options given on the command line win), and the libvirt hook's measurement. Every key is optional.",
    keys: [
      { key: 'seconds', value: 'seconds', help: 'The window, more than 0 and at most 3600 (default 5).' },
      {
        key: 'mode',
        value: 'passive or probe',
        help: 'passive (counters only) or probe (pinned clock readers; refused while a VM runs there). Default: passive while vCPU threads are on the CPUs, else probe.',
      },
      {
        key: 'max_noise_us',
        value: 'microseconds',
        help: 'Budget: time lost per second on any VM CPU; measure exits 1 when over.',
      },
      { key: 'max_irqs_per_s', value: 'number', help: 'Budget: interrupts per second on any VM CPU.' },
      {
        key: 'max_gap_us',
        value: 'microseconds',
        help: 'Budget (probe): the largest single interruption.',
      },
      {
        key: 'after_start',
        value: 'seconds',
        help: "The libvirt hook measures the VM CPUs passively for this long after libvirt's started phase, in the background (it never delays or fails the start), and logs a one-line summary to syslog (journalctl -t vfio-isolate), with the budgets' verdict. At most 3600; default: no measurement.",
      },
    ],
  },
];

/** man/vfio-isolate.toml.5: the profile format. */
export function renderProfileMan(opts: { version: string }): string {
  const example = [
    'domain = "win11"',
    'vm_cpus = "L1"',
    'emulator_cpus = "C7,23"',
    '',
    '[isolate]',
    'governor = "performance"',
    'stop_irqbalance = true',
    '',
    '[cputune]',
    'sched = "rr"',
    'priority = 1',
    '',
    '[measure]',
    'max_noise_us = 200',
    'after_start = 30',
  ];
  return [
    `.\\" Generated by scripts/gen-man.ts from src/cli/man.ts (PROFILE_KEYS). Do not edit: run "npm run man" instead.`,
    `.TH VFIO\\-ISOLATE.TOML 5 "" ${arg(`vfio\\-isolate ${roffEscape(opts.version)}`)} "File Formats"`,
    '.ad l',
    '.nh',
    '.SH NAME',
    'vfio\\-isolate.toml \\- a VM profile of vfio\\-isolate',
    '.SH SYNOPSIS',
    `${B(code(`${P.profileDir}/`))}${I('NAME')}${B('.toml')}`,
    '.SH DESCRIPTION',
    line(
      prose(
        `A profile describes one VM in a small TOML file: which CPUs it gets, what \`isolate\` does for it, its libvirt pinning, and the noise budget of its CPUs. \`vfio-isolate isolate --profile NAME\`, \`release --profile NAME\`, \`measure --profile NAME\`, \`libvirt cputune --profile NAME\` and \`libvirt hook install DOMAIN --profile NAME\` read ${P.profileDir}/NAME.toml; a value with a slash (\`./win11.toml\`) is a path.`,
      ),
    ),
    '.PP',
    line(
      prose(
        'Unknown keys are refused with a message that names the key (and the nearest known one). CPU sets use the notation of the command line (`C0-3,8`, `N1`, `L1`, `P0`, `S8-11`, `0xff`, joined with `+`; see vfio-isolate(1)) and are checked against the machine. Anything wrong in a profile is a usage error (exit 2) before any change.',
      ),
    ),
    ...PROFILE_KEYS.flatMap((t) => [
      '.SH ' + (t.table ? `[${t.table.toUpperCase()}]` : 'KEYS'),
      line(prose(t.intro)),
      ...t.keys.flatMap((k) => ['.TP', `${B(code(k.key))} = ${I(prose(k.value))}`, line(prose(k.help))]),
    ]),
    '.SH EXAMPLE',
    line(prose(`${P.profileDir}/win11.toml:`)),
    '.PP',
    ...codeBlock(example),
    '.PP',
    line(prose('Then `vfio-isolate libvirt hook install win11 --profile win11`.')),
    '.SH SEE ALSO',
    `${B('vfio\\-isolate')}(1)`,
    '',
  ].join('\n');
}
