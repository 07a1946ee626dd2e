/** restore FILE: undo a journal, newest change first, after validating every record. */
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import { RuntimeFailure } from '../errors.ts';
import * as fs from 'node:fs';
import {
  checkJournalTrust,
  interruptedCreation,
  markRestored,
  pendingRecords,
  readJournalFile,
  removeInterrupted,
  type ParsedJournal,
} from '../steps/journal.ts';
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
  // Read under the run's lock (taken before planning), and only a journal root alone could have written.
  if (fs.existsSync(file) || isLink(file)) checkJournalTrust(file);
  if (interruptedCreation(file)) {
    // A run was killed while creating this file: it holds no change. Removed under the lock, if still so.
    return [
      {
        command,
        title: `remove ${file}, left empty by an interrupted run (nothing was applied)`,
        changes: [{ target: file, note: 'remove' }],
        apply({ log }) {
          if (removeInterrupted(file))
            log.warn(`${file} was left unfinished by an interrupted run that applied nothing; removed it`);
          return { changed: 0 };
        },
      },
    ];
  }
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
      markRestored(file, otherBoot && opts.force, undefined, j.size);
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
  const conflicts: string[] = [];
  const steps: Step[] = recs.map((rec) => ({
    command,
    title: describeRecord(rec),
    changes:
      rec.kind === 'write'
        ? rec.files.map(([target, before]) => ({ target, after: before }))
        : rec.kind === 'unit'
          ? [{ target: `unit ${rec.unit}`, note: describeRecord(rec) }]
          : [{ target: 'path' in rec ? rec.path : rec.kind, note: describeRecord(rec) }],
    keptOnFailure: true,
    apply({ k, log }) {
      const r = undoRecord(k, rec, log, { force: opts.force });
      failures.push(...r.failed);
      conflicts.push(...r.conflicts);
      return { changed: r.done, skipped: r.failed.map((f) => ({ what: f, why: 'failed' })) };
    },
  }));
  steps.push({
    ...mark,
    apply(a) {
      if (conflicts.length > 0) {
        throw new RuntimeFailure(
          `restore of ${file}: ${conflicts.length} change(s) left alone because they were changed again since this journal's run: ${conflicts.slice(0, 3).join('; ')}${conflicts.length > 3 ? '; ...' : ''}`,
          `check them; restore --force ${file} writes the old values anyway (the journal is not marked restored)`,
        );
      }
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

function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  restore: {
    kind: 'plan',
    plan: (ctx: Ctx, inv: Invocation) =>
      planJournalRestore(ctx, inv.name, inv.args.FILE!, { force: ctx.g.force }),
  },
};
