/** The command table's types: one entry per command drives parsing, help, the man page and completions. */
import type { Kernel } from '../kernel/kernel.ts';
import type { Log, Streams } from '../report/log.ts';
import type { PlanState } from '../steps/state.ts';
import type { Step } from '../steps/step.ts';

export type Completion =
  'cgroup' | 'cpus' | 'nodes' | 'governor' | 'file' | 'shell' | 'domain' | 'pid' | 'none';

export interface OptionSpec {
  /** Key in the parsed values. */
  key: string;
  long: string;
  /** Whole-word single-dash aliases: '-v', '-ce', '-nlb'. */
  short?: string[];
  type: 'boolean' | 'string';
  help: string;
  valueName?: string;
  /** For --no-x flags: the key they set to false. */
  negates?: string;
  complete?: Completion;
  choices?: string[];
}

export interface ArgSpec {
  name: string;
  help: string;
  required: boolean;
  complete?: Completion;
  choices?: string[];
}

export interface Globals {
  verbose: boolean;
  debug: boolean;
  undoFile?: string;
  dryRun: boolean;
  json: boolean;
  force: boolean;
  noRollback: boolean;
}

export type Values = Record<string, string | boolean | undefined>;

export interface Invocation {
  spec: CommandSpec;
  /** Full name, e.g. "libvirt hook install". */
  name: string;
  values: Values;
  args: Record<string, string | undefined>;
  argv: string[];
}

export interface Ctx {
  k: Kernel;
  state: PlanState;
  log: Log;
  g: Globals;
  streams: Streams;
  env: NodeJS.ProcessEnv;
  colour: boolean;
  argv: string[];
  /** All invocations of this chain (a command may need to know its neighbours). */
  chain: Invocation[];
}

/** What a report after the applied chain returns: the exit code, and with --json its fields of the one document. */
export interface AfterReport {
  code: number;
  json?: Record<string, unknown>;
}

/** What planning a command gives the runner: its steps, and what the runner needs to journal and report them. */
export interface Plan {
  steps: Step[];
  /**
   * The journal the command's steps go to when it chooses one: isolate's default journal when no -u FILE was given;
   * null for release, which undoes the journal -u names and records nothing new. Undefined: -u FILE, if given.
   */
  journal?: string | null;
  /**
   * Run after the whole chain was applied and journalled (isolate's leak check, pin-qemu's summary); awaited in
   * chain order, under the lock. Must not throw: the changes stand.
   */
  after?: (ctx: Ctx) => AfterReport | Promise<AfterReport>;
  /**
   * Read-only work that takes time (isolate --measure's "after" probe): run once the journal is closed and the lock
   * released, so other runs (a libvirt hook of another VM) are not kept waiting; its fields join the --json
   * document. Must not throw: the changes stand.
   */
  unlocked?: (ctx: Ctx) => Promise<Record<string, unknown>>;
}

/** A command that changes the machine: plans steps (against the simulated state), applied later in order. */
export interface PlanHandler {
  kind: 'plan';
  /**
   * Read-only work before the lock is taken and before planning (isolate --measure's "before" probe, which takes
   * seconds): its result is handed to `plan`. Not run by a dry run. May throw (nothing has changed).
   */
  prepare?(ctx: Ctx, inv: Invocation): Promise<unknown>;
  /** `prepared`: what `prepare` returned (undefined without one, and in a dry run). */
  plan(ctx: Ctx, inv: Invocation, prepared?: unknown): Step[] | Plan | Promise<Step[] | Plan>;
}

/** A command that only reads or prints (status, topology, help): runs alone, returns an exit code. */
export interface ReportHandler {
  kind: 'report';
  /** false: reads nothing of the machine (help, completion scripts), so the kernel layer is not loaded for it. */
  machine?: false;
  run(ctx: Ctx, inv: Invocation): number | Promise<number>;
}

export type Handler = PlanHandler | ReportHandler;

/** One entry of the command table (src/cli/table.ts): data, plus a loader for the code that runs it. */
export interface CommandSpec {
  name: string;
  summary: string;
  description?: string;
  options: OptionSpec[];
  args: ArgSpec[];
  examples?: string[];
  /** One of the nine commands of 0.5.2. */
  compat?: boolean;
  subcommands?: CommandSpec[];
  /** plan: changes the machine, may be chained; report: reads or prints, runs alone. Absent: needs a subcommand. */
  kind?: Handler['kind'];
  /** Imports the command's module and returns its handler (of `kind`). */
  load?: () => Promise<Handler | undefined>;
  /** Needs root (writes). */
  writes?: boolean;
  /** Internal (e.g. the completion helper): left out of help, the man page and completions. */
  hidden?: boolean;
}
