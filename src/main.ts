import { runCli } from './cli/run.ts';
import { COMMANDS } from './cli/table.ts';

process.exitCode = await runCli(process.argv.slice(2), { table: COMMANDS });
