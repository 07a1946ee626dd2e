/** Undo a journal, newest change first, after validating every record (restore, release, the last release's host journal). */
import type { Ctx } from '../cli/spec.ts';
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
  /** beforeMark: steps that run after the undo and before the journal is marked restored (release's host set). */
  opts: { force: boolean; beforeMark?: Step[] },
): Step[] {
  const j: ParsedJournal = readJournalFile(file);
  const beforeMark = opts.beforeMark ?? [];
  if (j.restored) {
    ctx.log.warn(`${file} was already restored; nothing to do`);
    return beforeMark;
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
    return [...beforeMark, mark];
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
  const complete = (): void => {
    if (failures.length > 0) {
      throw new RuntimeFailure(
        `restore of ${file} incomplete: ${failures.length} change(s) could not be undone: ${failures.slice(0, 3).join('; ')}`,
        'fix the cause and run restore again (it is safe to repeat)',
      );
    }
  };
  if (beforeMark.length > 0) {
    // an incomplete undo stops before the steps that follow it (release: host set, registry)
    steps.push({
      command,
      title: `check that every change of ${file} was undone`,
      changes: [],
      apply() {
        complete();
        return { changed: 0 };
      },
    });
    steps.push(...beforeMark);
  }
  steps.push({
    ...mark,
    apply(a) {
      complete();
      return mark.apply(a);
    },
  });
  return steps;
}
