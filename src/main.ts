import { runCli } from './cli/run.ts';
import { COMMANDS } from './commands/index.ts';

process.exitCode = await runCli(process.argv.slice(2), { table: COMMANDS });
