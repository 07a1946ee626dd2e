/**
 * isolate: give CPUs to the VM in one command (cgroups, kernel threads, workqueues, IRQs, irqbalance, governor),
 * journalled so that release undoes it exactly (release.ts).
 */
import * as path from 'node:path';
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import { normalizeCgroupName } from '../kernel/cgroup.ts';
import { P } from '../kernel/kernel.ts';
import { hostJournalPath, readRegistry, type Reservation } from '../kernel/reservations.ts';
import {
  interruptedCreation,
  journalActive,
  JournalMissing,
  readBaseline,
  readJournalFile,
} from '../steps/journal.ts';
import type { AfterReport, Ctx, Handler, Invocation } from '../cli/spec.ts';
import { loadNamedProfile } from '../profile.ts';
import { exampleVmCpus } from '../report/topology-view.ts';
import { readStatusModel } from './status-collect.ts';
import { findingLine, findLeaks } from '../report/status-model.ts';
import { leakCheckJson } from '../report/status-view.ts';
import { plural } from '../report/table.ts';
import type { Step } from '../steps/step.ts';
import { cpusArg } from './common.ts';
import { planWakeupLatency } from './knobs.ts';
import { planGovernor } from './governor.ts';
import { oneWayWrite } from './memory.ts';
import type { MeasuredBefore } from './isolate-measure.ts';
import { isoUtc } from '../iso-time.ts';
import { planHostSet, type IsolateOptions } from './host-set.ts';
import { defaultJournal, otherActiveReservations, refuseHostJournal, registryStep } from './release.ts';

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

/** isolate --measure's code: loaded only when --measure is given. */
function measuring(inv: Invocation): Promise<typeof import('./isolate-measure.ts')> | undefined {
  return typeof inv.values.measure === 'string' ? import('./isolate-measure.ts') : undefined;
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  isolate: {
    kind: 'plan',
    prepare: async (ctx, inv) =>
      (await measuring(inv))?.measureBefore(ctx, inv, () => isolateOptions(ctx, inv).vm),
    async plan(ctx, inv, prepared) {
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
      const others = otherActiveReservations(reg.reservations, file, bootId);
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
      const im = await measuring(inv);
      const req = im?.measureRequest(ctx, inv, () => o.vm);
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
        ...(m && im ? { unlocked: (c: Ctx) => im.measureAfter(c, m) } : {}),
      };
    },
  },
};
