/**
 * status [CPUS]: what is isolated and what still leaks onto the VM CPUs (cgroups, boot-time isolation, tasks,
 * kernel threads, IRQs, masks, governors, irqbalance). Exit 1 when something movable leaks.
 */
import type { Handler } from '../cli/spec.ts';
import { readStatusModel } from './status-collect.ts';
import { defaultVmCpus, findLeaks, type VmCpuChoice } from '../report/status-model.ts';
import { renderStatus, statusJson } from '../report/status-view.ts';
import { suggestSplit } from '../report/topology-view.ts';
import { printable } from '../report/printable.ts';
import { plural } from '../report/table.ts';
import { cpusArg } from './common.ts';
import { driftLine, findDrift, type Drift, type Unchecked } from './drift.ts';
import { jsonDocument } from '../report/json-text.ts';

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  status: {
    kind: 'report',
    run(ctx, inv) {
      const given = inv.args.CPUS !== undefined ? cpusArg(ctx, inv.args.CPUS, 'status') : undefined;
      const model = readStatusModel(ctx.k);
      const choice: VmCpuChoice = given
        ? { cpus: given, source: 'argument', why: 'as given' }
        : defaultVmCpus(model);
      const report = findLeaks(model, choice.cpus);
      let drift: Drift[] = [];
      let unchecked: Unchecked[] = [];
      let driftError: string | undefined;
      try {
        const found = findDrift(ctx);
        drift = found.drift;
        unchecked = found.unchecked;
        // the name of a file another user put in a directory others may write is theirs: escaped for the terminal
        for (const u of unchecked) ctx.log.warn(`${printable(u.why)}; not read for drift`);
      } catch (e) {
        driftError = e instanceof Error ? e.message : String(e);
      }
      if (ctx.g.json || inv.values.json === true) {
        const json = statusJson(model, choice, report);
        // what the drift check could not look at, for a reader of the document alone (the warnings go to stderr)
        if (unchecked.length > 0) json.driftUnchecked = unchecked;
        if (driftError !== undefined) json.driftError = driftError;
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
        ctx.streams.out(jsonDocument(json));
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
      // systemctl's words may carry what another user chose (a unit's description): escaped for the terminal too
      if (driftError !== undefined) ctx.log.warn(`could not check for drift: ${printable(driftError)}`);
      if (drift.length > 0) return 1;
      return report.leaks.length > 0 ? 1 : 0;
    },
  },
};
