/** The one service the tool may stop and start: irqbalance (by fixed name). */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { RuntimeFailure } from '../errors.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';

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
    const r = spawnSync(k.systemctl, [action, 'irqbalance.service'], { stdio: 'ignore', timeout: 10000 });
    if (r.status !== 0) throw new RuntimeFailure(`systemctl ${action} irqbalance.service failed`);
    return;
  }
  if (action === 'stop') {
    const pid = k.findProcess('irqbalance');
    if (pid !== undefined) k.fs.kill(pid, 'SIGTERM');
  } else {
    const r = spawnSync(k.irqbalance, [], { stdio: 'ignore', timeout: 10000 });
    if (r.status !== 0) throw new RuntimeFailure('could not start irqbalance again');
  }
}

/** irqbalance's environment file: Debian's /etc/default, else Red Hat's /etc/sysconfig (kept when it exists). */
export function irqbalanceConfigPath(k: Kernel): '/etc/default/irqbalance' | '/etc/sysconfig/irqbalance' {
  return k.fs.exists(P.sysconfigIrqbalance) && !k.fs.exists(P.defaultIrqbalance)
    ? P.sysconfigIrqbalance
    : P.defaultIrqbalance;
}

/** The file's text with IRQBALANCE_BANNED_CPULIST set to `list` (replacing an existing, uncommented setting). */
export function withBannedCpus(text: string | null, list: string): string {
  const line = `IRQBALANCE_BANNED_CPULIST=${list}`;
  const body = text ?? '';
  if (/^IRQBALANCE_BANNED_CPULIST=.*$/m.test(body))
    return body.replace(/^IRQBALANCE_BANNED_CPULIST=.*$/m, line);
  return `${body}${body === '' || body.endsWith('\n') ? '' : '\n'}# added by vfio-isolate isolate --irqbalance-ban (undone by release)\n${line}\n`;
}

/** Read / write the config file as a regular file under the root (it is not a kernel file: no single-write rule). */
export function readConfig(k: Kernel, path: string): string | null {
  try {
    return readFileSync(k.hostPath(path), 'utf8');
  } catch {
    return null;
  }
}
export function writeConfig(k: Kernel, path: string, text: string | null): void {
  const host = k.hostPath(path);
  if (text === null) {
    rmSync(host, { force: true });
    return;
  }
  if (!existsSync(dirname(host)))
    throw new RuntimeFailure(`${dirname(path)} does not exist: is irqbalance installed?`);
  const tmp = `${host}.vfio-isolate.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, host);
}

/** Restart irqbalance so it reads its config again (only when systemd manages it). */
export function restartIrqbalance(k: Kernel): void {
  const r = spawnSync(k.systemctl, ['try-restart', 'irqbalance.service'], {
    stdio: 'ignore',
    timeout: 10000,
  });
  if (r.status !== 0) throw new RuntimeFailure('systemctl try-restart irqbalance.service failed');
}
