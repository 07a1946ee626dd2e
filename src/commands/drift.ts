/**
 * Drift: restrictions an active journal applied through systemd (unit AllowedCPUs= / AllowedMemoryNodes=) that
 * systemd no longer has (someone lifted them, `systemctl revert`, a unit restarted with other properties).
 * `status` names each with the journal and time that applied it; `reapply [JOURNAL]` sets them again, journalled
 * into the same journal (so release still restores the state from before the first isolate), and changes nothing
 * when nothing drifted.
 */
import * as path from 'node:path';
import type { Ctx, Handler } from '../cli/spec.ts';
import { CannotRead, RuntimeFailure } from '../errors.ts';
import { errnoOf } from '../kernel/fs.ts';
import { P } from '../kernel/kernel.ts';
import { showUnits } from '../kernel/systemd.ts';
import {
  checkExistingJournalTrust,
  hasParentStep,
  readJournalFile,
  readJournalToUndo,
  type ParsedJournal,
} from '../steps/journal.ts';
import type { UnitRecord } from '../steps/records.ts';
import type { Step } from '../steps/step.ts';
import { validateRecords } from '../steps/validate.ts';
import { hostJournalPath } from '../kernel/reservations.ts';
import { defaultJournal } from './release.ts';
import { planUnitLimit, systemdOf } from './restrict.ts';

const fs = process.getBuiltinModule('node:fs');

export interface Applied {
  unit: string;
  property: 'AllowedCPUs' | 'AllowedMemoryNodes';
  value: string;
  journal: string;
  at: string;
}

export interface Drift extends Applied {
  now: string;
  fix: string;
}

/**
 * What the live runs of an active journal (unrestored, this boot) last applied to each unit property. `j`: the
 * journal as its caller read it, from the file its trust check judged.
 */
export function appliedBy(ctx: Ctx, file: string, j: ParsedJournal): Applied[] {
  if (j.restored || j.header.bootId !== ctx.k.bootId()) return [];
  const last = new Map<string, Applied>();
  for (const run of j.runs) {
    if (run.rolledBack) continue;
    for (const rec of run.records) {
      if (rec.kind !== 'unit') continue;
      const put = (property: Applied['property'], pair: UnitRecord['allowedCpus']): void => {
        if (pair)
          last.set(`${rec.unit} ${property}`, {
            unit: rec.unit,
            property,
            value: pair[1],
            journal: file,
            at: run.at,
          });
      };
      put('AllowedCPUs', rec.allowedCpus);
      put('AllowedMemoryNodes', rec.allowedMemoryNodes);
    }
  }
  return [...last.values()];
}

/**
 * Journals status looks at: -u FILE, the default one, and every *.journal in /run/vfio-isolate; each file once, by
 * the spelling met first (a path with ".." stays as given: the trust check refuses it, and it must not stand for
 * the file it would name). `unseen`: the run directory when it is there but cannot be listed (status without root),
 * with why.
 */
function journalsToCheck(ctx: Ctx): { files: string[]; unseen?: Unchecked } {
  const out = new Map<string, string>();
  const add = (p: string): void => {
    const key = hasParentStep(p) ? p : path.resolve(p);
    if (!out.has(key)) out.set(key, p);
  };
  if (ctx.g.undoFile) add(ctx.g.undoFile);
  add(defaultJournal(ctx));
  const dir = ctx.k.hostPath(P.runDir);
  let unseen: Unchecked | undefined;
  try {
    for (const name of fs.readdirSync(dir).sort()) if (name.endsWith('.journal')) add(path.join(dir, name));
  } catch (e) {
    // no run directory: nothing isolated
    const code = errnoOf(e) ?? 'EIO';
    if (code !== 'ENOENT')
      unseen = { journal: dir, why: whyUnchecked(new CannotRead('run directory', dir, code)) };
  }
  return { files: [...out.values()], ...(unseen ? { unseen } : {}) };
}

/** Why a journal was not read for drift: the error's message; for one that could not be looked at, with its hint. */
function whyUnchecked(e: unknown): string {
  if (e instanceof CannotRead) return e.hint ? `${e.message}: ${e.hint}` : e.message;
  return (e as Error).message;
}

/**
 * A journal status did not read for drift (`why`: the trust check's or the read's words): root alone could not have
 * written it, it is no journal this tool can read (malformed, too large, a newer version), or it could not be looked
 * at (without root); `journal` is then the run directory itself when that could not be listed.
 */
export interface Unchecked {
  journal: string;
  why: string;
}

/**
 * Restrictions applied through systemd by active journals and missing now (the newest application wins), and the
 * journals that were there but not read (`unchecked`): their units are never asked about. A journal that is not
 * there, or that an interrupted run left holding no change, is neither.
 */
export function findDrift(ctx: Ctx): { drift: Drift[]; unchecked: Unchecked[] } {
  const unchecked: Unchecked[] = [];
  if (ctx.k.cgroups.version !== 2 || systemdOf(ctx).kind !== 'managed') return { drift: [], unchecked };
  const latest = new Map<string, Applied>();
  const { files, unseen } = journalsToCheck(ctx);
  if (unseen) unchecked.push(unseen);
  for (const file of files) {
    let applied: Applied[];
    try {
      const judged = checkExistingJournalTrust(file);
      if (judged === null) continue; // not there: nothing applied through it
      const j = readJournalToUndo(file, judged);
      if (j === 'interrupted') continue;
      applied = appliedBy(ctx, file, j);
    } catch (e) {
      // one that could not be looked at in a run directory that could not be listed is named by `unseen` already
      if (!(e instanceof CannotRead && path.dirname(path.resolve(file)) === unseen?.journal))
        unchecked.push({ journal: file, why: whyUnchecked(e) });
      continue;
    }
    for (const a of applied) {
      const key = `${a.unit} ${a.property}`;
      const prev = latest.get(key);
      if (!prev || prev.at <= a.at) latest.set(key, a);
    }
  }
  if (latest.size === 0) return { drift: [], unchecked };
  const units = [...new Set([...latest.values()].map((a) => a.unit))];
  const now = showUnits(ctx.k, units);
  const out: Drift[] = [];
  for (const a of latest.values()) {
    const info = now.get(a.unit);
    if (!info || info.loadState !== 'loaded') continue; // a unit that is gone has nothing to keep restricted
    const value = a.property === 'AllowedCPUs' ? info.allowedCpus : info.allowedMemoryNodes;
    if (value === a.value) continue;
    out.push({ ...a, now: value, fix: `vfio-isolate reapply ${a.journal}` });
  }
  return { drift: out, unchecked };
}

export function driftLine(d: Drift): string {
  return `systemd unit ${d.unit} ${d.property}=${d.value} applied by ${d.journal} at ${d.at}; now missing (${d.property}=${d.now})`;
}

/** reapply [JOURNAL]: set again, through systemd, what the journal applied and systemd no longer has. */
function planReapply(ctx: Ctx, command: string, file: string): Step[] {
  // root acts on what the journal says (units and values): only a journal root alone could have written (exit 2)
  // read once, from the file that check judged
  const j = readJournalFile(file, checkExistingJournalTrust(file));
  // and only values the tool itself sets: the unit records' lists are checked as restore checks them (exit 2)
  validateRecords(
    ctx.k,
    j.runs.flatMap((r) => r.records.filter((rec) => rec.kind === 'unit')),
    file,
  );
  const applied = appliedBy(ctx, file, j);
  if (applied.length === 0) {
    throw new RuntimeFailure(
      `${command}: ${file} has no active restriction applied through systemd`,
      'only an unrestored journal of this boot can be re-applied',
    );
  }
  if (systemdOf(ctx).kind !== 'managed')
    throw new RuntimeFailure(`${command}: systemd does not manage ${ctx.k.cgroups.mount} here`);
  const units = [...new Set(applied.map((a) => a.unit))];
  const infos = showUnits(ctx.k, units);
  const steps: Step[] = [];
  for (const unit of units) {
    const info = infos.get(unit)!;
    if (info.loadState !== 'loaded' || !info.controlGroup.startsWith('/')) {
      ctx.log.warn(`${command}: systemd unit ${unit} is gone; nothing to re-apply there`);
      continue;
    }
    const mine = applied.filter((a) => a.unit === unit);
    const step = planUnitLimit(
      ctx,
      info,
      info.controlGroup.split('/').filter(Boolean),
      {
        allowedCpus: mine.find((a) => a.property === 'AllowedCPUs')?.value,
        allowedMemoryNodes: mine.find((a) => a.property === 'AllowedMemoryNodes')?.value,
      },
      command,
    );
    if (step) steps.push(step);
  }
  return steps;
}

export const handlers: Record<string, Handler> = {
  reapply: {
    kind: 'plan',
    plan(ctx, inv) {
      // isolate journals its host-wide restrictions (the units among them) in the host journal
      const file = inv.args.JOURNAL ?? ctx.g.undoFile ?? hostJournalPath(ctx.k);
      const steps = planReapply(ctx, inv.name, file);
      // journalled into the same journal; nothing drifted: nothing to journal
      return { steps, journal: steps.length > 0 ? file : null };
    },
  },
};
