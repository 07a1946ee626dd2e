/**
 * status [CPUS]: what is isolated and what still leaks onto the VM CPUs (cgroups, boot-time isolation, tasks,
 * kernel threads, IRQs, masks, governors, irqbalance). Exit 1 when something movable leaks. Also registers the
 * leak check that isolate prints when it is done.
 */
import type { CommandSpec, Ctx } from '../cli/spec.ts';
import type { CpuSet } from '../cpus/cpuset.ts';
import { readStatusModel } from '../report/status-read.ts';
import { defaultVmCpus, findingLine, findLeaks, type VmCpuChoice } from '../report/status-model.ts';
import { leakCheckJson, renderStatus, statusJson } from '../report/status-view.ts';
import { plural } from '../report/table.ts';
import { suggestSplit } from '../report/topology-view.ts';
import { cpusArg } from './common.ts';
import { driftLine, findDrift, type Drift } from './drift.ts';
import { setIsolateReport } from './isolate.ts';

export const statusCommand: CommandSpec = {
  name: 'status',
  summary: 'show what is isolated, and what still leaks onto the VM CPUs',
  description:
    'Shows the cpuset hierarchy (configured and effective CPUs, partitions, tasks), boot-time isolation, and for the VM CPUs: tasks and kernel threads that may run there, IRQs that may fire there, default_smp_affinity, workqueue cpumasks, governors and irqbalance. Each leak is one line with its fix. Without CPUS, the VM CPUs are the online CPUs that no host cgroup may use (every top-level cgroup except machine.slice), else the CPUs isolated at boot; if there are none, nothing is isolated yet and status exits 0. Exit 1 when something movable may run on the VM CPUs. Reads only; without root it says what it could not see.',
  options: [
    {
      key: 'json',
      long: 'json',
      type: 'boolean',
      help: 'machine-readable output (same as the global --json)',
    },
    {
      key: 'verbose',
      long: 'verbose',
      short: ['-v'],
      type: 'boolean',
      help: 'list every cgroup, leak and expected item',
    },
  ],
  args: [
    {
      name: 'CPUS',
      required: false,
      help: 'the VM CPUs to check (default: those no host cgroup may use)',
      complete: 'cpus',
    },
  ],
  examples: [
    'vfio-isolate status',
    'vfio-isolate status C8-15,24-31',
    'vfio-isolate status -v L1',
    'vfio-isolate status --json',
  ],
  handler: {
    kind: 'report',
    run(ctx, inv) {
      const given = inv.args.CPUS !== undefined ? cpusArg(ctx, inv.args.CPUS, 'status') : undefined;
      const model = readStatusModel(ctx.k);
      const choice: VmCpuChoice = given
        ? { cpus: given, source: 'argument', why: 'as given' }
        : defaultVmCpus(model);
      const report = findLeaks(model, choice.cpus);
      let drift: Drift[] = [];
      let driftError: string | undefined;
      try {
        drift = findDrift(ctx);
      } catch (e) {
        driftError = e instanceof Error ? e.message : String(e);
      }
      if (ctx.g.json || inv.values.json === true) {
        const json = statusJson(model, choice, report);
        if (drift.length > 0) {
          json.ok = false;
          json.drift = drift.map((d) => ({
            unit: d.unit,
            property: d.property,
            applied: d.value,
            now: d.now,
            journal: d.journal,
            at: d.at,
            fix: d.fix,
          }));
        }
        ctx.streams.out(JSON.stringify(json, null, 2) + '\n');
      } else {
        const verbose = ctx.g.verbose || ctx.g.debug || inv.values.verbose === true;
        ctx.streams.out(
          renderStatus(model, choice, report, {
            colour: ctx.colour,
            verbose,
            suggestion: suggestSplit(ctx.k.machine),
          }),
        );
        if (drift.length > 0) {
          ctx.streams.out(
            `\nDrift: ${plural(drift.length, 'restriction')} applied through systemd now gone:\n`,
          );
          for (const d of drift) ctx.streams.out(`  ${driftLine(d)}\n    fix: ${d.fix}\n`);
        }
      }
      if (driftError !== undefined) ctx.log.warn(`could not check for drift: ${driftError}`);
      if (drift.length > 0) return 1;
      return report.leaks.length > 0 ? 1 : 0;
    },
  },
};

/**
 * The check isolate prints when it is done: movable leaks as warnings (exit 1 only with --strict), a one-line
 * summary of what is expected to stay. With --json: one object { command, ok, strict, leakCheck } on stdout.
 */
export function isolateLeakCheck(ctx: Ctx, vm: CpuSet, strict: boolean): number {
  const report = findLeaks(readStatusModel(ctx.k), vm);
  const failed = strict && report.leaks.length > 0;
  if (ctx.g.json) {
    // run.ts prints one document: the applied steps plus these fields.
    ctx.jsonExtra = { ...ctx.jsonExtra, command: 'isolate', strict, leakCheck: leakCheckJson(report) };
    return failed ? 1 : 0;
  }
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
  return failed ? 1 : 0;
}

setIsolateReport(isolateLeakCheck);

export const statusCommands: CommandSpec[] = [statusCommand];
