/**
 * isolate / release / reset: give CPUs to the VM in one command (cgroups, kernel threads, workqueues, IRQs,
 * irqbalance, governor), undo it exactly, or put the isolation-related state back to the kernel's defaults.
 */
import * as path from 'node:path';
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import { cgroupName, normalizeCgroupName } from '../kernel/cgroup.ts';
import { errnoOf } from '../kernel/fs.ts';
import { P } from '../kernel/kernel.ts';
import { isKernelThread, isPinnedKernelThread } from '../kernel/procs.ts';
import { findIrqbalance, readBan, setBan } from '../kernel/irqbalance.ts';
import { irqbalanceHow, stopOrStartIrqbalance } from '../kernel/services.ts';
import { hostJournalPath, readRegistry, writeRegistry, type Reservation } from '../kernel/reservations.ts';
import {
  EMPTY_BASELINE,
  interruptedCreation,
  journalActive,
  journalState,
  journalThere,
  JournalMissing,
  markRestored,
  readBaseline,
  readJournalFile,
  refuseUnusableJournalPath,
  type Baseline,
} from '../steps/journal.ts';
import type { AfterReport, Ctx, Handler, Invocation } from '../cli/spec.ts';
import { loadNamedProfile } from '../profile.ts';
import { exampleVmCpus } from '../report/topology-view.ts';
import { readStatusModel } from './status-collect.ts';
import { findingLine, findLeaks } from '../report/status-model.ts';
import { leakCheckJson } from '../report/status-view.ts';
import { plural } from '../report/table.ts';
import type { Skipped, Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';
import { cpusArg } from './common.ts';
import { moveAll } from './cpuset.ts';
import { planWakeupLatency, planWatchdog } from './knobs.ts';
import { planGovernor } from './governor.ts';
import { planIrqMasks } from './irq-affinity.ts';
import { oneWayWrite } from './memory.ts';
import { planJournalRestore, shellWord } from './journal-restore.ts';
import { planPartitionReset } from './partition.ts';
import { planRestrictCgroups, planUnitLift, unitsOf } from './restrict.ts';
import { DECIMAL, checkWindow, measureCpus, probeRefusal } from './measure.ts';
import type { MeasureReport } from '../measure/analysis.ts';
import { measureJson, renderBeforeAfter } from '../measure/view.ts';
import { isoUtc } from '../iso-time.ts';

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

/** Default journal of isolate/release (under the root, so tests use the fake tree's /run). */
export function defaultJournal(ctx: Ctx): string {
  return ctx.k.hostPath(P.defaultJournal);
}

/** Is there an active (unrestored, this boot, not rolled back) isolation in this journal? */
export function activeIsolation(ctx: Ctx, file: string): string | undefined {
  if (interruptedCreation(file)) return undefined; // a run killed while creating it: nothing applied
  try {
    const j = readJournalFile(file);
    if (j.restored || j.header.bootId !== ctx.k.bootId()) return undefined;
    const live = j.runs.filter((r) => !r.rolledBack && r.records.length > 0);
    return live.length ? live[live.length - 1]!.argv.join(' ') || 'isolate' : undefined;
  } catch (e) {
    if (e instanceof JournalMissing) return undefined; // missing file
    throw e;
  }
}

/** Resolve VM and host CPUs and check them: refuse to give away every CPU, or CPU 0, without --force. */
export function resolveSplit(
  ctx: Ctx,
  vmSpec: string | undefined,
  hostSpec: string | undefined,
  command: string,
): { vm: CpuSet; host: CpuSet } {
  const online = ctx.k.machine.online;
  let vm: CpuSet;
  if (vmSpec !== undefined && hostSpec !== undefined)
    throw new UsageError(`${command}: give either VMCPUS or --host, not both`);
  if (vmSpec !== undefined) vm = cpusArg(ctx, vmSpec, command);
  else if (hostSpec !== undefined) vm = online.minus(cpusArg(ctx, hostSpec, `${command} --host`));
  else {
    const example = exampleVmCpus(ctx.k.machine);
    throw new UsageError(
      `${command}: which CPUs should the VM get?`,
      example
        ? `e.g. vfio-isolate ${command} ${example}, the split vfio-isolate topology suggests for this machine`
        : 'this machine has a single core: there is nothing to give a VM',
    );
  }
  const host = online.minus(vm);
  if (vm.isEmpty) throw new UsageError(`${command}: no CPU left for the VM`);
  if (host.isEmpty) {
    throw new UsageError(
      `${command}: the VM would get every online CPU, leaving none for the host`,
      'keep at least one core for the host',
    );
  }
  if (vm.has(0) && !ctx.g.force) {
    throw new UsageError(
      `${command}: CPU 0 would go to the VM; the host usually needs it (timers, boot CPU duties)`,
      'leave CPU 0 to the host, or use --force',
    );
  }
  return { vm, host };
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

/** The host-wide steps of one isolation, or of the union of several (scope 'host': journalled in the host journal). */
export function planIsolate(ctx: Ctx, o: IsolateOptions, command: string): Step[] {
  return planHostSet(ctx, [reservationOf(o, '', '')], o.baseline ?? EMPTY_BASELINE, command);
}

/** The registry entry of an isolation. */
export function reservationOf(o: IsolateOptions, journal: string, at: string): Reservation {
  const s = o.steps;
  return {
    journal,
    vm: o.vm.toList(),
    vmCgroup: o.vmCgroup.join('/'),
    steps: {
      cgroups: s.cgroups,
      kthreads: s.kthreads,
      workqueues: s.workqueues,
      irqs: s.irqs,
      stopIrqbalance: s.stopIrqbalance,
      irqbalanceBan: Boolean(s.irqbalanceBan),
      ...(s.statInterval !== undefined ? { statInterval: s.statInterval } : {}),
      ...(s.watchdog ? { watchdog: true } : {}),
    },
    at,
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

/** The steps that concern this VM alone (its journal): governor on its CPUs, one-way cache drops. */
function planVmSteps(ctx: Ctx, o: IsolateOptions, command: string): Step[] {
  const s = o.steps;
  const steps: Step[] = [];
  if (s.governor) {
    const g = planGovernor(ctx, command, s.governor, o.vm);
    if (g) steps.push(g);
  }
  if (s.wakeupLatencyUs !== undefined) {
    const w = planWakeupLatency(ctx, o.vm, s.wakeupLatencyUs, command);
    if (w) steps.push(w);
  }
  if (s.dropCaches)
    steps.push(oneWayWrite(command, 'drop the page cache and slab caches', P.dropCaches, '3'));
  if (s.compactMemory) steps.push(oneWayWrite(command, 'compact memory', P.compactMemory, '1'));
  return steps;
}

/** The VM CPUs' wake-up latency limit isolate sets unless told otherwise: C1-class idle states stay allowed. */
export const DEFAULT_WAKEUP_LATENCY_US = 20;

type ProfileOptions = Partial<IsolateOptions> & { vmSpec?: string; hostSpec?: string };

/** What a TOML profile (`isolate --profile FILE`) sets of isolate's options. */
function profileOptions(ctx: Ctx, file: string): ProfileOptions {
  const p = loadNamedProfile(file, ctx.k, (w) => ctx.log.warn(w));
  const s = p.isolate.steps;
  return {
    ...(p.vmSpec !== undefined ? { vmSpec: p.vmSpec } : {}),
    ...(p.hostSpec !== undefined ? { hostSpec: p.hostSpec } : {}),
    ...(p.isolate.vmCgroup ? { vmCgroup: p.isolate.vmCgroup } : {}),
    steps: {
      cgroups: s.cgroups,
      kthreads: s.kthreads,
      workqueues: s.workqueues,
      irqs: s.irqs,
      stopIrqbalance: s.stopIrqbalance,
      dropCaches: s.dropCaches,
      compactMemory: s.compactMemory,
      ...(s.governor !== undefined ? { governor: s.governor } : {}),
      ...(s.statInterval !== undefined ? { statInterval: s.statInterval } : {}),
    },
  };
}

function isolateOptions(ctx: Ctx, inv: Invocation): IsolateOptions {
  const v = inv.values;
  const prof = typeof v.profile === 'string' ? profileOptions(ctx, v.profile) : undefined;
  const { vm, host } = resolveSplit(
    ctx,
    inv.args.VMCPUS ?? prof?.vmSpec,
    typeof v.host === 'string' ? v.host : prof?.hostSpec,
    inv.name,
  );
  let statInterval: number | undefined;
  if (typeof v.statInterval === 'string') {
    if (!/^\d{1,6}$/.test(v.statInterval) || Number(v.statInterval) < 1)
      throw new UsageError(`${inv.name}: --stat-interval takes a number of seconds >= 1`);
    statInterval = Number(v.statInterval);
  }
  let wakeup: number | undefined = DEFAULT_WAKEUP_LATENCY_US;
  if (typeof v.wakeupLatency === 'string') {
    if (v.wakeupLatency === 'off') wakeup = undefined;
    else if (/^\d{1,7}$/.test(v.wakeupLatency)) wakeup = Number(v.wakeupLatency);
    else throw new UsageError(`${inv.name}: --wakeup-latency takes microseconds (0 or more) or "off"`);
  }
  const ps = prof?.steps;
  return {
    vm,
    host,
    vmCgroup: normalizeCgroupName(
      typeof v.vmCgroup === 'string' ? v.vmCgroup : (prof?.vmCgroup?.join('/') ?? 'machine.slice'),
    ),
    steps: {
      cgroups: !v.noCgroups && (ps?.cgroups ?? true),
      kthreads: !v.noKthreads && (ps?.kthreads ?? true),
      workqueues: !v.noWorkqueues && (ps?.workqueues ?? true),
      irqs: !v.noIrqs && (ps?.irqs ?? true),
      stopIrqbalance: Boolean(v.stopIrqbalance) || (ps?.stopIrqbalance ?? false),
      irqbalanceBan: Boolean(v.irqbalanceBan),
      governor: typeof v.governor === 'string' ? v.governor : ps?.governor,
      dropCaches: Boolean(v.dropCaches) || (ps?.dropCaches ?? false),
      compactMemory: Boolean(v.compactMemory) || (ps?.compactMemory ?? false),
      statInterval: statInterval ?? ps?.statInterval,
      watchdog: !v.keepWatchdog,
      wakeupLatencyUs: wakeup,
    },
  };
}

/**
 * The check isolate prints when it is done: movable leaks as warnings (exit 1 only with --strict), a one-line
 * summary of what is expected to stay. With --json: one object { command, ok, strict, leakCheck } on stdout.
 */
function isolateLeakCheck(ctx: Ctx, vm: CpuSet, strict: boolean): AfterReport {
  const report = findLeaks(readStatusModel(ctx.k, { leaksOn: vm }), vm);
  const failed = strict && report.leaks.length > 0;
  const code = failed ? 1 : 0;
  // with --json, run.ts prints one document: the applied steps plus these fields
  if (ctx.g.json) return { code, json: { command: 'isolate', strict, leakCheck: leakCheckJson(report) } };
  for (const f of report.leaks) ctx.log.warn(`leak: ${findingLine(f)}`);
  // isolate warns about irqbalance itself
  for (const f of report.warnings.filter((w) => w.kind !== 'irqbalance')) ctx.log.warn(findingLine(f));
  const pinned = report.unmovable.filter((f) => f.kind === 'pinned-kthread').length;
  const managed = report.unmovable.filter((f) => f.kind === 'managed-irq').length;
  const leaks = report.leaks.length === 0 ? 'no movable leaks' : plural(report.leaks.length, 'movable leak');
  ctx.streams.out(
    `Isolated CPUs ${vm.toList()} for the VM (host: ${report.host.toList()}): ${leaks}; ` +
      `expected to stay: ${plural(pinned, 'kernel-pinned thread')}, ${plural(managed, 'managed IRQ')}.\n`,
  );
  return { code };
}

/** isolate --measure N: the window and the CPUs, checked (exit 2: a bad N, vCPU threads running there). */
function measureRequest(
  ctx: Ctx,
  inv: Invocation,
  /** The VM CPUs (isolate's options: read only when --measure is given). */
  vm: () => CpuSet,
): { seconds: number; cpus: CpuSet; raw: string } | undefined {
  const raw = inv.values.measure;
  if (typeof raw !== 'string') return undefined;
  if (!DECIMAL.test(raw))
    throw new UsageError(`${inv.name}: --measure takes a number of seconds, not "${raw}"`);
  const seconds = checkWindow(Number(raw), `${inv.name} --measure`);
  const cpus = vm().intersect(ctx.k.machine.online);
  const refused = probeRefusal(ctx, cpus, `${inv.name} --measure`);
  if (refused) throw refused;
  return { seconds, cpus, raw };
}

/** What isolate --measure measured before the isolation (prepare's result, handed to plan). */
interface MeasuredBefore {
  cpus: CpuSet;
  seconds: number;
  first: MeasureReport;
}

/**
 * isolate --measure N, before the lock is taken and before planning (so other runs, e.g. another VM's libvirt hook,
 * are not kept waiting): the probe on the VM CPUs for N seconds, refused (exit 2) where vCPU threads run.
 */
async function measureBefore(ctx: Ctx, inv: Invocation): Promise<MeasuredBefore | undefined> {
  const req = measureRequest(ctx, inv, () => isolateOptions(ctx, inv).vm);
  if (!req) return undefined;
  const { cpus, seconds } = req;
  if (!ctx.g.json)
    ctx.streams.out(`Probing CPUs ${cpus.toList()} for ${seconds} s before the isolation...\n`);
  const first = await measureCpus(ctx, {
    cpus,
    why: 'the VM CPUs',
    seconds,
    mode: 'probe',
    budgets: {},
    command: `${inv.name} --measure`,
  });
  if (first.interrupted)
    throw new RuntimeFailure(
      `${inv.name}: interrupted while measuring before the isolation: nothing was changed`,
    );
  return { cpus, seconds, first };
}

/**
 * isolate --measure N, once the changes are applied and journalled and the lock is released: the same CPUs again.
 * It never fails the isolation: a VM started meanwhile makes it passive, and so does a probe that can no longer pin
 * itself there (the tool's own cgroup lost the VM CPUs); an error is a warning.
 */
async function measureAfter(c: Ctx, m: MeasuredBefore): Promise<Record<string, unknown>> {
  const { cpus, seconds, first } = m;
  try {
    if (!c.g.json) c.streams.out(`Measuring CPUs ${cpus.toList()} for ${seconds} s after the isolation...\n`);
    const then = await measureCpus(c, { cpus, why: 'the VM CPUs', seconds, budgets: {}, probeMayFail: true });
    if (c.g.json) return { measureBefore: measureJson(first), measureAfter: measureJson(then) };
    c.streams.out(renderBeforeAfter(first, then));
    const lost = then.notRead.find((w) => w.startsWith('the probe ('));
    if (lost) c.log.warn(`after the isolation, ${lost} (this process may no longer run there)`);
    return {};
  } catch (e) {
    c.log.warn(`the measurement after the isolation failed: ${(e as Error).message}`);
    // --json: the "before" figures were measured, so the document keeps them
    return c.g.json ? { measureBefore: measureJson(first) } : {};
  }
}

/** A step that changes the registry of reservations, read again when applied (under the lock). */
function registryStep(command: string, title: string, update: (rs: Reservation[]) => Reservation[]): Step {
  return {
    command,
    title,
    changes: [{ target: P.reservations, note: title }],
    oneWay: true,
    apply({ k }) {
      writeRegistry(k, update(readRegistry(k).reservations));
      return { changed: 1 };
    },
  };
}

/**
 * The host journal (the host's state before the first isolate, restored by the last release) is no isolation's own
 * journal: isolate would journal into it twice over, and releasing it would undo the host set of the isolations
 * that remain. Exit 2 before any change.
 */
function refuseHostJournal(ctx: Ctx, command: string, file: string): void {
  if (file !== path.resolve(hostJournalPath(ctx.k))) return;
  throw new UsageError(
    `${command}: ${file} is the host journal (the host's state before the first isolate), not the journal of an isolation`,
    'name the journal of an isolation (vfio-isolate status lists them), or none for the default one; the last release restores the host journal',
  );
}

/** Is FILE the journal of an active isolation (in the registry)? */
export function registered(ctx: Ctx, file: string): boolean {
  const f = path.resolve(file);
  return readRegistry(ctx.k).reservations.some((r) => r.journal === f);
}

/**
 * release (and restore of a registered journal): undo FILE's own changes, then put the host set right for the
 * isolations that remain — or, when none remains, restore the host journal (the state before the first isolate)
 * — then drop FILE from the registry, then mark FILE restored. A journal that is not registered (a crash before
 * isolate registered it, a registry cleared by reset) is undone, and the host set is settled the same way.
 */
export function planRelease(ctx: Ctx, command: string, given: string): Step[] {
  const k = ctx.k;
  // before the path is resolved (which drops a trailing "/" and folds ".."): a registered journal deleted since is
  // still released
  refuseUnusableJournalPath(given);
  const file = path.resolve(given);
  refuseHostJournal(ctx, command, file);
  const bootId = k.bootId();
  const reg = readRegistry(k);
  const mine = reg.reservations.find((r) => r.journal === file);
  const remaining = reg.reservations.filter(
    (r) => r !== mine && journalState(r.journal, bootId, 'head') !== 'restored',
  );
  const hostFile = hostJournalPath(k);
  // a conflict (the journal's or the host journal's) is forced by this release again, never by a restore of the
  // host journal alone (which would leave the reservation registered)
  const again = `vfio-isolate --force ${command} ${shellWord(given)}`;
  const settle: Step[] = [];
  if (remaining.length > 0)
    settle.push(...planHostSet(ctx, remaining, readBaseline(hostFile, bootId), command, reg.reservations));
  else if (['active', 'unreadable'].includes(journalState(hostFile, bootId, 'head')))
    // an unreadable one (malformed, or another user could have written it) is refused by its restore (exit 2)
    // rather than passed over, which would leave the host restricted
    // (--force: a value changed since is put back too, as for FILE's own changes; only this boot's is read)
    settle.push(...planJournalRestore(ctx, command, hostFile, { force: ctx.g.force, again }));
  const keep = new Set(remaining.map((r) => r.journal));
  if (remaining.length !== reg.reservations.length)
    settle.push(
      registryStep(
        command,
        remaining.length > 0
          ? `release the reservation of ${given} (${remaining.length} remain)`
          : 'release the last reservation',
        (rs) => rs.filter((r) => keep.has(r.journal)),
      ),
    );
  if (mine && !journalThere(file)) {
    ctx.log.warn(
      `journal ${given} is missing: its own changes (e.g. the governor) cannot be undone; releasing its CPUs`,
    );
    return settle;
  }
  return planJournalRestore(ctx, command, given, { force: ctx.g.force, beforeMark: settle, again });
}

function planReset(ctx: Ctx, command: string): Step[] {
  const k = ctx.k;
  const cg = k.cgroups;
  const all = k.machine.online;
  const steps: Step[] = [];
  if (cg.version === 2) {
    // Partitions first: while they hold CPUs, the root's effective CPUs lack them.
    const partitions = planPartitionReset(ctx, command);
    if (partitions) steps.push(partitions);
    const writes: FileWrite[] = [];
    // "" (inherit) where the kernel allows it; a cgroup with tasks cannot be emptied (ENOSPC), so it gets every
    // CPU the root has, explicitly: the same CPUs (every online CPU once no partition holds some).
    const rootCpus = partitions
      ? all.toList()
      : (ctx.state.read(`${cg.mount}/cpuset.cpus.effective`) ?? all.toList());
    // systemd's units get their restriction lifted through systemd (never their cpuset files); the rest by file.
    const tops = cg.children([]).map((child) => [child]);
    const units = unitsOf(ctx, tops, command, 'raw');
    tops.forEach((parts, i) => {
      const unit = units[i];
      if (unit) {
        const s = planUnitLift(ctx, unit, parts, rootCpus, command);
        if (s) steps.push(s);
        return;
      }
      const path = `${cg.path(parts)}/cpuset.cpus`;
      const before = ctx.state.read(path);
      if (before === undefined || before === '') return;
      const value = cg.populated(parts) ? rootCpus : '';
      if (before !== value) writes.push({ path, value, before });
    });
    if (writes.length)
      steps.push(
        writeFilesStep(command, `let ${writes.length} top-level cgroups use all CPUs again`, writes),
      );
  } else {
    for (const child of cg.children([])) {
      const path = cg.path([child]);
      steps.push({
        command,
        title: `move the tasks of ${cgroupName([child])} back to the root cpuset`,
        changes: [{ target: `${cg.mount}/tasks`, note: `tasks of /${child}` }],
        apply: (a) => moveAll(a, `${path}/tasks`, path, cg.mount, 'tasks'),
      });
    }
  }
  steps.push({
    command,
    title: 'let movable kernel threads and kthreadd run on all CPUs',
    changes: [{ target: 'sched_setaffinity', note: 'every movable kernel thread' }],
    apply({ k: kk, record }) {
      const todo: [number, number, string][] = [];
      for (const { tid, pid } of kk.procs.allTasks()) {
        const st = kk.procs.stat(pid, tid);
        if (!st || !isKernelThread(st) || isPinnedKernelThread(st)) continue;
        const allowed = kk.procs.allowed(tid, pid);
        if (allowed && !allowed.equals(all)) todo.push([tid, st.start, allowed.toList()]);
      }
      if (todo.length === 0) return { changed: 0 };
      record({ kind: 'affinity', tasks: todo });
      let changed = 0;
      for (const [tid] of todo) {
        try {
          kk.fs.setAffinity(tid, all.toArray());
          changed++;
        } catch {
          /* exited or pinned meanwhile */
        }
      }
      return { changed };
    },
  });
  const wq = ctx.k
    .workqueueMasks()
    .map((path) => ({ path, value: all.toMask(k.nrCpuIds), before: ctx.state.read(path) }));
  const dflt = ctx.state.read(P.defaultSmpAffinity);
  if (dflt !== undefined)
    wq.push({ path: P.defaultSmpAffinity, value: all.toMask(k.nrCpuIds), before: dflt });
  const changed = wq.filter((w) => w.before === undefined || !CpuSet.parseMask(w.before).equals(all));
  if (changed.length) steps.push(writeFilesStep(command, 'workqueues and new IRQs on all CPUs', changed));
  const irq = planIrqMasks(ctx, command, 'add', all);
  if (irq) steps.push(irq);
  const ban = readBan(k);
  if (ban !== null)
    steps.push({
      command,
      title: `remove the irqbalance ban of CPUs ${ban} (the drop-in under /run) and restart irqbalance`,
      changes: [{ target: P.irqbalanceDropIn, note: 'removed; then systemctl daemon-reload, try-restart' }],
      apply({ k: kk, record }) {
        record({ kind: 'irqbalance-ban', cpus: null, old: ban });
        setBan(kk, null);
        return { changed: 1 };
      },
    });
  const hostFile = hostJournalPath(k);
  const bootId = k.bootId();
  let reservations = 0;
  let registryFile: boolean; // a registry of an earlier boot, or one that cannot be believed, is removed too
  try {
    const reg = readRegistry(k);
    reservations = reg.reservations.length;
    registryFile = reg.staleBoot;
  } catch {
    registryFile = true;
  }
  const hostActive = journalActive(hostFile, bootId);
  if (reservations > 0 || registryFile || hostActive)
    steps.push({
      command,
      title: `forget ${reservations} active isolation(s) and the host journal (the host has every CPU again)`,
      changes: [
        { target: P.reservations, note: 'removed' },
        { target: P.hostJournal, note: 'marked restored' },
      ],
      apply({ k: kk }) {
        writeRegistry(kk, []);
        if (journalActive(hostFile, bootId)) markRestored(hostFile, false);
        return { changed: 1 };
      },
    });
  return steps;
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  isolate: {
    kind: 'plan',
    prepare: measureBefore,
    plan(ctx, inv, prepared) {
      const o = isolateOptions(ctx, inv);
      const given = ctx.g.undoFile ?? defaultJournal(ctx);
      const file = path.resolve(given);
      refuseHostJournal(ctx, inv.name, file);
      const reg = readRegistry(ctx.k);
      const bootId = ctx.k.bootId();
      const mine = reg.reservations.find((r) => r.journal === file);
      const active =
        activeIsolation(ctx, file) ??
        (mine && journalActive(file, bootId) ? `isolate C${mine.vm}` : undefined);
      if (active !== undefined && !ctx.g.dryRun) {
        throw new RuntimeFailure(
          `an isolation is already active in ${given} (${active})`,
          `release it first (vfio-isolate${ctx.g.undoFile ? ` -u ${given}` : ''} release), or use another -u FILE for a second VM`,
        );
      }
      // the other active isolations; one whose journal was restored by hand is over
      const others = reg.reservations.filter(
        (r) => r.journal !== file && journalState(r.journal, bootId, 'head') !== 'restored',
      );
      const taken = others.filter((r) => CpuSet.parseList(r.vm).overlaps(o.vm));
      if (taken.length > 0 && !ctx.g.force) {
        const t = taken[0]!;
        throw new UsageError(
          `${inv.name}: CPUs ${CpuSet.parseList(t.vm).intersect(o.vm).toList()} are already isolated for the VM of ${t.journal}`,
          'give this VM other CPUs (vfio-isolate status lists the reservations), or use --force to share them',
        );
      }
      const union = others.reduce((a, r) => a.union(CpuSet.parseList(r.vm)), o.vm);
      if (ctx.k.machine.online.minus(union).isEmpty)
        throw new UsageError(
          `${inv.name}: with the other active isolations, no CPU would be left for the host`,
          'release one first, or give this VM fewer CPUs',
        );
      const baseline = readBaseline(hostJournalPath(ctx.k), bootId);
      const me = reservationOf(o, file, isoUtc(Date.now()));
      const gone = new Set(reg.reservations.filter((r) => !others.includes(r)).map((r) => r.journal));
      const strict = Boolean(inv.values.strict);
      // --measure: checked again under the lock (a VM may have started since the probe); a dry run measures nothing
      const req = measureRequest(ctx, inv, () => o.vm);
      if (req && ctx.g.dryRun)
        ctx.streams.err(
          `vfio-isolate: dry run: --measure ${req.raw} measures nothing (no probe before or after)\n`,
        );
      const m = prepared as MeasuredBefore | undefined;
      return {
        steps: [
          ...planHostSet(ctx, [...others, me], baseline, inv.name, reg.reservations),
          ...planVmSteps(ctx, o, inv.name),
          registryStep(inv.name, `reserve CPUs ${o.vm.toList()} for ${given}`, (rs) => [
            ...rs.filter((r) => r.journal !== file && !gone.has(r.journal)),
            me,
          ]),
        ],
        journal: given,
        after: (c) => isolateLeakCheck(c, o.vm, strict),
        ...(m ? { unlocked: (c: Ctx) => measureAfter(c, m) } : {}),
      };
    },
  },
  release: {
    kind: 'plan',
    plan(ctx, inv) {
      const file = inv.args.JOURNAL ?? ctx.g.undoFile ?? defaultJournal(ctx);
      // release records nothing new in a journal of its own: -u names the journal to undo (changes to the host set
      // of the remaining isolations go to the host journal)
      return { steps: planRelease(ctx, inv.name, file), journal: null };
    },
  },
  reset: { kind: 'plan', plan: (ctx, inv) => planReset(ctx, inv.name) },
};
