/**
 * isolate --measure N: the probe on the VM CPUs before the isolation and again after it. isolate loads this module
 * only when --measure is given.
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import type { Ctx, Invocation } from '../cli/spec.ts';
import { DECIMAL, checkWindow, measureCpus, probeRefusal } from './measure.ts';
import type { MeasureReport } from '../measure/analysis.ts';
import { measureJson, renderBeforeAfter } from '../measure/view.ts';

/** isolate --measure N: the window and the CPUs, checked (exit 2: a bad N, vCPU threads running there). */
export function measureRequest(
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
export interface MeasuredBefore {
  cpus: CpuSet;
  seconds: number;
  first: MeasureReport;
}

/**
 * isolate --measure N, before the lock is taken and before planning (so other runs, e.g. another VM's libvirt hook,
 * are not kept waiting): the probe on the VM CPUs for N seconds, refused (exit 2) where vCPU threads run.
 */
export async function measureBefore(
  ctx: Ctx,
  inv: Invocation,
  /** The VM CPUs (isolate's options). */
  vm: () => CpuSet,
): Promise<MeasuredBefore | undefined> {
  const req = measureRequest(ctx, inv, vm);
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
export async function measureAfter(c: Ctx, m: MeasuredBefore): Promise<Record<string, unknown>> {
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
