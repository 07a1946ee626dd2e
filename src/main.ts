import { runCli } from './cli/run.ts';
import { COMMANDS } from './cli/table.ts';

// Node 20.16 and 22.3 brought process.getBuiltinModule, which the tool takes node:fs with (src/kernel/fs.ts); a hook
// that runs an older node gets this line rather than an error from deep inside a command.
if (typeof process.getBuiltinModule !== 'function') {
  process.stderr.write(`vfio-isolate: needs Node.js 20.19 or later (this is ${process.version})\n`);
  process.exit(1);
}
// A write error other than a closed pipe may already have set exit status 1 (report/log.ts pipeSafeWriter).
process.exitCode = Math.max(
  await runCli(process.argv.slice(2), { table: COMMANDS }),
  Number(process.exitCode ?? 0),
);
