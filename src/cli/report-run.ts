/**
 * Running a report command (status, topology, help cpus, completion, ...): it runs alone and changes nothing, so it
 * needs neither the journal, the lock nor the executor that src/cli/execute.ts loads for commands that plan. The
 * kernel layer loads only for a handler that reads the machine (not for help and completion scripts).
 */
import type { Kernel } from '../kernel/kernel.ts';
import { makeLog, useColour, type Streams } from '../report/log.ts';
import type { PlanState } from '../steps/state.ts';
import type { RunOptions } from './run.ts';
import type { Ctx, Globals, Invocation } from './spec.ts';

export async function runReport(
  inv: Invocation,
  g: Globals,
  argv: string[],
  env: NodeJS.ProcessEnv,
  streams: Streams,
  opts: RunOptions,
): Promise<number> {
  const h = await inv.spec.load?.();
  if (h?.kind !== 'report') throw new Error(`no report handler for ${inv.name}`);
  const log = makeLog(streams, g.verbose, g.debug, useColour(streams, env, 'err'));
  const base = { log, g, streams, env, colour: useColour(streams, env), argv, chain: [inv] };
  let ctx: Ctx;
  if (h.machine === false) {
    const none = (): never => {
      throw new Error(`${inv.name} reads nothing of the machine (its handler says machine: false)`);
    };
    ctx = {
      ...base,
      get k(): Kernel {
        return none();
      },
      get state(): PlanState {
        return none();
      },
    };
  } else {
    const [{ Kernel }, { PlanState }] = await Promise.all([
      import('../kernel/kernel.ts'),
      import('../steps/state.ts'),
    ]);
    const k = opts.kernel ? opts.kernel() : Kernel.real();
    ctx = { ...base, k, state: new PlanState(k) };
  }
  return await h.run(ctx, inv);
}
