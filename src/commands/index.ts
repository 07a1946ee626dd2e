/** The command table: every command, in one place. */
import type { CommandSpec } from '../cli/spec.ts';
import { cpusetCommands } from './cpuset.ts';
import { helpCommand } from './help.ts';
import { miscCommands } from './misc.ts';
import { restoreCommand } from './restore.ts';

export const COMMANDS: CommandSpec[] = [...cpusetCommands, ...miscCommands, restoreCommand, helpCommand];
