/**
 * The host side of `npm run demo -- --systemd` (guest half: guest-systemd.ts): what the systemd mode needs besides
 * QEMU, and the CLI bundle the libvirt hook runs inside the guest (dist/vfio-isolate.mjs, built here so that the
 * hook runs the code of this checkout).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/vm/cache.ts';
import { SYSTEMD_MODE_INSTALL, systemdModeMissing } from '../test/vm/harness.ts';

export const SYSTEMD_GUEST_ENTRY = 'guest-systemd.ts';

export const SYSTEMD_LABEL = "this machine's systemd as PID 1, cgroup v2, libvirt";

/** Why the systemd demo cannot run here, with the command that fixes it; undefined when it can. */
export function systemdDemoMissing(): { why: string; install: string } | undefined {
  const why = systemdModeMissing();
  return why ? { why, install: SYSTEMD_MODE_INSTALL } : undefined;
}

/** Build dist/ (the hook installed in the guest runs node dist/vfio-isolate.mjs). Throws with the build's output. */
export function buildCliForHook(): void {
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
}
