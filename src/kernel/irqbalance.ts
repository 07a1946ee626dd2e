/**
 * irqbalance: finding the real daemon, and banning CPUs from it for this boot only.
 *
 * Found: a process whose comm is "irqbalance", whose executable (/proc/PID/exe) is /usr/sbin/irqbalance or
 * /sbin/irqbalance, and which runs as root (real uid 0 in /proc/PID/status). A process merely named irqbalance
 * is not it (anyone can name a process so; nobody but root can make root run the packaged binary).
 *
 * Ban: a systemd drop-in under /run (runtime only: gone at reboot, like the journals under /run):
 * /run/systemd/system/irqbalance.service.d/50-vfio-isolate.conf adds EnvironmentFile=/run/vfio-isolate/irqbalance.env,
 * which holds IRQBALANCE_BANNED_CPULIST=LIST. Listed after the unit's own EnvironmentFile (/etc/default/irqbalance),
 * its setting wins. Then `systemctl daemon-reload` and `try-restart irqbalance.service`. Only where systemd is PID 1.
 * Nothing under /etc is touched; `release` removes the drop-in (or puts back an earlier run's list), `reset` removes
 * it.
 */
import * as path from 'node:path';
import { RuntimeFailure } from '../errors.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';
import { runSystemctl } from './systemd.ts';

const fs = process.getBuiltinModule('node:fs');

const EXES = new Set(['/usr/sbin/irqbalance', '/sbin/irqbalance']);

/** The pid of the real irqbalance daemon, if it runs. */
export function findIrqbalance(k: Kernel): number | undefined {
  // kthreadd's children (kernel threads, and the helpers the kernel starts itself) are never the daemon
  const kernel = k.procs.kernelThreads();
  for (const pid of k.procs.pids()) {
    if (kernel?.has(pid)) continue;
    // comm alone (a trivial file), not stat (which the kernel sums over every thread of the process)
    let comm: string;
    try {
      comm = k.fs.read(`/proc/${pid}/comm`);
    } catch {
      continue;
    }
    if (comm.trimEnd() !== 'irqbalance') continue;
    let exe: string;
    try {
      exe = k.fs.realpath(`/proc/${pid}/exe`);
    } catch {
      continue;
    }
    if (!EXES.has(exe)) continue;
    let uid: string | undefined;
    try {
      uid = /^Uid:\s+(\d+)/m.exec(k.fs.read(`/proc/${pid}/status`))?.[1];
    } catch {
      continue;
    }
    if (uid === '0') return pid;
  }
  return undefined;
}

const LIST = /^[0-9,-]+$/;

/** The list banned by our drop-in now, or null when there is none. */
export function readBan(k: Kernel): string | null {
  if (!fs.existsSync(k.hostPath(P.irqbalanceDropIn))) return null;
  let text: string;
  try {
    const fd = fs.openSync(k.hostPath(P.irqbalanceEnv), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  const list = /^IRQBALANCE_BANNED_CPULIST=(.*)$/m.exec(text)?.[1]?.trim();
  return list !== undefined && LIST.test(list) ? list : null;
}

/** Write a file of ours under /run: a new file renamed into place, never through a symlink. */
function putFile(host: string, text: string): void {
  fs.mkdirSync(path.dirname(host), { recursive: true, mode: 0o755 });
  const tmp = `${host}.${process.pid}.tmp`;
  const fd = fs.openSync(
    tmp,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
    0o644,
  );
  try {
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, host);
}

/** Ban `list` (a CPU list) from irqbalance for this boot, or remove our ban (null); then restart it. */
export function setBan(k: Kernel, list: string | null): void {
  if (list !== null && !LIST.test(list)) throw new RuntimeFailure(`not a CPU list: ${JSON.stringify(list)}`);
  const dropIn = k.hostPath(P.irqbalanceDropIn);
  const env = k.hostPath(P.irqbalanceEnv);
  if (list === null) {
    fs.rmSync(dropIn, { force: true });
    fs.rmSync(env, { force: true });
  } else {
    putFile(
      env,
      `# written by vfio-isolate --irqbalance-ban (runtime only; release or reset removes it)\nIRQBALANCE_BANNED_CPULIST=${list}\n`,
    );
    putFile(
      dropIn,
      `# written by vfio-isolate --irqbalance-ban (runtime only; release or reset removes it)\n[Service]\nEnvironmentFile=${P.irqbalanceEnv}\n`,
    );
  }
  runSystemctl(k, ['daemon-reload']);
  runSystemctl(k, ['try-restart', 'irqbalance.service']);
}
