/**
 * `npm run try -- MACHINE|DIR ARGS...`: the CLI on a fake machine, for trying commands without root and without
 * touching this machine. MACHINE is a fixture name (a fresh tree is built in a temp dir and its path printed on
 * stderr); DIR is a tree built earlier (`node --import tsx test/fixtures/build.ts NAME DIR`), kept between runs.
 * This is test support: it is not part of the shipped product.
 */
import * as fs from 'node:fs';
import { runCli } from '../../src/cli/run.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { buildFixture, listMachines, type MachineName } from '../fixtures/build.ts';
import { simKernel } from './sim.ts';

const [where, ...args] = process.argv.slice(2);
const machines = listMachines() as string[];
if (!where || (!machines.includes(where) && !fs.existsSync(`${where}/.sim-machine`))) {
  process.stderr.write(`usage: npm run try -- MACHINE|DIR ARGS...\nmachines: ${machines.join(' ')}\n`);
  process.exit(2);
}
const root = machines.includes(where) ? buildFixture(where as MachineName) : where;
if (root !== where) process.stderr.write(`(fake ${where} at ${root})\n`);
process.exitCode = await runCli(args, { table: COMMANDS, kernel: () => simKernel(root, process.env) });
