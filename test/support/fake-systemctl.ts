/**
 * A fake `systemctl` for fixture trees (run as a process, like the real one; see fakeSystemd() in
 * test/support/systemd.ts for the wrapper that starts it). It behaves like systemd 252 as PID 1 on cgroup v2 for
 * what vfio-isolate uses, and keeps its state in `/run/systemd/fake-systemd.json` inside the fake tree:
 *
 * - `show -p A,B -- UNIT…`: one block per unit (Id, LoadState, ActiveState, ControlGroup, AllowedCPUs,
 *   AllowedMemoryNodes). A slice always loads (systemd loads any slice name); other units load only when known.
 * - `set-property --runtime -- UNIT AllowedCPUs=… AllowedMemoryNodes=… CPUWeight=…`: stores the runtime property and
 *   realizes the tree the way systemd does: `+cpuset` top-down on the path to every unit that needs it, the units'
 *   cpuset.cpus/mems written (siblings get "" — refused, and ignored, where the kernel says ENOSPC), and `-cpuset`
 *   bottom-up where no unit needs it any more. Without --runtime it refuses (vfio-isolate must never persist).
 * - `daemon-reload`, `daemon-reexec`: realize again — which drops cpuset files written behind systemd's back.
 * - `stop|start|try-restart UNIT`: accepted (logged only).
 *
 * Every call is appended to `/run/systemd/fake-systemctl.log`. Test controls in the state file: `fail` (a unit
 * name, or "*"): set-property on it exits 1; `hang`: every call sleeps 60 s (for timeouts).
 * All writes go through SimFs, so the kernel semantics of the fake tree apply as for the tool itself.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SimFs } from './simfs.ts';

export interface FakeUnit {
  cgroup: string;
  cpus: string;
  mems: string;
  /** A Delegate=yes unit whose delegated controllers include cpuset (keeps cpuset enabled above it). */
  delegateCpuset?: boolean;
}
export interface FakeState {
  units: Record<string, FakeUnit>;
  /** Cgroups (relative, '' = root) that had cpuset enabled when the fake was set up: kept enabled, as systemd keeps it for units that need it. */
  keepCpuset?: string[];
  fail?: string;
  hang?: boolean;
}

export const STATE_FILE = 'run/systemd/fake-systemd.json';
export const LOG_FILE = 'run/systemd/fake-systemctl.log';
const MOUNT = '/sys/fs/cgroup';

function realize(s: SimFs, st: FakeState): void {
  const active = Object.entries(st.units).filter(([, u]) => s.isDir(MOUNT + u.cgroup));
  const needs = (u: FakeUnit): boolean => u.cpus !== '' || u.mems !== '' || u.delegateCpuset === true;
  // Directories (relative, '' = root) whose subtree_control must have cpuset: strict ancestors of needing units.
  const needed = new Set<string>(st.keepCpuset ?? []);
  for (const [, u] of active) {
    if (!needs(u)) continue;
    const parts = u.cgroup.split('/').filter(Boolean);
    for (let i = 0; i < parts.length; i++) needed.add(parts.slice(0, i).join('/'));
  }
  const dir = (rel: string): string => (rel === '' ? MOUNT : `${MOUNT}/${rel}`);
  const has = (rel: string): boolean =>
    (s.read(`${dir(rel)}/cgroup.subtree_control`) || '').split(/\s+/).includes('cpuset');
  for (const rel of [...needed].sort(
    (a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b),
  ))
    if (rel === '' || s.isDir(dir(rel)))
      if (!has(rel)) s.write(`${dir(rel)}/cgroup.subtree_control`, '+cpuset');
  for (const [, u] of active) {
    const parent = u.cgroup.split('/').filter(Boolean).slice(0, -1).join('/');
    if (!needed.has(parent)) continue;
    for (const [file, value] of [
      ['cpuset.mems', u.mems],
      ['cpuset.cpus', u.cpus],
    ] as const) {
      try {
        s.write(`${MOUNT}${u.cgroup}/${file}`, value === '' ? '\n' : value);
      } catch {
        /* systemd logs and goes on (e.g. ENOSPC emptying a populated cpuset) */
      }
    }
  }
  // -cpuset bottom-up where no unit needs it (the root and active slices systemd manages).
  const managed = ['', ...active.filter(([n]) => n.endsWith('.slice')).map(([, u]) => u.cgroup.slice(1))];
  for (const rel of managed.sort((a, b) => b.split('/').length - a.split('/').length || b.localeCompare(a))) {
    if (needed.has(rel) || !has(rel)) continue;
    try {
      s.write(`${dir(rel)}/cgroup.subtree_control`, '-cpuset');
    } catch {
      /* a child still uses it (EBUSY): systemd leaves it */
    }
  }
}

function loaded(st: FakeState, name: string): boolean {
  return name.endsWith('.slice') || name in st.units;
}

function main(argv: string[]): number {
  const root = process.env.FAKE_SYSTEMD_ROOT;
  if (!root) {
    process.stderr.write('fake systemctl: FAKE_SYSTEMD_ROOT not set\n');
    return 1;
  }
  const stateFile = path.join(root, STATE_FILE);
  fs.appendFileSync(path.join(root, LOG_FILE), argv.join(' ') + '\n');
  const st = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as FakeState;
  if (st.hang) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
  const save = (): void => fs.writeFileSync(stateFile, JSON.stringify(st, null, 2));
  const s = new SimFs(root);
  const [verb, ...rest] = argv;
  const dash = rest.indexOf('--');
  const opts = dash >= 0 ? rest.slice(0, dash) : rest.filter((a) => a.startsWith('-'));
  const args = dash >= 0 ? rest.slice(dash + 1) : rest.filter((a) => !a.startsWith('-'));
  switch (verb) {
    case 'show': {
      const blocks = args.map((name) => {
        const u = st.units[name];
        const on = u !== undefined && s.isDir(MOUNT + u.cgroup);
        return [
          `Id=${name}`,
          `LoadState=${loaded(st, name) ? 'loaded' : 'not-found'}`,
          `ActiveState=${on ? 'active' : 'inactive'}`,
          `ControlGroup=${on ? u.cgroup : ''}`,
          `AllowedCPUs=${u?.cpus ?? ''}`,
          `AllowedMemoryNodes=${u?.mems ?? ''}`,
        ].join('\n');
      });
      process.stdout.write(blocks.map((b) => b + '\n').join('\n'));
      return 0;
    }
    case 'set-property': {
      const [name, ...props] = args;
      if (!opts.includes('--runtime')) {
        process.stderr.write('fake systemctl: vfio-isolate must only set runtime properties\n');
        return 1;
      }
      if (!name || !loaded(st, name)) {
        process.stderr.write(`Failed to set unit properties on ${name}: Unit ${name} not found.\n`);
        return 1;
      }
      if (st.fail === '*' || st.fail === name) {
        process.stderr.write(`Failed to set unit properties on ${name}: Access denied\n`);
        return 1;
      }
      const u = (st.units[name] ??= { cgroup: '', cpus: '', mems: '' });
      for (const p of props) {
        const [key, value = ''] = p.split('=', 2) as [string, string?];
        if (key === 'AllowedCPUs') u.cpus = value;
        else if (key === 'AllowedMemoryNodes') u.mems = value;
        else if (key !== 'CPUWeight') {
          process.stderr.write(`Unknown assignment: ${p}\n`);
          return 1;
        }
      }
      save();
      realize(s, st);
      return 0;
    }
    case 'daemon-reload':
    case 'daemon-reexec':
      realize(s, st);
      return 0;
    case 'stop':
    case 'start':
    case 'try-restart':
      return 0;
    default:
      process.stderr.write(`fake systemctl: unsupported: ${argv.join(' ')}\n`);
      return 1;
  }
}

// Run only as the fake command itself, not when a test imports the constants above.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  process.exitCode = main(process.argv.slice(2));
