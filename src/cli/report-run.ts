/**
 * Running a report command (status, topology, help cpus, completion, ...): it runs alone and changes nothing, so it
 * needs neither the journal, the lock nor the executor that src/cli/execute.ts loads for commands that plan.
 */
import { Kernel } from '../kernel/kernel.ts';
import { makeLog, useColour, type Streams } from '../report/log.ts';
import { PlanState } from '../steps/state.ts';
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
  const k = opts.kernel ? opts.kernel() : Kernel.real();
  const ctx: Ctx = {
    k,
    state: new PlanState(k),
    log,
    g,
    streams,
    env,
    colour: useColour(streams, env),
    argv,
    chain: [inv],
  };
  return await h.run(ctx, inv);
}
