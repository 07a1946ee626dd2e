/** restore FILE: undo a journal, newest change first, after validating every record. */
import type { CommandSpec, Ctx, Invocation } from '../cli/spec.ts';
import { planRelease, registered } from './isolate.ts';
import { planJournalRestore } from './journal-restore.ts';

export const restoreCommand: CommandSpec = {
  name: 'restore',
  summary: 'restore a previous state using an undo file',
  description:
    'Undo everything journalled in FILE, newest first. Every entry is validated before anything is written. A journal of an earlier boot applies nothing (use --force). Restoring twice is harmless: the journal is marked restored and kept.',
  options: [],
  args: [{ name: 'FILE', required: true, help: 'the undo file given to -u', complete: 'file' }],
  examples: ['vfio-isolate restore /tmp/undo_description'],
  compat: true,
  writes: true,
  handler: {
    kind: 'plan',
    // the journal of an active isolation is released (the host set of the other isolations stays right)
    plan: (ctx: Ctx, inv: Invocation) =>
      registered(ctx, inv.args.FILE!)
        ? planRelease(ctx, inv.name, inv.args.FILE!)
        : planJournalRestore(ctx, inv.name, inv.args.FILE!, { force: ctx.g.force }),
  },
};
