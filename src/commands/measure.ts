/**
 * measure [CPUS]: what actually runs on the VM CPUs over a window. Passive mode (safe while a VM runs) reads the
 * interrupt, softirq and CPU-time counters and every thread's run time before and after; probe mode (only on idle
 * CPUs) also runs one pinned clock-reading worker per CPU (src/kernel/probe.ts). Reads only; pins only its own
 * worker threads. Exit 1 when over a budget, 2 for bad input, 130 when interrupted.
 */
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import type { ProbeResult } from '../kernel/probe.ts';
import { qemuName, readCounters, readTaskRuns, type TaskRuns } from '../kernel/proc-counters.ts';
import { analyse, isVcpuThread, type Budgets } from '../measure/analysis.ts';
import { measureJson, renderMeasure } from '../measure/view.ts';
import { readStatusModel } from './status-collect.ts';
import { defaultVmCpus, findLeaks, type VmCpuChoice } from '../report/status-model.ts';
import { cpusArg } from './common.ts';

/** Gaps longer than this count as interruptions in probe mode. */
export const PROBE_THRESHOLD_NS = 5000;
/** Passive mode samples the threads this often, so a thread's time goes to the CPU it ran on at that moment. */
const SAMPLE_MS = 1000;

function numberOption(inv: Invocation, key: string, long: string): number | undefined {
  const raw = inv.values[key];
  if (typeof raw !== 'string') return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new UsageError(`measure: --${long} must be a number >= 0, not "${raw}"`);
  return n;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/** The VMs whose vCPU threads ("CPU n/KVM", "CPU n/TCG") are on, or may run on, the CPUs. */
function vmsOn(ctx: Ctx, runs: TaskRuns, cpus: CpuSet, model: ReturnType<typeof readStatusModel>): string[] {
  const pids = new Set<number>();
  for (const [tid, s] of runs.threads) {
    if (!isVcpuThread(s.run.comm)) continue;
    const allowed = model.tasks.find((t) => t.pid === s.pid)?.threads.find((th) => th.tid === tid)?.allowed;
    if (cpus.has(s.run.cpu) || allowed?.overlaps(cpus)) pids.add(s.pid);
  }
  return [...pids].map((pid) => {
    const name = qemuName(ctx.k.fs, pid);
    return name ? `${name} (QEMU pid ${pid})` : `QEMU pid ${pid}`;
  });
}

async function run(ctx: Ctx, inv: Invocation): Promise<number> {
  const seconds = numberOption(inv, 'seconds', 'seconds') ?? 5;
  if (seconds <= 0 || seconds > 3600)
    throw new UsageError(`measure: the window must be more than 0 s and at most 3600 s, not ${seconds} s`);
  const budgets: Budgets = {
    maxNoiseUs: numberOption(inv, 'maxNoiseUs', 'max-noise-us'),
    maxIrqsPerS: numberOption(inv, 'maxIrqsPerS', 'max-irqs-per-s'),
    maxGapUs: numberOption(inv, 'maxGapUs', 'max-gap-us'),
  };
  const wanted = inv.values.mode as string | undefined;
  if (wanted !== undefined && wanted !== 'passive' && wanted !== 'probe')
    throw new UsageError(`measure: --mode is passive or probe, not "${wanted}"`);

  const given = inv.args.CPUS !== undefined ? cpusArg(ctx, inv.args.CPUS, 'measure') : undefined;
  const model = readStatusModel(ctx.k);
  const choice: VmCpuChoice = given
    ? { cpus: given, source: 'argument', why: 'as given' }
    : defaultVmCpus(model);
  if (choice.cpus.isEmpty)
    throw new UsageError(
      'measure: no VM CPUs to measure: nothing is isolated yet',
      'name the CPUs: vfio-isolate measure C4-7 (see vfio-isolate topology)',
    );
  const cpus = choice.cpus.intersect(model.online);
  const offline = choice.cpus.minus(model.online);
  if (!offline.isEmpty) ctx.log.warn(`CPUs ${offline.toList()} are offline: not measured`);
  if (cpus.isEmpty) throw new UsageError(`measure: CPUs ${choice.cpus.toList()} are all offline`);
  const why = choice.source === 'argument' ? 'as given' : "the active isolation's VM CPUs";

  const leaks = findLeaks(model, cpus);
  const first = readTaskRuns(ctx.k.fs);
  const vms = vmsOn(ctx, first, cpus, model);
  const mode = (wanted ?? (vms.length > 0 ? 'passive' : 'probe')) as 'passive' | 'probe';
  if (mode === 'probe' && vms.length > 0)
    throw new UsageError(
      `measure: CPUs ${cpus.toList()} run the vCPU threads of ${vms.join(', ')}: the probe would compete with the VM`,
      'measure a running VM with --mode passive, or probe once it has stopped',
    );

  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.on('SIGINT', onSigint);
  const runs: TaskRuns[] = [first];
  let probe: ProbeResult | undefined;
  let before;
  let after;
  try {
    before = readCounters(ctx.k.fs);
    if (mode === 'probe') {
      const runner = ctx.k.probe ?? (await import('../kernel/probe.ts')).runProbe;
      probe = await runner({
        cpus: [...cpus],
        seconds,
        thresholdNs: PROBE_THRESHOLD_NS,
        signal: abort.signal,
      });
      if (probe.interrupted) abort.abort();
      const failed = probe.cpus.filter((c) => c.error);
      if (failed.length === probe.cpus.length)
        throw new RuntimeFailure(
          `measure: the probe could not run on CPUs ${cpus.toList()}: ${failed[0]?.error ?? 'no result'}`,
          'measure them with --mode passive',
        );
    } else {
      const end = before.at + seconds * 1000;
      while (!abort.signal.aborted) {
        const left = end - performance.now();
        if (left <= 0) break;
        await sleep(Math.min(SAMPLE_MS, left), abort.signal);
        if (performance.now() < end && !abort.signal.aborted) runs.push(readTaskRuns(ctx.k.fs));
      }
    }
    after = readCounters(ctx.k.fs);
    runs.push(readTaskRuns(ctx.k.fs));
  } finally {
    process.off('SIGINT', onSigint);
  }
  const notRead = [...model.notVisible];
  if (first.noSchedstat > 0)
    notRead.push(`schedstat of ${first.noSchedstat} threads (their time is counted in 10 ms ticks)`);
  if (first.threads.size === 0) notRead.push('the threads in /proc');
  const report = analyse({
    mode,
    cpus,
    why,
    before,
    after,
    runs,
    model,
    leaks,
    vms,
    probe,
    budgets,
    interrupted: abort.signal.aborted,
    self: process.pid,
    notRead,
  });
  if (ctx.g.json || inv.values.json === true) {
    ctx.streams.out(JSON.stringify(measureJson(report), null, 2) + '\n');
  } else {
    ctx.streams.out(renderMeasure(report, { verbose: ctx.g.verbose || inv.values.verbose === true }));
  }
  if (report.interrupted) return 130;
  return report.overBudget ? 1 : 0;
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  measure: { kind: 'report', run },
};
