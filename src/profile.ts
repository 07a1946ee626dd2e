/**
 * VM profiles: one small TOML file per VM, read by `isolate --profile`, `release --profile`,
 * `libvirt cputune --profile` and the libvirt hook.
 *
 *   domain = "win11"            # optional; must match the domain a hook is installed for
 *   vm_cpus = "L1"              # or host_cpus = "C0-7,16-23" (one of the two)
 *   emulator_cpus = "C7,23"     # optional: QEMU's emulator and I/O threads (default: the host's last core)
 *
 *   [isolate]                   # every key optional; defaults as for `vfio-isolate isolate`
 *   cgroups = true
 *   irqs = true
 *   kthreads = true
 *   workqueues = true
 *   governor = "performance"    # or false
 *   drop_caches = true
 *   compact_memory = true
 *   stop_irqbalance = false
 *   partition = false
 *   stat_interval = 10
 *   vm_cgroup = "/machine.slice"
 *
 *   [measure]                   # for `measure --profile` and the libvirt hook; every key optional
 *   seconds = 10                # window of `measure --profile` (default 5)
 *   mode = "passive"            # or "probe"
 *   max_noise_us = 100          # budgets: exit 1 when over
 *   max_irqs_per_s = 50
 *   max_gap_us = 50
 *   after_start = 30            # the libvirt hook measures (passive) this long after "started", logs one line
 *
 *   [cputune]                   # for `libvirt cputune --profile`
 *   iothreads = 1
 *   sched = "rr"                # vCPU threads: fifo or rr
 *   priority = 1
 *   iothread_sched = "fifo"
 *   iothread_priority = 98
 *
 * Unknown keys are refused with a message naming the key; CPU strings use the command line's notation and are
 * checked against the machine.
 */
import * as path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import * as v from 'valibot';
import { CpuSet } from './cpus/cpuset.ts';
import { NotationError, parseCpuSpec } from './cpus/notation.ts';
import type { CpuTopology } from './cpus/topology-model.ts';
import { suggest } from './cli/parse.ts';
import { RuntimeFailure, UsageError } from './errors.ts';
import { P } from './kernel/paths.ts';
import { distrust, distrustText } from './kernel/trust.ts';
import { domainNameProblem } from './libvirt/hook-script.ts';
import { exampleVmCpus } from './report/topology-view.ts';
import type { SchedSpec } from './libvirt/cputune.ts';

const fs = process.getBuiltinModule('node:fs');

const MAX_PROFILE_BYTES = 64 * 1024;

const CpuString = v.pipe(
  v.string('must be a CPU set string like "C8-15,24-31" or "L1"'),
  v.minLength(1, 'must not be empty'),
  v.maxLength(1024),
);
const Flag = v.optional(v.boolean('must be true or false'));
const Sched = v.optional(v.picklist(['fifo', 'rr'], 'must be "fifo" or "rr"'));
const Priority = v.optional(
  v.pipe(
    v.number('must be a number from 1 to 99'),
    v.integer('must be a whole number'),
    v.minValue(1, 'must be at least 1'),
    v.maxValue(99, 'must be at most 99'),
  ),
);

const IsolateTable = v.strictObject({
  cgroups: Flag,
  irqs: Flag,
  kthreads: Flag,
  workqueues: Flag,
  governor: v.optional(
    v.union(
      [
        v.pipe(
          v.string(),
          v.regex(/^[a-z0-9_-]{1,32}$/, 'must be a governor name like "performance", or false'),
        ),
        v.literal(false),
      ],
      'must be a governor name like "performance", or false',
    ),
  ),
  drop_caches: Flag,
  compact_memory: Flag,
  stop_irqbalance: Flag,
  partition: Flag,
  stat_interval: v.optional(
    v.pipe(
      v.number('must be a number of seconds'),
      v.integer('must be a whole number'),
      v.minValue(1, 'must be at least 1'),
      v.maxValue(86400, 'must be at most 86400'),
    ),
  ),
  vm_cgroup: v.optional(
    v.pipe(
      v.string('must be a cgroup name like "/machine.slice"'),
      v.minLength(1, 'must not be empty'),
      v.maxLength(4096),
    ),
  ),
});

const CputuneTable = v.strictObject({
  iothreads: v.optional(
    v.pipe(
      v.number('must be a number from 0 to 64'),
      v.integer('must be a whole number'),
      v.minValue(0, 'must be at least 0'),
      v.maxValue(64, 'must be at most 64'),
    ),
  ),
  sched: Sched,
  priority: Priority,
  iothread_sched: Sched,
  iothread_priority: Priority,
});

const Budget = v.optional(
  v.pipe(
    v.number('must be a number >= 0'),
    v.minValue(0, 'must be at least 0'),
    v.maxValue(1e9, 'must be at most 1000000000'),
  ),
);
const Window = v.optional(
  v.pipe(
    v.number('must be a number of seconds'),
    v.gtValue(0, 'must be more than 0'),
    v.maxValue(3600, 'must be at most 3600'),
  ),
);

const MeasureTable = v.strictObject({
  seconds: Window,
  mode: v.optional(v.picklist(['passive', 'probe'], 'must be "passive" or "probe"')),
  max_noise_us: Budget,
  max_irqs_per_s: Budget,
  max_gap_us: Budget,
  after_start: Window,
});

export const ProfileSchema = v.strictObject({
  domain: v.optional(
    v.pipe(
      v.string('must be a string'),
      v.check(
        (s) => domainNameProblem(s) === undefined,
        'is not a domain name hooks support (letters, digits, _ . + -)',
      ),
    ),
  ),
  vm_cpus: v.optional(CpuString),
  host_cpus: v.optional(CpuString),
  emulator_cpus: v.optional(CpuString),
  isolate: v.optional(IsolateTable),
  cputune: v.optional(CputuneTable),
  measure: v.optional(MeasureTable),
});
export type ProfileData = v.InferOutput<typeof ProfileSchema>;

/** The steps `isolate` takes, as a profile sets them (defaults: those of `vfio-isolate isolate`). */
export interface ProfileSteps {
  cgroups: boolean;
  irqs: boolean;
  kthreads: boolean;
  workqueues: boolean;
  /** undefined: leave the governor alone. */
  governor?: string;
  dropCaches: boolean;
  compactMemory: boolean;
  stopIrqbalance: boolean;
  partition: boolean;
  statInterval?: number;
}

/** A profile's [measure] table: defaults of `measure --profile`, and the libvirt hook's measurement. */
export interface ProfileMeasure {
  seconds?: number;
  mode?: 'passive' | 'probe';
  maxNoiseUs?: number;
  maxIrqsPerS?: number;
  maxGapUs?: number;
  /** Seconds of passive measurement the libvirt hook starts, in the background, after "started". */
  afterStart?: number;
}

/** The isolate options a profile stands for. */
export interface ProfileIsolateOptions {
  vmCpus: CpuSet;
  /** Online CPUs not given to the VM (host_cpus, when the profile names them that way). */
  hostCpus: CpuSet;
  /** Cgroup of the VMs, as parts ("machine.slice" → ["machine.slice"]); undefined = isolate's default. */
  vmCgroup?: string[];
  steps: ProfileSteps;
}

export interface Profile {
  /** Absolute path of the file ("<text>" when parsed from a string). */
  path: string;
  domain?: string;
  vmCpus: CpuSet;
  hostCpus: CpuSet;
  /** Exactly as written in the file (for messages and for isolate's own resolution). */
  vmSpec?: string;
  hostSpec?: string;
  emulatorCpus?: CpuSet;
  isolate: ProfileIsolateOptions;
  cputune: { iothreads?: number; vcpuSched?: SchedSpec; iothreadSched?: SchedSpec };
  /** The [measure] table, when the profile has one. */
  measure?: ProfileMeasure;
  /** Things worth telling the user (offline CPUs). */
  warnings: string[];
}

const KNOWN: Record<string, readonly string[]> = {
  '': Object.keys(ProfileSchema.entries),
  isolate: Object.keys(IsolateTable.entries),
  cputune: Object.keys(CputuneTable.entries),
  measure: Object.keys(MeasureTable.entries),
};

function issueMessage(name: string, issue: v.BaseIssue<unknown>): { message: string; hint?: string } {
  const keys = (issue.path ?? []).map((p) => String(p.key));
  const key = keys.join('.');
  // a table's name given a plain value (`measure = 1`): the table itself has the wrong type
  if (issue.type === 'strict_object' && keys.length > 0 && issue.expected !== 'never')
    return { message: `${name}: ${key} must be a table ([${key}])` };
  if (issue.type === 'strict_object' && keys.length > 0) {
    const table = keys.slice(0, -1).join('.');
    const where = table ? ` in [${table}]` : '';
    const known = KNOWN[table];
    const unknown = keys[keys.length - 1]!;
    const near = known ? suggest(unknown, known) : undefined;
    return {
      message: `${name}: unknown key "${unknown}"${where}`,
      hint: near ? `did you mean "${near}"?` : known ? `known keys${where}: ${known.join(', ')}` : undefined,
    };
  }
  if (keys.length === 0) return { message: `${name}: ${issue.message}` };
  return { message: `${name}: ${key} ${issue.message}` };
}

/** Parse and validate profile text against a machine. Throws UsageError (exit 2) for anything wrong in it. */
export function parseProfile(text: string, topo: CpuTopology, file = '<text>'): Profile {
  const name = file === '<text>' ? 'profile' : path.basename(file);
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '');
      throw new UsageError(`${name}:${e.line}:${e.column}: not valid TOML: ${first}`);
    }
    throw e;
  }
  const r = v.safeParse(ProfileSchema, raw);
  if (!r.success) {
    const { message, hint } = issueMessage(name, r.issues[0]);
    throw new UsageError(message, hint);
  }
  const d = r.output;
  const warnings: string[] = [];
  const cpus = (key: string, value: string): CpuSet => {
    try {
      const res = parseCpuSpec(value, topo, { what: `${key} in ${name}` });
      warnings.push(...res.warnings);
      return res.cpus;
    } catch (e) {
      if (e instanceof NotationError)
        throw new UsageError(e.message, 'see "vfio-isolate help cpus" for the notation');
      throw e;
    }
  };
  if (d.vm_cpus !== undefined && d.host_cpus !== undefined) {
    throw new UsageError(
      `${name}: give vm_cpus or host_cpus, not both`,
      'the other is every online CPU not named',
    );
  }
  if (d.vm_cpus === undefined && d.host_cpus === undefined) {
    const example = exampleVmCpus(topo);
    throw new UsageError(
      `${name}: which CPUs does the VM get? set vm_cpus (or host_cpus)`,
      example
        ? `e.g. vm_cpus = "${example}", the split vfio-isolate topology suggests for this machine`
        : 'this machine has a single core: there is nothing to give a VM',
    );
  }
  const vmCpus =
    d.vm_cpus !== undefined ? cpus('vm_cpus', d.vm_cpus) : topo.online.minus(cpus('host_cpus', d.host_cpus!));
  const hostCpus = topo.online.minus(vmCpus);
  if (vmCpus.isEmpty) throw new UsageError(`${name}: host_cpus leaves no CPU for the VM`);
  if (hostCpus.isEmpty)
    throw new UsageError(`${name}: vm_cpus takes every online CPU and leaves none for the host`);
  const emulatorCpus = d.emulator_cpus !== undefined ? cpus('emulator_cpus', d.emulator_cpus) : undefined;
  const i = d.isolate ?? {};
  const steps: ProfileSteps = {
    cgroups: i.cgroups ?? true,
    irqs: i.irqs ?? true,
    kthreads: i.kthreads ?? true,
    workqueues: i.workqueues ?? true,
    dropCaches: i.drop_caches ?? false,
    compactMemory: i.compact_memory ?? false,
    stopIrqbalance: i.stop_irqbalance ?? false,
    partition: i.partition ?? false,
  };
  if (typeof i.governor === 'string') steps.governor = i.governor;
  if (i.stat_interval !== undefined) steps.statInterval = i.stat_interval;
  const isolate: ProfileIsolateOptions = { vmCpus, hostCpus, steps };
  if (i.vm_cgroup !== undefined) {
    const parts = i.vm_cgroup.split('/').filter(Boolean);
    if (parts.some((p) => p === '.' || p === '..') || parts.length === 0) {
      throw new UsageError(
        `${name}: isolate.vm_cgroup ${JSON.stringify(i.vm_cgroup)} is not a cgroup name like "/machine.slice"`,
      );
    }
    isolate.vmCgroup = parts;
  }
  const c = d.cputune ?? {};
  if (c.priority !== undefined && c.sched === undefined)
    throw new UsageError(`${name}: cputune.priority needs cputune.sched ("fifo" or "rr")`);
  if (c.iothread_priority !== undefined && c.iothread_sched === undefined) {
    throw new UsageError(`${name}: cputune.iothread_priority needs cputune.iothread_sched ("fifo" or "rr")`);
  }
  const cputune: Profile['cputune'] = {};
  if (c.iothreads !== undefined) cputune.iothreads = c.iothreads;
  if (c.sched) cputune.vcpuSched = { policy: c.sched, priority: c.priority ?? 1 };
  if (c.iothread_sched)
    cputune.iothreadSched = { policy: c.iothread_sched, priority: c.iothread_priority ?? 1 };
  const p: Profile = { path: file, vmCpus, hostCpus, isolate, cputune, warnings };
  if (d.domain !== undefined) p.domain = d.domain;
  if (d.vm_cpus !== undefined) p.vmSpec = d.vm_cpus;
  if (d.host_cpus !== undefined) p.hostSpec = d.host_cpus;
  if (emulatorCpus) p.emulatorCpus = emulatorCpus;
  if (d.measure) {
    const m = d.measure;
    const measure: ProfileMeasure = {};
    if (m.seconds !== undefined) measure.seconds = m.seconds;
    if (m.mode !== undefined) measure.mode = m.mode;
    if (m.max_noise_us !== undefined) measure.maxNoiseUs = m.max_noise_us;
    if (m.max_irqs_per_s !== undefined) measure.maxIrqsPerS = m.max_irqs_per_s;
    if (m.max_gap_us !== undefined) measure.maxGapUs = m.max_gap_us;
    if (m.after_start !== undefined) measure.afterStart = m.after_start;
    p.measure = measure;
  }
  return p;
}

/**
 * The file `--profile NAME` means. A NAME with a slash is a path (`./win11.toml`, `/srv/vm/win11.toml`); a bare NAME
 * is the profile of that name in /etc/vfio-isolate/: `win11` and `win11.toml` both mean /etc/vfio-isolate/win11.toml.
 * `hostPath` maps that system path to the file (the kernel's; a fake tree's /etc in tests).
 */
export function profileFile(name: string, hostPath: (systemPath: string) => string): string {
  if (name.includes('/')) return name;
  return hostPath(`${P.profileDir}/${name.endsWith('.toml') ? name.slice(0, -'.toml'.length) : name}.toml`);
}

/**
 * The trust boundary of profiles (README, "Guarantees and limits"): root reads a profile and acts on it (a libvirt hook reads
 * it at every VM start), so when running as root it must be a regular file owned by root, not writable by group or
 * others, in directories only root can change (a root-owned sticky directory may hold a root-owned profile).
 * Unprivileged runs (libvirt cputune, dry runs) change nothing and read any profile.
 */
export function checkProfileTrust(file: string, abs: string = path.resolve(file)): void {
  if ((process.geteuid?.() ?? 0) !== 0) return;
  const bad = distrust(abs, { allowSticky: true });
  if (bad)
    throw new UsageError(
      `profile ${file} is not trusted: ${distrustText(bad)}`,
      "root acts on it: make it root's and writable only by root (chown root: FILE; chmod go-w FILE), in a directory only root can change, e.g. /etc/vfio-isolate/",
    );
}

/** A profile by name or path (see profileFile) on this kernel's machine, its warnings passed to `warn`. */
export function loadNamedProfile(
  name: string,
  k: { hostPath(systemPath: string): string; machine: CpuTopology },
  warn: (line: string) => void,
): Profile {
  const p = loadProfile(
    profileFile(name, (sys) => k.hostPath(sys)),
    k.machine,
  );
  for (const w of p.warnings) warn(w);
  return p;
}

/**
 * Read and validate a profile file. A missing or unreadable file is a runtime failure (exit 1); anything wrong
 * inside it is a usage error (exit 2). The path is the user's own file, not a system path.
 */
export function loadProfile(file: string, topo: CpuTopology): Profile {
  const abs = path.resolve(file);
  let text: string;
  try {
    const st = fs.statSync(abs);
    if (!st.isFile()) throw new UsageError(`profile ${file} is not a regular file`);
    checkProfileTrust(file, abs);
    if (st.size > MAX_PROFILE_BYTES)
      throw new UsageError(`profile ${file} is larger than ${MAX_PROFILE_BYTES / 1024} KiB: not a profile`);
    text = fs.readFileSync(abs, 'utf8');
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new RuntimeFailure(
      code === 'ENOENT' ? `profile ${file} does not exist` : `cannot read profile ${file}: ${code}`,
      code === 'ENOENT'
        ? 'check the path (profiles are TOML files; see "vfio-isolate help libvirt")'
        : undefined,
    );
  }
  return parseProfile(text, topo, abs);
}

/** The options `isolate` takes, as the profile sets them. */
export function profileToIsolateOptions(p: Profile): ProfileIsolateOptions {
  return p.isolate;
}
