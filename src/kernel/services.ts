/** The one service the tool may stop and start: irqbalance (by fixed name). */
import { spawnSync } from 'node:child_process';
import { RuntimeFailure } from '../errors.ts';
import { findIrqbalance } from './irqbalance.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';

export type ServiceHow = 'systemd' | 'signal';

export function irqbalanceHow(k: Kernel): ServiceHow {
  return k.fs.exists(P.systemdRunning) ? 'systemd' : 'signal';
}

/**
 * Stop or start irqbalance. Through systemctl where systemd runs; otherwise stopping sends SIGTERM and starting
 * runs `irqbalance`. On a fake tree (VFIO_ISOLATE_ROOT) the command named by VFIO_ISOLATE_SYSTEMCTL is used
 * instead (tests use a fake that logs its arguments); without it nothing real is ever started or stopped.
 */
export function stopOrStartIrqbalance(k: Kernel, action: 'stop' | 'start', how: ServiceHow): void {
  const systemctl = k.simulated ? k.env.VFIO_ISOLATE_SYSTEMCTL : 'systemctl';
  if (how === 'systemd') {
    if (!systemctl)
      throw new RuntimeFailure(
        `cannot ${action} irqbalance on a simulated machine without VFIO_ISOLATE_SYSTEMCTL`,
      );
    const r = spawnSync(systemctl, [action, 'irqbalance.service'], { stdio: 'ignore', timeout: 10000 });
    if (r.status !== 0) throw new RuntimeFailure(`systemctl ${action} irqbalance.service failed`);
    return;
  }
  if (k.simulated)
    throw new RuntimeFailure(`cannot ${action} irqbalance on a simulated machine without systemd`);
  if (action === 'stop') {
    const pid = findIrqbalance(k);
    if (pid !== undefined) process.kill(pid, 'SIGTERM');
  } else {
    const r = spawnSync('irqbalance', [], { stdio: 'ignore', timeout: 10000 });
    if (r.status !== 0) throw new RuntimeFailure('could not start irqbalance again');
  }
}
