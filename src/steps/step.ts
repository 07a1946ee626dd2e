import type { Kernel } from '../kernel/kernel.ts';
import type { Log } from '../report/log.ts';
import type { UndoRecord } from './records.ts';

/** One planned change, for --dry-run and --json: a file with its old and new value, or an action. */
export interface Change {
  target: string;
  before?: string;
  after?: string;
  note?: string;
}

export interface Skipped {
  what: string;
  why: string;
}

export interface StepResult {
  /** Items changed (files written, tasks moved, IRQs re-masked). */
  changed: number;
  /** Tasks that had exited (ESRCH). */
  gone?: number;
  /** Items the kernel does not let move (per-CPU kernel threads, managed IRQs). */
  skipped?: Skipped[];
}

export interface ApplyCtx {
  k: Kernel;
  log: Log;
  /** Persist the undo record (journal + fsync) BEFORE making the change it describes. */
  record(rec: UndoRecord): void;
}

export interface Step {
  /** The command that planned it (cpuset-modify, irq-affinity, ...). */
  command: string;
  /** One line in plain words: "restrict /system.slice to CPUs 0-6". */
  title: string;
  changes: Change[];
  /** Nothing to undo (drop_caches, compact_memory): the step records no undo entry. */
  oneWay?: boolean;
  /** What it changed stays when a later step fails (restore's undo steps: they journal nothing to roll back). */
  keptOnFailure?: boolean;
  /**
   * 'host': a change to the host set that several isolations share (cgroups, kernel threads, workqueues, IRQs,
   * irqbalance, stat_interval); its undo record goes to the host journal (/run/vfio-isolate/host.journal), which the
   * last release restores. Otherwise the record goes to the run's own journal.
   */
  scope?: 'host';
  apply(ctx: ApplyCtx): StepResult;
}
