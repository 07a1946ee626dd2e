/** Undo a journal, newest change first, after validating every record (restore, release, the last release's host journal). */
import type { Ctx } from '../cli/spec.ts';
import { RuntimeFailure } from '../errors.ts';
import {
  checkExistingJournalTrust,
  markRestored,
  pendingRecords,
  readJournalToUndo,
  removeInterrupted,
} from '../steps/journal.ts';
import type { Step } from '../steps/step.ts';
import { describeRecord, undoRecord, unitPropertyKey } from '../steps/undo.ts';
import { validateRecords } from '../steps/validate.ts';

/** Steps that undo a journal file; shared by restore and release. */
export function planJournalRestore(
  ctx: Ctx,
  command: string,
  file: string,
  /**
   * beforeMark: steps that run after the undo and before the journal is marked restored (release's host set);
   * again: the command a conflict's hint names (default: `vfio-isolate --force restore FILE`).
   */
  opts: { force: boolean; beforeMark?: Step[]; again?: string },
): Step[] {
  const beforeMark = opts.beforeMark ?? [];
  // Read under the run's lock (taken before planning), and only a journal root alone could have written.
  const j = readJournalToUndo(file, checkExistingJournalTrust(file));
  if (j === 'interrupted') {
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
      ...beforeMark,
    ];
  }
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
      markRestored(file, otherBoot && opts.force, undefined, j.size);
      return { changed: 0 };
    },
  };
  if (otherBoot && !opts.force) {
    ctx.log.warn(
      `${file} is from an earlier boot: a reboot already reset what it changed, so nothing is applied (use --force to apply it anyway)`,
    );
    return [...beforeMark, mark];
  }
  // the files the undo writes back: a later command of the chain reads them again right before writing them
  for (const rec of recs) if (rec.kind === 'write') for (const [p] of rec.files) ctx.state.touch(p);
  const failures: string[] = [];
  const conflicts: string[] = [];
  const known = new Map<string, string[]>();
  const leftAlone = new Set<string>();
  const add = (key: string, values: string[]): void =>
    void known.set(key, [...(known.get(key) ?? []), ...values]);
  for (const rec of recs) {
    if (rec.kind === 'write')
      for (const [p, old, wrote] of rec.files) add(p, wrote !== undefined ? [old, wrote] : [old]);
    if (rec.kind === 'unit') {
      if (rec.allowedCpus) add(unitPropertyKey(rec.unit, 'AllowedCPUs'), rec.allowedCpus);
      if (rec.allowedMemoryNodes)
        add(unitPropertyKey(rec.unit, 'AllowedMemoryNodes'), rec.allowedMemoryNodes);
    }
  }
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
      const r = undoRecord(k, rec, log, { force: opts.force, known, leftAlone });
      failures.push(...r.failed);
      conflicts.push(...r.conflicts);
      return { changed: r.done, skipped: r.failed.map((f) => ({ what: f, why: 'failed' })) };
    },
  }));
  const complete = (): void => {
    if (conflicts.length > 0) {
      throw new RuntimeFailure(
        `restore of ${file}: ${conflicts.length} change(s) left alone because they were changed again since this journal's run: ${conflicts.slice(0, 3).join('; ')}${conflicts.length > 3 ? '; ...' : ''}`,
        `check them; ${opts.again ?? `vfio-isolate --force restore ${shellWord(file)}`} puts the old values back anyway (the journal is not marked restored)`,
      );
    }
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
      keptOnFailure: true,
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

/** `s` as one word of a shell command line (quoted when it holds anything but plain path characters). */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}
