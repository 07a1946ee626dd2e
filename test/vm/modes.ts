/** The guest configurations the real-kernel suite boots. */
/** `systemd`: cgroup v2 on 6.12 with the host's own systemd as PID 1 (and libvirt startable in it). */
export type VmMode = 'v2' | 'v1-hybrid' | 'v2-6.1' | 'systemd';

export const ALL_MODES: readonly VmMode[] = ['v2', 'v1-hybrid', 'v2-6.1', 'systemd'];

/** Kernel series each mode wants: 6.12 has cpuset.cpus.exclusive; only 6.1 still has CONFIG_CPUSETS_V1. */
export const WANTED_SERIES: Readonly<Record<VmMode, string>> = {
  v2: '6.12',
  'v1-hybrid': '6.1',
  'v2-6.1': '6.1',
  systemd: '6.12',
};

/** Whether the mode boots systemd as PID 1 (its guest tests are test/vm/guest/systemd-*.test.ts). */
export function isSystemdMode(mode: VmMode): boolean {
  return mode === 'systemd';
}

export function isVmMode(s: string): s is VmMode {
  return (ALL_MODES as readonly string[]).includes(s);
}

/** Parse a comma-separated list such as `v2,v1-hybrid`; throws on unknown names. */
export function parseModes(list: string | undefined): VmMode[] {
  if (list === undefined || list.trim() === '') return [...ALL_MODES];
  const out: VmMode[] = [];
  for (const raw of list.split(',')) {
    const m = raw.trim();
    if (m === '') continue;
    if (!isVmMode(m)) throw new Error(`unknown VM mode "${m}" (known: ${ALL_MODES.join(', ')})`);
    if (!out.includes(m)) out.push(m);
  }
  return out;
}
