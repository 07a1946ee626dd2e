/**
 * The command table: every command's name, options, arguments, help, examples and completion data, as data. It
 * imports no handler: each entry's `load()` imports its command module on demand (a separate chunk of the bundle),
 * so --help, --version, help CMD, completion scripts and usage errors load only this table.
 */
import type { CommandSpec, OptionSpec } from './spec.ts';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;

export type Shell = (typeof SHELLS)[number];

/** Kinds of dynamic values the helper command prints. */
export const DYNAMIC_KINDS = ['cgroups', 'governors', 'cpus', 'nodes'] as const;

export type DynamicKind = (typeof DYNAMIC_KINDS)[number];

/** cgroup v1 flags: [key, long option, short option after '-' or '-n', help]. */
export const V1_FLAG_OPTIONS: [
  'cpuExclusive' | 'memExclusive' | 'memMigrate' | 'schedLoadBalance',
  string,
  string,
  string,
][] = [
  ['cpuExclusive', 'cpu-exclusive', 'ce', 'CPUs exclusive to this cpuset among its siblings'],
  ['memExclusive', 'mem-exclusive', 'me', 'memory nodes exclusive to this cpuset among its siblings'],
  ['memMigrate', 'mem-migrate', 'mm', "migrate tasks' memory to the cpuset's nodes"],
  ['schedLoadBalance', 'sched-load-balance', 'lb', 'load-balance tasks across the cpuset'],
];

export const CPUSET_OPTIONS: OptionSpec[] = [
  {
    key: 'cpus',
    long: 'cpus',
    type: 'string',
    valueName: 'CPUS',
    help: 'set the CPUs of the cpuset (C0-3, N0, L1, ...)',
    complete: 'cpus',
  },
  {
    key: 'mems',
    long: 'mems',
    type: 'string',
    valueName: 'NODES',
    help: 'set the NUMA memory nodes of the cpuset (N0, N0-1)',
    complete: 'nodes',
  },
  ...V1_FLAG_OPTIONS.flatMap(([key, long, short, help]): OptionSpec[] => [
    { key, long, short: [`-${short}`], type: 'boolean', help: `cgroup v1 only: ${help}` },
    {
      key: `no-${key}`,
      long: `no-${long}`,
      short: [`-n${short}`],
      type: 'boolean',
      negates: key,
      help: `cgroup v1 only: clear ${long}`,
    },
  ]),
];

export const ISOLATE_OPTIONS: OptionSpec[] = [
  {
    key: 'host',
    long: 'host',
    type: 'string',
    valueName: 'CPUS',
    help: 'give the VM every online CPU except these',
    complete: 'cpus',
  },
  {
    key: 'profile',
    long: 'profile',
    type: 'string',
    valueName: 'FILE',
    help: 'read CPUs and steps from a TOML profile: NAME (/etc/vfio-isolate/NAME.toml) or a path with a slash',
    complete: 'file',
  },
  {
    key: 'vmCgroup',
    long: 'vm-cgroup',
    type: 'string',
    valueName: 'NAME',
    help: 'cgroup that holds the VMs (default /machine.slice)',
    complete: 'cgroup',
  },
  { key: 'noCgroups', long: 'no-cgroups', type: 'boolean', help: 'do not restrict cgroups or host tasks' },
  { key: 'noKthreads', long: 'no-kthreads', type: 'boolean', help: 'do not move kernel threads' },
  { key: 'noWorkqueues', long: 'no-workqueues', type: 'boolean', help: 'do not change workqueue cpumasks' },
  { key: 'noIrqs', long: 'no-irqs', type: 'boolean', help: 'do not change IRQ affinities' },
  { key: 'stopIrqbalance', long: 'stop-irqbalance', type: 'boolean', help: 'stop irqbalance until release' },
  {
    key: 'irqbalanceBan',
    long: 'irqbalance-ban',
    type: 'boolean',
    help: 'ban the VM CPUs in irqbalance until release (runtime drop-in under /run; systemd)',
  },
  {
    key: 'governor',
    long: 'governor',
    type: 'string',
    valueName: 'GOVERNOR',
    help: 'set this cpufreq governor on the VM CPUs',
    complete: 'governor',
  },
  { key: 'dropCaches', long: 'drop-caches', type: 'boolean', help: 'drop caches first' },
  {
    key: 'compactMemory',
    long: 'compact-memory',
    type: 'boolean',
    help: 'compact memory (helps huge pages)',
  },
  {
    key: 'statInterval',
    long: 'stat-interval',
    type: 'string',
    valueName: 'SECONDS',
    help: 'raise vm.stat_interval (tuned uses 10)',
  },
  {
    key: 'keepWatchdog',
    long: 'keep-watchdog',
    type: 'boolean',
    help: 'leave the soft-lockup watchdog on the VM CPUs (watchdog_cpumask)',
  },
  {
    key: 'wakeupLatency',
    long: 'wakeup-latency',
    type: 'string',
    valueName: 'US',
    help: 'limit how long a VM CPU may take to wake up, in microseconds (default 20; off: leave it)',
  },
  { key: 'strict', long: 'strict', type: 'boolean', help: 'exit 1 when movable leaks remain' },
  {
    key: 'measure',
    long: 'measure',
    type: 'string',
    valueName: 'SECONDS',
    help: 'probe the VM CPUs for SECONDS before and after the isolation, and print both (refused while a VM runs there)',
  },
];

export const SCHED_OPTIONS: OptionSpec[] = [
  {
    key: 'sched',
    long: 'sched',
    type: 'string',
    valueName: 'POLICY',
    choices: ['fifo', 'rr'],
    help: 'real-time scheduling of the vCPU threads: fifo or rr',
  },
  {
    key: 'priority',
    long: 'priority',
    type: 'string',
    valueName: 'N',
    help: 'real-time priority 1-99 (default 1)',
  },
];

const cputuneCommand: CommandSpec = {
  name: 'cputune',
  summary: 'print the libvirt XML that pins a VM to its CPUs (SMT siblings as pairs)',
  description:
    "Reads the real topology and prints <vcpu>, <iothreads>, <cputune> (vcpupin pairing SMT siblings as consecutive vCPUs, emulatorpin, iothreadpin, optional vcpusched/iothreadsched), the matching <cpu mode='host-passthrough'> topology and, on NUMA machines, <numatune>. Without --vm it uses the split `vfio-isolate topology` suggests; the emulator and I/O threads default to the host's last core. Needs no root.",
  options: [
    {
      key: 'vm',
      long: 'vm',
      type: 'string',
      valueName: 'CPUS',
      help: 'CPUs of the VM (default: the suggested split)',
      complete: 'cpus',
    },
    {
      key: 'emulator',
      long: 'emulator',
      type: 'string',
      valueName: 'CPUS',
      help: "CPUs of QEMU's emulator and I/O threads (default: the host's last core)",
      complete: 'cpus',
    },
    {
      key: 'iothreads',
      long: 'iothreads',
      type: 'string',
      valueName: 'N',
      help: 'I/O threads to declare and pin (default 1)',
    },
    ...SCHED_OPTIONS,
    {
      key: 'iothreadSched',
      long: 'iothread-sched',
      type: 'string',
      valueName: 'POLICY',
      choices: ['fifo', 'rr'],
      help: 'real-time scheduling of the I/O threads: fifo or rr',
    },
    {
      key: 'iothreadPriority',
      long: 'iothread-priority',
      type: 'string',
      valueName: 'N',
      help: 'their priority 1-99 (default 1)',
    },
    {
      key: 'profile',
      long: 'profile',
      type: 'string',
      valueName: 'FILE',
      help: 'take CPUs and [cputune] from a TOML profile: NAME (/etc/vfio-isolate/NAME.toml) or a path with a slash',
      complete: 'file',
    },
    { key: 'json', long: 'json', type: 'boolean', help: 'the plan as JSON (with the XML)' },
  ],
  args: [],
  examples: [
    'vfio-isolate libvirt cputune --vm C8-15,24-31 --emulator C7,23',
    'vfio-isolate libvirt cputune --vm L1 --sched rr --priority 1 --iothread-sched fifo --iothread-priority 98',
    'vfio-isolate libvirt cputune --vm C2-5,8-11 --emulator C0-1,6-7',
  ],
  kind: 'report',
  load: () => import('../commands/libvirt.ts').then((m) => m.handlers['libvirt cputune']!),
};

const hookCommand: CommandSpec = {
  name: 'hook',
  summary: 'install, remove or list per-domain libvirt hooks',
  options: [],
  args: [],
  subcommands: [
    {
      name: 'install',
      summary: 'install a hook that isolates at VM start and releases at VM stop',
      description:
        "Writes /etc/libvirt/hooks/qemu.d/vfio-isolate-DOMAIN (mode 0755; libvirt >= 6.5 runs it for every domain, it acts for DOMAIN only): at 'prepare begin' it runs `vfio-isolate -u /run/vfio-isolate/DOMAIN.journal isolate --profile FILE`, at 'release end' `... release`, with the node running now and this tool by canonical paths, logging to syslog (tag vfio-isolate). It refuses (exit 1) when root alone could not have written node, the tool, its chunks or koffi with its native addon (each file and every directory on the way must belong to root and be writable by nobody else; symlinks are followed): install from the tarball and use a root-owned node. The hook checks again before every run and runs nothing that has become unsafe (or a node that is gone): it logs why and exits 1 at 'prepare begin' (the domain does not start), 0 at 'release end'. An existing file that vfio-isolate did not write is never replaced. libvirtd notices a newly created hook only after it restarts.",
      options: [
        {
          key: 'profile',
          long: 'profile',
          type: 'string',
          valueName: 'FILE',
          help: 'the TOML profile of the VM (required): NAME (/etc/vfio-isolate/NAME.toml) or a path with a slash',
          complete: 'file',
        },
      ],
      args: [{ name: 'DOMAIN', required: true, help: 'libvirt domain name', complete: 'domain' }],
      examples: ['vfio-isolate libvirt hook install win11 --profile /etc/vfio-isolate/win11.toml'],
      writes: true,
      kind: 'report',
      load: () => import('../commands/libvirt.ts').then((m) => m.handlers['libvirt hook install']!),
    },
    {
      name: 'uninstall',
      summary: "remove a domain's hook (only one vfio-isolate wrote)",
      options: [],
      args: [{ name: 'DOMAIN', required: true, help: 'libvirt domain name', complete: 'domain' }],
      examples: ['vfio-isolate libvirt hook uninstall win11'],
      writes: true,
      kind: 'report',
      load: () => import('../commands/libvirt.ts').then((m) => m.handlers['libvirt hook uninstall']!),
    },
    {
      name: 'list',
      summary: 'list the installed hooks with their domains and profiles',
      description: 'Exits 1 when the profile of an installed hook is missing.',
      options: [],
      args: [],
      kind: 'report',
      load: () => import('../commands/libvirt.ts').then((m) => m.handlers['libvirt hook list']!),
    },
  ],
};

const pinQemuCommand: CommandSpec = {
  name: 'pin-qemu',
  summary: "pin a running QEMU's vCPU threads to the VM CPUs (SMT siblings as pairs)",
  description:
    'Finds the vCPU threads of QEMU process PID (named "CPU n/KVM" or "CPU n/TCG": QEMU needs -name ...,debug-threads=on, which libvirt sets) and pins vCPU n to the n-th CPU of the sibling-paired order of --vm (the order `libvirt cputune` prints), every other thread to the emulator CPUs, and optionally gives the vCPU threads real-time scheduling. With -u FILE, `restore FILE` puts every thread back. For libvirt domains prefer <cputune> (libvirt cputune): libvirt re-applies its own pinning.',
  options: [
    {
      key: 'vm',
      long: 'vm',
      type: 'string',
      valueName: 'CPUS',
      help: 'CPUs for the vCPUs (default: the suggested split)',
      complete: 'cpus',
    },
    {
      key: 'emulator',
      long: 'emulator',
      type: 'string',
      valueName: 'CPUS',
      help: "CPUs for QEMU's other threads (default: the host's last core)",
      complete: 'cpus',
    },
    ...SCHED_OPTIONS,
  ],
  args: [{ name: 'PID', required: true, help: 'process id of the QEMU', complete: 'pid' }],
  examples: [
    'vfio-isolate -u /run/vfio-isolate/pin.journal pin-qemu 2400 --vm C8-15,24-31 --emulator C7,23',
    'vfio-isolate pin-qemu $(pgrep -f guest=win11) --vm L1 --sched fifo --priority 1',
  ],
  writes: true,
  kind: 'plan',
  load: () => import('../commands/pin-qemu.ts').then((m) => m.handlers['pin-qemu']!),
};

export const COMMANDS: CommandSpec[] = [
  {
    name: 'cpuset-create',
    summary: 'create a cpuset',
    description:
      'Create cgroup NAME (relative to the cpuset hierarchy root) and set the given values. On cgroup v1 a value not given is copied from the parent (a v1 cpuset needs CPUs and nodes before tasks can enter); on cgroup v2 it stays empty, which means "inherit from the parent". On v2 the cpuset controller is enabled top-down in the ancestors when needed.',
    options: CPUSET_OPTIONS,
    args: [{ name: 'NAME', required: true, help: 'cgroup to create, e.g. /host.slice', complete: 'cgroup' }],
    examples: [
      'vfio-isolate cpuset-create --cpus C0-1,6-7 /host.slice move-tasks / /host.slice',
      'vfio-isolate cpuset-create --cpus N0 --mems N0 -mm /host.slice',
    ],
    compat: true,
    writes: true,
    kind: 'plan',
    load: () => import('../commands/cpuset.ts').then((m) => m.handlers['cpuset-create']!),
  },
  {
    name: 'cpuset-modify',
    summary: 'modify a cpuset',
    description:
      'Change the CPUs, memory nodes or (cgroup v1) flags of an existing cgroup. Only the values given are written.',
    options: CPUSET_OPTIONS,
    args: [{ name: 'NAME', required: true, help: 'existing cgroup, e.g. /system.slice', complete: 'cgroup' }],
    examples: [
      'vfio-isolate cpuset-modify --cpus C0-6,16-22 /system.slice cpuset-modify --cpus C0-6,16-22 /user.slice',
    ],
    compat: true,
    writes: true,
    kind: 'plan',
    load: () => import('../commands/cpuset.ts').then((m) => m.handlers['cpuset-modify']!),
  },
  {
    name: 'cpuset-delete',
    summary: 'delete a cpuset',
    description:
      'Move the tasks of cgroup NAME to its parent, then remove it. Refuses a cgroup with child cgroups. restore recreates it with its settings.',
    options: [],
    args: [{ name: 'NAME', required: true, help: 'cgroup to delete', complete: 'cgroup' }],
    examples: ['vfio-isolate cpuset-delete /host.slice'],
    compat: true,
    writes: true,
    kind: 'plan',
    load: () => import('../commands/cpuset.ts').then((m) => m.handlers['cpuset-delete']!),
  },
  {
    name: 'move-tasks',
    summary: 'move tasks between cpusets',
    description:
      'Move every task of cgroup FROM to cgroup TO, one per write. Tasks that exited are skipped; kernel threads that cannot move are counted (shown with -v). restore moves back only the tasks that were moved and are still in TO.',
    options: [],
    args: [
      { name: 'FROM', required: true, help: 'source cgroup (/ is the root)', complete: 'cgroup' },
      { name: 'TO', required: true, help: 'destination cgroup', complete: 'cgroup' },
    ],
    examples: ['vfio-isolate move-tasks / /host.slice'],
    compat: true,
    writes: true,
    kind: 'plan',
    load: () => import('../commands/move-tasks.ts').then((m) => m.handlers['move-tasks']!),
  },
  {
    name: 'irq-affinity',
    summary: 'manipulate the IRQ affinity',
    description:
      'mask: keep every IRQ off CPUS (an IRQ that would be left with no CPU gets all online CPUs except CPUS); add: allow every IRQ on CPUS too. IRQs the kernel manages refuse the change and are skipped (listed with -v). Like 0.5.2 it does not change default_smp_affinity: use isolate for that.',
    options: [],
    args: [
      { name: 'OPERATION', required: true, help: 'mask or add', choices: ['mask', 'add'] },
      { name: 'CPUS', required: true, help: 'CPU set', complete: 'cpus' },
    ],
    examples: ['vfio-isolate -u /tmp/undo_irq irq-affinity mask C2-5,8-11'],
    compat: true,
    writes: true,
    kind: 'plan',
    load: () => import('../commands/irq-affinity.ts').then((m) => m.handlers['irq-affinity']!),
  },
  {
    name: 'cpu-governor',
    summary: 'set the CPU governor for the given CPUs',
    description:
      'Write GOVERNOR to the cpufreq policy of each CPU in CPUS (once per policy). The governor must be one the policy offers.',
    options: [],
    args: [
      { name: 'GOVERNOR', required: true, help: 'e.g. performance', complete: 'governor' },
      { name: 'CPUS', required: true, help: 'CPU set', complete: 'cpus' },
    ],
    examples: ['vfio-isolate -u /tmp/undo_gov cpu-governor performance C2-5,8-11'],
    compat: true,
    writes: true,
    kind: 'plan',
    load: () => import('../commands/governor.ts').then((m) => m.handlers['cpu-governor']!),
  },
  {
    name: 'drop-caches',
    summary: 'drop caches',
    description:
      'Write 3 to /proc/sys/vm/drop_caches (page cache and slab). Cannot be undone. Dirty data is not dropped; run sync first to include it.',
    options: [],
    args: [],
    compat: true,
    writes: true,
    kind: 'plan',
    load: () => import('../commands/memory.ts').then((m) => m.handlers['drop-caches']!),
  },
  {
    name: 'compact-memory',
    summary: 'compact memory',
    description: 'Write 1 to /proc/sys/vm/compact_memory (helps huge pages). Cannot be undone.',
    options: [],
    args: [],
    compat: true,
    writes: true,
    kind: 'plan',
    load: () => import('../commands/memory.ts').then((m) => m.handlers['compact-memory']!),
  },
  {
    name: 'restore',
    summary: 'restore a previous state using an undo file',
    description:
      'Undo everything journalled in FILE, newest first. Every entry is validated before anything is written. A journal of an earlier boot applies nothing (use --force). Restoring twice is harmless: the journal is marked restored and kept.',
    options: [],
    args: [{ name: 'FILE', required: true, help: 'the undo file given to -u', complete: 'file' }],
    examples: ['vfio-isolate restore /tmp/undo_description'],
    compat: true,
    writes: true,
    kind: 'plan',
    load: () => import('../commands/restore.ts').then((m) => m.handlers['restore']!),
  },
  {
    name: 'isolate',
    summary: 'give CPUs to the VM: cgroups, kernel threads, workqueues and IRQs off them, in one step',
    description:
      'Keep everything movable of the host off VMCPUS: restrict the top-level cgroups (v2; the VM cgroup, /machine.slice, keeps all CPUs) or move every task into /host.slice (v1); move kernel threads and kthreadd; set the workqueue cpumasks, every movable IRQ and default_smp_affinity to the host CPUs. Journalled (default /run/vfio-isolate/isolate.journal, or -u FILE); `release` undoes it exactly. Several VMs may be isolated at once, each with its own -u FILE: the host gets every online CPU minus all their VM CPUs, and CPUs another active isolation holds are refused unless --force (status lists the active isolations). Prints the leak check at the end. --measure N runs the probe of measure on the VM CPUs for N seconds before any change (refused with exit 2, nothing changed, while vCPU threads run there) and again after the changes are applied and journalled, and prints both side by side (with --json: measureBefore and measureAfter, as measure --json); where the cgroup of vfio-isolate itself may no longer use the VM CPUs after the isolation, the after figures are those of the counters only (passive); a dry run measures nothing.',
    options: ISOLATE_OPTIONS,
    args: [
      { name: 'VMCPUS', required: false, help: 'CPUs for the VM (e.g. C8-15,24-31 or L1)', complete: 'cpus' },
    ],
    examples: [
      'vfio-isolate isolate C8-15,24-31',
      'vfio-isolate isolate --host C0-7,16-23 --stop-irqbalance --governor performance',
      'vfio-isolate -n isolate L1',
      'vfio-isolate isolate --measure 5 C4-7',
    ],
    writes: true,
    kind: 'plan',
    load: () => import('../commands/isolate.ts').then((m) => m.handlers['isolate']!),
  },
  {
    name: 'release',
    summary: 'undo what isolate did (its journal), newest change first',
    description:
      "Release the isolation of one VM: JOURNAL, else -u FILE, else the default /run/vfio-isolate/isolate.journal. That journal's own changes are undone; the CPUs of the other active isolations stay isolated (the host set is re-applied for them), and the last release restores the host as it was before the first isolate.",
    options: [
      {
        key: 'profile',
        long: 'profile',
        type: 'string',
        valueName: 'FILE',
        help: 'accepted for symmetry with isolate --profile',
        complete: 'file',
      },
    ],
    args: [{ name: 'JOURNAL', required: false, help: 'journal file', complete: 'file' }],
    examples: ['vfio-isolate release', 'vfio-isolate -u /run/vfio-isolate/win11.journal release'],
    writes: true,
    kind: 'plan',
    load: () => import('../commands/release.ts').then((m) => m.handlers['release']!),
  },
  {
    name: 'reapply',
    summary: 'set again what an active journal restricted through systemd, where it has drifted',
    description:
      'For every systemd unit whose AllowedCPUs= / AllowedMemoryNodes= an active journal set (isolate, cpuset-modify on a unit) and systemd no longer has, set it again through systemd (runtime only). Journalled into the same journal, so release/restore still return to the state before the first run. Nothing drifted: nothing changes. JOURNAL defaults to -u FILE, else /run/vfio-isolate/host.journal, where isolate journals the host-wide restrictions of every active isolation. status names drift and this command.',
    options: [],
    args: [{ name: 'JOURNAL', required: false, help: 'journal file', complete: 'file' }],
    examples: ['vfio-isolate reapply', 'vfio-isolate reapply /run/vfio-isolate/win11.journal'],
    writes: true,
    kind: 'plan',
    load: () => import('../commands/drift.ts').then((m) => m.handlers['reapply']!),
  },
  {
    name: 'reset',
    summary: "put isolation-related state back to the kernel's defaults, without a journal",
    description:
      "For a lost or corrupt journal: every cpuset partition below the root back to member and every cpuset.cpus.exclusive cleared (v2; the kernel gives their CPUs back to all cgroups), top-level cgroups' cpuset.cpus back to inherit (v2) or every task back to the root cpuset (v1), every movable IRQ, default_smp_affinity and the workqueue cpumasks to all CPUs, movable kernel threads and kthreadd to all CPUs. Asks no questions; -n shows the plan first.",
    options: [],
    args: [],
    examples: ['vfio-isolate -n reset', 'vfio-isolate reset'],
    writes: true,
    kind: 'plan',
    load: () => import('../commands/reset.ts').then((m) => m.handlers['reset']!),
  },
  {
    name: 'partition',
    summary: "make a running VM's pinned vCPUs isolated cpuset partitions (Linux >= 6.7, cgroup v2)",
    description:
      "Live isolation the kernel enforces itself: writes cpuset.cpus.exclusive from the top-level cgroup down to the VM's libvirt cgroup, then makes each pinned vCPU cgroup (vcpuN) an isolated partition on its own CPUs. The kernel takes those CPUs from every other cgroup and from unbound workqueues, and turns off load balancing on them; the emulator cgroup stays a member, so <emulatorpin> keeps working. VM is a libvirt domain name (its machine-qemu-N-NAME.scope in machine.slice) or a cgroup path. Each vCPU must be pinned to CPUs of its own, the emulator elsewhere, and, while isolations are active, within their VM CPUs (else refused: the host would lose them; --force takes them). Refused, with the reason, on kernels before 6.7 and on cgroup v1; a partition the kernel marks invalid is rolled back. Journalled (-u FILE): release or restore undoes it. Run it at libvirt's 'started' phase, after isolate ran at 'prepare'.",
    options: [
      {
        key: 'profile',
        long: 'profile',
        type: 'string',
        valueName: 'FILE',
        help: 'act only if the profile says partition = true (its domain is the VM); what the libvirt hook runs',
        complete: 'file',
      },
    ],
    args: [
      {
        name: 'VM',
        required: false,
        help: 'libvirt domain name, or the cgroup (/machine.slice/...)',
        complete: 'domain',
      },
    ],
    examples: [
      'vfio-isolate -u /run/vfio-isolate/win11.journal partition win11',
      'vfio-isolate -n partition /machine.slice/machine-qemu\\x2d1\\x2dwin11.scope',
    ],
    writes: true,
    kind: 'plan',
    load: () => import('../commands/partition.ts').then((m) => m.handlers['partition']!),
  },
  {
    name: 'status',
    summary: 'show what is isolated, and what still leaks onto the VM CPUs',
    description:
      'Shows the cpuset hierarchy (configured and effective CPUs, partitions, tasks), boot-time isolation, and for the VM CPUs: tasks and kernel threads that may run there, IRQs that may fire there, default_smp_affinity, workqueue cpumasks, governors and irqbalance. Each leak is one line with its fix. Without CPUS, the VM CPUs are the online CPUs that no host cgroup may use (every top-level cgroup except machine.slice), else the CPUs isolated at boot; if there are none, nothing is isolated yet and status exits 0. Exit 1 when something movable may run on the VM CPUs. Reads only; without root it says what it could not see.',
    options: [
      {
        key: 'json',
        long: 'json',
        type: 'boolean',
        help: 'machine-readable output (same as the global --json)',
      },
      {
        key: 'verbose',
        long: 'verbose',
        short: ['-v'],
        type: 'boolean',
        help: 'list every cgroup, leak and expected item',
      },
    ],
    args: [
      {
        name: 'CPUS',
        required: false,
        help: 'the VM CPUs to check (default: those no host cgroup may use)',
        complete: 'cpus',
      },
    ],
    examples: [
      'vfio-isolate status',
      'vfio-isolate status C8-15,24-31',
      'vfio-isolate status -v L1',
      'vfio-isolate status --json',
    ],
    kind: 'report',
    load: () => import('../commands/status.ts').then((m) => m.handlers['status']!),
  },
  {
    name: 'measure',
    summary:
      'measure what actually runs on the VM CPUs: interrupts, softirqs, threads, and (probe) the noise',
    description:
      "Over a window (--seconds, default 5) reports per CPU the interrupts (/proc/interrupts: LOC, RES, CAL, TLB, ... and device IRQs by name), softirqs and CPU time, and every thread that ran there: each line says whether it is expected (per-CPU kernel work), the VM's own, or a leak with its fix (the wording of status). passive mode only reads counters and is safe while a VM runs; it is the default when vCPU threads (CPU n/KVM, CPU n/TCG) are on the CPUs. probe mode runs one pinned clock-reading thread per CPU and reports the largest interruption, the time lost per second (noise %) and a histogram of gap sizes; it is refused (exit 2) while a VM runs there. Budgets (--max-noise-us: time lost per second, --max-irqs-per-s, --max-gap-us: largest interruption) make it exit 1 when exceeded. Without CPUS it measures the VM CPUs status uses (with --profile: the profile's vm_cpus). A profile's [measure] table sets the window, mode and budgets, and after_start makes the libvirt hook measure the running VM in the background and log one line to syslog. isolate --measure N measures before and after isolating. In an emulated guest (TCG) the figures are only relative. Reads only; without root it says what it could not read.",
    options: [
      {
        key: 'seconds',
        long: 'seconds',
        type: 'string',
        valueName: 'N',
        help: 'length of the window in seconds (default 5, at most 3600)',
      },
      {
        key: 'mode',
        long: 'mode',
        type: 'string',
        valueName: 'MODE',
        help: 'passive (counters only; default while a VM runs there) or probe (default on idle CPUs)',
        choices: ['passive', 'probe'],
      },
      {
        key: 'maxNoiseUs',
        long: 'max-noise-us',
        type: 'string',
        valueName: 'US',
        help: 'budget: time lost per second on any CPU, in microseconds (exit 1 when over)',
      },
      {
        key: 'maxIrqsPerS',
        long: 'max-irqs-per-s',
        type: 'string',
        valueName: 'N',
        help: 'budget: interrupts per second on any CPU (exit 1 when over)',
      },
      {
        key: 'maxGapUs',
        long: 'max-gap-us',
        type: 'string',
        valueName: 'US',
        help: 'budget (probe): the largest single interruption, in microseconds',
      },
      {
        key: 'json',
        long: 'json',
        type: 'boolean',
        help: 'machine-readable output (same as the global --json)',
      },
      {
        key: 'verbose',
        long: 'verbose',
        short: ['-v'],
        type: 'boolean',
        help: "list every source and the VM's own threads",
      },
      {
        key: 'profile',
        long: 'profile',
        type: 'string',
        valueName: 'FILE',
        help: 'a TOML profile: its vm_cpus (unless CPUS is given) and its [measure] window, mode and budgets (options given here win); NAME means /etc/vfio-isolate/NAME.toml',
        complete: 'file',
      },
      {
        key: 'summary',
        long: 'summary',
        type: 'boolean',
        help: 'print one line: the worst CPU, the leaks that ran there, the verdict',
      },
      {
        key: 'afterStart',
        long: 'after-start',
        type: 'boolean',
        help: "what the libvirt hook runs after the VM started: passive, for the profile's [measure] after_start seconds, one line (nothing when the profile does not set it); needs --profile",
      },
    ],
    args: [
      {
        name: 'CPUS',
        required: false,
        help: 'the CPUs to measure (default: the VM CPUs status uses)',
        complete: 'cpus',
      },
    ],
    examples: [
      'vfio-isolate measure',
      'vfio-isolate measure --mode probe --seconds 10 C4-7',
      'vfio-isolate measure --seconds 30 --max-irqs-per-s 50 --max-noise-us 100',
      'vfio-isolate measure --json L1',
      'vfio-isolate measure --profile win11',
    ],
    kind: 'report',
    load: () => import('../commands/measure.ts').then((m) => m.handlers['measure']!),
  },
  {
    name: 'topology',
    summary: 'show packages, L3 cache domains, cores, NUMA nodes and a suggested host/VM split',
    description:
      'One row per L3 cache domain (a CCD or CCX on Ryzen) with its cores as SMT sibling pairs (0/16 1/17 ...), the NUMA nodes with their memory, and the CPU notation of each group (C0-7,16-23, L0, N0) ready to copy. Ends with the split isolate and libvirt cputune use by default, and why. Reads only; runs without root.',
    options: [
      {
        key: 'json',
        long: 'json',
        type: 'boolean',
        help: 'machine-readable output (same as the global --json)',
      },
    ],
    args: [],
    examples: ['vfio-isolate topology', 'vfio-isolate topology --json'],
    kind: 'report',
    load: () => import('../commands/topology.ts').then((m) => m.handlers['topology']!),
  },
  {
    name: 'libvirt',
    summary: 'libvirt integration: <cputune> XML and per-domain hooks',
    description:
      'cputune prints the pinning XML for a domain; hook install/uninstall/list manage a hook script that runs isolate when the domain starts and release when it stops.',
    options: [],
    args: [],
    subcommands: [cputuneCommand, hookCommand],
  },
  pinQemuCommand,
  {
    name: 'help',
    summary: 'show help for a command, or for the CPU notation (help cpus)',
    options: [],
    args: [{ name: 'TOPIC', required: false, help: 'a command name, or "cpus"' }],
    examples: ['vfio-isolate help cpuset-modify', 'vfio-isolate help cpus'],
    kind: 'report',
    load: () => import('../commands/help.ts').then((m) => m.handlers['help']!),
  },
  {
    name: 'completion',
    summary: 'print a shell completion script (bash, zsh or fish)',
    description:
      "Print a completion script for SHELL on stdout. It completes the global options, command names (also after earlier commands of a chain), each command's options, subcommands, argument choices, cgroup names from the hierarchy, the governors the CPUs offer and CPU notation hints of this machine. Runs unprivileged.",
    options: [],
    args: [
      { name: 'SHELL', required: true, help: 'bash, zsh or fish', choices: [...SHELLS], complete: 'shell' },
    ],
    examples: [
      'source <(vfio-isolate completion bash)',
      'vfio-isolate completion bash > /usr/share/bash-completion/completions/vfio-isolate',
      'vfio-isolate completion zsh > "${fpath[1]}/_vfio-isolate"',
      'vfio-isolate completion fish > ~/.config/fish/completions/vfio-isolate.fish',
    ],
    kind: 'report',
    load: () => import('../commands/completion.ts').then((m) => m.handlers['completion']!),
  },
  {
    name: '__complete',
    summary: 'print completion candidates (used by the completion scripts)',
    description:
      'Print one candidate per line for KIND, given the word typed so far (PREFIX, may be empty). Never fails.',
    options: [],
    args: [
      { name: 'KIND', required: true, help: DYNAMIC_KINDS.join(', '), choices: [...DYNAMIC_KINDS] },
      { name: 'PREFIX', required: true, help: 'the word typed so far' },
    ],
    hidden: true,
    kind: 'report',
    load: () => import('../commands/completion.ts').then((m) => m.handlers['__complete']!),
  },
];
