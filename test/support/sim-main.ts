/** The test entry point: the CLI with the test-only switches of test/support/sim.ts (bundled by testBundle()). */
import { runCli } from '../../src/cli/run.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { simOptions } from './sim.ts';

process.exitCode = await runCli(process.argv.slice(2), { table: COMMANDS, ...simOptions(process.env) });
