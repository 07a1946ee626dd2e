/**
 * The status report's data and its pure core. `StatusModel` is what the kernel showed us (built by
 * src/commands/status-collect.ts); `findLeaks(model, vmCpus)` decides, without any I/O, what may still run on the VM's CPUs and
 * whether it could be moved. `isolate` uses the same function for its leak check.
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { printable } from './printable.ts';

// ---------------------------------------------------------------------------------------------------------------
// The model

export interface CgroupNode {
  /** "/" for the root, "/system.slice", ... */
  name: string;
  /** Has cpuset interface files (v1: always; v2: its parent enabled cpuset, or it is the root). */
  cpuset: boolean;
  /** The configured `cpuset.cpus` as written ('' = inherit on v2); undefined when there is no such file. */
  configuredCpus?: string;
  effectiveCpus?: CpuSet;
  configuredMems?: string;
  effectiveMems?: CpuSet;
  /** v2 `cpuset.cpus.partition` as read: member, root, isolated, `isolated invalid (reason)`. */
  partition?: string;
  /** v2 `cpuset.cpus.exclusive` (6.7+). */
  exclusiveCpus?: string;
  /** v2: cpuset is enabled in this cgroup's `cgroup.subtree_control`. */
  subtreeCpuset?: boolean;
  /** v1 flags. */
  v1?: { cpuExclusive?: boolean; memExclusive?: boolean; memMigrate?: boolean; schedLoadBalance?: boolean };
  /** Entries in its own `cgroup.procs` (v2) / `tasks` (v1); undefined when unreadable. */
  tasks?: number;
  /** Its tasks plus those of every descendant (unreadable ones count 0). */
  subtreeTasks: number;
  children: CgroupNode[];
}

export interface CgroupsInfo {
  version: 1 | 2;
  mount: string;
  hybrid: boolean;
  /** What `tasks` counts: processes (v2 cgroup.procs) or threads (v1 tasks). */
  taskFile: 'cgroup.procs' | 'tasks';
  root: CgroupNode;
}

/**
 * How a task may be moved off CPUs: a user task (cgroup or affinity), a kernel thread whose affinity may be set,
 * or a task whose affinity only the kernel controls (PF_NO_SETAFFINITY: per-CPU kernel threads, workqueue
 * workers; they follow the workqueue cpumask or stay on their CPU).
 */
export type TaskKind = 'user' | 'kthread' | 'pinned';

export interface ThreadEntry {
  tid: number;
  /** Cpus_allowed_list; undefined when it could not be read. */
  allowed?: CpuSet;
}

export interface TaskEntry {
  pid: number;
  comm: string;
  kind: TaskKind;
  threads: ThreadEntry[];
  /** Its cgroup in the cpuset hierarchy. */
  cgroup?: string;
  /** Belongs to a VM (in machine.slice / machine, a qemu process, or a VM's vhost/kvm kernel thread). */
  vm: boolean;
}

export interface IrqEntry {
  irq: number;
  /** Action names (the handlers registered on it); [] = allocated but no handler, it never fires. */
  names: string[];
  /** smp_affinity_list; undefined when the IRQ has none (or it was unreadable). */
  affinity?: CpuSet;
  effective?: CpuSet;
  /** smp_affinity_list carries a write permission bit; undefined = unknown. */
  writable?: boolean;
  /** Interrupts per CPU since boot, from /proc/interrupts. */
  counts?: Map<number, number>;
}

export interface BootIsolation {
  /** Values of isolcpus=, nohz_full=, rcu_nocbs=, irqaffinity= on the kernel command line (undefined: not set). */
  cmdline: { isolcpus?: string; nohz_full?: string; rcu_nocbs?: string; irqaffinity?: string };
  /** /sys/devices/system/cpu/isolated */
  isolated?: CpuSet;
  /** /sys/devices/system/cpu/nohz_full */
  nohzFull?: CpuSet;
  /** v2 root `cpuset.cpus.isolated` (6.8+): CPUs in isolated partitions. */
  cpusetIsolated?: CpuSet;
}

export interface ReservationEntry {
  journal: string;
  vm: CpuSet;
  vmCgroup: string;
  at: string;
  /** 'active' normally; 'missing' when the journal was deleted (release still gives the CPUs back). */
  journalState: 'active' | 'restored' | 'earlier-boot' | 'missing' | 'unreadable';
}

export interface StatusModel {
  kernel: string;
  possible: CpuSet;
  present: CpuSet;
  online: CpuSet;
  /** CPU → its SMT siblings (including itself). */
  siblings: Map<number, CpuSet>;
  cgroups?: CgroupsInfo;
  boot: BootIsolation;
  tasks: TaskEntry[];
  irqs: IrqEntry[];
  defaultSmpAffinity?: CpuSet;
  workqueues: { path: string; cpus?: CpuSet }[];
  governors: Map<number, string | undefined>;
  /** Running irqbalance and the CPUs it was told to leave alone (IRQBALANCE_BANNED_CPULIST / _CPUS). */
  irqbalance?: { pid: number; banned?: CpuSet };
  /** The active isolations of isolate (the reservation registry), with the state of each one's journal. */
  reservations: ReservationEntry[];
  /** Live per-CPU knobs: where the soft-lockup watchdog runs, each online CPU's wake-up latency limit as read. */
  knobs: { watchdog?: CpuSet; wakeupLatency: Map<number, string> };
  /** Things that could not be read, one phrase each ("the status of 3 tasks (permission denied)"). */
  notVisible: string[];
  /** The libvirt hooks vfio-isolate installed, with the check of what they run as root. */
  hooks: InstalledHook[];
}

export interface InstalledHook {
  domain: string;
  /** The hook file (system path). */
  path: string;
  /** The node and tool it runs (absent in hooks written before they were recorded). */
  node?: string;
  tool?: string;
  /** Why root may run something a user could have changed ("the hook runs node … as root, but …"). */
  unsafe?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Boot parameters

/** The isolation-related parameters of a kernel command line; the last occurrence wins, like the kernel. */
export function parseIsolationParams(cmdline: string): BootIsolation['cmdline'] {
  const out: BootIsolation['cmdline'] = {};
  for (const word of cmdline.split(/\s+/)) {
    const m = /^(isolcpus|nohz_full|rcu_nocbs|irqaffinity)=(.*)$/.exec(word);
    if (m) out[m[1] as keyof BootIsolation['cmdline']] = m[2] ?? '';
  }
  return out;
}

/** The CPU list of an isolcpus= value: flags (nohz, domain, managed_irq) dropped. */
export function isolcpusList(value: string): string {
  return value
    .split(',')
    .filter((p) => !/^[a-z_]+$/.test(p))
    .join(',');
}

// ---------------------------------------------------------------------------------------------------------------
// Which CPUs are the VM's

/** A cgroup that holds VMs: systemd's machine.slice or libvirt's /machine without systemd. */
export function isVmCgroup(path: string): boolean {
  return /^\/machine(\.slice)?(\/|$)/.test(path);
}

export interface VmCpuChoice {
  cpus: CpuSet;
  source: 'argument' | 'reservations' | 'cgroups' | 'boot' | 'none';
  /** Why these CPUs, in words. */
  why: string;
}

/**
 * The VM CPUs when none are given: the online CPUs that no host cgroup may use, i.e. online minus the effective
 * CPUs of every populated top-level cgroup except machine.slice (and /machine). The root cgroup counts as a host
 * cgroup only when no top-level host cgroup holds tasks (the host still runs in the root, as on a v1 machine
 * before `cpuset-create /host`); stray user tasks left in the root are reported as leaks instead. A top-level
 * cgroup without cpuset files uses the root's CPUs. When that leaves nothing, the CPUs isolated at boot
 * (isolcpus, isolated cpuset partitions) are used; when there are none either, nothing is isolated yet.
 */
export function defaultVmCpus(model: StatusModel): VmCpuChoice {
  const online = model.online;
  if (model.reservations.length > 0) {
    const cpus = model.reservations.reduce((a, r) => a.union(r.vm), CpuSet.EMPTY).intersect(online);
    const n = model.reservations.length;
    return { cpus, source: 'reservations', why: `reserved by ${n} active isolation${n === 1 ? '' : 's'}` };
  }
  const cg = model.cgroups;
  if (cg) {
    const rootCpus = cg.root.effectiveCpus ?? online;
    const host = cg.root.children.filter((c) => !isVmCgroup(c.name) && c.subtreeTasks > 0);
    let used = CpuSet.EMPTY;
    for (const c of host) used = used.union(c.cpuset && c.effectiveCpus ? c.effectiveCpus : rootCpus);
    const rootUser = model.tasks.some((t) => t.kind === 'user' && !t.vm && t.cgroup === '/');
    if (host.length === 0 && (rootUser || (cg.root.tasks ?? 0) > 0)) used = used.union(rootCpus);
    const free = online.minus(used);
    if (!free.isEmpty) {
      return {
        cpus: free,
        source: 'cgroups',
        why: `no host cgroup may use them (${host.map((c) => c.name).join(', ') || '/'}: ${used.toList() || 'none'})`,
      };
    }
  }
  const boot = (model.boot.isolated ?? CpuSet.EMPTY)
    .union(model.boot.cpusetIsolated ?? CpuSet.EMPTY)
    .intersect(online);
  if (!boot.isEmpty)
    return { cpus: boot, source: 'boot', why: 'isolated at boot or in an isolated cpuset partition' };
  return { cpus: CpuSet.EMPTY, source: 'none', why: 'every online CPU is available to the host' };
}

// ---------------------------------------------------------------------------------------------------------------
// Leaks

export type FindingKind =
  /** movable: a leak */
  | 'task'
  | 'kthread'
  | 'irq'
  | 'default-irq'
  | 'workqueue'
  /** not movable: expected */
  | 'pinned-kthread'
  | 'managed-irq'
  /** warnings */
  | 'irqbalance'
  | 'partition'
  | 'smt'
  | 'offline';

export interface Finding {
  kind: FindingKind;
  /** A leak: it may run on VM CPUs and could be moved (makes status exit 1). */
  movable: boolean;
  /** pid, IRQ number or path. */
  id?: number | string;
  name?: string;
  /** The VM CPUs concerned. */
  cpus?: CpuSet;
  /** What it is: "task 1234 (firefox) may run on 8-15". */
  message: string;
  /** How to fix it. */
  fix?: string;
}

export interface LeakReport {
  vmCpus: CpuSet;
  host: CpuSet;
  /** Movable: exit 1 when any. */
  leaks: Finding[];
  /** Only the kernel can move them; expected, not leaks. */
  unmovable: Finding[];
  warnings: Finding[];
  /** Tasks of the VM itself that may run on the VM CPUs (supposed to be there). */
  vmTasks: number;
  /** IRQs with VM CPUs in their affinity but no handler (they never fire). */
  idleIrqs: number[];
  /** Interrupts delivered on the VM CPUs since boot, over every numbered IRQ. */
  interruptsOnVm: number;
}

/**
 * Names of kernel-managed multi-queue vectors, whose affinity the kernel spreads and userspace cannot change:
 * NVMe I/O queues (nvme0q1.., not the admin queue q0), virtio request queues, and the MSI-X queues of
 * megaraid_sas, mpt3sas, smartpqi and hisi_sas.
 */
export const MANAGED_IRQ_NAMES: readonly RegExp[] = [
  /^nvme\d+q[1-9]\d*$/,
  /^virtio\d+-(req|request)[.\d]*$/,
  /^megasas\d*-msix\d+$/,
  /^mpt3sas\d*-msix\d+$/,
  /^smartpqi$/,
  /^hisi_sas/,
];

/**
 * The heuristic for "the kernel will refuse to move this IRQ" (the only sure way is a write, which status never
 * does): smp_affinity_list has no write permission bit (newer kernels), or a handler name matches
 * MANAGED_IRQ_NAMES, or it is IRQ 0 "timer" (x86's timer refuses affinity changes).
 */
export function maybeManaged(irq: IrqEntry): boolean {
  if (irq.writable === false) return true;
  if (irq.irq === 0 && irq.names.includes('timer')) return true;
  return irq.names.some((n) => MANAGED_IRQ_NAMES.some((re) => re.test(n)));
}

function irqLabel(q: IrqEntry): string {
  return `IRQ ${q.irq}${q.names.length ? ` (${q.names.join(', ')})` : ''}`;
}

function countOn(counts: Map<number, number> | undefined, cpus: CpuSet): number {
  let n = 0;
  if (counts) for (const [cpu, c] of counts) if (cpus.has(cpu)) n += c;
  return n;
}

/**
 * Everything that may run on `vmCpus` but does not belong to the VM, split into movable leaks, unmovable
 * (expected) items and warnings. Pure.
 */
export function findLeaks(model: StatusModel, vmCpus: CpuSet): LeakReport {
  const host = model.online.minus(vmCpus);
  const vmC = `C${vmCpus.toList()}`;
  const report: LeakReport = {
    vmCpus,
    host,
    leaks: [],
    unmovable: [],
    warnings: [],
    vmTasks: 0,
    idleIrqs: [],
    interruptsOnVm: 0,
  };
  if (vmCpus.isEmpty) return report;
  const hostList = host.toList() || '<host CPUs>';

  // tasks
  for (const t of model.tasks) {
    const on = t.threads.filter((th) => th.allowed?.overlaps(vmCpus));
    if (on.length === 0) continue;
    if (t.vm) {
      report.vmTasks++;
      continue;
    }
    const cpus = on.reduce((acc, th) => acc.union(th.allowed!.intersect(vmCpus)), CpuSet.EMPTY);
    const threads =
      t.threads.length > 1 && on.length < t.threads.length
        ? `, ${on.length} of ${t.threads.length} threads`
        : '';
    if (t.kind === 'pinned') {
      report.unmovable.push({
        kind: 'pinned-kthread',
        movable: false,
        id: t.pid,
        name: t.comm,
        cpus,
        message: `kernel thread ${t.pid} (${t.comm}) may run on ${cpus.toList()}`,
        fix: /^kworker\/u|^kworker\/R-/.test(t.comm)
          ? 'a workqueue worker: it follows the workqueue cpumask'
          : 'only the kernel sets its affinity (per-CPU thread): expected',
      });
    } else if (t.kind === 'kthread') {
      report.leaks.push({
        kind: 'kthread',
        movable: true,
        id: t.pid,
        name: t.comm,
        cpus,
        message: `kernel thread ${t.pid} (${t.comm}) may run on ${cpus.toList()}`,
        fix: `move it with "vfio-isolate isolate" or: taskset -pc ${hostList} ${t.pid}`,
      });
    } else {
      const version = model.cgroups?.version;
      const top = '/' + (t.cgroup ?? '').split('/').filter(Boolean)[0];
      const where =
        t.cgroup === undefined || version === undefined || (t.cgroup === '/' && version === 2)
          ? `or: taskset -apc ${hostList} ${t.pid}`
          : t.cgroup === '/'
            ? `or: vfio-isolate cpuset-create --cpus C${hostList} /host.slice move-tasks / /host.slice`
            : `or: vfio-isolate cpuset-modify --cpus C${hostList} ${version === 2 ? top : t.cgroup}`;
      report.leaks.push({
        kind: 'task',
        movable: true,
        id: t.pid,
        name: t.comm,
        cpus,
        message: `task ${t.pid} (${t.comm}${threads}) may run on ${cpus.toList()}`,
        fix: `move it with "vfio-isolate isolate" ${where}`,
      });
    }
  }

  // user tasks first, then kernel threads (the list is in pid order, where kernel threads come early)
  report.leaks.sort((a, b) => Number(a.kind === 'kthread') - Number(b.kind === 'kthread'));

  // IRQs
  for (const q of model.irqs) {
    report.interruptsOnVm += countOn(q.counts, vmCpus);
    if (!q.affinity?.overlaps(vmCpus)) continue;
    const cpus = q.affinity.intersect(vmCpus);
    if (q.names.length === 0) {
      report.idleIrqs.push(q.irq);
      continue;
    }
    const n = countOn(q.counts, vmCpus);
    const seen = n > 0 ? ` (${n} interrupts there since boot)` : '';
    if (maybeManaged(q)) {
      const now =
        q.effective && q.effective.overlaps(vmCpus) ? `, now delivered on ${q.effective.toList()}` : '';
      report.unmovable.push({
        kind: 'managed-irq',
        movable: false,
        id: q.irq,
        name: q.names.join(', '),
        cpus,
        message: `${irqLabel(q)} may fire on ${cpus.toList()}${now}${seen}`,
        fix: 'managed by the kernel, cannot be moved (isolcpus=managed_irq,<VM CPUs> at boot steers it)',
      });
    } else {
      report.leaks.push({
        kind: 'irq',
        movable: true,
        id: q.irq,
        name: q.names.join(', '),
        cpus,
        message: `${irqLabel(q)} may fire on ${cpus.toList()}${seen}`,
        fix: `move it with "vfio-isolate isolate" or: vfio-isolate irq-affinity mask ${vmC}`,
      });
    }
  }
  if (model.defaultSmpAffinity?.overlaps(vmCpus)) {
    const cpus = model.defaultSmpAffinity.intersect(vmCpus);
    report.leaks.push({
      kind: 'default-irq',
      movable: true,
      id: 'default_smp_affinity',
      cpus,
      message: `default_smp_affinity allows ${cpus.toList()}: IRQs set up from now on (the VM's VFIO vectors) start there`,
      fix: `"vfio-isolate isolate" sets it to the host CPUs (mask ${host.toMask((model.possible.last ?? 0) + 1)})`,
    });
  }
  for (const w of model.workqueues) {
    if (!w.cpus?.overlaps(vmCpus)) continue;
    const cpus = w.cpus.intersect(vmCpus);
    report.leaks.push({
      kind: 'workqueue',
      movable: true,
      id: w.path,
      cpus,
      message: `workqueue cpumask ${w.path} allows ${cpus.toList()}: unbound kernel work may run there`,
      fix: `"vfio-isolate isolate" sets it to the host CPUs (mask ${host.toMask((model.possible.last ?? 0) + 1)})`,
    });
  }

  // warnings
  if (model.irqbalance) {
    const banned = model.irqbalance.banned;
    const bootIsolated = (model.boot.isolated ?? CpuSet.EMPTY).union(model.boot.nohzFull ?? CpuSet.EMPTY);
    if (!(banned && vmCpus.isSubsetOf(banned)) && !vmCpus.isSubsetOf(bootIsolated)) {
      report.warnings.push({
        kind: 'irqbalance',
        movable: false,
        id: model.irqbalance.pid,
        name: 'irqbalance',
        message: `irqbalance (pid ${model.irqbalance.pid}) is running and may move IRQs back onto ${vmCpus.toList()}`,
        fix: 'stop it with "vfio-isolate isolate --stop-irqbalance", or ban the CPUs with --irqbalance-ban',
      });
    }
  }
  const walk = (n: CgroupNode): void => {
    if (n.partition && /invalid/.test(n.partition)) {
      report.warnings.push({
        kind: 'partition',
        movable: false,
        id: n.name,
        message: `cgroup ${n.name}: partition ${n.partition}`,
        fix: 'the CPUs are not isolated by this partition; fix its cpuset.cpus (see cgroup-v2 "cpuset.cpus.partition")',
      });
    }
    n.children.forEach(walk);
  };
  if (model.cgroups) walk(model.cgroups.root);
  const shared: string[] = [];
  for (const cpu of vmCpus) {
    const hostSib = (model.siblings.get(cpu) ?? CpuSet.EMPTY).minus(vmCpus);
    if (!hostSib.isEmpty) shared.push(`${cpu}/${hostSib.toList()}`);
  }
  if (shared.length > 0) {
    report.warnings.push({
      kind: 'smt',
      movable: false,
      message: `VM CPUs share physical cores with host CPUs (${shared.join(' ')})`,
      fix: 'give the VM whole cores: S<list> adds the siblings (vfio-isolate topology shows them)',
    });
  }
  const offline = vmCpus.minus(model.online);
  if (!offline.isEmpty) {
    report.warnings.push({
      kind: 'offline',
      movable: false,
      cpus: offline,
      message: `VM CPUs ${offline.toList()} are offline`,
    });
  }
  return report;
}

/** One line per finding: what it is and how to fix it. */
export function findingLine(f: Finding): string {
  // a task's name is its own to choose (prctl, a cgroup another user made): escaped for the terminal
  return printable(f.fix ? `${f.message}: ${f.fix}` : f.message);
}
