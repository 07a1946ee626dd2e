/**
 * systemd as the owner of the cgroup v2 tree. Where systemd is PID 1 and manages the v2 hierarchy, it is the
 * single writer of its units' cgroups: cpuset files written behind its back vanish on its next daemon-reload.
 * So CPU and memory-node restrictions of units go through systemd (`systemctl set-property --runtime`), and this
 * module owns the one function that runs systemctl (`runSystemctl`). The command comes from `Kernel.systemctl`.
 *
 * Why systemctl and not D-Bus: a D-Bus client means a dependency (dbus-next and its marshalling) and a socket
 * protocol to keep right, for a handful of calls per run; systemctl is on every systemd machine, speaks to PID 1
 * over its private socket even when the bus is down, and its failures are one readable line.
 */
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure } from '../errors.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';

/** Unit names the tool passes to systemctl (and accepts from a journal): plain unit names of the kinds with cgroups. */
export const UNIT_NAME_RE = /^[A-Za-z0-9:_.\\@-]{1,250}\.(slice|scope|service|socket|mount|swap)$/;
/** A CPU or node list as systemd prints and takes it ("0-3,8"), or empty (no restriction). */
export const UNIT_LIST_RE = /^[0-9,-]{0,4096}$/;

/** How long one systemctl call may take before the run fails (and rolls back). */
export const SYSTEMCTL_TIMEOUT_MS = 10000;

export type SystemdMode =
  /** No systemd (or v1 cpusets, which systemd does not use): cgroupfs is written directly. */
  | { kind: 'none' }
  /** systemd is PID 1 and manages the v2 hierarchy: units are restricted through it. */
  | { kind: 'managed' }
  /** systemd is present but does not manage this hierarchy (e.g. a container): direct writes, with a warning. */
  | { kind: 'unmanaged'; why: string };

/**
 * Is systemd the manager of the cpuset hierarchy? systemd PID 1 (`/run/systemd/system` exists) on cgroup v2, PID 1
 * is `systemd`, and PID 1 sits in `/init.scope` of this hierarchy (where systemd puts itself). A kernel without a
 * systemctl command (an empty `Kernel.systemctl`: a fake tree without a fake systemctl) counts as no systemd.
 */
export function systemdMode(k: Kernel): SystemdMode {
  if (k.systemctl === '' || !k.fs.exists(P.systemdRunning)) return { kind: 'none' };
  const cg = k.cgroups;
  if (cg.version !== 2) return { kind: 'none' };
  const comm = k.readTrim('/proc/1/comm');
  if (comm !== 'systemd') return { kind: 'unmanaged', why: `PID 1 is ${comm ?? 'unreadable'}, not systemd` };
  const line = (k.readTrim('/proc/1/cgroup') ?? '').split('\n').find((l) => l.startsWith('0::'));
  if (line !== '0::/init.scope' || !k.fs.isDir(`${cg.mount}/init.scope`))
    return { kind: 'unmanaged', why: `PID 1 is not in ${cg.mount}/init.scope` };
  return { kind: 'managed' };
}

/**
 * The unit whose cgroup this is, by name: every ancestor is a slice and the last part is a unit name
 * (`/system.slice` → system.slice, `/system.slice/cron.service` → cron.service). Anything below a service or scope
 * (a delegated subtree such as libvirt's vCPU cgroups) and names that are not unit names map to no unit.
 */
export function unitOfCgroup(parts: readonly string[]): string | undefined {
  if (parts.length === 0) return undefined;
  for (const p of parts.slice(0, -1)) if (!p.endsWith('.slice') || !UNIT_NAME_RE.test(p)) return undefined;
  const last = parts[parts.length - 1]!;
  return UNIT_NAME_RE.test(last) ? last : undefined;
}

/** Run systemctl with these arguments; stdout on success. Failure or timeout: one-line RuntimeFailure. */
export function runSystemctl(k: Kernel, args: readonly string[]): string {
  const shown = `systemctl ${args.join(' ')}`;
  if (k.systemctl === '') throw new RuntimeFailure(`${shown}: no systemctl on this machine`);
  const r = process.getBuiltinModule('node:child_process').spawnSync(k.systemctl, args, {
    encoding: 'utf8',
    timeout: k.systemctlTimeoutMs,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0', LC_ALL: 'C' },
    maxBuffer: 4 * 1024 * 1024,
  });
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ETIMEDOUT')
    throw new RuntimeFailure(`${shown} timed out after ${k.systemctlTimeoutMs / 1000} s`);
  if (code === 'ENOENT') throw new RuntimeFailure(`${shown}: ${k.systemctl} not found`);
  if (r.error) throw new RuntimeFailure(`${shown}: ${r.error.message}`);
  // a signal that is not the timeout's kill (a crash, the OOM killer)
  if (r.signal !== null) throw new RuntimeFailure(`${shown} failed: killed by ${r.signal}`);
  if (r.status !== 0) {
    const why = (r.stderr || r.stdout || '').trim().split('\n')[0] || `exit status ${r.status}`;
    throw new RuntimeFailure(`${shown} failed: ${why}`);
  }
  return r.stdout;
}

export interface UnitInfo {
  unit: string;
  loadState: string;
  activeState: string;
  controlGroup: string;
  allowedCpus: string;
  allowedMemoryNodes: string;
}

const SHOWN = 'Id,LoadState,ActiveState,ControlGroup,AllowedCPUs,AllowedMemoryNodes';

/** One `systemctl show` for all these units: their load state, cgroup and CPU/node restrictions. */
export function showUnits(k: Kernel, units: readonly string[]): Map<string, UnitInfo> {
  const out = new Map<string, UnitInfo>();
  if (units.length === 0) return out;
  const text = runSystemctl(k, ['show', '-p', SHOWN, '--', ...units]);
  const blocks = text.split(/\n\s*\n/).filter((b) => b.trim() !== '');
  if (blocks.length !== units.length)
    throw new RuntimeFailure(
      `systemctl show printed ${blocks.length} units for ${units.length} asked (${units.join(' ')})`,
    );
  blocks.forEach((block, i) => {
    const kv = new Map<string, string>();
    for (const line of block.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) kv.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
    }
    const unit = units[i]!;
    // systemd prints a CPU set as ranges separated by spaces ("0-3 6-7"): kept as the kernel's list ("0-3,6-7")
    const list = (key: string): string => {
      const raw = kv.get(key) ?? '';
      const value = raw
        .trim()
        .split(/[\s,]+/)
        .filter(Boolean)
        .join(',');
      if (!UNIT_LIST_RE.test(value))
        throw new RuntimeFailure(`systemctl show ${unit}: unexpected ${key}=${raw.slice(0, 40)}`);
      return value === '' ? '' : CpuSet.parseList(value).toList();
    };
    out.set(unit, {
      unit,
      loadState: kv.get('LoadState') ?? '',
      activeState: kv.get('ActiveState') ?? '',
      controlGroup: kv.get('ControlGroup') ?? '',
      allowedCpus: list('AllowedCPUs'),
      allowedMemoryNodes: list('AllowedMemoryNodes'),
    });
  });
  return out;
}

export interface UnitProps {
  allowedCpus?: string;
  allowedMemoryNodes?: string;
}

/** The arguments of the set-property call (also shown by the -n plan). Runtime only: gone at reboot. */
export function setPropertyArgs(unit: string, props: UnitProps): string[] {
  const args = ['set-property', '--runtime', '--', unit];
  if (props.allowedCpus !== undefined) args.push(`AllowedCPUs=${props.allowedCpus}`);
  if (props.allowedMemoryNodes !== undefined) args.push(`AllowedMemoryNodes=${props.allowedMemoryNodes}`);
  return args;
}

export function setUnitProperties(k: Kernel, unit: string, props: UnitProps): void {
  runSystemctl(k, setPropertyArgs(unit, props));
}
