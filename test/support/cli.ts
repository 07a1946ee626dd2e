/** Run the CLI in-process against a fake tree and capture what it prints. */
import { runCli } from '../../src/cli/run.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import type { Fs } from '../../src/kernel/fs.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { simOptions } from './sim.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `env` may carry the test-only variables of test/support/sim.ts (VFIO_ISOLATE_FAULT, VFIO_ISOLATE_SYSTEMCTL). */
export async function cli(
  root: string,
  argv: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const full = { VFIO_ISOLATE_ROOT: root, VFIO_ISOLATE_LOCK_WAIT_MS: '2000', ...env };
  const code = await runCli(argv, {
    table: COMMANDS,
    env: full,
    ...simOptions(full),
    streams: { out: (s) => void (stdout += s), err: (s) => void (stderr += s), isTTY: false },
  });
  return { code, stdout, stderr };
}

/**
 * The same over a given Fs (a SimFs subclass that watches or alters the tool's file operations), as root, with no
 * systemd and no irqbalance executable.
 */
export async function cliOn(fsx: Fs, argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    table: COMMANDS,
    env: { VFIO_ISOLATE_LOCK_WAIT_MS: '2000' },
    kernel: () => new Kernel(fsx, { systemctl: '', irqbalance: '/nonexistent/irqbalance', euid: 0 }),
    streams: { out: (s) => void (stdout += s), err: (s) => void (stderr += s), isTTY: false },
  });
  return { code, stdout, stderr };
}
