/**
 * The host set of the active isolations: every host-wide step of isolate (cgroups, kernel threads, workqueues, IRQs,
 * irqbalance, vm.stat_interval, the watchdog), planned for the union of the reservations that asked for it. Shared
 * by isolate and by release (which puts it right for the isolations that remain).
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure } from '../errors.ts';
import { cgroupName, normalizeCgroupName } from '../kernel/cgroup.ts';
import { errnoOf } from '../kernel/fs.ts';
import { P } from '../kernel/kernel.ts';
import { isKernelThread, isPinnedKernelThread } from '../kernel/procs.ts';
import { findIrqbalance, readBan, setBan } from '../kernel/irqbalance.ts';
import { irqbalanceHow, stopOrStartIrqbalance } from '../kernel/services.ts';
import type { Reservation } from '../kernel/reservations.ts';
import { EMPTY_BASELINE, type Baseline } from '../steps/journal.ts';
import type { Ctx } from '../cli/spec.ts';
import type { Skipped, Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';
import { moveAll } from './cpuset.ts';
import { planWatchdog } from './knobs.ts';
import { planIrqMasks } from './irq-affinity.ts';
import { planRestrictCgroups } from './restrict.ts';

export interface IsolateSteps {
  cgroups: boolean;
  kthreads: boolean;
  workqueues: boolean;
  irqs: boolean;
  stopIrqbalance: boolean;
  /** Ban the VM CPUs in irqbalance for this boot (a drop-in under /run setting IRQBALANCE_BANNED_CPULIST). */
  irqbalanceBan?: boolean;
  governor?: string;
  dropCaches: boolean;
  compactMemory: boolean;
  statInterval?: number;
  /** The soft-lockup watchdog off the VM CPUs (watchdog_cpumask). */
  watchdog?: boolean;
  /** Wake-up latency limit of the VM CPUs in microseconds (pm_qos_resume_latency_us); undefined: leave it. */
  wakeupLatencyUs?: number;
}

export interface IsolateOptions {
  vm: CpuSet;
  host: CpuSet;
  vmCgroup: string[];
  /** The VM cgroups of the other active isolations (they keep their CPUs, like vmCgroup). */
  otherVmCgroups?: string[][];
  steps: IsolateSteps;
  /** Host settings before the first isolate (from the host journal): CPUs given back return to them. */
  baseline?: Baseline;
}

/** v2: restrict every top-level cgroup except the VM's to the host CPUs (units through systemd). v1: host cpuset + move tasks from the root. */
function planCgroups(ctx: Ctx, o: IsolateOptions, command: string): Step[] {
  const cg = ctx.k.cgroups;
  const steps: Step[] = [];
  if (cg.version === 2) {
    const vms = [o.vmCgroup, ...(o.otherVmCgroups ?? [])];
    const host = cg
      .children([])
      .filter((child) => !vms.some((v) => v.length === 1 && v[0] === child))
      .map((child) => [child]);
    return planRestrictCgroups(ctx, host, { cpus: o.host }, command);
  }
  // v1: the seed's example: a host cpuset that every movable task of the root moves into.
  const hostParts = ['host.slice'];
  const hostPath = cg.path(hostParts);
  const mems = ctx.state.read(`${cg.mount}/cpuset.mems`) ?? '0';
  if (ctx.state.isDir(hostPath)) {
    const w = [
      {
        path: `${hostPath}/cpuset.cpus`,
        value: o.host.toList(),
        before: ctx.state.read(`${hostPath}/cpuset.cpus`),
      },
      { path: `${hostPath}/cpuset.mems`, value: mems, before: ctx.state.read(`${hostPath}/cpuset.mems`) },
    ];
    steps.push(writeFilesStep(command, `set ${cgroupName(hostParts)} to CPUs ${o.host.toList()}`, w));
  } else {
    ctx.state.mkdir(hostPath, { tasks: '', 'cpuset.cpus': o.host.toList(), 'cpuset.mems': mems });
    steps.push({
      command,
      title: `create cpuset /host.slice with CPUs ${o.host.toList()}`,
      changes: [
        { target: hostPath, note: 'mkdir' },
        { target: `${hostPath}/cpuset.cpus`, after: o.host.toList() },
        { target: `${hostPath}/cpuset.mems`, after: mems },
      ],
      apply({ k, record }) {
        record({ kind: 'mkdir', path: hostPath });
        k.fs.mkdir(hostPath);
        k.write(`${hostPath}/cpuset.cpus`, o.host.toList());
        k.write(`${hostPath}/cpuset.mems`, mems);
        return { changed: 3 };
      },
    });
  }
  steps.push({
    command,
    title: `move every movable task of the root cpuset to /host.slice`,
    changes: [{ target: `${hostPath}/tasks`, note: 'every task of /' }],
    apply: (a) => moveAll(a, `${cg.mount}/tasks`, cg.mount, hostPath, 'tasks'),
  });
  return steps;
}

/**
 * Kernel threads that may move (and kthreadd, so new ones inherit), and host tasks that no cgroup keeps off the
 * VM CPUs (the v2 root cgroup, unmovable v1 tasks): their affinity loses the VM CPUs.
 */
function planAffinity(
  ctx: Ctx,
  o: IsolateOptions,
  command: string,
  what: { kthreads: boolean; tasks: boolean },
): Step {
  const vmPrefixes = [o.vmCgroup, ...(o.otherVmCgroups ?? [])].map((v) => '/' + v.join('/'));
  const baseline = o.baseline ?? EMPTY_BASELINE;
  return {
    command,
    title: `keep ${[what.kthreads ? 'kernel threads' : '', what.tasks ? 'remaining host tasks' : ''].filter(Boolean).join(' and ')} off CPUs ${o.vm.toList()}`,
    changes: [
      {
        target: 'sched_setaffinity',
        note: `every movable ${what.kthreads ? 'kernel thread (and kthreadd)' : ''}${what.kthreads && what.tasks ? ' and ' : ''}${what.tasks ? 'host task' : ''} allowed on ${o.vm.toList()}`,
      },
    ],
    apply({ k, record, log }) {
      const version = k.cgroups.version;
      // Without a baseline mask, a thread whose mask has no VM CPU keeps it (target = its mask minus the VM CPUs):
      // one sched_getaffinity tells before the stat, cgroup and status reads, when the VM CPUs are all online (the
      // syscall shows the online part of the mask; an offline VM CPU is allowed, with a warning). koffi is loaded
      // by the run's lock; if the call fails, those reads decide for every thread.
      // With every possible CPU online, that mask is the whole mask (as restore's hasMask takes it): it is the
      // one journalled, and no status is read.
      let prefilter = !baseline.hasAffinities && o.vm.isSubsetOf(k.machine.online);
      /**
       * Every possible CPU online, by the online list read now (a CPU may go offline after the machine was read,
       * or while the masks are read: sched_getaffinity then no longer shows it).
       */
      const allOnline = (): boolean => {
        try {
          return k.machine.possible.isSubsetOf(CpuSet.parseList(k.fs.read(P.cpuOnline).trim()));
        } catch {
          return false;
        }
      };
      /** The thread's mask by sched_getaffinity; null when gone; undefined when not asked or not told. */
      const shownMask = (tid: number): number[] | null | undefined => {
        if (!prefilter) return undefined;
        try {
          return k.fs.getAffinity(tid);
        } catch (e) {
          if (errnoOf(e) === 'ESRCH') return null; // gone
          prefilter = false;
          return undefined;
        }
      };
      /** The threads to narrow: [tid, start, old mask, new mask]; `whole`: a shown mask is the whole mask. */
      const collect = (whole: boolean): [number, number, string, CpuSet][] => {
        const todo: [number, number, string, CpuSet][] = [];
        // the cgroup of the process whose threads come next (allTasks hands out a process's threads together)
        let cgOf: { pid: number; path: string } | undefined;
        for (const { tid, pid, stat } of k.procs.allTasks()) {
          const shown = shownMask(tid);
          if (shown === null || (shown && !shown.some((c) => o.vm.has(c)))) continue;
          const st = stat ?? k.procs.stat(pid, tid);
          if (!st || isPinnedKernelThread(st)) continue;
          const kthread = isKernelThread(st);
          if (kthread ? !what.kthreads : !what.tasks) continue;
          if (!kthread) {
            if (cgOf?.pid !== pid) cgOf = { pid, path: k.procs.cgroupOf(pid, version) ?? '/' };
            const cgp = cgOf.path;
            if (vmPrefixes.some((v) => cgp === v || cgp.startsWith(v + '/'))) continue;
          }
          const allowed = whole && shown ? CpuSet.of(shown) : k.procs.allowed(tid, pid);
          if (!allowed) continue;
          // from its affinity before the first isolate (CPUs another VM gave back return), else the current one
          const base = baseline.affinity(tid, st.start);
          const rest = (base !== undefined ? CpuSet.parseList(base) : allowed).minus(o.vm);
          const target = rest.isEmpty ? o.host : rest;
          if (target.equals(allowed)) continue;
          todo.push([tid, st.start, allowed.toList(), target]);
        }
        return todo;
      };
      const whole = allOnline();
      let todo = collect(whole);
      // a CPU gone offline meanwhile is missing from the masks shown: each mask is then read from the status (the
      // whole mask); a CPU on its way down still online at both reads of the list is not seen
      if (whole && !allOnline()) todo = collect(false);
      if (todo.length === 0) return { changed: 0 };
      record({ kind: 'affinity', tasks: todo.map(([t, s, old]) => [t, s, old]) });
      let changed = 0;
      let gone = 0;
      const skipped: Skipped[] = [];
      for (const [tid, , , cpus] of todo) {
        try {
          k.fs.setAffinity(tid, cpus.toArray());
          changed++;
        } catch (e) {
          const code = errnoOf(e);
          if (code === 'ESRCH') gone++;
          else if (code === 'EINVAL')
            skipped.push({
              what: `thread ${tid} (${k.procs.statOf(tid)?.comm ?? '?'})`,
              why: 'kernel does not let it move',
            });
          else throw e;
        }
      }
      log.info(`set the affinity of ${changed} threads to exclude ${o.vm.toList()}`);
      return { changed, gone, skipped };
    },
  };
}

function planWorkqueues(ctx: Ctx, o: IsolateOptions, command: string): Step | undefined {
  const writes: FileWrite[] = [];
  for (const path of ctx.k.workqueueMasks()) {
    const before = ctx.state.read(path);
    const value = o.host.toMask(ctx.k.nrCpuIds);
    if (before !== undefined && CpuSet.parseMask(before).equals(o.host)) continue;
    writes.push({ path, value, before });
    ctx.state.set(path, value);
  }
  return writes.length
    ? writeFilesStep(command, `run unbound workqueues on CPUs ${o.host.toList()} only`, writes)
    : undefined;
}

function planDefaultIrq(ctx: Ctx, o: IsolateOptions, command: string): Step | undefined {
  const path = P.defaultSmpAffinity;
  const before = ctx.state.read(path);
  if (before === undefined) return undefined;
  const current = CpuSet.parseMask(before);
  const base = CpuSet.parseMask(o.baseline?.file(path) ?? before);
  const target = base.minus(o.vm).isEmpty ? o.host : base.minus(o.vm);
  if (target.equals(current)) return undefined;
  const value = target.toMask(ctx.k.nrCpuIds);
  ctx.state.set(path, value);
  return writeFilesStep(command, `new IRQs start on CPUs ${target.toList()} (default_smp_affinity)`, [
    { path, value, before },
  ]);
}

function planIrqbalance(ctx: Ctx, o: IsolateOptions, command: string): Step | undefined {
  const pid = findIrqbalance(ctx.k);
  if (pid === undefined) return undefined;
  const how = irqbalanceHow(ctx.k);
  if (o.steps.irqbalanceBan) {
    if (how !== 'systemd')
      throw new RuntimeFailure(
        `${command}: --irqbalance-ban needs irqbalance managed by systemd`,
        'use --stop-irqbalance instead',
      );
    const list = o.vm.toList();
    return {
      command,
      title: `ban CPUs ${list} in irqbalance for this boot (a drop-in under /run) and restart it`,
      changes: [
        {
          target: P.irqbalanceDropIn,
          after: `IRQBALANCE_BANNED_CPULIST=${list}`,
          note: 'then systemctl daemon-reload, try-restart irqbalance',
        },
      ],
      apply({ k, record }) {
        const old = readBan(k);
        record({ kind: 'irqbalance-ban', cpus: list, old });
        setBan(k, list);
        return { changed: 1 };
      },
    };
  }
  if (!o.steps.stopIrqbalance) {
    ctx.log.warn(
      `irqbalance (pid ${pid}) is running and will move IRQs back onto the VM CPUs; use --stop-irqbalance or --irqbalance-ban`,
    );
    return undefined;
  }
  return {
    command,
    title: 'stop irqbalance for the duration (release starts it again)',
    changes: [
      {
        target: 'irqbalance',
        note: how === 'systemd' ? 'systemctl stop irqbalance.service' : `SIGTERM to pid ${pid}`,
      },
    ],
    apply({ k, record }) {
      record({ kind: 'service', name: 'irqbalance', how });
      stopOrStartIrqbalance(k, 'stop', how);
      return { changed: 1 };
    },
  };
}

/**
 * Narrow the host to "all online CPUs minus the union of the reservations", step by step (each step uses the
 * union of the reservations that asked for it). `before` are the reservations the host was narrowed for until
 * now: a step that one of them used is planned even when no reservation uses it any more, so that released CPUs
 * come back. Values are computed from the baseline (the state before the first isolate) where it is known.
 */
export function planHostSet(
  ctx: Ctx,
  rs: readonly Reservation[],
  baseline: Baseline,
  command: string,
  before: readonly Reservation[] = [],
): Step[] {
  const online = ctx.k.machine.online;
  const cpusOf = (want: (r: Reservation) => boolean): CpuSet =>
    rs.filter(want).reduce((a, r) => a.union(CpuSet.parseList(r.vm)), CpuSet.EMPTY);
  const used = (want: (r: Reservation) => boolean): boolean => rs.some(want) || before.some(want);
  const cgroups = rs.map((r) => normalizeCgroupName(r.vmCgroup));
  const optsFor = (vm: CpuSet, steps: Partial<IsolateSteps> = {}): IsolateOptions => ({
    vm,
    host: online.minus(vm),
    vmCgroup: cgroups[0] ?? ['machine.slice'],
    otherVmCgroups: cgroups.slice(1),
    steps: { ...NO_STEPS, ...steps },
    baseline,
  });
  const steps: Step[] = [];
  if (used((r) => r.steps.cgroups))
    steps.push(...planCgroups(ctx, optsFor(cpusOf((r) => r.steps.cgroups)), command));
  const kt = used((r) => r.steps.kthreads);
  const tasks = used((r) => r.steps.cgroups);
  const ktCpus = cpusOf((r) => r.steps.kthreads);
  const taskCpus = cpusOf((r) => r.steps.cgroups);
  if (kt && tasks && ktCpus.equals(taskCpus))
    steps.push(planAffinity(ctx, optsFor(ktCpus), command, { kthreads: true, tasks: true }));
  else {
    if (kt) steps.push(planAffinity(ctx, optsFor(ktCpus), command, { kthreads: true, tasks: false }));
    if (tasks) steps.push(planAffinity(ctx, optsFor(taskCpus), command, { kthreads: false, tasks: true }));
  }
  if (used((r) => r.steps.workqueues)) {
    const w = planWorkqueues(ctx, optsFor(cpusOf((r) => r.steps.workqueues)), command);
    if (w) steps.push(w);
  }
  if (used((r) => r.steps.irqs)) {
    const irqCpus = cpusOf((r) => r.steps.irqs);
    const d = planDefaultIrq(ctx, optsFor(irqCpus), command);
    if (d) steps.push(d);
    const m = planIrqMasks(ctx, command, 'mask', irqCpus, (p) => baseline.file(p));
    if (m) steps.push(m);
  }
  const stop = rs.some((r) => r.steps.stopIrqbalance);
  const ban = cpusOf((r) => r.steps.irqbalanceBan);
  if (stop || !ban.isEmpty || rs.length > before.length) {
    const ib = planIrqbalance(
      ctx,
      optsFor(ban, { stopIrqbalance: stop, irqbalanceBan: !ban.isEmpty }),
      command,
    );
    if (ib) steps.push(ib);
  }
  const interval = Math.max(0, ...rs.map((r) => r.steps.statInterval ?? 0));
  if (interval > 0) {
    const was = ctx.state.read(P.statInterval);
    if (was?.trim() !== String(interval))
      steps.push(
        writeFilesStep(command, `raise vm.stat_interval to ${interval} s`, [
          { path: P.statInterval, value: String(interval), before: was },
        ]),
      );
  }
  if (used((r) => r.steps.watchdog === true)) {
    const w = planWatchdog(
      ctx,
      cpusOf((r) => r.steps.watchdog === true),
      baseline.file(P.watchdogCpumask),
      command,
    );
    if (w) steps.push(w);
  }
  return steps.map((st) => ({ ...st, scope: 'host' as const }));
}

const NO_STEPS: IsolateSteps = {
  cgroups: false,
  kthreads: false,
  workqueues: false,
  irqs: false,
  stopIrqbalance: false,
  dropCaches: false,
  compactMemory: false,
};
