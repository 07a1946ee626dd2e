/** One invocation: parse, plan the chain against a simulated state, then apply (or print the plan). */
import { VfioError, RuntimeFailure, UsageError } from '../errors.ts';
import { explainErrno } from '../kernel/errors.ts';
import { Kernel } from '../kernel/kernel.ts';
import { acquireLock, type Lock } from '../kernel/lock.ts';
import { makeLog, useColour, type Streams } from '../report/log.ts';
import { applySteps, faultFromEnv, RunFailed, type AppliedStep } from '../steps/executor.ts';
import {
  memoryJournal,
  openHostJournal,
  openJournal,
  withHostJournal,
  type JournalSink,
} from '../steps/journal.ts';
import { hostJournalPath } from '../kernel/reservations.ts';
import { PlanState } from '../steps/state.ts';
import type { Step } from '../steps/step.ts';
import { commandHelp, mainHelp, notationHelp } from './help.ts';
import { parseArgv } from './parse.ts';
import type { CommandSpec, Ctx, Globals } from './spec.ts';
import { VERSION } from '../version.ts';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  streams?: Streams;
  table: readonly CommandSpec[];
}

export function processStreams(): Streams {
  return {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    isTTY: Boolean(process.stdout.isTTY),
    errIsTTY: Boolean(process.stderr.isTTY),
  };
}

export function findSpec(table: readonly CommandSpec[], full: string): CommandSpec | undefined {
  let list: readonly CommandSpec[] | undefined = table;
  let spec: CommandSpec | undefined;
  for (const word of full.split(' ')) {
    spec = list?.find((c) => c.name === word);
    if (!spec) return undefined;
    list = spec.subcommands;
  }
  return spec;
}

/**
 * Opt-in phase timings for the benchmarks (VFIO_ISOLATE_TIMINGS=1): marks taken at the end of each phase,
 * printed on stderr as one JSON line `{"timings":{"parse":ms,"plan":ms,...,"total":ms}}`.
 */
type Marks = [string, number][];
function timingLine(marks: Marks): string {
  const out: Record<string, number> = {};
  for (let i = 1; i < marks.length; i++) out[marks[i]![0]] = marks[i]![1] - marks[i - 1]![1];
  out.total = marks[marks.length - 1]![1] - marks[0]![1];
  return JSON.stringify({ timings: out }) + '\n';
}

export async function runCli(argv: readonly string[], opts: RunOptions): Promise<number> {
  const env = opts.env ?? process.env;
  const streams = opts.streams ?? processStreams();
  const marks: Marks | undefined =
    env.VFIO_ISOLATE_TIMINGS === '1' ? [['start', performance.now()]] : undefined;
  let debug = argv.includes('-d') || argv.includes('--debug');
  try {
    const parsed = parseArgv(argv, opts.table);
    marks?.push(['parse', performance.now()]);
    const g = parsed.globals;
    debug = g.debug;
    if (parsed.version) {
      streams.out(`vfio-isolate ${VERSION}\n`);
      return 0;
    }
    if (parsed.help || parsed.commands.length === 0) {
      const full = parsed.help?.command;
      const spec = full ? findSpec(opts.table, full) : undefined;
      streams.out(spec && full ? commandHelp(spec, full) : mainHelp(opts.table, VERSION));
      return 0;
    }
    return await execute(parsed.commands, g, [...argv], env, streams, opts.table, marks);
  } catch (e) {
    return reportError(e, streams, debug);
  } finally {
    if (marks) streams.err(timingLine([...marks, ['finish', performance.now()]]));
  }
}

export function reportError(e: unknown, streams: Streams, debug: boolean): number {
  const err = e instanceof VfioError ? e : explainErrno(e);
  streams.err(`vfio-isolate: ${err.message}\n`);
  if (err.hint) streams.err(`hint: ${err.hint}\n`);
  if (debug && e instanceof Error && e.stack) streams.err(`${e.stack}\n`);
  return err.exitCode;
}

async function execute(
  commands: Ctx['chain'],
  g: Globals,
  argv: string[],
  env: NodeJS.ProcessEnv,
  streams: Streams,
  table: readonly CommandSpec[],
  marks?: Marks,
): Promise<number> {
  const colour = useColour(streams, env);
  const log = makeLog(streams, g.verbose, g.debug, colour);
  const reports = commands.filter((c) => c.spec.handler?.kind === 'report');
  if (reports.length > 0 && commands.length > 1) {
    throw new UsageError(
      `${reports[0]!.name} cannot be chained with other commands`,
      `run it on its own: vfio-isolate ${reports[0]!.name} ...`,
    );
  }
  const k = Kernel.open(env);
  const ctx: Ctx = { k, state: new PlanState(k), log, g, streams, env, colour, argv, chain: commands };
  const first = commands[0]!;
  if (first.spec.handler?.kind === 'report') return await first.spec.handler.run(ctx, first);
  if (!first.spec.handler) throw new UsageError(`${first.name} needs a subcommand`);

  const writes = commands.some((c) => c.spec.writes);
  if (writes && !g.dryRun && !k.simulated && process.geteuid?.() !== 0) {
    throw new RuntimeFailure(
      'must run as root (try sudo)',
      'use --dry-run to see what would change without root',
    );
  }
  // 1. plan every command of the chain against the simulated state
  const planned: { inv: Ctx['chain'][number]; steps: Step[] }[] = [];
  for (const inv of commands) {
    const h = inv.spec.handler;
    if (h?.kind !== 'plan') throw new UsageError(`${inv.name} cannot be chained`);
    planned.push({ inv, steps: await h.plan(ctx, inv) });
  }
  const steps = planned.flatMap((p) => p.steps);
  marks?.push(['plan', performance.now()]);
  if (g.dryRun) {
    printPlan(streams, g, steps);
    return 0;
  }
  // 2. apply, journalled, under the lock
  let lock: Lock | undefined;
  let journal: JournalSink | undefined;
  try {
    lock = acquireLock(k, Number(env.VFIO_ISOLATE_LOCK_WAIT_MS ?? 10000));
    marks?.push(['lock', performance.now()]);
    const jopts = { tool: `vfio-isolate ${VERSION}`, bootId: k.bootId(), argv };
    journal = g.undoFile ? openJournal(g.undoFile, jopts) : memoryJournal();
    // isolate/release: host-set changes are journalled in the host journal that the last release restores
    if (steps.some((s) => s.scope === 'host'))
      journal = withHostJournal(journal, openHostJournal(hostJournalPath(k), jopts));
    for (const w of journal.warnings) log.warn(w);
    marks?.push(['journal', performance.now()]);
    let outcome;
    try {
      outcome = applySteps(steps, { k, log, journal, noRollback: g.noRollback, fault: faultFromEnv(env) });
    } catch (e) {
      if (e instanceof RunFailed && g.json)
        printResult(streams, steps, e.applied, { ok: false, error: e.message, rolledBack: e.rolledBack });
      throw e;
    }
    marks?.push(['apply', performance.now()]);
    summariseSkips(log, outcome.applied);
    let code = 0;
    for (const p of planned) {
      const h = p.inv.spec.handler;
      if (h?.kind === 'plan' && h.after) code = Math.max(code, h.after(ctx, p.inv, true) ?? 0);
    }
    if (g.json) printResult(streams, steps, outcome.applied, { ok: code === 0, ...ctx.jsonExtra });
    return code;
  } finally {
    journal?.close();
    lock?.release();
    void table;
  }
}

function printPlan(streams: Streams, g: Globals, steps: Step[]): void {
  if (g.json) {
    streams.out(
      JSON.stringify(
        {
          dryRun: true,
          steps: steps.map((s) => ({ command: s.command, title: s.title, changes: s.changes })),
        },
        null,
        2,
      ) + '\n',
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
        c.after !== undefined ? `: ${JSON.stringify(c.before ?? '')} → ${JSON.stringify(c.after)}` : '';
      streams.out(`       ${c.target}${val}${c.note ? `  (${c.note})` : ''}\n`);
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
  streams.out(JSON.stringify({ ...extra, planned: steps.length, steps: results }, null, 2) + '\n');
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

export { notationHelp };
