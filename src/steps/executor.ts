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

export interface Fault {
  kind: 'fail' | 'crash-before' | 'crash-after';
  step: number;
}

/**
 * Test aid: VFIO_ISOLATE_FAULT=fail:K (step K throws before changing anything), crash-before:K (SIGKILL right
 * after step K's undo record is on disk), crash-after:K (SIGKILL right after step K). Steps count from 1.
 */
export function faultFromEnv(env: NodeJS.ProcessEnv): Fault | undefined {
  const m = /^(fail|crash-before|crash-after):(\d+)$/.exec(env.VFIO_ISOLATE_FAULT ?? '');
  return m ? { kind: m[1] as Fault['kind'], step: Number(m[2]) } : undefined;
}

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
  opts: { k: Kernel; log: Log; journal: JournalSink; noRollback?: boolean; fault?: Fault },
): RunOutcome {
  const { k, log, journal, fault } = opts;
  const applied: AppliedStep[] = [];
  const crash = (): never => {
    process.kill(process.pid, 'SIGKILL');
    throw new Error('unreachable');
  };
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const n = i + 1;
    let recorded = false;
    try {
      if (fault?.kind === 'fail' && fault.step === n) {
        throw new RuntimeFailure(`injected failure at step ${n} (VFIO_ISOLATE_FAULT)`);
      }
      log.info(`${step.command}: ${step.title}`);
      if (step.oneWay && fault?.kind === 'crash-before' && fault.step === n) crash();
      const result = step.apply({
        k,
        log,
        record(rec) {
          journal.record(rec, step.scope);
          if (!recorded && fault?.kind === 'crash-before' && fault.step === n) crash();
          recorded = true;
        },
      });
      applied.push({ step, result });
      if (fault?.kind === 'crash-after' && fault.step === n) crash();
    } catch (e) {
      const err = e instanceof VfioError ? e : explainErrno(e);
      const what = `${step.command}: ${step.title}: ${err.message}`;
      if (opts.noRollback) {
        throw new RunFailed(`${what}; changes before it were kept (--no-rollback)`, err.hint, applied, false);
      }
      const failures = rollback(k, journal, log);
      journal.markRollback();
      if (failures.length > 0) {
        throw new RunFailed(
          `${what}; rolling back also failed: ${failures.join('; ')}`,
          journal.file ? `run: vfio-isolate restore ${journal.file}` : 'check with: vfio-isolate status',
          applied,
          false,
        );
      }
      const undone = applied.length > 0 || journal.records.length > 0;
      throw new RunFailed(
        `${what}${undone ? '; the changes of this run were undone' : '; nothing was changed'}`,
        err.hint,
        applied,
        true,
      );
    }
  }
  return { applied };
}

/** Undo this run's records, newest first. Returns what could not be undone. */
export function rollback(k: Kernel, journal: JournalSink, log: Log): string[] {
  const failed: string[] = [];
  for (const rec of [...journal.records].reverse()) {
    log.info(`rollback: ${describeRecord(rec)}`);
    failed.push(...undoRecord(k, rec, log).failed);
  }
  return failed;
}
