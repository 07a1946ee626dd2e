/** Run the CLI in-process against a fake tree and capture what it prints. */
import { runCli } from '../../src/cli/run.ts';
import { COMMANDS } from '../../src/commands/index.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(
  root: string,
  argv: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    table: COMMANDS,
    env: { VFIO_ISOLATE_ROOT: root, VFIO_ISOLATE_LOCK_WAIT_MS: '2000', ...env },
    streams: { out: (s) => void (stdout += s), err: (s) => void (stderr += s), isTTY: false },
  });
  return { code, stdout, stderr };
}
