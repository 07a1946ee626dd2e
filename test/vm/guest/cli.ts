/**
 * Run the vfio-isolate CLI in-process inside the test guest, on the guest's real kernel (no VFIO_ISOLATE_ROOT),
 * capturing its output. A new node process costs ~2 s under TCG; an in-process call costs milliseconds.
 *
 *   const r = await cli(['cpuset-modify', '--cpus', 'C0-3', '/system.slice']);
 *   assert.equal(r.code, 0, r.stderr);
 */
import { runCli } from '../../../src/cli/run.ts';
import { COMMANDS } from '../../../src/cli/table.ts';
import { guestMode } from './guest-env.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(argv: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  if (!guestMode()) throw new Error('cli() acts on the real kernel: it runs only inside the test guest');
  let stdout = '';
  let stderr = '';
  const full: NodeJS.ProcessEnv = { ...process.env, VFIO_ISOLATE_LOCK_WAIT_MS: '5000', ...env };
  delete full.VFIO_ISOLATE_ROOT;
  const code = await runCli(argv, {
    table: COMMANDS,
    env: full,
    streams: { out: (s) => void (stdout += s), err: (s) => void (stderr += s), isTTY: false },
  });
  return { code, stdout, stderr };
}
