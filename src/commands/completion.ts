/** completion SHELL (prints a completion script) and the hidden helper the scripts call for dynamic values. */
import { completionScript, type DynamicKind, type Shell } from '../cli/completion.ts';
import { COMMANDS } from '../cli/table.ts';
import type { Handler } from '../cli/spec.ts';
import { VERSION } from '../version.ts';

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  completion: {
    kind: 'report',
    machine: false,
    async run(ctx, inv) {
      const shell = inv.args.SHELL!.toLowerCase() as Shell;
      ctx.streams.out(completionScript(shell, COMMANDS, VERSION));
      return 0;
    },
  },
  __complete: {
    kind: 'report',
    async run(ctx, inv) {
      const { dynamicCandidates } = await import('./completion-candidates.ts');
      let out: string[] = [];
      try {
        out = dynamicCandidates(ctx.k, inv.args.KIND!.toLowerCase() as DynamicKind, inv.args.PREFIX ?? '');
      } catch {
        /* no cgroup file system, unreadable sysfs: no candidates */
      }
      if (out.length) ctx.streams.out(out.join('\n') + '\n');
      return 0;
    },
  },
};
