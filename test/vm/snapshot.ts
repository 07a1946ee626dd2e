/**
 * A read-only snapshot of the kernel state vfio-isolate touches, and a readable diff of two snapshots. Used inside
 * the test guest (root `/`) and on fake trees (any other root). Never writes anything.
 *
 * Captured: the cgroup mounts (from /proc/self/mountinfo) and, in the hierarchy that has the cpuset controller,
 * every cgroup with its cpuset files, cgroup.subtree_control / cgroup.controllers and member pids; every IRQ's
 * smp_affinity_list, default_smp_affinity, the workqueue cpumasks, vm.stat_interval, watchdog_cpumask, every CPU's
 * power/pm_qos_resume_latency_us; and every thread's
 * Cpus_allowed_list, scheduling policy and rt priority, keyed by tid with its start time.
 * On request (`units`), systemd's runtime view of named units: `systemctl show -p AllowedCPUs,AllowedMemoryNodes`
 * (read-only; only inside the systemd guest).
 * Not captured, because the kernel changes them on its own: interrupt counts, IRQ effective affinities; not compared:
 * the affinity of workqueue rescuers (kworker/R-*), which only the kernel sets, to the workqueue cpumask of the
 * moment each last rescued work (after an isolate and release it may keep the host CPUs until its next rescue).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Task flag (stat field 9): only the kernel may set the thread's affinity. */
const PF_NO_SETAFFINITY = 0x04000000;
/** Set at the start of do_exit(), before the task leaves its cgroup's cgroup.procs (cgroup_exit). */
const PF_EXITING = 0x00000004;

export interface CgroupMount {
  mountPoint: string;
  fsType: 'cgroup' | 'cgroup2';
  /** Root of the mount inside its hierarchy (mountinfo field 4), `/` unless bind-mounted. */
  root: string;
  superOptions: string[];
  /** Whether this hierarchy has the cpuset controller. */
  cpuset: boolean;
}

export interface CgroupState {
  /** cpuset and cgroup.* files that exist in this cgroup, trimmed. */
  files: Record<string, string>;
  /** Member pids (v2 cgroup.procs, v1 tasks), sorted. */
  pids: number[];
}

export interface TaskState {
  tid: number;
  tgid: number;
  comm: string;
  /** Field 22 of stat, in clock ticks since boot: tells a reused tid apart. */
  startTime: number;
  cpusAllowedList: string;
  /** Field 41 of stat: 0 OTHER, 1 FIFO, 2 RR, 3 BATCH, 5 IDLE, 6 DEADLINE. */
  policy: number;
  /** Field 40 of stat. */
  rtPriority: number;
  /**
   * A workqueue rescuer (PF_NO_SETAFFINITY; named kworker/R-<workqueue> since 6.9, just <workqueue> before, e.g.
   * mm_percpu_wq on 6.1, told then by its wait channel rescuer_thread): only the kernel sets its affinity, binding
   * it to the CPUs of the pool it rescues work on, at moments of its own choosing.
   */
  rescuer?: boolean;
}

export interface Snapshot {
  root: string;
  /** Every cgroup / cgroup2 mount, in mount order. */
  cgroupMounts: CgroupMount[];
  /** The mount of the hierarchy that has the cpuset controller (the first one if it is mounted twice). */
  cpuset?: { mountPoint: string; version: 1 | 2 };
  /** Cgroups of the cpuset hierarchy, keyed by path inside it (`/`, `/system.slice`, ...). */
  cgroups: Record<string, CgroupState>;
  /** IRQ number → smp_affinity_list. */
  irqs: Record<string, string>;
  defaultSmpAffinity?: string;
  workqueueCpumask?: string;
  writebackCpumask?: string;
  statInterval?: string;
  /** /proc/sys/kernel/watchdog_cpumask. */
  watchdogCpumask?: string;
  /** Every CPU's power/pm_qos_resume_latency_us, as `cpu0=0 cpu1=0 ...` (CPUs without the file left out). */
  wakeupLatency?: string;
  /** Every thread, keyed by tid. */
  tasks: Record<string, TaskState>;
  /**
   * /proc/uptime in clock ticks (the unit of a task's start time), read just before the member lists: a task whose
   * start time is not at least a tick earlier may have been born after its cgroup's list was read.
   */
  membersReadAt?: number;
  /** systemd unit → property → value (UNIT_PROPERTIES), for the units asked for. */
  units?: Record<string, Record<string, string>>;
}

/** The unit properties a snapshot records: what vfio-isolate may set through systemd. */
export const UNIT_PROPERTIES = ['AllowedCPUs', 'AllowedMemoryNodes'] as const;

/** Runs `systemctl ARGS` and returns its stdout (injectable for tests on fake trees). */
export type Systemctl = (args: readonly string[]) => string;

const realSystemctl: Systemctl = (args) =>
  execFileSync('systemctl', args, { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * `systemctl show -p AllowedCPUs,AllowedMemoryNodes UNIT...` parsed per unit (systemctl prints one block per unit,
 * in the order given, separated by an empty line). A unit systemd does not know shows empty values.
 */
export function readUnitProperties(
  units: readonly string[],
  systemctl: Systemctl = realSystemctl,
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  if (units.length === 0) return out;
  const text = systemctl(['show', '-p', UNIT_PROPERTIES.join(','), '--', ...units]);
  const blocks = text.replace(/\n+$/, '').split(/\n\n/);
  if (blocks.length !== units.length)
    throw new Error(`systemctl show: ${blocks.length} blocks for ${units.length} units:\n${text}`);
  units.forEach((unit, i) => {
    const props: Record<string, string> = {};
    for (const line of (blocks[i] ?? '').split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
    }
    out[unit] = props;
  });
  return out;
}

const V2_FILES = [
  'cgroup.controllers',
  'cgroup.subtree_control',
  'cgroup.type',
  'cpuset.cpus',
  'cpuset.mems',
  'cpuset.cpus.effective',
  'cpuset.mems.effective',
  'cpuset.cpus.partition',
  'cpuset.cpus.exclusive',
  'cpuset.cpus.exclusive.effective',
  'cpuset.cpus.isolated',
];

const V1_FILES = [
  'cpuset.cpus',
  'cpuset.mems',
  'cpuset.effective_cpus',
  'cpuset.effective_mems',
  'cpuset.cpu_exclusive',
  'cpuset.mem_exclusive',
  'cpuset.memory_migrate',
  'cpuset.sched_load_balance',
];

function read(root: string, path: string): string | undefined {
  try {
    return readFileSync(join(root, path), 'utf8').trim();
  } catch {
    return undefined;
  }
}

function list(root: string, path: string): { name: string; dir: boolean }[] {
  try {
    return readdirSync(join(root, path), { withFileTypes: true }).map((d) => ({
      name: d.name,
      dir: d.isDirectory(),
    }));
  } catch {
    return [];
  }
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseCgroupMounts(
  mountinfo: string,
  hasCpusetV2: (mountPoint: string) => boolean,
): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const fsType = right[0];
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    const mountPoint = unescapeMount(left[4] ?? '');
    const superOptions = (right[2] ?? '').split(',').filter(Boolean);
    const cpuset = fsType === 'cgroup' ? superOptions.includes('cpuset') : hasCpusetV2(mountPoint);
    out.push({ mountPoint, fsType, root: unescapeMount(left[3] ?? '/'), superOptions, cpuset });
  }
  return out;
}

function readCgroups(root: string, mountPoint: string, version: 1 | 2): Record<string, CgroupState> {
  const names = version === 2 ? V2_FILES : V1_FILES;
  const pidsFile = version === 2 ? 'cgroup.procs' : 'tasks';
  const out: Record<string, CgroupState> = {};
  const walk = (rel: string): void => {
    const dir = rel === '/' ? mountPoint : mountPoint + rel;
    const files: Record<string, string> = {};
    for (const name of names) {
      const v = read(root, join(dir, name));
      if (v !== undefined) files[name] = v;
    }
    const pids = (read(root, join(dir, pidsFile)) ?? '')
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .sort((x, y) => x - y);
    out[rel] = { files, pids };
    for (const e of list(root, dir)) {
      if (e.dir) walk(rel === '/' ? `/${e.name}` : `${rel}/${e.name}`);
    }
  };
  walk('/');
  return out;
}

function readIrqs(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of list(root, '/proc/irq')) {
    if (!e.dir || !/^\d+$/.test(e.name)) continue;
    const v = read(root, `/proc/irq/${e.name}/smp_affinity_list`);
    if (v !== undefined) out[e.name] = v;
  }
  return out;
}

/** Parse /proc/PID/task/TID/stat; fields are numbered from 1 as in proc(5); `state` is field 3 (R, S, Z, ...). */
export function parseStat(
  stat: string,
): { comm: string; state: string; field: (n: number) => number } | undefined {
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = stat
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  return { comm: stat.slice(open + 1, close), state: rest[0] ?? '', field: (n) => Number(rest[n - 3]) };
}

function readTasks(root: string, only?: ReadonlySet<number>): Record<string, TaskState> {
  const out: Record<string, TaskState> = {};
  for (const p of list(root, '/proc')) {
    if (!p.dir || !/^\d+$/.test(p.name)) continue;
    if (only && !only.has(Number(p.name))) continue;
    for (const t of list(root, `/proc/${p.name}/task`)) {
      if (!/^\d+$/.test(t.name)) continue;
      const base = `/proc/${p.name}/task/${t.name}`;
      const stat = read(root, `${base}/stat`);
      const status = read(root, `${base}/status`);
      if (stat === undefined || status === undefined) continue; // exited meanwhile
      const parsed = parseStat(stat);
      const cpus = /^Cpus_allowed_list:\s*(.*)$/m.exec(status)?.[1];
      if (!parsed || cpus === undefined) continue;
      // exiting (an idle kworker the kernel retires, a helper ending), or exited and not yet reaped by its parent (a
      // zombie): gone, as an exited task is (cgroup.procs no longer lists it)
      if (parsed.state === 'Z' || parsed.state === 'X' || (parsed.field(9) & PF_EXITING) !== 0) continue;
      out[t.name] = {
        tid: Number(t.name),
        tgid: Number(p.name),
        comm: parsed.comm,
        startTime: parsed.field(22),
        cpusAllowedList: cpus.trim(),
        policy: parsed.field(41),
        rtPriority: parsed.field(40),
        ...((parsed.field(9) & PF_NO_SETAFFINITY) !== 0 &&
        (/^kworker\/R-/.test(parsed.comm) || read(root, `${base}/wchan`) === 'rescuer_thread')
          ? { rescuer: true }
          : {}),
      };
    }
  }
  return out;
}

export interface SnapshotOptions {
  /**
   * Which processes' threads to record: all (default), none (`false`), or only these pids. Each thread costs two
   * file reads (~0.25 ms natively, ~40× that under TCG); the rest of a snapshot is cheap.
   */
  tasks?: boolean | readonly number[];
  /** systemd units whose UNIT_PROPERTIES to record (through `systemctl show`, or `systemctl` when given). */
  units?: readonly string[];
  systemctl?: Systemctl;
}

/** Take a snapshot of the system under `root` (default the real one). Read-only. */
export function takeSnapshot(root = '/', opts: SnapshotOptions = {}): Snapshot {
  const which = opts.tasks ?? true;
  const mounts = parseCgroupMounts(read(root, '/proc/self/mountinfo') ?? '', (mp) =>
    (read(root, join(mp, 'cgroup.controllers')) ?? '').split(/\s+/).includes('cpuset'),
  );
  const cs = mounts.find((m) => m.cpuset && m.root === '/') ?? mounts.find((m) => m.cpuset);
  const snap: Snapshot = { root, cgroupMounts: mounts, cgroups: {}, irqs: readIrqs(root), tasks: {} };
  if (cs) {
    const version = cs.fsType === 'cgroup2' ? 2 : 1;
    snap.cpuset = { mountPoint: cs.mountPoint, version };
    // seconds with two decimals: read as hundredths (USER_HZ is 100 on x86), without a float's rounding
    const uptime = /^(\d+)\.(\d\d)/.exec(read(root, '/proc/uptime') ?? '');
    if (uptime) snap.membersReadAt = Number(uptime[1]) * 100 + Number(uptime[2]);
    snap.cgroups = readCgroups(root, cs.mountPoint, version);
  }
  // The tasks after the cgroups' member lists: a task that left its cgroup.procs before that read was already
  // PF_EXITING (set before cgroup_exit), so it is not among the tasks and its pid is not compared. Read the other
  // way round, an idle kworker the kernel retired between the two reads showed as "lost" from the root cgroup.
  snap.tasks = which === false ? {} : readTasks(root, which === true ? undefined : new Set<number>(which));
  const assign = <
    K extends
      'defaultSmpAffinity' | 'workqueueCpumask' | 'writebackCpumask' | 'statInterval' | 'watchdogCpumask',
  >(
    key: K,
    path: string,
  ): void => {
    const v = read(root, path);
    if (v !== undefined) snap[key] = v;
  };
  assign('defaultSmpAffinity', '/proc/irq/default_smp_affinity');
  assign('workqueueCpumask', '/sys/devices/virtual/workqueue/cpumask');
  assign('writebackCpumask', '/sys/bus/workqueue/devices/writeback/cpumask');
  assign('statInterval', '/proc/sys/vm/stat_interval');
  assign('watchdogCpumask', '/proc/sys/kernel/watchdog_cpumask');
  const latencies = cpuDirs(root).flatMap((cpu) => {
    const v = read(root, `/sys/devices/system/cpu/${cpu}/power/pm_qos_resume_latency_us`);
    return v === undefined ? [] : [`${cpu}=${v}`];
  });
  if (latencies.length) snap.wakeupLatency = latencies.join(' ');
  if (opts.units) snap.units = readUnitProperties(opts.units, opts.systemctl);
  return snap;
}

/** cpu0, cpu1, ... under /sys/devices/system/cpu, in CPU order. */
function cpuDirs(root: string): string[] {
  try {
    return readdirSync(join(root, '/sys/devices/system/cpu'))
      .filter((n) => /^cpu\d+$/.test(n))
      .sort((x, y) => Number(x.slice(3)) - Number(y.slice(3)));
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------------------------

const POLICIES: Record<number, string> = {
  0: 'SCHED_OTHER',
  1: 'SCHED_FIFO',
  2: 'SCHED_RR',
  3: 'SCHED_BATCH',
  5: 'SCHED_IDLE',
  6: 'SCHED_DEADLINE',
};

function policyName(p: number): string {
  return POLICIES[p] ?? `policy ${p}`;
}

function q(v: string | undefined): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}

/** `470 (kworker/u8:3) 471 (sleep) ...`, the names as `snap` has them. */
function pidList(pids: number[], snap: Snapshot, max = 12): string {
  const shown = pids
    .slice(0, max)
    .map((p) => `${p} (${snap.tasks[String(p)]?.comm ?? '?'})`)
    .join(' ');
  return pids.length > max ? `${shown} (+${pids.length - max} more)` : shown;
}

function byNumber(a: string, b: string): number {
  return Number(a) - Number(b);
}

function byPath(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A task that is the same task in both snapshots (same tid and start time). */
function sameTask(a: Snapshot, b: Snapshot, tid: string): TaskState | undefined {
  const x = a.tasks[tid];
  const y = b.tasks[tid];
  return x && y && x.startTime === y.startTime ? y : undefined;
}

function mountLabel(m: CgroupMount): string {
  return `${m.fsType} ${m.mountPoint}${m.cpuset ? ' (cpuset)' : ''}`;
}

/** May `t` have been born after `snap` read its member lists (not at least a tick earlier)? */
function bornLate(snap: Snapshot, t: TaskState): boolean {
  return snap.membersReadAt !== undefined && t.startTime + 1 >= snap.membersReadAt;
}

function diffCgroups(a: Snapshot, b: Snapshot, pidsFile: string): string[] {
  const out: string[] = [];
  const listedInA = new Set(Object.values(a.cgroups).flatMap((c) => c.pids));
  const paths = [...new Set([...Object.keys(a.cgroups), ...Object.keys(b.cgroups)])].sort(byPath);
  for (const path of paths) {
    const x = a.cgroups[path];
    const y = b.cgroups[path];
    if (x && !y) {
      out.push(`cgroup ${path} removed`);
      continue;
    }
    if (!y) continue;
    if (!x) {
      const shown = ['cpuset.cpus', 'cpuset.mems', 'cpuset.cpus.partition']
        .filter((k) => y.files[k] !== undefined)
        .map((k) => `${k} ${q(y.files[k])}`);
      out.push(`cgroup ${path} created${shown.length ? ` (${shown.join(', ')})` : ''}`);
    } else {
      const names = [...new Set([...Object.keys(x.files), ...Object.keys(y.files)])].sort(byPath);
      for (const n of names) {
        if (x.files[n] !== y.files[n]) out.push(`cgroup ${path} ${n}: ${q(x.files[n])} → ${q(y.files[n])}`);
      }
    }
    // Member pids: only over tasks present in both snapshots, leaving out one that may have been born after `a`
    // read its member lists and is in none of them (a kworker the kernel starts while `a` is taken).
    const before = new Set(x?.pids ?? []);
    const after = new Set(y.pids);
    const compared = (p: number): boolean => {
      const t = sameTask(a, b, String(p));
      return t !== undefined && (!bornLate(a, t) || listedInA.has(p));
    };
    const gained = y.pids.filter((p) => !before.has(p) && compared(p));
    const lost = (x?.pids ?? []).filter((p) => !after.has(p) && compared(p));
    if (gained.length || lost.length) {
      const parts = [];
      if (gained.length) parts.push(`gained ${pidList(gained, b)}`);
      if (lost.length) parts.push(`lost ${pidList(lost, b)}`);
      out.push(`cgroup ${path} ${pidsFile}: ${parts.join('; ')}`);
    }
  }
  return out;
}

/** Readable differences from `a` to `b`, one per line; empty when nothing the tool manages has changed. */
export function diffSnapshots(a: Snapshot, b: Snapshot): string[] {
  const out: string[] = [];
  const ma = a.cgroupMounts.map(mountLabel).join(', ');
  const mb = b.cgroupMounts.map(mountLabel).join(', ');
  if (ma !== mb) out.push(`cgroup mounts: [${ma}] → [${mb}]`);
  const ca = a.cpuset ? `${a.cpuset.mountPoint} (v${a.cpuset.version})` : 'none';
  const cb = b.cpuset ? `${b.cpuset.mountPoint} (v${b.cpuset.version})` : 'none';
  if (ca !== cb) {
    out.push(`cpuset hierarchy: ${ca} → ${cb}`);
  } else {
    out.push(...diffCgroups(a, b, b.cpuset?.version === 1 ? 'tasks' : 'cgroup.procs'));
  }

  const irqs = [...new Set([...Object.keys(a.irqs), ...Object.keys(b.irqs)])].sort(byNumber);
  for (const irq of irqs) {
    const x = a.irqs[irq];
    const y = b.irqs[irq];
    if (x === y) continue;
    if (x === undefined) out.push(`irq ${irq} appeared: smp_affinity_list ${y}`);
    else if (y === undefined) out.push(`irq ${irq} gone (smp_affinity_list was ${x})`);
    else out.push(`irq ${irq} smp_affinity_list: ${x} → ${y}`);
  }

  const scalars: [string, string | undefined, string | undefined][] = [
    ['irq default_smp_affinity', a.defaultSmpAffinity, b.defaultSmpAffinity],
    ['workqueue cpumask', a.workqueueCpumask, b.workqueueCpumask],
    ['workqueue writeback cpumask', a.writebackCpumask, b.writebackCpumask],
    ['vm.stat_interval', a.statInterval, b.statInterval],
    ['watchdog_cpumask', a.watchdogCpumask, b.watchdogCpumask],
    ['pm_qos_resume_latency_us', a.wakeupLatency, b.wakeupLatency],
  ];
  for (const [name, x, y] of scalars) {
    if (x !== y) out.push(`${name}: ${x ?? '(absent)'} → ${y ?? '(absent)'}`);
  }

  const units = [...new Set([...Object.keys(a.units ?? {}), ...Object.keys(b.units ?? {})])].sort(byPath);
  for (const unit of units) {
    const x = a.units?.[unit];
    const y = b.units?.[unit];
    if (!x || !y) {
      out.push(`unit ${unit}: recorded ${x ? 'before only' : 'after only'}`);
      continue;
    }
    for (const p of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort(byPath)) {
      if (x[p] !== y[p]) out.push(`unit ${unit} ${p}: ${q(x[p])} → ${q(y[p])}`);
    }
  }

  const tids = Object.keys(a.tasks).sort(byNumber);
  for (const tid of tids) {
    const y = sameTask(a, b, tid);
    const x = a.tasks[tid];
    if (!x || !y) continue;
    const who = `task ${tid} (${y.comm})`;
    // a rescuer's mask is the kernel's (see TaskState.rescuer): a tool can neither set nor restore it; the same
    // thread in both snapshots, told as one in either (a 6.1 rescuer's wait channel shows only while it sleeps)
    if (x.cpusAllowedList !== y.cpusAllowedList && !(x.rescuer || y.rescuer)) {
      out.push(`${who} Cpus_allowed_list: ${x.cpusAllowedList} → ${y.cpusAllowedList}`);
    }
    if (x.policy !== y.policy || x.rtPriority !== y.rtPriority) {
      out.push(
        `${who} sched: ${policyName(x.policy)} ${x.rtPriority} → ${policyName(y.policy)} ${y.rtPriority}`,
      );
    }
  }
  return out;
}
