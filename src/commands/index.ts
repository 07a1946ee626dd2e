/** The command table: every command, in one place. */
import type { CommandSpec } from '../cli/spec.ts';
import { completionCommands } from './completion.ts';
import { cpusetCommands } from './cpuset.ts';
import { reapplyCommand } from './drift.ts';
import { helpCommand } from './help.ts';
import { isolateCommands } from './isolate.ts';
import { libvirtCommands } from './libvirt.ts';
import { miscCommands } from './misc.ts';
import { restoreCommand } from './restore.ts';
import { statusCommands } from './status.ts';
import { topologyCommands } from './topology.ts';

export const COMMANDS: CommandSpec[] = [
  ...cpusetCommands,
  ...miscCommands,
  restoreCommand,
  ...isolateCommands,
  reapplyCommand,
  ...statusCommands,
  ...topologyCommands,
  ...libvirtCommands,
  helpCommand,
  ...completionCommands,
];
