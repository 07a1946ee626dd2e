/**
 * A fake systemd for a fixture tree: fakeSystemd(root) records the tree's units (every cgroup below slices named
 * like a unit) in the fake's state file inside the tree and writes a `systemctl` wrapper (outside the tree) that
 * runs test/support/fake-systemctl.ts, bundled (fakeSystemctlBundle), on that tree. Pass `env` to cli() so the tool
 * uses it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { unitOfCgroup } from '../../src/kernel/systemd.ts';
import { fakeSystemctlBundle } from './bundle.ts';
import { LOG_FILE, STATE_FILE, type FakeState, type FakeUnit } from './fake-systemctl.ts';

export interface FakeSystemd {
  bin: string;
  env: { VFIO_ISOLATE_SYSTEMCTL: string };
  /** Every systemctl call so far, one line each. */
  calls(): string[];
  state(): FakeState;
  update(f: (s: FakeState) => void): void;
  /** Run the fake directly (e.g. daemon-reload, as an administrator or a package upgrade would). */
  run(...args: string[]): { code: number; stderr: string };
}

export function fakeSystemd(root: string): FakeSystemd {
  const mount = path.join(root, 'sys/fs/cgroup');
  const units: Record<string, FakeUnit> = {};
  const has = (dir: string, c: string): boolean => {
    try {
      return fs.readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes(c);
    } catch {
      return false;
    }
  };
  const keepCpuset: string[] = [];
  const walk = (parts: string[]): void => {
    const dir = path.join(mount, ...parts);
    if (has(dir, 'cpuset')) keepCpuset.push(parts.join('/'));
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const child = [...parts, e.name];
      const unit = unitOfCgroup(child);
      if (unit === undefined) continue;
      const sub = fs
        .readdirSync(path.join(dir, e.name), { withFileTypes: true })
        .some((d) => d.isDirectory());
      units[unit] = { cgroup: '/' + child.join('/'), cpus: '', mems: '' };
      if (unit.endsWith('.slice')) walk(child);
      else if (sub && has(dir, 'cpuset')) units[unit].delegateCpuset = true;
    }
  };
  walk([]);
  fs.mkdirSync(path.join(root, 'run/systemd'), { recursive: true });
  const stateFile = path.join(root, STATE_FILE);
  fs.writeFileSync(stateFile, JSON.stringify({ units, keepCpuset } satisfies FakeState, null, 2));
  fs.writeFileSync(path.join(root, LOG_FILE), '');
  const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-fake-systemctl-')), 'systemctl');
  fs.writeFileSync(
    bin,
    `#!/bin/sh\nFAKE_SYSTEMD_ROOT='${root}' exec '${process.execPath}' '${fakeSystemctlBundle()}' "$@"\n`,
    { mode: 0o755 },
  );
  const state = (): FakeState => JSON.parse(fs.readFileSync(stateFile, 'utf8')) as FakeState;
  return {
    bin,
    env: { VFIO_ISOLATE_SYSTEMCTL: bin },
    calls: () => fs.readFileSync(path.join(root, LOG_FILE), 'utf8').split('\n').filter(Boolean),
    state,
    update(f) {
      const s = state();
      f(s);
      fs.writeFileSync(stateFile, JSON.stringify(s, null, 2));
    },
    run(...args) {
      const r = spawnSync(bin, args, { encoding: 'utf8' });
      return { code: r.status ?? -1, stderr: r.stderr };
    },
  };
}

/**
 * A systemctl in front of the fake one that fails (exit 1, a D-Bus error) the calls whose arguments match the sh
 * `case` pattern armed last, after letting `skip` of them through, `times` times; everything else goes to the fake.
 * `env` points the tool at it (VFIO_ISOLATE_SYSTEMCTL).
 */
export function flakySystemctl(sd: FakeSystemd): {
  env: Record<string, string>;
  arm(pattern: string, skip: number, times: number): void;
} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-flaky-'));
  const at = (name: string): string => path.join(dir, name);
  const arm = (pattern: string, skip: number, times: number): void => {
    fs.writeFileSync(at('pattern'), pattern);
    fs.writeFileSync(at('skip'), String(skip));
    fs.writeFileSync(at('times'), String(times));
  };
  arm('__never__', 0, 0);
  const bin = at('systemctl');
  fs.writeFileSync(
    bin,
    `#!/bin/sh
D='${dir}'
case "$*" in
  $(cat "$D/pattern"))
    S=$(cat "$D/skip"); T=$(cat "$D/times")
    if [ "$S" -gt 0 ]; then echo $((S-1)) > "$D/skip"
    elif [ "$T" -gt 0 ]; then echo $((T-1)) > "$D/times"; echo "Failed to set unit properties: Transport endpoint is not connected" >&2; exit 1
    fi;;
esac
exec '${sd.bin}' "$@"
`,
    { mode: 0o755 },
  );
  return { env: { ...sd.env, VFIO_ISOLATE_SYSTEMCTL: bin }, arm };
}
