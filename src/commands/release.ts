/**
 * release (and restore of a registered journal): undo one isolation's journal, then put the host set right for the
 * isolations that remain, or restore the host journal after the last one.
 */
import * as path from 'node:path';
import { UsageError } from '../errors.ts';
import { P } from '../kernel/kernel.ts';
import { hostJournalPath, readRegistry, writeRegistry, type Reservation } from '../kernel/reservations.ts';
import { journalState, journalThere, readBaseline, refuseUnusableJournalPath } from '../steps/journal.ts';
import type { Ctx, Handler } from '../cli/spec.ts';
import type { Step } from '../steps/step.ts';
import { planJournalRestore, shellWord } from './journal-restore.ts';
import { planHostSet } from './host-set.ts';

/** Default journal of isolate/release (under the root, so tests use the fake tree's /run). */
export function defaultJournal(ctx: Ctx): string {
  return ctx.k.hostPath(P.defaultJournal);
}

/** A step that changes the registry of reservations, read again when applied (under the lock). */
export function registryStep(
  command: string,
  title: string,
  update: (rs: Reservation[]) => Reservation[],
): Step {
  return {
    command,
    title,
    changes: [{ target: P.reservations, note: title }],
    oneWay: true,
    apply({ k }) {
      writeRegistry(k, update(readRegistry(k).reservations));
      return { changed: 1 };
    },
  };
}

/**
 * The host journal (the host's state before the first isolate, restored by the last release) is no isolation's own
 * journal: isolate would journal into it twice over, and releasing it would undo the host set of the isolations
 * that remain. Exit 2 before any change.
 */
export function refuseHostJournal(ctx: Ctx, command: string, file: string): void {
  if (file !== path.resolve(hostJournalPath(ctx.k))) return;
  throw new UsageError(
    `${command}: ${file} is the host journal (the host's state before the first isolate), not the journal of an isolation`,
    'name the journal of an isolation (vfio-isolate status lists them), or none for the default one; the last release restores the host journal',
  );
}

/** The isolations of the registry other than FILE's that are still active: one whose journal was restored by hand is over. */
export function otherActiveReservations(
  reservations: readonly Reservation[],
  file: string,
  bootId: string,
): Reservation[] {
  return reservations.filter(
    (r) => r.journal !== file && journalState(r.journal, bootId, 'head') !== 'restored',
  );
}

/** Is FILE the journal of an active isolation (in the registry)? */
export function registered(ctx: Ctx, file: string): boolean {
  const f = path.resolve(file);
  return readRegistry(ctx.k).reservations.some((r) => r.journal === f);
}

/**
 * release (and restore of a registered journal): undo FILE's own changes, then put the host set right for the
 * isolations that remain — or, when none remains, restore the host journal (the state before the first isolate)
 * — then drop FILE from the registry, then mark FILE restored. A journal that is not registered (a crash before
 * isolate registered it, a registry cleared by reset) is undone, and the host set is settled the same way.
 */
export function planRelease(ctx: Ctx, command: string, given: string): Step[] {
  const k = ctx.k;
  // before the path is resolved (which drops a trailing "/" and folds ".."): a registered journal deleted since is
  // still released
  refuseUnusableJournalPath(given);
  const file = path.resolve(given);
  refuseHostJournal(ctx, command, file);
  const bootId = k.bootId();
  const reg = readRegistry(k);
  const mine = reg.reservations.find((r) => r.journal === file);
  const remaining = otherActiveReservations(reg.reservations, file, bootId);
  const hostFile = hostJournalPath(k);
  // a conflict (the journal's or the host journal's) is forced by this release again, never by a restore of the
  // host journal alone (which would leave the reservation registered)
  const again = `vfio-isolate --force ${command} ${shellWord(given)}`;
  const settle: Step[] = [];
  if (remaining.length > 0)
    settle.push(...planHostSet(ctx, remaining, readBaseline(hostFile, bootId), command, reg.reservations));
  else if (['active', 'unreadable'].includes(journalState(hostFile, bootId, 'head')))
    // an unreadable one (malformed, or another user could have written it) is refused by its restore (exit 2)
    // rather than passed over, which would leave the host restricted
    // (--force: a value changed since is put back too, as for FILE's own changes; only this boot's is read)
    settle.push(...planJournalRestore(ctx, command, hostFile, { force: ctx.g.force, again }));
  const keep = new Set(remaining.map((r) => r.journal));
  if (remaining.length !== reg.reservations.length)
    settle.push(
      registryStep(
        command,
        remaining.length > 0
          ? `release the reservation of ${given} (${remaining.length} remain)`
          : 'release the last reservation',
        (rs) => rs.filter((r) => keep.has(r.journal)),
      ),
    );
  if (mine && !journalThere(file)) {
    ctx.log.warn(
      `journal ${given} is missing: its own changes (e.g. the governor) cannot be undone; releasing its CPUs`,
    );
    return settle;
  }
  return planJournalRestore(ctx, command, given, { force: ctx.g.force, beforeMark: settle, again });
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  release: {
    kind: 'plan',
    plan(ctx, inv) {
      const file = inv.args.JOURNAL ?? ctx.g.undoFile ?? defaultJournal(ctx);
      // release records nothing new in a journal of its own: -u names the journal to undo (changes to the host set
      // of the remaining isolations go to the host journal)
      return { steps: planRelease(ctx, inv.name, file), journal: null };
    },
  },
};
