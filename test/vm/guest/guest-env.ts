/**
 * Helpers for test files that run inside the test guest (test/vm/guest/*.test.ts). Every such file must check
 * `guestMode()` first and skip when it is undefined: these tests write kernel state and must never run on a host.
 */
import { readFileSync } from 'node:fs';
import { isVmMode, type VmMode } from '../modes.ts';

/** The mode of the guest we run in, or undefined when not inside a vfio-isolate test guest. */
export function guestMode(): VmMode | undefined {
  const mode = process.env.VFIO_VM_MODE;
  if (!mode || !isVmMode(mode)) return undefined;
  let cmdline: string;
  try {
    cmdline = readFileSync('/proc/cmdline', 'utf8');
  } catch {
    return undefined;
  }
  // The kernel command line is set by the harness: a host never has it, whatever its environment says.
  return cmdline.split(/\s+/).includes(`vfio_vm.mode=${mode}`) ? mode : undefined;
}

/** Skip reason for node:test (`test(name, { skip: notInGuest() }, ...)`). */
export function notInGuest(): string | false {
  return guestMode() ? false : 'not inside a vfio-isolate test guest (run npm run test:vm)';
}

/** What guest-setup.sh created (see its header). */
export interface GuestSetup {
  mode: VmMode;
  /** The cgroup2 mount holding the slices (/sys/fs/cgroup, or /sys/fs/cgroup/unified in v1-hybrid). */
  cgroup2: string;
  /** Where the cpuset hierarchy is mounted. */
  cpuset: string;
  rootControllers: string;
  rootSubtreeControl: string;
  /** Sleeper pids by cgroup path inside the cgroup2 mount (`/` = root); user.slice includes the threaded one. */
  pids: Record<string, number[]>;
  threaded: { pid: number; threads: number };
}

export function guestSetup(): GuestSetup {
  return JSON.parse(
    readFileSync(process.env.VFIO_VM_SETUP ?? '/run/vfio-vm/setup.json', 'utf8'),
  ) as GuestSetup;
}

/**
 * The seed's libvirt hook sequence adapted to the guest (host CPUs 0-3, VM CPUs 4-7): v2 restricts the slices,
 * v1 creates /host.slice and moves the root's tasks into it (the seed's v1 example).
 */
export function seedHook(mode: VmMode | undefined): string[] {
  const cgroups =
    mode === 'v1-hybrid'
      ? ['cpuset-create', '--cpus', 'C0-3', '/host.slice', 'move-tasks', '/', '/host.slice']
      : [
          'cpuset-modify',
          '--cpus',
          'C0-3',
          '/system.slice',
          'cpuset-modify',
          '--cpus',
          'C0-3',
          '/user.slice',
        ];
  return ['drop-caches', ...cgroups, 'compact-memory', 'irq-affinity', 'mask', 'C4-7'];
}
