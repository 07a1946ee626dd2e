/** move-tasks, irq-affinity, cpu-governor, drop-caches, compact-memory (0.5.2 compatible). */
import { CpuSet } from '../cpus/cpuset.ts';
import { UsageError, RuntimeFailure } from '../errors.ts';
import { P } from '../kernel/kernel.ts';
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import type { Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';
import { cgroupArg, cpusArg, requireCgroup } from './common.ts';
import { moveAll } from './cpuset.ts';

function moveTasksPlan(ctx: Ctx, inv: Invocation): Step[] {
  const from = cgroupArg(ctx, inv.args.FROM!);
  const to = cgroupArg(ctx, inv.args.TO!);
  requireCgroup(ctx, from, inv.name);
  requireCgroup(ctx, to, inv.name);
  if (from.path === to.path)
    throw new UsageError(`${inv.name}: FROM and TO are the same cgroup (${from.name})`);
  const file = ctx.k.cgroups.taskFile;
  let count = '';
  try {
    count = ` (${ctx.k.cgroups.readTasks(from.parts).length} now)`;
  } catch {
    /* created earlier in the chain */
  }
  return [
    {
      command: inv.name,
      title: `move all tasks from ${from.name} to ${to.name}`,
      changes: [{ target: `${to.path}/${file}`, note: `every task of ${from.name}${count}` }],
      apply: (a) => moveAll(a, `${from.path}/${file}`, from.path, to.path, file),
    },
  ];
}

/** New affinity of one IRQ: `add` → A ∪ C; `mask` → A − C, or all online CPUs − C when that leaves nothing. */
export function irqTarget(op: 'mask' | 'add', current: CpuSet, cpus: CpuSet, online: CpuSet): CpuSet {
  if (op === 'add') return current.union(cpus);
  const rest = current.minus(cpus);
  return rest.intersect(online).isEmpty ? online.minus(cpus) : rest;
}

const IRQ_TOLERATE = ['EIO', 'EPERM', 'EINVAL', 'ENOSPC', 'ENOENT'];
export const irqSkipReason = (code: string): string =>
  code === 'EIO' || code === 'EPERM'
    ? 'managed by the kernel (affinity cannot be changed)'
    : code === 'ENOENT'
      ? 'went away'
      : `refused (${code})`;

export function planIrqMasks(
  ctx: Ctx,
  command: string,
  op: 'mask' | 'add',
  cpus: CpuSet,
  /** isolate: an IRQ's affinity before the first isolate, which the new one is computed from when known. */
  baseOf?: (path: string) => string | undefined,
): Step | undefined {
  const k = ctx.k;
  const online = k.machine.online;
  if (op === 'mask' && online.minus(cpus).isEmpty) {
    throw new UsageError(
      `${command}: masking CPUs ${cpus.toList()} would leave no online CPU for interrupts`,
    );
  }
  const writes: FileWrite[] = [];
  for (const irq of k.irqs.list()) {
    const path = k.irqs.affinityPath(irq);
    const before = ctx.state.read(path);
    if (before === undefined) continue; // no smp_affinity_list: nothing to do (0.5.2 skipped these too)
    const current = CpuSet.parseList(before);
    const base = baseOf?.(path);
    const target = irqTarget(op, base !== undefined ? CpuSet.parseList(base) : current, cpus, online);
    if (target.equals(current)) continue;
    writes.push({ path, value: target.toList(), before, label: `IRQ ${irq}` });
    ctx.state.set(path, target.toList());
  }
  if (writes.length === 0) return undefined;
  return writeFilesStep(
    command,
    `${op === 'mask' ? 'keep' : 'allow'} ${writes.length} IRQs ${op === 'mask' ? 'off' : 'on'} CPUs ${cpus.toList()}`,
    writes,
    {
      tolerate: IRQ_TOLERATE,
      skipReason: irqSkipReason,
    },
  );
}

function irqPlan(ctx: Ctx, inv: Invocation): Step[] {
  const op = inv.args.OPERATION!.toLowerCase() as 'mask' | 'add';
  const cpus = cpusArg(ctx, inv.args.CPUS!, 'irq-affinity');
  const step = planIrqMasks(ctx, inv.name, op, cpus);
  return step ? [step] : [];
}

export interface GovernorPolicy {
  policy: string;
  cpus: CpuSet;
  available: string[];
}

/** The cpufreq policies that cover `cpus` (several CPUs may share one policy). */
export function cpufreqPolicies(ctx: Ctx, cpus: CpuSet, command: string): GovernorPolicy[] {
  const byPolicy = new Map<string, GovernorPolicy>();
  for (const cpu of cpus) {
    const dir = `${P.cpu(cpu)}/cpufreq`;
    if (!ctx.k.fs.exists(dir)) {
      throw new RuntimeFailure(
        `${command}: CPU ${cpu} has no cpufreq policy`,
        'no cpufreq driver is loaded (common inside VMs)',
      );
    }
    const policy = ctx.k.fs.realpath(dir);
    let p = byPolicy.get(policy);
    if (!p) {
      const available = (ctx.k.readTrim(`${policy}/scaling_available_governors`) ?? '')
        .split(/\s+/)
        .filter(Boolean);
      const related = ctx.k.readTrim(`${policy}/affected_cpus`);
      p = {
        policy,
        cpus: related ? CpuSet.parseList(related.replace(/\s+/g, ',')) : CpuSet.of([cpu]),
        available,
      };
      byPolicy.set(policy, p);
    }
  }
  return [...byPolicy.values()];
}

export function planGovernor(ctx: Ctx, command: string, governor: string, cpus: CpuSet): Step | undefined {
  if (!/^[a-z0-9_-]{1,32}$/.test(governor))
    throw new UsageError(`${command}: "${governor}" is not a governor name`);
  const writes: FileWrite[] = [];
  for (const p of cpufreqPolicies(ctx, cpus, command)) {
    if (p.available.length > 0 && !p.available.includes(governor)) {
      throw new UsageError(
        `${command}: governor "${governor}" is not available for CPUs ${p.cpus.toList()}`,
        `available: ${p.available.join(' ')}`,
      );
    }
    const extra = p.cpus.minus(cpus);
    if (!extra.isEmpty)
      ctx.log.warn(
        `${command}: CPUs ${extra.toList()} share a cpufreq policy with the CPUs given and change too`,
      );
    const path = `${p.policy}/scaling_governor`;
    const before = ctx.state.read(path);
    if (before === governor) continue;
    writes.push({ path, value: governor, before, label: `CPUs ${p.cpus.toList()}` });
    ctx.state.set(path, governor);
  }
  return writes.length
    ? writeFilesStep(command, `set governor ${governor} on CPUs ${cpus.toList()}`, writes)
    : undefined;
}

function governorPlan(ctx: Ctx, inv: Invocation): Step[] {
  const cpus = cpusArg(ctx, inv.args.CPUS!, 'cpu-governor');
  const s = planGovernor(ctx, inv.name, inv.args.GOVERNOR!, cpus);
  return s ? [s] : [];
}

/** A one-way write (nothing to undo): drop_caches, compact_memory. */
export function oneWayWrite(command: string, title: string, path: string, value: string): Step {
  return {
    command,
    title,
    changes: [{ target: path, after: value, note: 'cannot be undone (nothing to restore)' }],
    oneWay: true,
    apply({ k }) {
      k.write(path, value);
      return { changed: 1 };
    },
  };
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  'move-tasks': { kind: 'plan', plan: moveTasksPlan },
  'irq-affinity': { kind: 'plan', plan: irqPlan },
  'cpu-governor': { kind: 'plan', plan: governorPlan },
  'drop-caches': {
    kind: 'plan',
    plan: (ctx, inv) => [oneWayWrite(inv.name, 'drop the page cache and slab caches', P.dropCaches, '3')],
  },
  'compact-memory': {
    kind: 'plan',
    plan: (ctx, inv) => [oneWayWrite(inv.name, 'compact memory', P.compactMemory, '1')],
  },
};
