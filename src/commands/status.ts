/**
 * status [CPUS]: what is isolated and what still leaks onto the VM CPUs (cgroups, boot-time isolation, tasks,
 * kernel threads, IRQs, masks, governors, irqbalance). Exit 1 when something movable leaks.
 */
import type { Handler } from '../cli/spec.ts';
import { readStatusModel } from '../report/status-read.ts';
import { defaultVmCpus, findLeaks, type VmCpuChoice } from '../report/status-model.ts';
import { renderStatus, statusJson } from '../report/status-view.ts';
import { suggestSplit } from '../report/topology-view.ts';
import { cpusArg } from './common.ts';

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
      if (ctx.g.json || inv.values.json === true) {
        ctx.streams.out(JSON.stringify(statusJson(model, choice, report), null, 2) + '\n');
      } else {
        const verbose = ctx.g.verbose || ctx.g.debug || inv.values.verbose === true;
        ctx.streams.out(
          renderStatus(model, choice, report, {
            colour: ctx.colour,
            verbose,
            suggestion: suggestSplit(ctx.k.machine),
          }),
        );
      }
      return report.leaks.length > 0 ? 1 : 0;
    },
  },
};
