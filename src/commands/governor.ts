/** cpu-governor (0.5.2 compatible) and the governor change that isolate shares. */
import { CpuSet } from '../cpus/cpuset.ts';
import { UsageError, RuntimeFailure } from '../errors.ts';
import { P } from '../kernel/kernel.ts';
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import type { Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';
import { cpusArg } from './common.ts';

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

/** The handler of this file's command, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  'cpu-governor': { kind: 'plan', plan: governorPlan },
};
