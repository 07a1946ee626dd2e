/** restore FILE: undo a journal, newest change first, after validating every record. */
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import { planRelease, registered } from './release.ts';
import { planJournalRestore } from './journal-restore.ts';

export { planJournalRestore };

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  restore: {
    kind: 'plan',
    // the journal of an active isolation is released (the host set of the other isolations stays right)
    plan: (ctx: Ctx, inv: Invocation) =>
      registered(ctx, inv.args.FILE!)
        ? { steps: planRelease(ctx, inv.name, inv.args.FILE!), journal: null }
        : planJournalRestore(ctx, inv.name, inv.args.FILE!, { force: ctx.g.force }),
  },
};
