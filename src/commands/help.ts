import { commandHelp, mainHelp, notationHelp } from '../cli/help.ts';
import { suggest } from '../cli/parse.ts';
import type { CommandSpec } from '../cli/spec.ts';
import { UsageError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { COMMANDS } from './index.ts';

export const helpCommand: CommandSpec = {
  name: 'help',
  summary: 'show help for a command, or for the CPU notation (help cpus)',
  options: [],
  args: [{ name: 'TOPIC', required: false, help: 'a command name, or "cpus"' }],
  examples: ['vfio-isolate help cpuset-modify', 'vfio-isolate help cpus'],
  handler: {
    kind: 'report',
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
