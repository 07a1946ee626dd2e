/** restore FILE: undo a journal, newest change first, after validating every record. */
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import { RuntimeFailure } from '../errors.ts';
import { markRestored, pendingRecords, readJournalFile, type ParsedJournal } from '../steps/journal.ts';
import type { Step } from '../steps/step.ts';
import { describeRecord, undoRecord } from '../steps/undo.ts';
import { validateRecords } from '../steps/validate.ts';

/** Steps that undo a journal file; shared by restore and release. */
export function planJournalRestore(
  ctx: Ctx,
  command: string,
  file: string,
  opts: { force: boolean },
): Step[] {
  const j: ParsedJournal = readJournalFile(file);
  if (j.restored) {
    ctx.log.warn(`${file} was already restored; nothing to do`);
    return [];
  }
  const recs = pendingRecords(j);
  validateRecords(ctx.k, recs, file);
  const otherBoot = j.header.bootId !== ctx.k.bootId();
  const mark: Step = {
    command,
    title: `mark ${file} restored`,
    changes: [{ target: file, note: 'append "restored"' }],
    apply() {
      markRestored(file, otherBoot && opts.force);
      return { changed: 0 };
    },
  };
  if (otherBoot && !opts.force) {
    ctx.log.warn(
      `${file} is from an earlier boot: a reboot already reset what it changed, so nothing is applied (use --force to apply it anyway)`,
    );
    return [mark];
  }
  const failures: string[] = [];
  const steps: Step[] = recs.map((rec) => ({
    command,
    title: describeRecord(rec),
    changes:
      rec.kind === 'write'
        ? rec.files.map(([target, before]) => ({ target, after: before }))
        : [{ target: 'path' in rec ? rec.path : rec.kind, note: describeRecord(rec) }],
    apply({ k, log }) {
      const r = undoRecord(k, rec, log);
      failures.push(...r.failed);
      return { changed: r.done, skipped: r.failed.map((f) => ({ what: f, why: 'failed' })) };
    },
  }));
  steps.push({
    ...mark,
    apply(a) {
      if (failures.length > 0) {
        throw new RuntimeFailure(
          `restore of ${file} incomplete: ${failures.length} change(s) could not be undone: ${failures.slice(0, 3).join('; ')}`,
          'fix the cause and run restore again (it is safe to repeat)',
        );
      }
      return mark.apply(a);
    },
  });
  return steps;
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  restore: {
    kind: 'plan',
    plan: (ctx: Ctx, inv: Invocation) =>
      planJournalRestore(ctx, inv.name, inv.args.FILE!, { force: ctx.g.force }),
  },
};
