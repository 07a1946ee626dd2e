/**
 * The candidates `vfio-isolate __complete KIND PREFIX` prints for the completion scripts: cgroup names, governors,
 * CPU and node sets of this machine. Loaded by the __complete handler (src/commands/completion.ts) only, so that
 * printing a completion script loads no kernel code.
 */
import type { DynamicKind } from '../cli/table.ts';
import { normalizeCgroupName } from '../kernel/cgroup.ts';
import { availableGovernors } from '../kernel/cpufreq-list.ts';
import type { Kernel } from '../kernel/kernel.ts';

/** Cgroup names for a partly typed name: the children of its directory part ("/sys" → "/system.slice", ...). */
export function cgroupCandidates(k: Kernel, prefix: string): string[] {
  const slash = prefix.lastIndexOf('/');
  const dir = slash >= 0 ? prefix.slice(0, slash) : '';
  let parts: string[];
  try {
    parts = normalizeCgroupName(dir);
  } catch {
    return [];
  }
  // names are written from the root ("/system.slice"); a name typed without the leading slash keeps it off
  const base = dir !== '' ? `${dir}/` : prefix === '' || prefix.startsWith('/') ? '/' : '';
  const out = prefix === '' || prefix === '/' ? ['/'] : [];
  for (const child of k.cgroups.children(parts)) out.push(`${base}${child}`);
  return out;
}

/** Hints for a CPU set: every present CPU, each L3 domain's CPUs, and the N, L, P, S selectors of this machine. */
export function cpuCandidates(k: Kernel): string[] {
  const m = k.machine;
  const out: string[] = [];
  const add = (s: string): void => {
    if (!out.includes(s)) out.push(s);
  };
  if (m.present.isEmpty) return out;
  add(`C${m.present.toList()}`);
  if (m.l3.length > 1) for (const d of m.l3) add(`C${d.toList()}`);
  for (const [id, cpus] of [...m.nodes].sort((a, b) => a[0] - b[0])) if (!cpus.isEmpty) add(`N${id}`);
  m.l3.forEach((_, i) => add(`L${i}`));
  for (const id of [...m.packages.keys()].sort((a, b) => a - b)) add(`P${id}`);
  add(`S${m.present.toList()}`);
  return out;
}

/** Hints for a set of NUMA nodes: each node, and all of them. */
export function nodeCandidates(k: Kernel): string[] {
  const ids = [...k.machine.nodes.keys()].sort((a, b) => a - b);
  const out = ids.map((id) => `N${id}`);
  if (ids.length > 1) out.push(`N${ids[0]}-${ids[ids.length - 1]}`);
  return out;
}

export function dynamicCandidates(k: Kernel, kind: DynamicKind, prefix: string): string[] {
  switch (kind) {
    case 'cgroups':
      return cgroupCandidates(k, prefix);
    case 'governors':
      return availableGovernors(k.fs);
    case 'cpus':
      return cpuCandidates(k);
    case 'nodes':
      return nodeCandidates(k);
  }
}
