/** One invocation: parse, plan the chain against a simulated state, then apply (or print the plan). */
import { VfioError } from '../errors.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { pipeSafeWriter, type Streams } from '../report/log.ts';
import type { StepObserver } from '../steps/executor.ts';
import { commandHelp, mainHelp } from './help.ts';
import { parseArgv } from './parse.ts';
import type { CommandSpec } from './spec.ts';
import { VERSION } from '../version.ts';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  streams?: Streams;
  table: readonly CommandSpec[];
  /** The kernel to act on: the real machine unless a test passes one over a fake tree. */
  kernel?: () => Kernel;
  /** Called around each applied step (tests use it to fail or kill a run at a chosen step). */
  observe?: StepObserver;
}

export function processStreams(): Streams {
  const err = pipeSafeWriter(process.stderr);
  return {
    out: pipeSafeWriter(process.stdout, err),
    err,
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
export type Marks = [string, number][];
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
    // A report command on its own (status, completion, help cpus, ...) loads its module and the kernel layer only;
    // the code that plans and applies commands (journal, lock, executor) loads only when there is something to run.
    const only = parsed.commands.length === 1 ? parsed.commands[0]! : undefined;
    if (only?.spec.kind === 'report') {
      const { runReport } = await import('./report-run.ts');
      return await runReport(only, g, [...argv], env, streams, opts);
    }
    const { execute } = await import('./execute.ts');
    return await execute(parsed.commands, g, [...argv], env, streams, opts, marks);
  } catch (e) {
    // An error that is not the tool's own (an errno from a handler) is explained by the kernel layer, loaded then.
    const err = e instanceof VfioError ? e : (await import('../kernel/errors.ts')).explainErrno(e);
    return reportError(err, e, streams, debug);
  } finally {
    if (marks) streams.err(timingLine([...marks, ['finish', performance.now()]]));
  }
}

/** The one or two lines of an error (`vfio-isolate: message`, `hint: ...`), with -d the stack of the original. */
export function reportError(err: VfioError, e: unknown, streams: Streams, debug: boolean): number {
  streams.err(`vfio-isolate: ${err.message}\n`);
  if (err.hint) streams.err(`hint: ${err.hint}\n`);
  if (debug && e instanceof Error && e.stack) streams.err(`${e.stack}\n`);
  return err.exitCode;
}
