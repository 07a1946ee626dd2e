/**
 * measure [CPUS]: what actually runs on the VM CPUs over a window. Passive mode (safe while a VM runs) reads the
 * interrupt, softirq and CPU-time counters and every thread's run time before and after; probe mode (only on idle
 * CPUs) also runs one pinned clock-reading worker per CPU (src/kernel/probe.ts). Reads only; pins only its own
 * worker threads. Exit 1 when over a budget, 2 for bad input, 130 when interrupted.
 */
import * as path from 'node:path';
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import type { ProbeResult } from '../kernel/probe.ts';
import {
  qemuName,
  readCounters,
  readTaskRuns,
  type Counters,
  type TaskRuns,
} from '../kernel/proc-counters.ts';
import { analyse, isVcpuThread, type Budgets, type MeasureReport } from '../measure/analysis.ts';
import { measureJson, renderMeasure, summaryLine } from '../measure/view.ts';
import { printable } from '../report/printable.ts';
import { readStatusModel } from './status-collect.ts';
import { defaultVmCpus, findLeaks, type StatusModel, type VmCpuChoice } from '../report/status-model.ts';
import { cpusArg } from './common.ts';
import { loadNamedProfile, type ProfileMeasure } from '../profile.ts';
import { jsonDocument } from '../report/json-text.ts';

/** Gaps longer than this count as interruptions in probe mode. */
export const PROBE_THRESHOLD_NS = 5000;
/** Passive mode samples the threads this often, so a thread's time goes to the CPU it ran on at that moment. */
const SAMPLE_MS = 1000;

/** A decimal number >= 0 as a person writes it: digits, an optional fraction. */
export const DECIMAL = /^\d{1,9}(\.\d{1,6})?$/;

function numberOption(inv: Invocation, key: string, long: string): number | undefined {
  const raw = inv.values[key];
  if (typeof raw !== 'string') return undefined;
  // decimal only: Number() would also take "0x10", "1e3" and " 5 "
  if (!DECIMAL.test(raw)) throw new UsageError(`measure: --${long} must be a number >= 0, not "${raw}"`);
  return Number(raw);
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
    return name ? `${printable(name)} (QEMU pid ${pid})` : `QEMU pid ${pid}`;
  });
}

/** What one measurement is asked to do (the CPUs already resolved and online). */
export interface MeasureRequest {
  cpus: CpuSet;
  /** Why these CPUs (shown in the report). */
  why: string;
  seconds: number;
  /** undefined: passive while vCPU threads are there, else probe. */
  mode?: 'passive' | 'probe';
  budgets: Budgets;
  /** A probe that could pin none of its workers gives the counters' figures instead of failing. */
  probeMayFail?: boolean;
  /** The status model read just before (else read here). */
  model?: StatusModel;
  /** The command named in errors ("measure" unless given). */
  command?: string;
}

/** A probe asked for on CPUs where vCPU threads run: the usage error that refuses it (exit 2), else undefined. */
export function probeRefusal(ctx: Ctx, cpus: CpuSet, command = 'measure'): UsageError | undefined {
  const vms = vmsOn(ctx, readTaskRuns(ctx.k.fs), cpus, readStatusModel(ctx.k));
  if (vms.length === 0) return undefined;
  return new UsageError(
    `${command}: CPUs ${cpus.toList()} run the vCPU threads of ${vms.join(', ')}: the probe would compete with the VM`,
    command === 'measure'
      ? 'measure a running VM with --mode passive, or probe once it has stopped'
      : 'run it before the VM starts, or measure the running VM with vfio-isolate measure --mode passive',
  );
}

/**
 * One measurement of CPUS over the window: reads the counters and the threads (and runs the probe), then analyses.
 * Refuses a probe where vCPU threads run (UsageError). SIGINT ends the window early (report.interrupted).
 */
export async function measureCpus(ctx: Ctx, req: MeasureRequest): Promise<MeasureReport> {
  const { cpus, seconds, budgets } = req;
  const model = req.model ?? readStatusModel(ctx.k);
  const leaks = findLeaks(model, cpus);
  const first = readTaskRuns(ctx.k.fs);
  const vms = vmsOn(ctx, first, cpus, model);
  const mode = req.mode ?? (vms.length > 0 ? 'passive' : 'probe');
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
  let probeFailed: string | undefined;
  let before: Counters;
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
        // the window starts when the workers do: read the counters and the threads again
        onStart: () => {
          before = readCounters(ctx.k.fs);
          runs[0] = readTaskRuns(ctx.k.fs);
        },
      }).catch((e: unknown) => {
        // a worker that died (not an errno of a kernel file): say so, not "I/O error from the kernel"
        if (e instanceof UsageError || e instanceof RuntimeFailure) throw e;
        throw new RuntimeFailure(
          `${req.command ?? 'measure'}: the probe failed: ${(e as Error)?.message ?? String(e)}`,
        );
      });
      if (probe.interrupted) abort.abort();
      const failed = probe.cpus.filter((c) => c.error);
      if (failed.length === probe.cpus.length && !probe.interrupted) {
        if (!req.probeMayFail)
          throw new RuntimeFailure(
            `${req.command ?? 'measure'}: the probe could not run on CPUs ${cpus.toList()}: ${failed[0]?.error ?? 'no result'}`,
            req.command === undefined
              ? 'measure them with --mode passive'
              : 'measure them with vfio-isolate measure --mode passive, or run it without --measure',
          );
        // the counters read around the window still say what ran there: a passive measurement
        probeFailed = `the probe (${failed[0]?.error ?? 'no result'}): counters only`;
        probe = undefined;
      }
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
  if (probeFailed) notRead.push(probeFailed);
  return analyse({
    mode: probeFailed ? 'passive' : mode,
    cpus,
    why: req.why,
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
}

/** A window length in seconds: more than 0, at most an hour (else a usage error naming `what`). */
export function checkWindow(seconds: number, what: string): number {
  if (!(seconds > 0) || seconds > 3600)
    throw new UsageError(`${what}: the window must be more than 0 s and at most 3600 s, not ${seconds} s`);
  return seconds;
}

async function run(ctx: Ctx, inv: Invocation): Promise<number> {
  const prof =
    typeof inv.values.profile === 'string' ? loadMeasureProfile(ctx, inv.values.profile) : undefined;
  const pm = prof?.measure;
  if (inv.values.afterStart === true) {
    if (!prof)
      throw new UsageError('measure: --after-start needs --profile (it reads [measure] after_start)');
    const ignored = ['seconds', 'mode'].filter((o) => inv.values[o] !== undefined);
    if (ignored.length)
      throw new UsageError(
        `measure: --after-start takes its window from the profile's [measure] after_start (passive), not --${ignored.join(' or --')}`,
      );
    // what the libvirt hook runs at "started": nothing unless the profile asks for it
    if (pm?.afterStart === undefined) return 0;
  }
  const seconds = checkWindow(
    inv.values.afterStart === true
      ? pm!.afterStart!
      : (numberOption(inv, 'seconds', 'seconds') ?? pm?.seconds ?? 5),
    'measure',
  );
  const budgets: Budgets = {
    maxNoiseUs: numberOption(inv, 'maxNoiseUs', 'max-noise-us') ?? pm?.maxNoiseUs,
    maxIrqsPerS: numberOption(inv, 'maxIrqsPerS', 'max-irqs-per-s') ?? pm?.maxIrqsPerS,
    maxGapUs: numberOption(inv, 'maxGapUs', 'max-gap-us') ?? pm?.maxGapUs,
  };
  const wanted =
    inv.values.afterStart === true ? 'passive' : ((inv.values.mode as string | undefined) ?? pm?.mode);
  if (wanted !== undefined && wanted !== 'passive' && wanted !== 'probe')
    throw new UsageError(`measure: --mode is passive or probe, not "${wanted}"`);

  const given = inv.args.CPUS !== undefined ? cpusArg(ctx, inv.args.CPUS, 'measure') : undefined;
  const model = readStatusModel(ctx.k);
  const choice: VmCpuChoice = given
    ? { cpus: given, source: 'argument', why: 'as given' }
    : prof
      ? { cpus: prof.vmCpus, source: 'argument', why: `vm_cpus of ${prof.name}` }
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
  const why = choice.source !== 'argument' ? "the active isolation's VM CPUs" : choice.why;

  const report = await measureCpus(ctx, {
    cpus,
    why,
    seconds,
    mode: wanted as 'passive' | 'probe' | undefined,
    budgets,
    model,
  });
  if (ctx.g.json || inv.values.json === true) {
    ctx.streams.out(jsonDocument(measureJson(report)));
  } else if (inv.values.afterStart === true || inv.values.summary === true) {
    ctx.streams.out(summaryLine(report) + '\n');
  } else {
    ctx.streams.out(renderMeasure(report, { verbose: ctx.g.verbose || inv.values.verbose === true }));
  }
  if (report.interrupted) return 130;
  return report.overBudget ? 1 : 0;
}

/** The profile of `measure --profile`: its VM CPUs and [measure] table. */
function loadMeasureProfile(
  ctx: Ctx,
  name: string,
): { name: string; vmCpus: CpuSet; measure?: ProfileMeasure } {
  const p = loadNamedProfile(name, ctx.k, (w) => ctx.log.warn(w));
  return { name: path.basename(p.path), vmCpus: p.vmCpus, ...(p.measure ? { measure: p.measure } : {}) };
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  measure: { kind: 'report', run },
};
