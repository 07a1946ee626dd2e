/**
 * The JSON outputs, as valibot schemas: `status --json`, `topology --json`, a dry run (`-n --json`), the result of
 * applying (`--json`) and isolate's result. docs/json.md describes every field; tests validate real output
 * against these schemas, so the two cannot drift apart. Objects are strict: a new field needs a schema (and doc)
 * change. `schemaVersion` changes only when a field is removed or changes meaning.
 */
import * as v from 'valibot';

/** A kernel CPU list: "0-7,16-23", "" for the empty set. */
export const CpuList = v.pipe(v.string(), v.regex(/^(\d+(-\d+)?(,\d+(-\d+)?)*)?$/));
/** The C-notation of a non-empty CPU set: "C0-7,16-23". */
export const CpuNotation = v.pipe(v.string(), v.regex(/^C\d+(-\d+)?(,\d+(-\d+)?)*$/));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
const Id = v.pipe(v.number(), v.integer(), v.minValue(0));

// ---------------------------------------------------------------------------------------------------------------
// topology --json

export const SplitJson = v.strictObject({
  host: CpuList,
  hostNotation: v.nullable(CpuNotation),
  /** L/N/P selector when the set is exactly whole L3 domains, nodes or packages: "L0", "N1". */
  hostShort: v.nullable(v.string()),
  vm: CpuList,
  vmNotation: v.nullable(CpuNotation),
  vmShort: v.nullable(v.string()),
  reason: v.string(),
});

export const TopologyJson = v.strictObject({
  command: v.literal('topology'),
  schemaVersion: v.literal(1),
  cpus: v.strictObject({ possible: CpuList, present: CpuList, online: CpuList, offline: CpuList }),
  threadsPerCore: v.pipe(v.number(), v.integer(), v.minValue(1)),
  packages: v.array(
    v.strictObject({
      id: Id,
      notation: v.pipe(v.string(), v.regex(/^P\d+$/)),
      cpus: CpuList,
      cpuNotation: CpuNotation,
      dies: v.array(v.strictObject({ id: Id, cpus: CpuList })),
    }),
  ),
  l3: v.array(
    v.strictObject({
      index: Id,
      notation: v.pipe(v.string(), v.regex(/^L\d+$/)),
      cpus: CpuList,
      cpuNotation: CpuNotation,
      nodes: v.array(Id),
      /** Each core as its SMT siblings: "0,16". */
      cores: v.array(CpuList),
    }),
  ),
  nodes: v.array(
    v.strictObject({
      id: Id,
      notation: v.pipe(v.string(), v.regex(/^N\d+$/)),
      cpus: CpuList,
      cpuNotation: v.nullable(CpuNotation),
      memoryKiB: Count,
      l3: v.array(Id),
    }),
  ),
  cores: v.array(
    v.strictObject({
      package: Id,
      die: Id,
      core: Id,
      cpus: CpuList,
      l3: v.nullable(Id),
      node: v.nullable(Id),
    }),
  ),
  isolated: CpuList,
  nohzFull: CpuList,
  suggestion: SplitJson,
});
export type TopologyJson = v.InferOutput<typeof TopologyJson>;

// ---------------------------------------------------------------------------------------------------------------
// status --json

export const FindingJson = v.strictObject({
  kind: v.picklist([
    'task',
    'kthread',
    'irq',
    'default-irq',
    'workqueue',
    'pinned-kthread',
    'managed-irq',
    'irqbalance',
    'partition',
    'smt',
    'offline',
  ]),
  /** true: a leak (something movable that may run on the VM CPUs). */
  movable: v.boolean(),
  /** pid, IRQ number, path or cgroup name. */
  id: v.nullable(v.union([Id, v.string()])),
  name: v.nullable(v.string()),
  /** The VM CPUs concerned. */
  cpus: v.nullable(CpuList),
  message: v.string(),
  fix: v.nullable(v.string()),
  /** message and fix as printed: one line. */
  line: v.string(),
});
export type FindingJson = v.InferOutput<typeof FindingJson>;

export interface CgroupJson {
  name: string;
  cpuset: boolean;
  cpus: string | null;
  effectiveCpus: string | null;
  mems: string | null;
  effectiveMems: string | null;
  partition: string | null;
  exclusiveCpus: string | null;
  subtreeCpuset: boolean | null;
  v1: {
    cpuExclusive: boolean | null;
    memExclusive: boolean | null;
    memMigrate: boolean | null;
    schedLoadBalance: boolean | null;
  } | null;
  tasks: number | null;
  subtreeTasks: number;
  children: CgroupJson[];
}

export const CgroupJson: v.GenericSchema<CgroupJson> = v.strictObject({
  name: v.pipe(v.string(), v.startsWith('/')),
  cpuset: v.boolean(),
  /** Configured cpuset.cpus as written ("" = inherit on v2); null without the file. */
  cpus: v.nullable(v.string()),
  effectiveCpus: v.nullable(CpuList),
  mems: v.nullable(v.string()),
  effectiveMems: v.nullable(CpuList),
  partition: v.nullable(v.string()),
  exclusiveCpus: v.nullable(v.string()),
  subtreeCpuset: v.nullable(v.boolean()),
  v1: v.nullable(
    v.strictObject({
      cpuExclusive: v.nullable(v.boolean()),
      memExclusive: v.nullable(v.boolean()),
      memMigrate: v.nullable(v.boolean()),
      schedLoadBalance: v.nullable(v.boolean()),
    }),
  ),
  tasks: v.nullable(Count),
  subtreeTasks: Count,
  children: v.array(v.lazy(() => CgroupJson)),
});

export const LeakCheckJson = v.strictObject({
  ok: v.boolean(),
  vmCpus: CpuList,
  hostCpus: CpuList,
  leaks: v.array(FindingJson),
  unmovable: v.array(FindingJson),
  warnings: v.array(FindingJson),
  vmTasks: Count,
  idleIrqs: v.array(Id),
  interruptsOnVmCpus: Count,
});

/** A restriction an active journal applied through systemd and systemd no longer has. */
export const DriftJson = v.strictObject({
  unit: v.string(),
  property: v.picklist(['AllowedCPUs', 'AllowedMemoryNodes']),
  applied: v.string(),
  now: v.string(),
  journal: v.string(),
  at: v.string(),
  fix: v.string(),
});

export const StatusJson = v.strictObject({
  command: v.literal('status'),
  schemaVersion: v.literal(1),
  /** No movable leak (the exit status is 0). */
  ok: v.boolean(),
  kernel: v.string(),
  cpus: v.strictObject({ present: CpuList, online: CpuList }),
  vmCpus: v.strictObject({
    cpus: CpuList,
    source: v.picklist(['argument', 'reservations', 'cgroups', 'boot', 'none']),
    why: v.string(),
  }),
  hostCpus: CpuList,
  /** The active isolations (isolate's reservation registry), oldest first. */
  reservations: v.array(
    v.strictObject({
      journal: v.string(),
      vmCpus: CpuList,
      vmCgroup: v.string(),
      since: v.string(),
      journalState: v.picklist(['active', 'restored', 'earlier-boot', 'missing', 'unreadable']),
    }),
  ),
  /** Only when something drifted (then ok is false and the exit status 1). */
  drift: v.optional(v.array(DriftJson)),
  /** Only when an active journal was not read for drift: root alone could not have written it. */
  driftUnchecked: v.optional(v.array(v.strictObject({ journal: v.string(), why: v.string() }))),
  /** Only when the drift check failed. */
  driftError: v.optional(v.string()),
  cgroups: v.nullable(
    v.strictObject({
      version: v.picklist([1, 2]),
      mount: v.string(),
      hybrid: v.boolean(),
      taskFile: v.picklist(['cgroup.procs', 'tasks']),
      tree: CgroupJson,
    }),
  ),
  boot: v.strictObject({
    cmdline: v.strictObject({
      isolcpus: v.nullable(v.string()),
      isolcpusCpus: v.nullable(v.string()),
      nohz_full: v.nullable(v.string()),
      rcu_nocbs: v.nullable(v.string()),
      irqaffinity: v.nullable(v.string()),
    }),
    isolated: v.nullable(CpuList),
    nohzFull: v.nullable(CpuList),
    cpusetIsolated: v.nullable(CpuList),
  }),
  /** Live per-CPU knobs: where the watchdog runs; each CPU's pm_qos_resume_latency_us as read ("0": no limit). */
  knobs: v.strictObject({
    watchdogCpumask: v.nullable(CpuList),
    wakeupLatencyUs: v.record(
      v.pipe(v.string(), v.regex(/^\d+$/)),
      v.pipe(v.string(), v.regex(/^(\d+|n\/a)$/)),
    ),
  }),
  tasks: v.strictObject({
    scanned: Count,
    vm: Count,
    movableUser: Count,
    movableKthreads: Count,
    pinnedKthreads: Count,
  }),
  irqs: v.strictObject({
    total: Count,
    onVmCpus: Count,
    movable: Count,
    managed: Count,
    idle: Count,
    interruptsOnVmCpus: Count,
  }),
  defaultSmpAffinity: v.nullable(CpuList),
  workqueues: v.array(v.strictObject({ path: v.string(), cpus: v.nullable(CpuList) })),
  governors: v.array(v.strictObject({ cpus: CpuList, governor: v.nullable(v.string()) })),
  irqbalance: v.strictObject({ running: v.boolean(), pid: v.nullable(Id), bannedCpus: v.nullable(CpuList) }),
  leaks: v.array(FindingJson),
  unmovable: v.array(FindingJson),
  warnings: v.array(FindingJson),
  notVisible: v.array(v.string()),
  /** The libvirt hooks vfio-isolate installed, with the check of what they run as root. */
  hooks: v.array(
    v.strictObject({
      domain: v.string(),
      path: v.pipe(v.string(), v.startsWith('/')),
      node: v.nullable(v.string()),
      tool: v.nullable(v.string()),
      /** Root alone can change node, the tool and everything they load. */
      safe: v.boolean(),
      /** When not safe: why, one line. */
      problem: v.nullable(v.string()),
    }),
  ),
});
export type StatusJson = v.InferOutput<typeof StatusJson>;

// ---------------------------------------------------------------------------------------------------------------
// changing commands: the plan (--dry-run --json) and the result (--json)

export const ChangeJson = v.strictObject({
  /** The file (system path) or object changed. */
  target: v.string(),
  before: v.optional(v.string()),
  after: v.optional(v.string()),
  note: v.optional(v.string()),
});

export const PlanJson = v.strictObject({
  dryRun: v.literal(true),
  steps: v.array(v.strictObject({ command: v.string(), title: v.string(), changes: v.array(ChangeJson) })),
});
export type PlanJson = v.InferOutput<typeof PlanJson>;

export const ResultJson = v.strictObject({
  ok: v.boolean(),
  /** On failure: the error message. */
  error: v.optional(v.string()),
  /** On failure: whether the changes of this run were undone. */
  rolledBack: v.optional(v.boolean()),
  planned: Count,
  steps: v.array(
    v.strictObject({
      command: v.string(),
      title: v.string(),
      changed: Count,
      gone: Count,
      skipped: v.array(v.strictObject({ what: v.string(), why: v.string() })),
    }),
  ),
});
export type ResultJson = v.InferOutput<typeof ResultJson>;

// ---------------------------------------------------------------------------------------------------------------
// measure --json

const Verdict = v.picklist(['expected', 'vm', 'leak']);
const PerCpuCounts = v.record(v.pipe(v.string(), v.regex(/^\d+$/)), v.pipe(v.number(), v.minValue(0)));
const NonNeg = v.pipe(v.number(), v.minValue(0));

export const MeasureJson = v.strictObject({
  command: v.literal('measure'),
  schemaVersion: v.literal(1),
  mode: v.picklist(['passive', 'probe']),
  cpus: CpuList,
  why: v.string(),
  seconds: NonNeg,
  interrupted: v.boolean(),
  vms: v.array(v.string()),
  perCpu: v.array(
    v.strictObject({
      cpu: Id,
      irqsPerSecond: NonNeg,
      softirqsPerSecond: NonNeg,
      hostUsPerSecond: NonNeg,
      busyPercent: v.nullable(NonNeg),
      noiseUsPerSecond: NonNeg,
      probe: v.nullable(
        v.strictObject({
          maxGapUs: NonNeg,
          noisePercent: NonNeg,
          histogram: v.array(Count),
          error: v.nullable(v.string()),
        }),
      ),
    }),
  ),
  histogramBuckets: v.array(v.string()),
  sources: v.array(
    v.strictObject({
      kind: v.picklist(['irq', 'softirq']),
      label: v.string(),
      name: v.string(),
      perSecond: NonNeg,
      perCpu: PerCpuCounts,
      verdict: Verdict,
      note: v.string(),
    }),
  ),
  threads: v.array(
    v.strictObject({
      pid: Id,
      tid: Id,
      comm: v.string(),
      ms: NonNeg,
      perCpuMs: PerCpuCounts,
      verdict: Verdict,
      note: v.string(),
    }),
  ),
  budgets: v.array(
    v.strictObject({
      name: v.picklist(['max-noise-us', 'max-irqs-per-s', 'max-gap-us']),
      limit: NonNeg,
      worstCpu: v.nullable(Id),
      worst: v.nullable(NonNeg),
      ok: v.boolean(),
    }),
  ),
  overBudget: v.boolean(),
  notRead: v.array(v.string()),
});
export type MeasureJson = v.InferOutput<typeof MeasureJson>;

// ---------------------------------------------------------------------------------------------------------------
// isolate --json

/** isolate --json: the applied steps (as ResultJson) plus its leak check (and with --measure the two measurements), when every step was applied. */
export const IsolateResultJson = v.strictObject({
  ...ResultJson.entries,
  command: v.literal('isolate'),
  strict: v.boolean(),
  leakCheck: LeakCheckJson,
  /** isolate --measure N: the measurement of the VM CPUs before any change and after the changes (as measure --json). */
  measureBefore: v.optional(MeasureJson),
  measureAfter: v.optional(MeasureJson),
});
export type IsolateResultJson = v.InferOutput<typeof IsolateResultJson>;

// ---------------------------------------------------------------------------------------------------------------
// partition --json

/** partition --json: the applied steps (as ResultJson) plus what became isolated partitions, once every step was applied. */
export const PartitionResultJson = v.strictObject({
  ...ResultJson.entries,
  command: v.literal('partition'),
  cgroup: v.string(),
  cpus: CpuList,
  /** The root's cpuset.cpus.isolated as read afterwards; absent when the kernel has no such file. */
  isolated: v.optional(CpuList),
});
export type PartitionResultJson = v.InferOutput<typeof PartitionResultJson>;
