/** move-tasks (0.5.2 compatible): every task of one cgroup into another. */
import { UsageError } from '../errors.ts';
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import type { Step } from '../steps/step.ts';
import { cgroupArg, requireCgroup } from './common.ts';
import { moveAll } from './cpuset.ts';

function moveTasksPlan(ctx: Ctx, inv: Invocation): Step[] {
  const from = cgroupArg(ctx, inv.args.FROM!);
  const to = cgroupArg(ctx, inv.args.TO!);
  requireCgroup(ctx, from, inv.name);
  requireCgroup(ctx, to, inv.name);
  if (from.path === to.path)
    throw new UsageError(`${inv.name}: FROM and TO are the same cgroup (${from.name})`);
  const file = ctx.k.cgroups.taskFile;
  // how many tasks there are now: for the plan a dry run prints (a run reads the list when it moves them)
  let count = '';
  if (ctx.g.dryRun)
    try {
      count = ` (${ctx.k.cgroups.readTasks(from.parts).length} now)`;
    } catch {
      /* created earlier in the chain */
    }
  return [
    {
      command: inv.name,
      title: `move all tasks from ${from.name} to ${to.name}`,
      changes: [{ target: `${to.path}/${file}`, note: `every task of ${from.name}${count}` }],
      apply: (a) => moveAll(a, `${from.path}/${file}`, from.path, to.path, file),
    },
  ];
}

/** The handler of this file's command, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  'move-tasks': { kind: 'plan', plan: moveTasksPlan },
};
