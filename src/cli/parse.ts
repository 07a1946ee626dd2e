/**
 * The argv splitter: global options, then any number of chained commands, each with its own options and
 * arguments (options before arguments as in 0.5.2, and after them when unambiguous). Options match whole
 * words, so -n never collides with -nce. Each command's slice is then checked with node:util parseArgs.
 */
import { UsageError } from '../errors.ts';
import type { CommandSpec, Globals, Invocation, OptionSpec, Values } from './spec.ts';
import { usageLine } from './usage.ts';

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { key: 'verbose', long: 'verbose', short: ['-v'], type: 'boolean', help: 'say what each step does' },
  {
    key: 'debug',
    long: 'debug',
    short: ['-d'],
    type: 'boolean',
    help: 'also show paths, values and stack traces',
  },
  {
    key: 'undoFile',
    long: 'undo-file',
    short: ['-u'],
    type: 'string',
    valueName: 'FILE',
    help: 'journal the changes to FILE so that `restore FILE` undoes them',
    complete: 'file',
  },
  { key: 'dryRun', long: 'dry-run', short: ['-n'], type: 'boolean', help: 'print the plan, change nothing' },
  { key: 'json', long: 'json', type: 'boolean', help: 'machine-readable output on stdout' },
  { key: 'force', long: 'force', type: 'boolean', help: 'do what a safety check would refuse' },
  {
    key: 'noRollback',
    long: 'no-rollback',
    type: 'boolean',
    help: 'on failure keep partial changes (debugging)',
  },
  { key: 'help', long: 'help', short: ['-h'], type: 'boolean', help: 'show help and exit' },
  { key: 'version', long: 'version', short: ['-V'], type: 'boolean', help: 'print the version and exit' },
];

export interface Parsed {
  globals: Globals;
  help?: { command?: string };
  version?: boolean;
  commands: Invocation[];
}

function matchOption(
  opts: readonly OptionSpec[],
  tok: string,
): { opt: OptionSpec; inline?: string } | undefined {
  if (tok.startsWith('--')) {
    const eq = tok.indexOf('=');
    const name = eq >= 0 ? tok.slice(2, eq) : tok.slice(2);
    const opt = opts.find((o) => o.long === name);
    if (!opt) return undefined;
    return eq >= 0 ? { opt, inline: tok.slice(eq + 1) } : { opt };
  }
  const opt = opts.find((o) => o.short?.includes(tok));
  return opt ? { opt } : undefined;
}

/** Levenshtein distance, for "did you mean". */
export function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [
    i,
    ...Array<number>(b.length).fill(0),
  ]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i]![j] = Math.min(
        d[i - 1]![j]! + 1,
        d[i]![j - 1]! + 1,
        d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
  return d[a.length]![b.length]!;
}

export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dd = distance(word, c);
    if (dd < bestD) {
      bestD = dd;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** The hint of a usage error about a command: its usage line. */
function usageOf(spec: CommandSpec, full: string): string {
  return `usage: ${usageLine(spec, full)}`;
}

/** `-ce` together with `-nce`: name both as the user may have typed them. */
function contradiction(full: string, a: OptionSpec | undefined, b: OptionSpec | undefined): UsageError {
  const label = (o: OptionSpec | undefined): string =>
    o ? [...(o.short ?? []), `--${o.long}`].join('/') : 'an earlier option';
  return new UsageError(`${full}: ${label(b)} contradicts ${label(a)}`, 'give only one of them');
}

/**
 * `help WORD...` naming a command or a subcommand path (`help libvirt hook install`): its full name, answered from
 * the table like `libvirt hook install --help`. Undefined when the first word is not a command (`help`, `help cpus`
 * and unknown topics are the help command's own); a path that goes wrong after a command is a usage error.
 */
function helpTopic(table: readonly CommandSpec[], words: readonly string[]): string | undefined {
  let spec = table.find((c) => c.name === words[0]);
  if (!spec) return undefined;
  let full = spec.name;
  for (const w of words.slice(1)) {
    if (!spec.subcommands) {
      throw new UsageError(
        `no help for "${words.join(' ')}": ${full} has no subcommands`,
        `try: vfio-isolate help ${full}`,
      );
    }
    const next: CommandSpec | undefined = spec.subcommands.find((c) => c.name === w);
    if (!next) {
      const names = spec.subcommands.map((c) => c.name);
      const near = suggest(w, names);
      throw new UsageError(
        `no help for "${words.join(' ')}": unknown subcommand "${w}" of ${full}`,
        near ? `did you mean vfio-isolate help ${full} ${near}?` : `one of: ${names.join(', ')}`,
      );
    }
    spec = next;
    full += ` ${spec.name}`;
  }
  return full;
}

export function parseArgv(argv: readonly string[], table: readonly CommandSpec[]): Parsed {
  const globals: Globals = {
    verbose: false,
    debug: false,
    dryRun: false,
    json: false,
    force: false,
    noRollback: false,
  };
  const out: Parsed = { globals, commands: [] };
  const names = table.map((c) => c.name);
  let i = 0;
  // 1. global options
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const tok = argv[i]!;
    const m = matchOption(GLOBAL_OPTIONS, tok);
    if (!m) {
      const owner = table.find((c) => matchOption(c.options, tok));
      if (owner)
        throw new UsageError(
          `option ${tok} belongs to a command`,
          `write it after the command: vfio-isolate ${owner.name} ${tok} ...`,
        );
      const near = suggest(
        tok.replace(/^-+/, ''),
        GLOBAL_OPTIONS.map((o) => o.long),
      );
      throw new UsageError(
        `unknown option ${tok}`,
        near ? `did you mean --${near}?` : 'see vfio-isolate --help',
      );
    }
    i++;
    if (m.opt.type === 'string') {
      const value = m.inline ?? argv[i++];
      if (value === undefined || value === '')
        throw new UsageError(`option ${tok} needs a value (${m.opt.valueName ?? 'VALUE'})`);
      if (m.opt.key === 'undoFile') globals.undoFile = value;
    } else {
      if (m.inline !== undefined) throw new UsageError(`option --${m.opt.long} takes no value`);
      if (m.opt.key === 'help') out.help = {};
      else if (m.opt.key === 'version') out.version = true;
      else (globals as unknown as Record<string, boolean>)[m.opt.key] = true;
    }
  }
  if (out.help || out.version) return out;
  // 2. chained commands
  if (argv[i] === 'help') {
    const command = helpTopic(table, argv.slice(i + 1));
    if (command) {
      out.help = { command };
      return out;
    }
  }
  while (i < argv.length) {
    const tok = argv[i]!;
    let spec = table.find((c) => c.name === tok);
    if (!spec) {
      const near = suggest(tok, names);
      if (tok.startsWith('-')) {
        throw new UsageError(
          `option ${tok} is in the wrong place`,
          'global options come before the first command; command options come right after their command',
        );
      }
      const prev = out.commands[out.commands.length - 1];
      if (prev && !near) {
        // a word after a command that has all its arguments: most likely one argument too many
        const takes = prev.spec.args.length
          ? `takes only ${prev.spec.args.map((a) => a.name).join(' and ')}`
          : 'takes no arguments';
        throw new UsageError(
          `${prev.name} ${takes}, and "${tok}" is not a command`,
          usageOf(prev.spec, prev.name),
        );
      }
      throw new UsageError(
        `unknown command "${tok}"`,
        near ? `did you mean ${near}?` : 'see vfio-isolate --help',
      );
    }
    i++;
    let full = spec.name;
    while (spec.subcommands) {
      const sub = argv[i];
      if (sub === '--help' || sub === '-h') break;
      const next: CommandSpec | undefined = spec.subcommands.find((c) => c.name === sub);
      if (!next) {
        const list = spec.subcommands.map((c) => c.name).join(', ');
        const near = sub
          ? suggest(
              sub,
              spec.subcommands.map((c) => c.name),
            )
          : undefined;
        throw new UsageError(
          sub === undefined
            ? `${full} needs a subcommand (${list})`
            : `unknown subcommand "${sub}" of ${full}`,
          near ? `did you mean ${full} ${near}?` : usageOf(spec, full),
        );
      }
      spec = next;
      full += ` ${spec.name}`;
      i++;
    }
    const start = i;
    const slice: string[] = [];
    const positionals: string[] = [];
    const maxArgs = spec.args.length;
    let sawHelp = false;
    const isCommand = (t: string): boolean => names.includes(t);
    while (i < argv.length) {
      const t = argv[i]!;
      if (t === '--help' || t === '-h') {
        sawHelp = true;
        i++;
        continue;
      }
      if (t.startsWith('-') && t.length > 1) {
        const m = matchOption(spec.options, t);
        if (!m) {
          const other = table.find((c) => c !== spec && matchOption(c.options, t));
          const isGlobal = matchOption(GLOBAL_OPTIONS, t);
          throw new UsageError(
            `${full}: unknown option ${t}`,
            isGlobal
              ? `${t} is a global option: put it before the first command`
              : other
                ? `${t} is an option of ${other.name}`
                : spec.options.length
                  ? `options of ${full}: ${spec.options.map((o) => `--${o.long}`).join(', ')}`
                  : `${full} takes no options`,
          );
        }
        slice.push(`--${m.opt.long}${m.inline !== undefined ? `=${m.inline}` : ''}`);
        i++;
        if (m.opt.type === 'string' && m.inline === undefined) {
          const value = argv[i];
          if (value === undefined || (value.startsWith('-') && value.length > 1) || isCommand(value)) {
            throw new UsageError(
              `${full}: option ${t} needs a value (${m.opt.valueName ?? 'VALUE'})`,
              usageOf(spec, full),
            );
          }
          if (value === '')
            throw new UsageError(
              `${full}: option ${t} needs a value, got an empty string`,
              usageOf(spec, full),
            );
          slice.push(value);
          i++;
        }
        continue;
      }
      if (positionals.length < maxArgs) {
        const argSpec = spec.args[positionals.length]!;
        // An optional argument is not taken when the word names the next command. A report command runs alone,
        // so its optional argument may be a command name (help cpuset-modify).
        // A CPU/governor argument can never be a command name: `cpu-governor performance cpuset-modify ...`
        // lacks its CPUs (0.5.2's own README example), and says so.
        const neverCommand =
          argSpec.complete === 'cpus' || argSpec.complete === 'nodes' || argSpec.complete === 'governor';
        if (((!argSpec.required && spec.kind !== 'report') || neverCommand) && isCommand(t)) break;
        positionals.push(t);
        slice.push(t);
        i++;
        continue;
      }
      break;
    }
    if (sawHelp) {
      out.help = { command: full };
      return out;
    }
    const missing = spec.args.slice(positionals.length).filter((a) => a.required);
    if (missing.length > 0) {
      const got = argv[i];
      throw new UsageError(
        `${full}: missing ${missing.map((a) => a.name).join(' and ')}` +
          (got && isCommand(got) ? ` (found command "${got}" instead)` : ''),
        usageOf(spec, full),
      );
    }
    // node:util parseArgs checks the slice (types, duplicates) and gives us the values.
    const parseOptions: Record<string, { type: 'boolean' | 'string' }> = {};
    for (const o of spec.options) parseOptions[o.long] = { type: o.type };
    // node's own util object: an ESM import of node:util reads every export at start-up (5–19 ms natively)
    const { parseArgs } = process.getBuiltinModule('node:util');
    let parsed;
    try {
      parsed = parseArgs({ args: slice, options: parseOptions, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError(`${full}: ${(e as Error).message.split('\n')[0]}`, usageOf(spec, full));
    }
    const values: Values = {};
    for (const o of spec.options) {
      const v = parsed.values[o.long];
      if (v === undefined) continue;
      if (o.negates) {
        if (values[o.negates] !== undefined)
          throw contradiction(
            full,
            spec.options.find((x) => x.key === o.negates),
            o,
          );
        values[o.negates] = false;
      } else {
        if (o.type === 'boolean' && values[o.key] === false)
          throw contradiction(
            full,
            o,
            spec.options.find((x) => x.negates === o.key),
          );
        values[o.key] = v as string | boolean;
      }
    }
    for (const a of spec.args) {
      const idx = spec.args.indexOf(a);
      const v = positionals[idx];
      if (v !== undefined && a.choices && !a.choices.includes(v.toLowerCase())) {
        throw new UsageError(
          `${full}: ${a.name} must be one of ${a.choices.join(', ')}, not "${v}"`,
          usageOf(spec, full),
        );
      }
    }
    const args: Record<string, string | undefined> = {};
    spec.args.forEach((a, idx) => (args[a.name] = positionals[idx]));
    out.commands.push({
      spec,
      name: full,
      values,
      args,
      argv: argv.slice(start - full.split(' ').length, i),
    });
  }
  return out;
}
