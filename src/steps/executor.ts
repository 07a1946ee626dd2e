/**
 * Applying a plan: for each step the undo record is persisted first, then the change is made. On the first
 * failure every change of this run is undone in reverse (unless --no-rollback), and the failure is reported.
 */
import { VfioError, RuntimeFailure } from '../errors.ts';
import { explainErrno } from '../kernel/errors.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { Log } from '../report/log.ts';
import type { JournalSink } from './journal.ts';
import type { Step, StepResult } from './step.ts';
import { describeRecord, undoRecord } from './undo.ts';

/**
 * Called around each step (steps count from 1): `start` before anything of step n happens, `recorded` once its
 * first undo record is on disk (for a one-way step, which records nothing, right before it is applied), `applied`
 * after it. An observer that throws at `start` fails the step before it changes anything. Two more points:
 * `journal` (n = 0) right after a new undo file was created, before its header is written; `undone` after the
 * rollback of a failed run has undone its n-th record (newest first).
 */
export type StepObserver = (
  phase: 'start' | 'recorded' | 'applied' | 'journal' | 'undone',
  n: number,
) => void;

export interface AppliedStep {
  step: Step;
  result: StepResult;
}

export interface RunOutcome {
  applied: AppliedStep[];
}

export class RunFailed extends RuntimeFailure {
  constructor(
    message: string,
    hint: string | undefined,
    readonly applied: AppliedStep[],
    readonly rolledBack: boolean,
  ) {
    super(message, hint);
  }
}

export function applySteps(
  steps: readonly Step[],
  opts: { k: Kernel; log: Log; journal: JournalSink; noRollback?: boolean; observe?: StepObserver },
): RunOutcome {
  const { k, log, journal } = opts;
  const observe: StepObserver = opts.observe ?? (() => {});
  const applied: AppliedStep[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const n = i + 1;
    let recorded = false;
    try {
      observe('start', n);
      log.info(`${step.command}: ${step.title}`);
      if (step.oneWay) observe('recorded', n);
      const result = step.apply({
        k,
        log,
        record(rec) {
          journal.record(rec, step.scope);
          if (!recorded) observe('recorded', n);
          recorded = true;
        },
      });
      applied.push({ step, result });
      observe('applied', n);
    } catch (e) {
      const err = e instanceof VfioError ? e : explainErrno(e);
      const what = `${step.command}: ${step.title}: ${err.message}`;
      if (opts.noRollback) {
        throw new RunFailed(`${what}; changes before it were kept (--no-rollback)`, err.hint, applied, false);
      }
      const failures = rollback(k, journal, log, observe);
      journal.markRollback();
      if (failures.length > 0) {
        throw new RunFailed(
          `${what}; rolling back also failed: ${failures.join('; ')}`,
          // the run is marked rolled back (what it undid must not be undone again), so restore skips all of it
          `put back by hand what is named above${journal.file ? ` (restore ${journal.file} skips a run that rolled back)` : ''}; vfio-isolate status shows what leaks`,
          applied,
          false,
        );
      }
      // Restore's own undo steps journal nothing and are not rolled back: what they put back stays (when they put
      // back nothing, nothing was changed).
      const undone = applied.some((a) => !a.step.keptOnFailure) || journal.records.length > 0;
      const kept = applied.some((a) => a.step.keptOnFailure && a.result.changed > 0);
      throw new RunFailed(
        `${what}${kept ? '; the changes before it were kept' : undone ? '; the changes of this run were undone' : '; nothing was changed'}`,
        err.hint,
        applied,
        true,
      );
    }
  }
  return { applied };
}

/** Undo this run's records, newest first. Returns what could not be undone. */
export function rollback(k: Kernel, journal: JournalSink, log: Log, observe?: StepObserver): string[] {
  const failed: string[] = [];
  let n = 0;
  for (const rec of [...journal.records].reverse()) {
    log.info(`rollback: ${describeRecord(rec)}`);
    const r = undoRecord(k, rec, log);
    failed.push(...r.failed, ...r.conflicts.map((c) => `changed since: ${c}`));
    observe?.('undone', ++n);
  }
  return failed;
}
