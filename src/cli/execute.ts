/** Running a parsed chain: plan every command against a simulated state, then apply it journalled (or print it). */
import * as path from 'node:path';
import { RuntimeFailure, UsageError } from '../errors.ts';
import { Kernel } from '../kernel/kernel.ts';
import { acquireLock, type Lock } from '../kernel/lock.ts';
import { makeLog, useColour, type Streams } from '../report/log.ts';
import { applySteps, RunFailed, type AppliedStep } from '../steps/executor.ts';
import { hostJournalPath } from '../kernel/reservations.ts';
import {
  checkJournalTrust,
  hasParentStep,
  memoryJournal,
  openHostJournal,
  openJournal,
  withHostJournal,
  type JournalSink,
} from '../steps/journal.ts';
import { PlanState } from '../steps/state.ts';
import type { Step } from '../steps/step.ts';
import { VERSION } from '../version.ts';
import type { Marks, RunOptions } from './run.ts';
import type { Ctx, Globals, Handler, Invocation, Plan, PlanHandler } from './spec.ts';
import { jsonDocument } from '../report/json-text.ts';
import { printable } from '../report/printable.ts';

export async function execute(
  commands: Ctx['chain'],
  g: Globals,
  argv: string[],
  env: NodeJS.ProcessEnv,
  streams: Streams,
  opts: RunOptions,
  marks?: Marks,
): Promise<number> {
  const colour = useColour(streams, env);
  const log = makeLog(streams, g.verbose, g.debug, useColour(streams, env, 'err'));
  const reports = commands.filter((c) => c.spec.kind === 'report');
  if (reports.length > 0 && commands.length > 1) {
    throw new UsageError(
      `${reports[0]!.name} cannot be chained with other commands`,
      `run it on its own: vfio-isolate ${reports[0]!.name} ...`,
    );
  }
  const first = commands[0]!;
  if (!first.spec.kind) throw new UsageError(`${first.name} needs a subcommand`);
  // run.ts sends a report command on its own to report-run.ts; here it could only be part of a chain (refused above)
  if (first.spec.kind === 'report') throw new Error(`${first.name} runs through src/cli/report-run.ts`);
  const k = opts.kernel ? opts.kernel() : Kernel.real();
  const ctx: Ctx = { k, state: new PlanState(k), log, g, streams, env, colour, argv, chain: commands };

  const writes = commands.some((c) => c.spec.writes);
  if (writes && !g.dryRun && k.euid !== 0) {
    throw new RuntimeFailure(
      'must run as root (try sudo)',
      'use --dry-run to see what would change without root',
    );
  }
  // A journal named by -u must pass the trust check before anything else (exit 2, nothing changed).
  const undoTrust = g.undoFile ? checkJournalTrust(g.undoFile) : undefined;
  // The lock is taken before planning, so a journal that restore/release reads while planning, the one a run
  // appends to, and the "restored" mark are all read and written under it (a dry run takes no lock).
  let lock: Lock | undefined;
  let journal: JournalSink | undefined;
  try {
    // 0. read-only preparations that take time (isolate --measure's "before" probe), before the lock; against a
    // state of their own, so planning reads the machine afresh under the lock
    const handlers: PlanHandler[] = [];
    for (const inv of commands) {
      const h = await loadHandler(inv);
      if (h.kind !== 'plan') throw new UsageError(`${inv.name} cannot be chained`);
      handlers.push(h);
    }
    const prepared: unknown[] = [];
    for (const [i, inv] of commands.entries()) {
      const pre = g.dryRun ? undefined : handlers[i]!.prepare;
      prepared.push(pre ? await pre({ ...ctx, state: new PlanState(k) }, inv) : undefined);
    }
    if (writes && !g.dryRun) {
      lock = acquireLock(k, Number(env.VFIO_ISOLATE_LOCK_WAIT_MS ?? 10000));
      marks?.push(['lock', performance.now()]);
    }
    // 1. plan every command of the chain against the simulated state
    const planned: Plan[] = [];
    for (const [i, inv] of commands.entries()) {
      const p = await handlers[i]!.plan(ctx, inv, prepared[i]);
      planned.push(Array.isArray(p) ? { steps: p } : p);
    }
    const steps = planned.flatMap((p) => p.steps);
    const chosen = planned.map((p) => p.journal).filter((j) => j !== undefined);
    const journalFile = chosen.includes(null) ? undefined : (chosen[0] ?? g.undoFile);
    marks?.push(['plan', performance.now()]);
    if (g.dryRun) {
      printPlan(streams, g, steps);
      return 0;
    }
    // 2. apply, journalled, under the lock
    const jopts = {
      tool: `vfio-isolate ${VERSION}`,
      bootId: k.bootId(),
      argv,
      onCreated: () => opts.observe?.('journal', 0),
    };
    // A journal that is missing is created without walking its directories again where this run checked them
    // already: -u's before planning (new-in-root-dir), or the lock's directory (isolate's own and host journals).
    const lockDir = lock?.dir;
    const checkedNew = (file: string): boolean =>
      (file === g.undoFile && undoTrust === 'new-in-root-dir') ||
      (lockDir !== undefined &&
        !hasParentStep(file) &&
        path.dirname(path.resolve(file)) === path.resolve(lockDir));
    journal = journalFile
      ? openJournal(journalFile, { ...jopts, checkedNew: checkedNew(journalFile) })
      : memoryJournal();
    // isolate/release: host-set changes are journalled in the host journal that the last release restores
    if (steps.some((s) => s.scope === 'host')) {
      const hostFile = hostJournalPath(k);
      journal = withHostJournal(
        journal,
        openHostJournal(hostFile, { ...jopts, onCreated: undefined, checkedNew: checkedNew(hostFile) }),
      );
    }
    for (const w of journal.warnings) log.warn(w);
    marks?.push(['journal', performance.now()]);
    let outcome;
    try {
      outcome = applySteps(steps, { k, log, journal, noRollback: g.noRollback, observe: opts.observe });
    } catch (e) {
      if (e instanceof RunFailed && g.json)
        printResult(streams, steps, e.applied, { ok: false, error: e.message, rolledBack: e.rolledBack });
      throw e;
    }
    marks?.push(['apply', performance.now()]);
    summariseSkips(log, outcome.applied);
    let code = 0;
    let json: Record<string, unknown> = {};
    // 3. the reports of the applied chain (isolate's leak check), in order, still under the lock
    for (const p of planned) {
      const r = p.after ? await p.after(ctx) : undefined;
      if (r) {
        code = Math.max(code, r.code);
        json = { ...json, ...r.json };
      }
    }
    // 4. read-only work that takes time (isolate --measure's "after" probe), with the journal closed and the lock
    // released
    journal.close();
    journal = undefined;
    lock?.release();
    lock = undefined;
    for (const p of planned) if (p.unlocked) json = { ...json, ...(await p.unlocked(ctx)) };
    if (g.json) printResult(streams, steps, outcome.applied, { ok: code === 0, ...json });
    return code;
  } finally {
    journal?.close();
    lock?.release();
  }
}

/** The handler of a command, loaded on demand from its module. */
async function loadHandler(inv: Invocation): Promise<Handler> {
  const h = await inv.spec.load?.();
  if (!h) throw new Error(`no handler for ${inv.name}`);
  return h;
}

function printPlan(streams: Streams, g: Globals, steps: Step[]): void {
  if (g.json) {
    streams.out(
      jsonDocument({
        dryRun: true,
        steps: steps.map((s) => ({ command: s.command, title: s.title, changes: s.changes })),
      }),
    );
    return;
  }
  if (steps.length === 0) {
    streams.out('Nothing to change.\n');
    return;
  }
  streams.out(`Plan (dry run: nothing was changed), ${steps.length} step${steps.length === 1 ? '' : 's'}:\n`);
  steps.forEach((s, i) => {
    streams.out(`${String(i + 1).padStart(3)}. ${s.command}: ${s.title}\n`);
    for (const c of s.changes.slice(0, 50)) {
      const val =
        c.after !== undefined ? `: ${JSON.stringify(c.before ?? '')} -> ${JSON.stringify(c.after)}` : '';
      // targets and notes may carry names others chose (a thread's, a cgroup's): escaped for the terminal
      streams.out(
        `       ${printable(c.target)}${printable(val)}${c.note ? `  (${printable(c.note)})` : ''}\n`,
      );
    }
    if (s.changes.length > 50) streams.out(`       ... and ${s.changes.length - 50} more\n`);
  });
}

export function printResult(
  streams: Streams,
  steps: Step[],
  applied: AppliedStep[],
  extra: Record<string, unknown>,
): void {
  const results = applied.map((a) => ({
    command: a.step.command,
    title: a.step.title,
    changed: a.result.changed,
    gone: a.result.gone ?? 0,
    skipped: a.result.skipped ?? [],
  }));
  streams.out(jsonDocument({ ...extra, planned: steps.length, steps: results }));
}

function summariseSkips(log: ReturnType<typeof makeLog>, applied: AppliedStep[]): void {
  for (const a of applied) {
    const sk = a.result.skipped ?? [];
    if (sk.length === 0) continue;
    const reasons = new Map<string, number>();
    for (const s of sk) reasons.set(s.why, (reasons.get(s.why) ?? 0) + 1);
    log.info(
      `${a.step.command}: skipped ${sk.length}: ${[...reasons].map(([w, n]) => `${n} ${w}`).join(', ')}`,
    );
    if (log.debug) for (const s of sk) log.debugLine(`  skipped ${s.what}: ${s.why}`);
  }
}
