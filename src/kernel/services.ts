/** The one service the tool may stop and start: irqbalance (by fixed name). */
import { RuntimeFailure } from '../errors.ts';
import { findIrqbalance } from './irqbalance.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';
import { runSystemctl } from './systemd.ts';

export type ServiceHow = 'systemd' | 'signal';

export function irqbalanceHow(k: Kernel): ServiceHow {
  return k.fs.exists(P.systemdRunning) ? 'systemd' : 'signal';
}

/**
 * Stop or start irqbalance. Through the Kernel's systemctl where systemd runs; otherwise stopping sends SIGTERM
 * and starting runs the Kernel's irqbalance command.
 */
export function stopOrStartIrqbalance(k: Kernel, action: 'stop' | 'start', how: ServiceHow): void {
  if (how === 'systemd') {
    runSystemctl(k, [action, 'irqbalance.service']);
    return;
  }
  if (action === 'stop') {
    const pid = findIrqbalance(k);
    if (pid !== undefined) k.fs.kill(pid, 'SIGTERM');
  } else {
    const r = process
      .getBuiltinModule('node:child_process')
      .spawnSync(k.irqbalance, [], { stdio: 'ignore', timeout: 10000 });
    if (r.status !== 0) throw new RuntimeFailure('could not start irqbalance again');
  }
}
