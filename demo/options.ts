/** Command line of `npm run demo`. */
import { parseArgs } from 'node:util';
import type { VmMode } from '../test/vm/harness.ts';

export const USAGE = `usage: npm run demo -- [--cgroup v2|v1 | --systemd] [--json] [--keep] [--timeout SECONDS]

Boots a throw-away QEMU guest (8 CPUs, 2 NUMA nodes, a systemd-like cgroup tree, busy host processes) and shows
vfio-isolate at work in it: topology, status before, the seed's libvirt hook sequence and restore, then isolate and
release, checking each step. Nothing on this machine is changed.

  --cgroup v2|v1   v2: cgroup v2 on Linux 6.12 (default); v1: v1 cpuset + controller-less cgroup2 on Linux 6.1
  --systemd        this machine's systemd as PID 1 of the guest (cgroup v2, Linux 6.12) and libvirt: isolate
                   through systemd, a daemon-reload that does not undo it, a libvirt domain started and stopped
                   with the installed hook (needs libvirt-daemon-system and libvirt-clients installed here)
  --json           print one JSON transcript on stdout (the narration goes to stderr)
  --keep           keep the guest's job folder (logs, console) afterwards
  --timeout N      kill the guest after N seconds (default 420, with --systemd 600)
`;

export interface Options {
  mode: VmMode;
  json: boolean;
  keep: boolean;
  timeoutSec: number;
}

export function parseOptions(argv: string[]): Options | { help: true } | { error: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        cgroup: { type: 'string' },
        systemd: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    });
  } catch (e) {
    return { error: (e as Error).message };
  }
  const v = parsed.values;
  if (v.help) return { help: true };
  const modes: Record<string, VmMode> = {
    v2: 'v2',
    '2': 'v2',
    v1: 'v1-hybrid',
    '1': 'v1-hybrid',
    'v1-hybrid': 'v1-hybrid',
  };
  if (v.systemd && v.cgroup !== undefined) return { error: '--systemd runs cgroup v2 alone: drop --cgroup' };
  const mode = v.systemd ? 'systemd' : modes[v.cgroup ?? 'v2'];
  if (!mode) return { error: `--cgroup takes v2 or v1, not "${v.cgroup}"` };
  const timeoutSec = Number(v.timeout ?? (mode === 'systemd' ? '600' : '420'));
  if (!Number.isInteger(timeoutSec) || timeoutSec < 30)
    return { error: '--timeout takes a number of seconds ≥ 30' };
  return { mode, json: v.json, keep: v.keep, timeoutSec };
}
