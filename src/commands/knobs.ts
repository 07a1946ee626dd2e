/**
 * Per-CPU knobs that isolate sets live (no reboot) and release puts back exactly, each only where the kernel offers
 * it: the soft-lockup watchdog off the VM CPUs (watchdog_cpumask), and a wake-up latency limit on the VM CPUs
 * (their own pm_qos_resume_latency_us, so cpuidle keeps them out of deep C-states while the rest of the machine
 * saves power; /dev/cpu_dma_latency, which tuned uses, would hold every CPU).
 */
import type { Ctx } from '../cli/spec.ts';
import { CpuSet } from '../cpus/cpuset.ts';
import { P } from '../kernel/paths.ts';
import type { Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';

/**
 * The watchdog keeps running on the host CPUs only: `base` (the value before the first isolation, else the file as it
 * is) minus the VM CPUs of every isolation that asked for it. One file for every VM: a host-set step.
 */
export function planWatchdog(
  ctx: Ctx,
  vm: CpuSet,
  base: string | undefined,
  command: string,
): Step | undefined {
  const before = ctx.state.read(P.watchdogCpumask)?.trim();
  if (before === undefined) return undefined;
  const from = (base ?? before).trim();
  const value = (from === '' ? CpuSet.EMPTY : CpuSet.parseList(from)).minus(vm).toList();
  if (value === before) return undefined;
  ctx.state.set(P.watchdogCpumask, value);
  const title = vm.isEmpty
    ? `soft-lockup watchdog back on every CPU it had (watchdog_cpumask ${value})`
    : `soft-lockup watchdog off CPUs ${vm.toList()} (watchdog_cpumask ${value})`;
  return writeFilesStep(command, title, [{ path: P.watchdogCpumask, value, before }]);
}

/**
 * Each VM CPU may take at most `us` microseconds to wake up ("0" in the file means no limit; a CPU that already has
 * a stricter limit keeps it).
 */
export function planWakeupLatency(ctx: Ctx, vm: CpuSet, us: number, command: string): Step | undefined {
  const writes: FileWrite[] = [];
  for (const cpu of vm) {
    const path = P.resumeLatency(cpu);
    const before = ctx.state.read(path)?.trim();
    if (before === undefined) continue;
    const current = before === 'n/a' ? 0 : Number(before);
    if (before !== '0' && Number.isFinite(current) && current <= us) continue;
    writes.push({ path, value: String(us), before, label: `CPU ${cpu}` });
    ctx.state.set(path, String(us));
  }
  if (writes.length === 0) return undefined;
  return writeFilesStep(command, `wake-up latency of CPUs ${vm.toList()} limited to ${us} us`, writes);
}
