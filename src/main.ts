import { runCli } from './cli/run.ts';
import { COMMANDS } from './cli/table.ts';

// A write error other than a closed pipe may already have set exit status 1 (report/log.ts pipeSafeWriter).
process.exitCode = Math.max(
  await runCli(process.argv.slice(2), { table: COMMANDS }),
  Number(process.exitCode ?? 0),
);
