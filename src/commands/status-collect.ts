/**
 * Build a StatusModel from the kernel: cgroup tree, tasks with their per-thread affinity, IRQs, masks,
 * governors, irqbalance. Reads only; anything unreadable is noted in `notVisible` instead of failing.
 */
import { findIrqbalance } from '../kernel/irqbalance.ts';
import { CpuSet } from '../cpus/cpuset.ts';
import type { Cgroups } from '../kernel/cgroup.ts';
import { describeUnsafe, recordedTargets, unsafeHookTarget } from '../kernel/hook-targets.ts';
import { listHookDir } from '../kernel/hooks.ts';
import { errnoOf } from '../kernel/fs.ts';
import { P, type Kernel } from '../kernel/kernel.ts';
import { siblingsOf } from '../kernel/topology.ts';
import { isKernelThread, isPinnedKernelThread } from '../kernel/procs.ts';
import { readRegistry } from '../kernel/reservations.ts';
import { journalState } from '../steps/journal.ts';
import {
  bootIsolationFiles,
  environOf,
  governorsOf,
  interruptTable,
  irqActions,
  irqAffinityWritable,
  kernelCmdline,
  procCgroups,
  threadAllowed,
  type ProcCgroup,
} from '../kernel/status-reads.ts';
import { parseHookScript } from '../libvirt/hook-script.ts';
import {
  isVmCgroup,
  parseIsolationParams,
  type CgroupNode,
  type CgroupsInfo,
  type InstalledHook,
  type IrqEntry,
  type StatusModel,
  type TaskEntry,
} from '../report/status-model.ts';

/** At most this many cgroups are read (a safety bound for machines with huge trees). */
const MAX_CGROUPS = 5000;

function counter(): { add(what: string, code: string): void; phrases(): string[] } {
  const m = new Map<string, Map<string, number>>();
  return {
    add(what, code) {
      const byCode = m.get(what) ?? m.set(what, new Map()).get(what)!;
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
    },
    phrases() {
      const out: string[] = [];
      for (const [what, byCode] of m) {
        for (const [code, n] of byCode) {
          const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code;
          out.push(
            `${what.replace('#', String(n)).replace(/\{(e?s)\}/g, (_, x: string) => (n === 1 ? '' : x))} (${why})`,
          );
        }
      }
      return out;
    },
  };
}

/**
 * What isolate's leak check needs of the cgroup tree: the partitions (v2), which it warns about when invalid. On v1
 * nothing (no partitions there); on v2 each cpuset cgroup's `cpuset.cpus.partition`, below cgroups whose
 * subtree_control enables cpuset (only there can a child have one). Nothing else of a cgroup is read.
 */
function readPartitions(cg: Cgroups): CgroupNode {
  let budget = MAX_CGROUPS;
  const read = (parts: string[]): CgroupNode => {
    budget--;
    const node: CgroupNode = { name: '/' + parts.join('/'), cpuset: true, subtreeTasks: 0, children: [] };
    if (parts.length > 0) node.partition = cg.readText(parts, 'cpuset.cpus.partition');
    if (cg.version === 1 || !cg.subtreeControl(parts).includes('cpuset')) return node;
    for (const child of cg.children(parts)) {
      if (budget <= 0) break;
      node.children.push(read([...parts, child]));
    }
    return node;
  };
  return read([]);
}

function readCgroupTree(cg: Cgroups, notVisible: ReturnType<typeof counter>): CgroupNode {
  let budget = MAX_CGROUPS;
  const flag = (parts: string[], name: string): boolean | undefined => {
    const t = cg.readText(parts, name);
    return t === undefined ? undefined : t === '1';
  };
  const read = (parts: string[], parentCpuset: boolean): CgroupNode => {
    budget--;
    const isRoot = parts.length === 0;
    const cpuset = cg.version === 1 || isRoot || parentCpuset || cg.hasCpusetFiles(parts);
    const node: CgroupNode = { name: '/' + parts.join('/'), cpuset, subtreeTasks: 0, children: [] };
    if (cpuset) {
      node.configuredCpus = cg.configuredCpus(parts);
      node.configuredMems = cg.readText(parts, 'cpuset.mems');
      const eff = cg.readText(parts, cg.version === 2 ? 'cpuset.cpus.effective' : 'cpuset.effective_cpus');
      const effMems = cg.readText(
        parts,
        cg.version === 2 ? 'cpuset.mems.effective' : 'cpuset.effective_mems',
      );
      try {
        node.effectiveCpus = CpuSet.parseList(eff ?? (cg.version === 1 ? (node.configuredCpus ?? '') : ''));
        node.effectiveMems = CpuSet.parseList(
          effMems ?? (cg.version === 1 ? (node.configuredMems ?? '') : ''),
        );
      } catch {
        /* malformed: leave unknown */
      }
      if (eff === undefined && cg.version === 2) node.effectiveCpus = undefined;
      if (cg.version === 2) {
        node.partition = cg.readText(parts, 'cpuset.cpus.partition');
        node.exclusiveCpus = cg.readText(parts, 'cpuset.cpus.exclusive');
      } else {
        node.v1 = {
          cpuExclusive: flag(parts, 'cpuset.cpu_exclusive'),
          memExclusive: flag(parts, 'cpuset.mem_exclusive'),
          memMigrate: flag(parts, 'cpuset.memory_migrate'),
          schedLoadBalance: flag(parts, 'cpuset.sched_load_balance'),
        };
      }
    }
    if (cg.version === 2) node.subtreeCpuset = cg.subtreeControl(parts).includes('cpuset');
    try {
      node.tasks = cg.readTasks(parts).length;
    } catch (e) {
      notVisible.add('the task lists of # cgroup{s}', (e as { code?: string }).code ?? 'EIO');
    }
    node.subtreeTasks = node.tasks ?? 0;
    for (const child of cg.children(parts)) {
      if (budget <= 0) break;
      const c = read([...parts, child], cg.version === 2 && node.subtreeCpuset === true);
      node.subtreeTasks += c.subtreeTasks;
      node.children.push(c);
    }
    return node;
  };
  return read([], false);
}

/** The path of a process in the cpuset hierarchy (v2: the cgroup2 line; v1: the line listing cpuset). */
function cpusetPath(lines: ProcCgroup[], version: 1 | 2): string | undefined {
  const line =
    version === 2 ? lines.find((l) => l.id === 0) : lines.find((l) => l.controllers.includes('cpuset'));
  return line?.path;
}

/** A QEMU process by its comm (15 characters: qemu-system-x86, qemu-system-aar, qemu-kvm). */
const QEMU = /^qemu(-system-.*|-kvm)?$/;
/** Kernel threads that work for one VM and carry its pid: vhost-PID, kvm-nx-lpage-recovery-PID, kvm-pit/PID. */
const VM_KTHREAD = /^(?:vhost|kvm-nx-lpage-re\w*|kvm-pit)[-/](\d+)$/;

/**
 * Every process with its threads' masks. With `only` (isolate's leak check): one pass over /proc reading each
 * thread's mask first, and the rest (stat, cgroup) only for processes with a thread that may run on `only`: the
 * others cannot change the verdict. A VM's kernel thread (vhost-PID) then looks up its VM process on demand.
 */
function readTasks(
  k: Kernel,
  version: 1 | 2 | undefined,
  notVisible: ReturnType<typeof counter>,
  only?: CpuSet,
): TaskEntry[] {
  const out: TaskEntry[] = [];
  const pids = k.procs.pids();
  if (pids.length === 0) notVisible.add('the process list', 'ENOENT');
  const vmPids = new Set<number>();
  const isVm = (
    pid: number,
    st: { comm: string },
    kind: TaskEntry['kind'],
  ): { vm: boolean; lines: ProcCgroup[] } => {
    const cgs = procCgroups(k.fs, pid);
    const lines = cgs.ok ? cgs.value : [];
    if (!cgs.ok && cgs.code !== 'ENOENT') notVisible.add('the cgroups of # process{es}', cgs.code);
    return { vm: lines.some((l) => isVmCgroup(l.path)) || (kind === 'user' && QEMU.test(st.comm)), lines };
  };
  const kindOf = (st: NonNullable<ReturnType<Kernel['procs']['stat']>>): TaskEntry['kind'] =>
    isPinnedKernelThread(st) ? 'pinned' : isKernelThread(st) ? 'kthread' : 'user';
  // kernel threads (one read of kthreadd's children, when first needed) need no listing of their task/ directory
  const kernel = k.procs.kernelThreadsOnce();
  // each process's thread ids, and the stat of a kthreadd child read on the way (a kernel thread or a helper the
  // kernel started). The leak check tells them first by the link count (threadsByCount): the stat of a process of
  // one thread is then read only if its mask has a VM CPU (for its kind).
  const seen = new Map<number, ReturnType<Kernel['procs']['threadsAndStat']>>();
  const tidsOfPid = (pid: number): number[] => {
    let r = seen.get(pid);
    if (!r)
      seen.set(pid, (r = only ? k.procs.threadsByCount(pid, kernel) : k.procs.threadsAndStat(pid, kernel())));
    return r.tids;
  };
  const threadsOf = (pid: number): TaskEntry['threads'] => {
    const tids = tidsOfPid(pid);
    return (tids.length > 0 ? tids : [pid]).map((tid) => {
      const a = threadAllowed(k.fs, pid, tid);
      if (!a.ok) {
        if (a.code !== 'ENOENT') notVisible.add('the affinity of # thread{s}', a.code);
        return { tid, allowed: tid === pid ? k.procs.allowed(pid) : undefined };
      }
      return { tid, allowed: a.value };
    });
  };
  /**
   * The leak check's read of a process's threads: one sched_getaffinity per thread (the mask and the online CPUs:
   * what the verdict needs; koffi is loaded by the run's lock) instead of a status read each. false when no thread
   * may run on `cpus` (nothing more is read of it); undefined when the syscall cannot be made (then the status
   * reads decide, for this process and the rest). The syscall leaves CPUs that are not online out of the mask, so
   * it decides only when `cpus` are all online (an offline VM CPU is allowed, with a warning).
   */
  let syscall = only === undefined || only.isSubsetOf(k.machine.online);
  const threadsOnSyscall = (pid: number, cpus: CpuSet): TaskEntry['threads'] | false | undefined => {
    if (!syscall) return undefined;
    const tids = tidsOfPid(pid);
    const threads: TaskEntry['threads'] = [];
    for (const tid of tids.length > 0 ? tids : [pid]) {
      try {
        threads.push({ tid, allowed: CpuSet.of(k.fs.getAffinity(tid)) });
      } catch (e) {
        if (errnoOf(e) === 'ESRCH') continue; // gone
        syscall = false;
        return undefined;
      }
    }
    return threads.some((th) => th.allowed?.overlaps(cpus)) ? threads : false;
  };
  for (const pid of pids) {
    let threads: TaskEntry['threads'] | undefined;
    if (only) {
      const got = threadsOnSyscall(pid, only);
      if (got === false) continue;
      threads = got ?? threadsOf(pid);
      if (!threads.some((th) => th.allowed?.overlaps(only))) continue;
    }
    const st = seen.get(pid)?.stat ?? k.procs.stat(pid);
    if (!st) continue; // exited while we looked
    const kind = kindOf(st);
    // the leak check needs no cgroup of a kernel thread bound to a CPU: the kernel refuses to move one into any
    // cgroup (PF_NO_SETAFFINITY), so it is never a VM's
    const { vm, lines } =
      only && kind === 'pinned' ? { vm: false, lines: [] as ProcCgroup[] } : isVm(pid, st, kind);
    if (vm) vmPids.add(pid);
    threads ??= threadsOf(pid);
    out.push({
      pid,
      comm: st.comm,
      kind,
      threads,
      cgroup: version === undefined ? undefined : cpusetPath(lines, version),
      vm,
    });
  }
  const vmPid = (pid: number): boolean => {
    if (vmPids.has(pid) || !only) return vmPids.has(pid);
    const st = k.procs.stat(pid);
    return st !== undefined && isVm(pid, st, kindOf(st)).vm;
  };
  for (const t of out) {
    const m = VM_KTHREAD.exec(t.comm);
    if (m && t.kind !== 'user' && vmPid(Number(m[1]))) t.vm = true;
  }
  return out;
}

/**
 * Every IRQ: its names, interrupt counts, affinity, whether it can be changed, its effective affinity. With `only`
 * (the leak check): an IRQ whose affinity has none of those CPUs counts only by its interrupts there, so nothing
 * else of it is read.
 */
function readIrqs(k: Kernel, notVisible: ReturnType<typeof counter>, only?: CpuSet): IrqEntry[] {
  const table = interruptTable(k.fs);
  if (!table.ok) notVisible.add('interrupt counts', table.code);
  const out: IrqEntry[] = [];
  for (const irq of k.irqs.list()) {
    const line = table.ok ? table.value.get(irq) : undefined;
    const e: IrqEntry = { irq, names: [], counts: line?.counts };
    // an IRQ without an affinity file (e.g. IRQ 0 on some machines) is told by the read's ENOENT
    let hasAffinity = true;
    try {
      e.affinity = k.irqs.affinity(irq);
    } catch (err) {
      const code = errnoOf(err) ?? 'EIO';
      if (code === 'ENOENT') hasAffinity = false;
      else notVisible.add('the affinity of # IRQ{s}', code);
    }
    if (only && !e.affinity?.overlaps(only)) {
      out.push(e);
      continue;
    }
    e.names = irqActions(k.fs, irq);
    if (e.names.length === 0 && line?.name) e.names.push(line.name);
    if (hasAffinity) e.writable = irqAffinityWritable(k, irq);
    e.effective = k.irqs.effective(irq);
    out.push(e);
  }
  return out;
}

/**
 * Read everything status shows. Never throws for an unreadable file. With `leaksOn` (isolate's closing leak check,
 * which needs only findLeaks' verdict for those CPUs): tasks are read as readTasks' `only` says, and what the
 * verdict does not use (governors, per-CPU knobs, the registry, installed hooks, of the cgroups all but their
 * partitions: readPartitions) is left out.
 */
export function readStatusModel(k: Kernel, opts: { leaksOn?: CpuSet } = {}): StatusModel {
  const notVisible = counter();
  const notes: string[] = [];
  const m = k.machine;
  let cgroups: CgroupsInfo | undefined;
  try {
    const cg = k.cgroups;
    cgroups = {
      version: cg.version,
      mount: cg.mount,
      hybrid: cg.hybrid,
      taskFile: cg.taskFile,
      root: opts.leaksOn ? readPartitions(cg) : readCgroupTree(cg, notVisible),
    };
  } catch (e) {
    notes.push(`the cpuset cgroup hierarchy: ${(e as Error).message}`);
  }
  const files = bootIsolationFiles(k.fs);
  let cpusetIsolated: CpuSet | undefined;
  if (cgroups?.version === 2) {
    const t = k.cgroups.readText([], 'cpuset.cpus.isolated');
    if (t !== undefined) cpusetIsolated = CpuSet.parseList(t);
  }
  const leaksOn = opts.leaksOn;
  const tasks = readTasks(k, cgroups?.version, notVisible, leaksOn);
  const irqs = readIrqs(k, notVisible, leaksOn);
  let defaultSmpAffinity: CpuSet | undefined;
  try {
    defaultSmpAffinity = k.irqs.defaultAffinity();
  } catch (e) {
    notVisible.add('default_smp_affinity', (e as { code?: string }).code ?? 'EIO');
  }
  const workqueues = k.workqueueMasks().map((path) => {
    try {
      return { path, cpus: k.readMask(path) };
    } catch {
      return { path };
    }
  });
  let irqbalance: StatusModel['irqbalance'];
  const ib = findIrqbalance(k);
  if (ib !== undefined) {
    irqbalance = { pid: ib };
    const env = environOf(k.fs, ib);
    if (env.ok) {
      const list = env.value.get('IRQBALANCE_BANNED_CPULIST');
      const mask = env.value.get('IRQBALANCE_BANNED_CPUS');
      try {
        if (list) irqbalance.banned = CpuSet.parseList(list);
        else if (mask) irqbalance.banned = CpuSet.parseMask(mask);
      } catch {
        /* malformed: the daemon ignores it too */
      }
    } else if (env.code !== 'ENOENT') notVisible.add("irqbalance's environment (its banned CPUs)", env.code);
  }
  const reservations: StatusModel['reservations'] = [];
  if (!leaksOn)
    try {
      const bootId = k.bootId();
      for (const r of readRegistry(k).reservations)
        reservations.push({
          journal: r.journal,
          vm: CpuSet.parseList(r.vm),
          vmCgroup: r.vmCgroup,
          at: r.at,
          journalState: journalState(r.journal, bootId),
        });
    } catch (e) {
      notes.push(`the active isolations: ${(e as Error).message}`);
    }
  return {
    kernel: k.readTrim(P.osrelease) ?? '',
    possible: m.possible,
    present: m.present,
    online: m.online,
    // the leak check looks at the siblings of those CPUs only (do they share a core with the host?)
    siblings: leaksOn ? new Map([...leaksOn].map((cpu) => [cpu, siblingsOf(k.fs, cpu)])) : m.siblings,
    cgroups,
    boot: {
      cmdline: parseIsolationParams(kernelCmdline(k.fs) ?? m.cmdline),
      isolated: files.isolated,
      nohzFull: files.nohzFull,
      cpusetIsolated,
    },
    tasks,
    irqs,
    defaultSmpAffinity,
    workqueues,
    governors: leaksOn ? new Map() : governorsOf(k.fs, m.online),
    knobs: leaksOn ? { wakeupLatency: new Map() } : readKnobs(k, m.online),
    irqbalance,
    reservations,
    notVisible: [...notes, ...notVisible.phrases()],
    hooks: leaksOn ? [] : readInstalledHooks(k),
  };
}

/**
 * Our hooks in /etc/libvirt/hooks/qemu.d, each with the same check `libvirt hook install` makes of what it runs
 * (node, the tool, the files and trees it recorded): the first path root alone could not have written.
 */
export function readInstalledHooks(k: Kernel): InstalledHook[] {
  const out: InstalledHook[] = [];
  for (const h of listHookDir(k)) {
    const info = h.text !== undefined && h.isFile ? parseHookScript(h.text) : undefined;
    if (!info) continue;
    const hook: InstalledHook = { domain: info.domain, path: h.path };
    if (info.node === undefined || info.tool === undefined) {
      hook.unsafe =
        'the hook records no checked paths (written by an older vfio-isolate), so what it runs cannot be checked';
    } else {
      hook.node = info.node;
      hook.tool = info.tool;
      const bad = unsafeHookTarget(
        recordedTargets({ node: info.node, tool: info.tool, files: info.files, trees: info.trees }),
      );
      if (bad) hook.unsafe = describeUnsafe(bad);
    }
    out.push(hook);
  }
  return out;
}

/** watchdog_cpumask and the CPUs' pm_qos_resume_latency_us, where the kernel has them. */
function readKnobs(k: Kernel, online: CpuSet): StatusModel['knobs'] {
  const text = k.readTrim(P.watchdogCpumask);
  let watchdog: CpuSet | undefined;
  try {
    if (text !== undefined) watchdog = CpuSet.parseList(text);
  } catch {
    /* not a list: shown as unknown */
  }
  const wakeupLatency = new Map<number, string>();
  for (const cpu of online) {
    const v = k.readTrim(P.resumeLatency(cpu));
    if (v !== undefined) wakeupLatency.set(cpu, v);
  }
  return { ...(watchdog ? { watchdog } : {}), wakeupLatency };
}
