/** irq-affinity (0.5.2 compatible) and the IRQ masking that isolate shares. */
import { CpuSet } from '../cpus/cpuset.ts';
import { UsageError } from '../errors.ts';
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import type { Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';
import { cpusArg } from './common.ts';

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
  // Most IRQs hold one of a few lists: each distinct (list, base) pair is worked out once. Its value: the new list,
  // or null when it is the list the IRQ has already.
  const targets = new Map<string, string | null>();
  const targetOf = (before: string, base: string | undefined): string | null => {
    const key = base === undefined ? `-${before}` : `${base.length}:${base}${before}`;
    let t = targets.get(key);
    if (t === undefined) {
      const current = CpuSet.parseList(before);
      const target = irqTarget(op, base !== undefined ? CpuSet.parseList(base) : current, cpus, online);
      t = target.equals(current) ? null : target.toList();
      targets.set(key, t);
    }
    return t;
  };
  for (const irq of k.irqs.list()) {
    const path = k.irqs.affinityPath(irq);
    const before = ctx.state.read(path);
    if (before === undefined) continue; // no smp_affinity_list: nothing to do (0.5.2 skipped these too)
    const value = targetOf(before, baseOf?.(path));
    if (value === null) continue;
    // read under the run's lock (taken before planning): journalled as it is, unless an earlier step writes it
    const fresh = !ctx.state.planned(path);
    writes.push({ path, value, before, label: `IRQ ${irq}`, canonical: true, fresh });
    ctx.state.set(path, value);
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

/** The handler of this file's command, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  'irq-affinity': { kind: 'plan', plan: irqPlan },
};
