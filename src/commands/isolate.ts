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
import {
  irqbalanceConfigPath,
  irqbalanceHow,
  readConfig,
  restartIrqbalance,
  stopOrStartIrqbalance,
  withBannedCpus,
  writeConfig,
} from '../kernel/services.ts';
import { readJournalFile } from '../steps/journal.ts';
import type { AfterReport, Ctx, Handler, Invocation } from '../cli/spec.ts';
import { loadProfile } from '../profile.ts';
import { readStatusModel } from '../report/status-read.ts';
import { findingLine, findLeaks } from '../report/status-model.ts';
import { leakCheckJson } from '../report/status-view.ts';
import { plural } from '../report/table.ts';
import type { Skipped, Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';
import { cpusArg, planEnableCpuset } from './common.ts';
import { moveAll } from './cpuset.ts';
import { oneWayWrite, planGovernor, planIrqMasks } from './misc.ts';
import { planJournalRestore } from './restore.ts';

export interface IsolateSteps {
  cgroups: boolean;
  kthreads: boolean;
  workqueues: boolean;
  irqs: boolean;
  stopIrqbalance: boolean;
  /** Ban the VM CPUs in irqbalance's config (IRQBALANCE_BANNED_CPULIST) and restart it, as tuned does. */
  irqbalanceBan?: boolean;
  governor?: string;
  dropCaches: boolean;
  compactMemory: boolean;
  statInterval?: number;
}

export interface IsolateOptions {
  vm: CpuSet;
  host: CpuSet;
  vmCgroup: string[];
  steps: IsolateSteps;
}

/** Default journal of isolate/release (under the root, so tests use the fake tree's /run). */
export function defaultJournal(ctx: Ctx): string {
  return ctx.k.hostPath(P.defaultJournal);
}

/** Is there an active (unrestored, this boot, not rolled back) isolation in this journal? */
export function activeIsolation(ctx: Ctx, file: string): string | undefined {
  try {
    const j = readJournalFile(file);
    if (j.restored || j.header.bootId !== ctx.k.bootId()) return undefined;
    const live = j.runs.filter((r) => !r.rolledBack && r.records.length > 0);
    return live.length ? live[live.length - 1]!.argv.join(' ') || 'isolate' : undefined;
  } catch (e) {
    if (e instanceof RuntimeFailure) return undefined; // missing file
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
  else
    throw new UsageError(
      `${command}: which CPUs should the VM get?`,
      `e.g. vfio-isolate ${command} C8-15,24-31 (see vfio-isolate topology for a suggestion)`,
    );
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

/** v2: restrict every top-level cgroup except the VM's to the host CPUs. v1: host cpuset + move tasks from the root. */
function planCgroups(ctx: Ctx, o: IsolateOptions, command: string): Step[] {
  const cg = ctx.k.cgroups;
  const steps: Step[] = [];
  if (cg.version === 2) {
    const writes: FileWrite[] = [];
    for (const child of cg.children([])) {
      if (child === o.vmCgroup[0] && o.vmCgroup.length === 1) continue;
      steps.push(...planEnableCpuset(ctx, [child], command));
      const path = `${cg.path([child])}/cpuset.cpus`;
      const before = ctx.state.read(path);
      if (before === undefined) continue;
      writes.push({ path, value: o.host.toList(), before });
      ctx.state.set(path, o.host.toList());
    }
    if (writes.length)
      steps.push(
        writeFilesStep(
          command,
          `restrict ${writes.length} top-level cgroups to CPUs ${o.host.toList()}`,
          writes,
        ),
      );
    return steps;
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
  const vmPrefix = '/' + o.vmCgroup.join('/');
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
      const todo: [number, number, string, CpuSet][] = [];
      for (const { tid, pid } of k.procs.allTasks()) {
        const st = k.procs.stat(pid, tid);
        if (!st || isPinnedKernelThread(st)) continue;
        const kthread = isKernelThread(st);
        if (kthread ? !what.kthreads : !what.tasks) continue;
        if (!kthread) {
          const cgp = k.procs.cgroupOf(pid, version) ?? '/';
          if (cgp === vmPrefix || cgp.startsWith(vmPrefix + '/')) continue;
        }
        const allowed = k.procs.allowed(tid, pid);
        if (!allowed || !allowed.overlaps(o.vm)) continue;
        const rest = allowed.minus(o.vm);
        todo.push([tid, st.start, allowed.toList(), rest.isEmpty ? o.host : rest]);
      }
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
  if (!current.overlaps(o.vm)) return undefined;
  const target = current.minus(o.vm).isEmpty ? o.host : current.minus(o.vm);
  const value = target.toMask(ctx.k.nrCpuIds);
  ctx.state.set(path, value);
  return writeFilesStep(command, `new IRQs start on CPUs ${target.toList()} (default_smp_affinity)`, [
    { path, value, before },
  ]);
}

function planIrqbalance(ctx: Ctx, o: IsolateOptions, command: string): Step | undefined {
  const pid = ctx.k.findProcess('irqbalance');
  if (pid === undefined) return undefined;
  const how = irqbalanceHow(ctx.k);
  if (o.steps.irqbalanceBan) {
    if (how !== 'systemd')
      throw new RuntimeFailure(
        `${command}: --irqbalance-ban needs irqbalance managed by systemd`,
        'use --stop-irqbalance instead',
      );
    const path = irqbalanceConfigPath(ctx.k);
    return {
      command,
      title: `ban CPUs ${o.vm.toList()} in irqbalance (IRQBALANCE_BANNED_CPULIST) and restart it`,
      changes: [
        {
          target: path,
          after: `IRQBALANCE_BANNED_CPULIST=${o.vm.toList()}`,
          note: 'then systemctl try-restart irqbalance',
        },
      ],
      apply({ k, record }) {
        const old = readConfig(k, path);
        record({ kind: 'irqbalance-config', path, old });
        writeConfig(k, path, withBannedCpus(old, o.vm.toList()));
        restartIrqbalance(k);
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

export function planIsolate(ctx: Ctx, o: IsolateOptions, command: string): Step[] {
  const s = o.steps;
  const steps: Step[] = [];
  if (s.cgroups) steps.push(...planCgroups(ctx, o, command));
  if (s.kthreads || s.cgroups)
    steps.push(planAffinity(ctx, o, command, { kthreads: s.kthreads, tasks: s.cgroups }));
  if (s.workqueues) {
    const w = planWorkqueues(ctx, o, command);
    if (w) steps.push(w);
  }
  if (s.irqs) {
    const d = planDefaultIrq(ctx, o, command);
    if (d) steps.push(d);
    const m = planIrqMasks(ctx, command, 'mask', o.vm);
    if (m) steps.push(m);
  }
  const ib = planIrqbalance(ctx, o, command);
  if (ib) steps.push(ib);
  if (s.governor) {
    const g = planGovernor(ctx, command, s.governor, o.vm);
    if (g) steps.push(g);
  }
  if (s.statInterval !== undefined) {
    const before = ctx.state.read(P.statInterval);
    steps.push(
      writeFilesStep(command, `raise vm.stat_interval to ${s.statInterval} s`, [
        { path: P.statInterval, value: String(s.statInterval), before },
      ]),
    );
  }
  if (s.dropCaches)
    steps.push(oneWayWrite(command, 'drop the page cache and slab caches', P.dropCaches, '3'));
  if (s.compactMemory) steps.push(oneWayWrite(command, 'compact memory', P.compactMemory, '1'));
  return steps;
}

type ProfileOptions = Partial<IsolateOptions> & { vmSpec?: string; hostSpec?: string };

/** What a TOML profile (`isolate --profile FILE`) sets of isolate's options. */
function profileOptions(ctx: Ctx, file: string): ProfileOptions {
  const p = loadProfile(file, ctx.k.machine);
  for (const w of p.warnings) ctx.log.warn(w);
  const s = p.isolate.steps;
  if (s.partition)
    ctx.log.warn(`${path.basename(p.path)}: partition = true is not supported by isolate yet; ignored`);
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
      throw new UsageError(`${inv.name}: --stat-interval takes a number of seconds ≥ 1`);
    statInterval = Number(v.statInterval);
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
    },
  };
}

/**
 * The check isolate prints when it is done: movable leaks as warnings (exit 1 only with --strict), a one-line
 * summary of what is expected to stay. With --json: one object { command, ok, strict, leakCheck } on stdout.
 */
function isolateLeakCheck(ctx: Ctx, vm: CpuSet, strict: boolean): AfterReport {
  const report = findLeaks(readStatusModel(ctx.k), vm);
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

function planReset(ctx: Ctx, command: string): Step[] {
  const k = ctx.k;
  const cg = k.cgroups;
  const all = k.machine.online;
  const steps: Step[] = [];
  if (cg.version === 2) {
    const writes: FileWrite[] = [];
    // "" (inherit) where the kernel allows it; a cgroup with tasks cannot be emptied (ENOSPC), so it gets every
    // CPU the root has, explicitly: the same CPUs.
    const rootCpus = ctx.state.read(`${cg.mount}/cpuset.cpus.effective`) ?? all.toList();
    for (const child of cg.children([])) {
      const path = `${cg.path([child])}/cpuset.cpus`;
      const before = ctx.state.read(path);
      if (before === undefined || before === '') continue;
      const value = cg.populated([child]) ? rootCpus : '';
      if (before !== value) writes.push({ path, value, before });
    }
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
  return steps;
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  isolate: {
    kind: 'plan',
    plan(ctx, inv) {
      const o = isolateOptions(ctx, inv);
      const file = ctx.g.undoFile ?? defaultJournal(ctx);
      const active = activeIsolation(ctx, file);
      if (active !== undefined && !ctx.g.dryRun) {
        throw new RuntimeFailure(
          `an isolation is already active in ${file} (${active})`,
          `release it first (vfio-isolate${ctx.g.undoFile ? ` -u ${file}` : ''} release), or use another -u FILE for a second VM`,
        );
      }
      const strict = Boolean(inv.values.strict);
      return {
        steps: planIsolate(ctx, o, inv.name),
        journal: file,
        after: (c) => isolateLeakCheck(c, o.vm, strict),
      };
    },
  },
  release: {
    kind: 'plan',
    plan(ctx, inv) {
      const file = inv.args.JOURNAL ?? ctx.g.undoFile ?? defaultJournal(ctx);
      // release records nothing new: -u names the journal to undo, not one to write
      return { steps: planJournalRestore(ctx, inv.name, file, { force: ctx.g.force }), journal: null };
    },
  },
  reset: { kind: 'plan', plan: (ctx, inv) => planReset(ctx, inv.name) },
};
