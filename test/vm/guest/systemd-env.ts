/**
 * Helpers for the guest tests of mode `systemd` (test/vm/guest/systemd-*.test.ts): the host's own systemd is PID 1
 * of the throw-away guest. Every helper refuses to run outside that guest: they call systemctl, virsh and the
 * CLI against the real kernel.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { CpuSet } from '../../../src/cpus/cpuset.ts';
import { cli } from './cli.ts';
import { guestMode } from './guest-env.ts';

/** Skip reason for node:test: these tests need the systemd guest. */
export function notInSystemdGuest(): string | false {
  return guestMode() === 'systemd' ? false : 'needs the systemd test guest (npm run test:vm, mode systemd)';
}

function mustBeGuest(what: string): void {
  if (guestMode() !== 'systemd') throw new Error(`${what} runs only inside the systemd test guest`);
}

/** Run a program (systemctl, virsh, ...) in the guest; throws with its stderr when it fails. */
export function run(cmd: string, args: readonly string[], timeoutMs = 120_000): string {
  mustBeGuest(cmd);
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { stderr?: string; status?: number; signal?: string };
    throw new Error(
      `${cmd} ${args.join(' ')}: ${err.signal ? `killed by ${err.signal}` : `exit ${err.status}`}: ${err.stderr ?? ''}`,
      { cause: e },
    );
  }
}

export const systemctl = (...args: string[]): string => run('systemctl', args);

export const read = (p: string): string => readFileSync(p, 'utf8').trim();

export function readOr(p: string, fallback = ''): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return fallback;
  }
}

/** Units of the top-level cgroups (what `isolate` restricts), plus `extra`. */
export function topLevelUnits(extra: readonly string[] = []): string[] {
  const top = readdirSync('/sys/fs/cgroup', { withFileTypes: true })
    .filter((d) => d.isDirectory() && /\.(slice|scope|service|socket|mount|swap)$/.test(d.name))
    .map((d) => d.name);
  return [...new Set([...top, ...extra])].sort();
}

/** The cgroup of a process (v2 line `0::/path`), or undefined when it has gone. */
export function cgroupOf(pid: number | string): string | undefined {
  const line = readOr(`/proc/${pid}/cgroup`)
    .split('\n')
    .find((l) => l.startsWith('0::'));
  return line?.slice(3);
}

export interface LeakFigures {
  /** status exit code (1 when something movable leaks). */
  code: number;
  /** Movable leaks of every kind. */
  movable: number;
  /** Movable leaks that are tasks in system.slice or user.slice (what the seed's hook restricts). */
  inSlices: number;
  /**
   * Populated top-level cgroups (all but machine.slice) whose effective CPUs reach the VM CPUs: a process started
   * there from now on would run on them. Checked directly because status reads the affinity of existing tasks, and
   * those keep a restriction the kernel already applied even after systemd has disabled the cpuset controller.
   */
  unrestricted: string[];
  /** One line per movable leak (kind: message), then one per unrestricted cgroup. */
  lines: string[];
}

/** See LeakFigures.unrestricted; `only` limits the check to these top-level cgroups. */
export function unrestrictedCgroups(vm: CpuSet, only?: readonly string[]): string[] {
  const root = CpuSet.parseList(read('/sys/fs/cgroup/cpuset.cpus.effective'));
  const out: string[] = [];
  for (const d of readdirSync('/sys/fs/cgroup', { withFileTypes: true })) {
    if (!d.isDirectory() || d.name === 'machine.slice') continue;
    if (only && !only.includes(d.name)) continue;
    const dir = `/sys/fs/cgroup/${d.name}`;
    if (!/^populated 1$/m.test(readOr(`${dir}/cgroup.events`))) continue;
    const eff = readOr(`${dir}/cpuset.cpus.effective`, '');
    // No cpuset files: the controller is off below the root, the cgroup gets every CPU the root has.
    const cpus = eff === '' ? root : CpuSet.parseList(eff);
    if (cpus.overlaps(vm)) out.push(`/${d.name} may use ${cpus.toList()}${eff === '' ? ' (no cpuset)' : ''}`);
  }
  return out;
}

interface StatusJsonLeak {
  kind: string;
  id?: number | string;
  message: string;
}

/**
 * `vfio-isolate --json status CPUS`, in-process, reduced to the figures the scenarios compare, plus the
 * unrestricted top-level cgroups (`only`: just these).
 */
export async function leaks(cpus: string, only?: readonly string[]): Promise<LeakFigures> {
  const r = await cli(['--json', 'status', cpus]);
  let json: { leaks: StatusJsonLeak[] };
  try {
    json = JSON.parse(r.stdout) as { leaks: StatusJsonLeak[] };
  } catch {
    throw new Error(`status ${cpus} printed no JSON (exit ${r.code}): ${r.stderr}`);
  }
  const inSlices = json.leaks.filter(
    (l) => l.kind === 'task' && /^\/(system|user)\.slice(\/|$)/.test(cgroupOf(l.id ?? '') ?? ''),
  );
  const unrestricted = unrestrictedCgroups(CpuSet.parseList(cpus.replace(/^C/, '')), only);
  return {
    code: r.code,
    movable: json.leaks.length,
    inSlices: inSlices.length,
    unrestricted,
    lines: [...json.leaks.map((l) => `${l.kind}: ${l.message}`), ...unrestricted.map((u) => `cgroup: ${u}`)],
  };
}

/** Where a thread may run (Cpus_allowed_list of /proc/PID/task/TID/status). */
export function allowedOf(pid: number, tid: number = pid): CpuSet | undefined {
  const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(readOr(`/proc/${pid}/task/${tid}/status`));
  return m?.[1] !== undefined ? CpuSet.parseList(m[1].trim()) : undefined;
}

/** Poll `check` every `everyMs` until it returns a value (not undefined) or `ms` pass. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined,
  ms = 60_000,
  everyMs = 500,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const T0 = Date.now();
/** A progress line on stderr (shown live by run-suite as `[systemd] ! …`): where a slow guest spends its time. */
export function step(what: string): void {
  process.stderr.write(`[${((Date.now() - T0) / 1000).toFixed(1)} s] ${what}\n`);
}

/** A figure line the suite prints (grep FIGURE in the output of npm run test:vm). */
export function figure(line: string): void {
  process.stdout.write(`FIGURE ${line}\n`);
}
