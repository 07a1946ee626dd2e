/**
 * Real-kernel test harness: boots a throw-away QEMU guest (TCG) with a Debian cloud kernel, the host's `/` as a
 * read-only root under a tmpfs overlay and the repository shared read-write at its own path, and runs a bash
 * script in it as root. The host's own cgroups, IRQs and sysctls are never touched.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { REPO_ROOT, cacheDir, cacheSubdir } from './cache.ts';
import { busyboxPath, ensureInitramfs } from './initramfs.ts';
import { ensureKernels, type KernelChoice } from './kernels.ts';
import { QEMU, qemuArgs, runQemu, startVirtiofsd, stopAll, virtiofsdPath } from './qemu.ts';
import type { VmMode } from './modes.ts';

export type { VmMode } from './modes.ts';
export { ALL_MODES, parseModes } from './modes.ts';
export { ensureKernels, type Kernel, type KernelChoice } from './kernels.ts';

export const INSTALL_COMMAND =
  'apt-get install -y --no-install-recommends qemu-system-x86 busybox-static zstd xz-utils';

/** What mode `systemd` needs besides INSTALL_COMMAND: systemd itself (PID 1 of the guest) and libvirt. */
export const SYSTEMD_MODE_INSTALL =
  'apt-get install -y --no-install-recommends libvirt-daemon-system libvirt-clients';

/** Why mode `systemd` cannot run here (systemd or libvirt missing on the host whose / the guest boots), if so. */
export function systemdModeMissing(): string | undefined {
  const missing = [
    ['/lib/systemd/systemd', 'systemd'],
    ['/usr/sbin/libvirtd', 'libvirtd (libvirt-daemon-system)'],
    ['/usr/bin/virsh', 'virsh (libvirt-clients)'],
  ]
    .filter(([p]) => !existsSync(p!))
    .map(([, what]) => what);
  return missing.length ? `missing ${missing.join(', ')}` : undefined;
}

/** Seconds a guest may take to power off after writing its exit code before the host stops QEMU. */
export const POWEROFF_GRACE_SEC = 20;

/** Where guest-setup.sh describes what it created (inside the guest). */
export const GUEST_SETUP_JSON = '/run/vfio-vm/setup.json';

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => {
    try {
      accessSync(join(d, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether guests can be booted here; `install` is the apt command that provides what is missing. */
export function vmAvailable(): { ok: boolean; why?: string; install?: string } {
  const missing: string[] = [];
  if (!onPath(QEMU)) missing.push(`${QEMU} (qemu-system-x86)`);
  if (!virtiofsdPath()) missing.push('virtiofsd (qemu-system-common)');
  if (!busyboxPath()) missing.push('a static busybox (busybox-static)');
  if (!onPath('xz')) missing.push('xz (xz-utils)');
  if (!onPath('apt-get') || !onPath('dpkg-deb')) missing.push('apt-get and dpkg-deb (a Debian host)');
  if (missing.length > 0)
    return { ok: false, why: `missing ${missing.join(', ')}`, install: INSTALL_COMMAND };
  if (process.getuid?.() !== 0) {
    return {
      ok: false,
      why: 'virtiofsd and its private mount namespace need root',
      install: INSTALL_COMMAND,
    };
  }
  if (!onPath('unshare')) return { ok: false, why: 'missing unshare (util-linux)', install: INSTALL_COMMAND };
  return { ok: true };
}

export interface GuestRunOptions {
  mode: VmMode;
  /** Bash script run in the guest as root, cwd = repository. */
  command: string;
  /** Kill the guest after this long (default 300 s). */
  timeoutSec?: number;
  /** Extra environment for the command (VFIO_VM_MODE and PATH are always set). */
  env?: Record<string, string>;
  /** Guest RAM, split over the two NUMA nodes (default 1024). */
  memMiB?: number;
  /** Keep the job folder even on success (also env VFIO_VM_KEEP=1). */
  keep?: boolean;
  /** Called with the command's output while it runs (polled about once a second). */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
}

export interface GuestResult {
  /** Exit code of the command; 124 when the guest timed out, 125 when it died before writing one. */
  code: number;
  stdout: string;
  stderr: string;
  /** Last lines of the serial console. */
  consoleTail: string;
  /** Wall time of the whole call, retries included. */
  seconds: number;
  /** From QEMU start to the command starting (last attempt); undefined if it never started. */
  bootSeconds?: number;
  /** Guest uptime when the command started. */
  guestUptimeAtStart?: number;
  timedOut: boolean;
  /** Boots it took (2 when the first boot failed before the command started). */
  boots: number;
  kernel: KernelChoice;
  /** Output of guest-setup.sh. */
  setupLog: string;
  /** The job folder (removed on success unless kept). */
  jobDir: string;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

const GUEST_PATH = [
  dirname(process.execPath),
  '/usr/local/sbin',
  '/usr/local/bin',
  '/usr/sbin',
  '/usr/bin',
  '/sbin',
  '/bin',
];

function envScript(vars: Record<string, string>): string {
  return (
    Object.entries(vars)
      .map(([k, v]) => {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name ${k}`);
        return `export ${k}=${shellQuote(v)}`;
      })
      .join('\n') + '\n'
  );
}

/** TCG's AMD-flavoured CPU models warn about threads=2 although the guest sees the SMT siblings fine. */
const HARMLESS_QEMU_WARNINGS =
  /qemu-system-x86_64: warning: This family of AMD CPU doesn't support hyperthreading\(\d+\)\n(Please configure -smp options properly or try enabling topoext feature\.\n)?/g;

/** Follows a file that is still being written. */
class Tail {
  private offset = 0;
  private readonly decoder = new StringDecoder('utf8');
  constructor(
    private readonly path: string,
    private readonly stream: 'stdout' | 'stderr',
  ) {}

  poll(sink: GuestRunOptions['onOutput']): void {
    if (!sink) return;
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        const text = this.decoder.write(buf.subarray(0, n));
        if (text) sink(text, this.stream);
      }
    } finally {
      closeSync(fd);
    }
  }
}

interface Attempt {
  jobDir: string;
  started: boolean;
  timedOut: boolean;
  bootSeconds?: number;
  qemuStderr: string;
  qemuExit: string;
}

async function bootOnce(
  opts: GuestRunOptions,
  choice: KernelChoice,
  initrd: string,
  timeoutSec: number,
): Promise<Attempt> {
  const { kernel } = choice;
  const jobDir = mkdtempSync(join(cacheSubdir('jobs'), `${opts.mode}-`));
  for (const p of [REPO_ROOT, cacheDir(), jobDir, kernel.modulesDir]) {
    if (/\s/.test(p)) throw new Error(`path with whitespace cannot go on the kernel command line: ${p}`);
  }
  writeFileSync(join(jobDir, 'command.sh'), opts.command.endsWith('\n') ? opts.command : opts.command + '\n');
  writeFileSync(
    join(jobDir, 'env.sh'),
    envScript({
      PATH: GUEST_PATH.join(':'),
      HOME: '/root',
      LANG: 'C.UTF-8',
      TERM: 'dumb',
      ...opts.env,
      VFIO_VM_MODE: opts.mode,
      VFIO_VM_KERNEL: kernel.release,
      VFIO_VM_KERNEL_SERIES: kernel.series,
      VFIO_VM_WANTED_SERIES: choice.wanted,
      ...(choice.note ? { VFIO_VM_KERNEL_NOTE: choice.note } : {}),
      VFIO_VM_MODULES: kernel.modulesDir,
      VFIO_VM_SETUP: GUEST_SETUP_JSON,
      VFIO_VM_JOB: jobDir,
    }),
  );
  const sockDir = mkdtempSync(join(tmpdir(), 'vfio-vm-'));
  const consoleFile = join(jobDir, 'console.log');
  const shares = await startVirtiofsd(
    [
      // The host's / is read-only to the guest, and the repository is, to the guest, a snapshot taken when it
      // first reads a file (edits made on the host during a run may stay unseen): both cache everything.
      { tag: 'hostroot', dir: '/', readOnlyBind: true, cache: 'always' },
      { tag: 'repo', dir: REPO_ROOT, cache: 'always' },
      // Job folders (read by the host afterwards) and tsx's compile cache.
      { tag: 'cache', dir: cacheDir(), cache: 'auto' },
    ],
    sockDir,
    join(jobDir, 'virtiofsd.log'),
  );
  const append = [
    'console=ttyS0',
    'panic=-1',
    'mitigations=off',
    'rdinit=/init',
    `vfio_vm.repo=${REPO_ROOT}`,
    `vfio_vm.job=${jobDir}`,
    `vfio_vm.cache=${cacheDir()}`,
    `vfio_vm.mode=${opts.mode}`,
    `vfio_vm.modules=${kernel.modulesDir}`,
    process.env.VFIO_VM_KERNEL_ARGS ?? '',
  ]
    .join(' ')
    .trim();
  const t0 = Date.now();
  const tails = opts.onOutput ? (['stdout', 'stderr'] as const).map((n) => new Tail(join(jobDir, n), n)) : [];
  const poll = (): void => {
    for (const t of tails) t.poll(opts.onOutput);
  };
  const timer = tails.length ? setInterval(poll, 1000) : undefined;
  // Guard: a guest that has written its exit code but does not power off (e.g. systemd stuck stopping units) is
  // stopped POWEROFF_GRACE_SEC later; its result is complete by then.
  const stop = new AbortController();
  let rcSeen = 0;
  const guard = setInterval(() => {
    if (!rcSeen && existsSync(join(jobDir, 'rc'))) rcSeen = Date.now();
    if (rcSeen && Date.now() - rcSeen > POWEROFF_GRACE_SEC * 1000) {
      process.stderr.write(
        `vm(${opts.mode}): the guest wrote its exit code but did not power off; stopping it\n`,
      );
      clearInterval(guard);
      stop.abort();
    }
  }, 1000);
  try {
    const r = await runQemu(
      qemuArgs({ kernel: kernel.vmlinuz, initrd, append, memMiB: opts.memMiB ?? 1024, shares, consoleFile }),
      timeoutSec,
      stop.signal,
    );
    const startedFile = join(jobDir, 'started');
    const started = existsSync(startedFile);
    return {
      jobDir,
      started,
      timedOut: r.timedOut,
      bootSeconds: started ? (statSync(startedFile).mtimeMs - t0) / 1000 : undefined,
      qemuStderr: r.stderr.replace(HARMLESS_QEMU_WARNINGS, ''),
      qemuExit: r.timedOut ? 'killed at the timeout' : r.signal ? `signal ${r.signal}` : `exit ${r.exitCode}`,
    };
  } finally {
    clearInterval(guard);
    if (timer) clearInterval(timer);
    poll();
    stopAll(shares.map((s) => s.proc));
    rmSync(sockDir, { recursive: true, force: true });
  }
}

/** Remove job folders (kept after failures) older than a day. */
function pruneOldJobs(): void {
  const jobs = cacheSubdir('jobs');
  const cutoff = Date.now() - 24 * 3600 * 1000;
  for (const name of readdirSync(jobs)) {
    const p = join(jobs, name);
    try {
      if (statSync(p).mtimeMs < cutoff) rmSync(p, { recursive: true, force: true });
    } catch {
      // removed concurrently
    }
  }
}

/** Boot a guest in `mode`, run `command` in it, power it off. Retries once when the boot fails early. */
export async function runInGuest(opts: GuestRunOptions): Promise<GuestResult> {
  const t0 = Date.now();
  const timeoutSec = opts.timeoutSec ?? 300;
  const choice = (await ensureKernels([opts.mode])).get(opts.mode);
  if (!choice) throw new Error(`no kernel for mode ${opts.mode}`);
  const initrd = ensureInitramfs(choice.kernel);
  pruneOldJobs();

  let attempt = await bootOnce(opts, choice, initrd, timeoutSec);
  let boots = 1;
  if (!attempt.started) {
    const console = tail(readOr(join(attempt.jobDir, 'console.log')), 25);
    process.stderr.write(
      `vm(${opts.mode}): boot failed before the command started (qemu ${attempt.qemuExit}; kept ${attempt.jobDir}),` +
        ` retrying once. qemu stderr: ${attempt.qemuStderr.trim() || '(none)'}; console tail:\n${console}\n`,
    );
    attempt = await bootOnce(opts, choice, initrd, timeoutSec);
    boots++;
  }
  const { jobDir } = attempt;
  const rc = readOr(join(jobDir, 'rc')).trim();
  const code = /^\d+$/.test(rc) ? Number(rc) : attempt.timedOut ? 124 : 125;
  let stderr = readOr(join(jobDir, 'stderr'));
  if (attempt.qemuStderr.trim())
    stderr += (stderr && !stderr.endsWith('\n') ? '\n' : '') + attempt.qemuStderr;
  if (attempt.timedOut) stderr += `\nvm(${opts.mode}): guest killed after ${timeoutSec} s\n`;
  const uptime = Number(readOr(join(jobDir, 'started')).trim());
  const result: GuestResult = {
    code,
    stdout: readOr(join(jobDir, 'stdout')),
    stderr,
    consoleTail: tail(readOr(join(jobDir, 'console.log')), 40),
    seconds: (Date.now() - t0) / 1000,
    ...(attempt.bootSeconds !== undefined ? { bootSeconds: attempt.bootSeconds } : {}),
    ...(Number.isFinite(uptime) && uptime > 0 ? { guestUptimeAtStart: uptime } : {}),
    timedOut: attempt.timedOut,
    boots,
    kernel: choice,
    setupLog: readOr(join(jobDir, 'setup.log')),
    jobDir,
  };
  const keep = opts.keep || process.env.VFIO_VM_KEEP === '1' || code !== 0;
  if (!keep) rmSync(jobDir, { recursive: true, force: true });
  return result;
}
