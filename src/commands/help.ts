import { commandHelp, mainHelp } from '../cli/help.ts';
import { NOTATION_HELP } from '../cpus/notation.ts';
import { suggest } from '../cli/parse.ts';
import type { Handler } from '../cli/spec.ts';
import { UsageError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { COMMANDS } from '../cli/table.ts';

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  help: {
    kind: 'report',
    machine: false,
    run(ctx, inv) {
      const topic = inv.args.TOPIC;
      if (!topic) {
        ctx.streams.out(mainHelp(COMMANDS, VERSION));
        return 0;
      }
      if (topic === 'cpus' || topic === 'notation') {
        ctx.streams.out(notationHelp());
        return 0;
      }
      const spec = COMMANDS.find((c) => c.name === topic);
      if (!spec) {
        const near = suggest(
          topic,
          COMMANDS.map((c) => c.name),
        );
        throw new UsageError(
          `no help for "${topic}": unknown command`,
          near ? `did you mean ${near}?` : 'see vfio-isolate --help',
        );
      }
      ctx.streams.out(commandHelp(spec, spec.name));
      return 0;
    },
  },
};

/** `help cpus`: the CPU notation (kept out of src/cli/help.ts, which start-up loads). */
export function notationHelp(): string {
  return NOTATION_HELP + '\n';
}
