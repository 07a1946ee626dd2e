/**
 * QEMU and virtiofsd process handling. Always TCG (the /dev/kvm on these machines is a nested pvm that cannot boot
 * a stock kernel), single-threaded TCG (multi flaked under 6.12), 8 vCPUs as 1 socket × 4 cores × 2 threads in
 * two NUMA nodes (cpus 0-3, 4-7).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const QEMU = 'qemu-system-x86_64';
export const VIRTIOFSD_CANDIDATES = ['/usr/lib/qemu/virtiofsd', '/usr/libexec/virtiofsd'];

export function virtiofsdPath(): string | undefined {
  return VIRTIOFSD_CANDIDATES.find((p) => existsSync(p));
}

export interface Share {
  tag: string;
  /** Host directory to share. */
  dir: string;
  /**
   * virtiofsd cache mode. `always` (the guest caches names, attributes and data for as long as it likes) makes
   * every exec ~10× faster than `auto` under TCG; use `auto` where the host must see the guest's view change.
   */
  cache: 'always' | 'auto' | 'none';
  /** Share `dir` read-only through a non-recursive bind in a private mount namespace (for the host's `/`). */
  readOnlyBind?: boolean;
}

export interface RunningShare {
  tag: string;
  socket: string;
  proc: ChildProcess;
}

/** Start one virtiofsd per share; resolves when every socket exists. */
export async function startVirtiofsd(
  shares: readonly Share[],
  sockDir: string,
  logFile: string,
): Promise<RunningShare[]> {
  const bin = virtiofsdPath();
  if (!bin) throw new Error('virtiofsd not found');
  const out: RunningShare[] = [];
  const log = openSync(logFile, 'a');
  try {
    for (const s of shares) {
      const socket = join(sockDir, `${s.tag}.sock`);
      const common = [
        `--socket-path=${socket}`,
        '-o',
        `cache=${s.cache}`,
        '-o',
        'sandbox=chroot',
        '--rlimit-nofile=65536',
      ];
      let proc: ChildProcess;
      if (s.readOnlyBind) {
        const mnt = join(sockDir, `${s.tag}.mnt`);
        // The bind exists only inside the private mount namespace; the host's mounts are untouched.
        const script =
          'mkdir -p "$1" && mount --bind "$0" "$1" && mount -o remount,bind,ro "$1" && ' +
          'shift 2 && exec "$@"';
        proc = spawn(
          'unshare',
          [
            '--mount',
            '--propagation',
            'private',
            'sh',
            '-c',
            script,
            s.dir,
            mnt,
            '-',
            bin,
            ...common,
            '-o',
            `source=${mnt}`,
          ],
          { stdio: ['ignore', log, log] },
        );
      } else {
        proc = spawn(bin, [...common, '-o', `source=${s.dir}`], { stdio: ['ignore', log, log] });
      }
      out.push({ tag: s.tag, socket, proc });
    }
    const deadline = Date.now() + 10_000;
    for (const r of out) {
      while (!existsSync(r.socket)) {
        if (r.proc.exitCode !== null)
          throw new Error(`virtiofsd for "${r.tag}" exited (${r.proc.exitCode}); see ${logFile}`);
        if (Date.now() > deadline) throw new Error(`virtiofsd for "${r.tag}" did not create ${r.socket}`);
        await sleep(20);
      }
    }
    return out;
  } catch (e) {
    stopAll(out.map((r) => r.proc));
    throw e;
  } finally {
    closeSync(log);
  }
}

export function stopAll(procs: readonly ChildProcess[]): void {
  for (const p of procs) {
    if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
      try {
        process.kill(p.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

export interface QemuSpec {
  kernel: string;
  initrd: string;
  append: string;
  memMiB: number;
  shares: readonly RunningShare[];
  consoleFile: string;
}

export function qemuArgs(spec: QemuSpec): string[] {
  const half = Math.max(128, Math.floor(spec.memMiB / 4) * 2); // per NUMA node, a multiple of 2 MiB
  // prettier-ignore
  const args = [
    '-accel', `tcg,thread=${process.env.VFIO_VM_TCG_THREAD ?? 'single'}`,
    // Intel flavour: the 6.1 kernel finds the SMT siblings only there (AMD needs topoext, which TCG lacks).
    '-cpu', process.env.VFIO_VM_CPU ?? 'max,vendor=GenuineIntel',
    '-m', `${half * 2}M`,
    '-smp', '8,sockets=1,cores=4,threads=2',
    '-object', `memory-backend-memfd,id=m0,size=${half}M,share=on`,
    '-object', `memory-backend-memfd,id=m1,size=${half}M,share=on`,
    '-numa', 'node,nodeid=0,cpus=0-3,memdev=m0',
    '-numa', 'node,nodeid=1,cpus=4-7,memdev=m1',
    '-kernel', spec.kernel,
    '-initrd', spec.initrd,
    '-append', spec.append,
    '-nographic', '-no-reboot',
    '-serial', `file:${spec.consoleFile}`,
    '-monitor', 'none',
    '-nic', 'none',
  ];
  spec.shares.forEach((s, i) => {
    args.push('-chardev', `socket,id=fs${i},path=${s.socket}`);
    args.push('-device', `vhost-user-fs-pci,chardev=fs${i},tag=${s.tag}`);
  });
  return args;
}

export interface QemuResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stderr: string;
}

/** Run QEMU until it exits, `timeoutSec` passes or `stop` aborts (then SIGKILL). */
export function runQemu(
  args: readonly string[],
  timeoutSec: number,
  stop?: AbortSignal,
): Promise<QemuResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    stop?.addEventListener('abort', () => proc.kill('SIGKILL'), { once: true });
    let stderr = '';
    let timedOut = false;
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, timeoutSec * 1000);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ exitCode: code, signal, timedOut, stderr });
    });
  });
}
