/**
 * libvirt CPU tuning, planned from the machine's topology. Pure: no I/O.
 *
 * The vCPU order pairs SMT siblings as consecutive vCPUs, so that the guest's `<topology threads='2'>` describes
 * real sibling pairs: for each physical core that holds VM CPUs (by package, then by its lowest CPU), its VM CPUs
 * in ascending order. On a 5950X with VM CPUs 8-15,24-31 that is 8,24,9,25,…,15,31 — the pinning of the
 * vfio-isolate 0.5.2 README.
 */
import { CpuSet } from '../cpus/cpuset.ts';

/** A physical core: its package and its CPUs (SMT siblings). */
export interface CoreLike {
  package: number;
  cpus: CpuSet;
}

/** What planning needs to know about the machine (the kernel's Machine has all of it). */
export interface CputuneTopology {
  cores: readonly CoreLike[];
  online: CpuSet;
  /** NUMA node → its CPUs. */
  nodes: ReadonlyMap<number, CpuSet>;
  /** L3 cache domains, ordered by their lowest CPU. */
  l3: readonly CpuSet[];
}

export type SchedPolicy = 'fifo' | 'rr';
export const SCHED_POLICIES: readonly SchedPolicy[] = ['fifo', 'rr'];
/** The kernel's numbers for the policies (sched_setscheduler). */
export const SCHED_POLICY_NUMBER: Readonly<Record<SchedPolicy, number>> = { fifo: 1, rr: 2 };

export interface SchedSpec {
  policy: SchedPolicy;
  /** 1..99 */
  priority: number;
}

export interface CputuneRequest {
  vm: CpuSet;
  /** CPUs of the emulator threads and the I/O threads. */
  emulator: CpuSet;
  /** Number of I/O threads to declare and pin (0 = none). */
  iothreads: number;
  vcpuSched?: SchedSpec;
  iothreadSched?: SchedSpec;
}

export interface GuestTopology {
  sockets: number;
  dies: number;
  cores: number;
  threads: number;
}

export interface CputunePlan {
  vcpus: number;
  /** vCPU n runs on CPU order[n]. */
  vcpupin: { vcpu: number; cpu: number }[];
  emulatorpin: CpuSet;
  iothreads: number;
  iothreadpin: { iothread: number; cpus: CpuSet }[];
  vcpusched?: SchedSpec;
  iothreadsched?: SchedSpec;
  topology: GuestTopology;
  /** On NUMA machines: keep the guest's memory on the nodes of the VM CPUs. */
  numatune?: { mode: 'strict'; nodeset: CpuSet };
  warnings: string[];
}

/** The cores that hold CPUs of `cpus`, by package and then by the core's lowest CPU, each with only the CPUs of `cpus`. */
export function coresOf(cores: readonly CoreLike[], cpus: CpuSet): CoreLike[] {
  const out: (CoreLike & { key: number })[] = [];
  let covered = CpuSet.EMPTY;
  for (const c of cores) {
    const mine = c.cpus.intersect(cpus);
    if (mine.isEmpty) continue;
    out.push({ package: c.package, cpus: mine, key: c.cpus.first! });
    covered = covered.union(mine);
  }
  // A CPU no core lists (an offline CPU without topology) counts as a core of its own.
  for (const cpu of cpus.minus(covered))
    out.push({ package: Number.MAX_SAFE_INTEGER, cpus: CpuSet.of([cpu]), key: cpu });
  return out
    .sort((a, b) => a.package - b.package || a.key - b.key)
    .map(({ package: p, cpus: c }) => ({ package: p, cpus: c }));
}

/** The sibling-paired order of the VM CPUs: vCPU n is pinned to order[n]. */
export function vcpuOrder(cores: readonly CoreLike[], vm: CpuSet): number[] {
  return coresOf(cores, vm).flatMap((c) => c.cpus.toArray());
}

/**
 * The guest CPU topology that matches the pinning: threads = VM CPUs per core when every core gives the same
 * number (else 1, with a warning), sockets = packages when they give the same number of cores (else 1).
 */
export function guestTopology(
  cores: readonly CoreLike[],
  vm: CpuSet,
): { topology: GuestTopology; warnings: string[] } {
  const mine = coresOf(cores, vm);
  const warnings: string[] = [];
  const sizes = new Set(mine.map((c) => c.cpus.size));
  let threads = 1;
  if (sizes.size === 1) threads = [...sizes][0]!;
  else {
    const partial = mine.filter((c) => c.cpus.size < Math.max(...sizes)).map((c) => c.cpus.toList());
    warnings.push(
      `the VM CPUs hold only some threads of the cores with CPUs ${partial.join(' ')}: the guest is given 1 thread per core (no SMT); select whole cores (S${vm.toList()}) for sibling pairs`,
    );
  }
  const perPackage = new Map<number, number>();
  for (const c of mine)
    perPackage.set(c.package, (perPackage.get(c.package) ?? 0) + (threads === 1 ? c.cpus.size : 1));
  const counts = new Set(perPackage.values());
  const sockets = perPackage.size > 1 && counts.size === 1 ? perPackage.size : 1;
  const coresTotal = vm.size / threads;
  return { topology: { sockets, dies: 1, cores: coresTotal / sockets, threads }, warnings };
}

/** The default CPUs of the emulator and I/O threads: the last core of the host CPUs (the 0.5.2 README's choice). */
export function defaultEmulatorCpus(cores: readonly CoreLike[], host: CpuSet): CpuSet {
  const hostCores = coresOf(cores, host);
  const byFirst = [...hostCores].sort((a, b) => a.cpus.first! - b.cpus.first!);
  return byFirst.length ? byFirst[byFirst.length - 1]!.cpus : CpuSet.EMPTY;
}

export function planCputune(t: CputuneTopology, req: CputuneRequest): CputunePlan {
  if (req.vm.isEmpty) throw new RangeError('no VM CPUs');
  const order = vcpuOrder(t.cores, req.vm);
  const { topology, warnings } = guestTopology(t.cores, req.vm);
  if (req.emulator.overlaps(req.vm)) {
    warnings.push(
      `the emulator CPUs ${req.emulator.toList()} overlap the VM CPUs (${req.emulator.intersect(req.vm).toList()}): QEMU's own threads will compete with vCPUs`,
    );
  }
  const plan: CputunePlan = {
    vcpus: order.length,
    vcpupin: order.map((cpu, vcpu) => ({ vcpu, cpu })),
    emulatorpin: req.emulator,
    iothreads: req.iothreads,
    iothreadpin: Array.from({ length: req.iothreads }, (_, i) => ({ iothread: i + 1, cpus: req.emulator })),
    topology,
    warnings,
  };
  if (req.vcpuSched) plan.vcpusched = req.vcpuSched;
  if (req.iothreadSched && req.iothreads > 0) plan.iothreadsched = req.iothreadSched;
  const cpuNodes = [...t.nodes.entries()].filter(([, c]) => !c.isEmpty);
  if (cpuNodes.length > 1) {
    const nodeset = CpuSet.of(cpuNodes.filter(([, c]) => c.overlaps(req.vm)).map(([n]) => n));
    plan.numatune = { mode: 'strict', nodeset };
    if (nodeset.size > 1) {
      warnings.push(
        `the VM CPUs span NUMA nodes ${nodeset.toList()}: the guest sees one node and its memory is spread over them; choose the CPUs of one node (e.g. N${nodeset.last}) for local memory`,
      );
    }
  }
  return plan;
}

/** The XML to paste into `virsh edit DOMAIN`: `<vcpu>`, `<iothreads>`, `<cputune>`, `<cpu>`, `<numatune>`. */
export function renderCputuneXml(p: CputunePlan): string {
  const l: string[] = [];
  l.push(`<vcpu placement='static'>${p.vcpus}</vcpu>`);
  if (p.iothreads > 0) l.push(`<iothreads>${p.iothreads}</iothreads>`);
  l.push('<cputune>');
  for (const { vcpu, cpu } of p.vcpupin) l.push(`  <vcpupin vcpu='${vcpu}' cpuset='${cpu}'/>`);
  l.push(`  <emulatorpin cpuset='${p.emulatorpin.toList()}'/>`);
  for (const { iothread, cpus } of p.iothreadpin)
    l.push(`  <iothreadpin iothread='${iothread}' cpuset='${cpus.toList()}'/>`);
  if (p.vcpusched) {
    for (const { vcpu } of p.vcpupin) {
      l.push(
        `  <vcpusched vcpus='${vcpu}' scheduler='${p.vcpusched.policy}' priority='${p.vcpusched.priority}'/>`,
      );
    }
  }
  if (p.iothreadsched) {
    for (const { iothread } of p.iothreadpin) {
      l.push(
        `  <iothreadsched iothreads='${iothread}' scheduler='${p.iothreadsched.policy}' priority='${p.iothreadsched.priority}'/>`,
      );
    }
  }
  l.push('</cputune>');
  const t = p.topology;
  l.push(`<cpu mode='host-passthrough'>`);
  l.push(`  <topology sockets='${t.sockets}' dies='${t.dies}' cores='${t.cores}' threads='${t.threads}'/>`);
  l.push('</cpu>');
  if (p.numatune) {
    l.push('<numatune>');
    l.push(`  <memory mode='${p.numatune.mode}' nodeset='${p.numatune.nodeset.toList()}'/>`);
    l.push('</numatune>');
  }
  return l.join('\n') + '\n';
}

/** The plan as plain JSON data (CPU sets as kernel lists). */
export function cputuneJson(p: CputunePlan): Record<string, unknown> {
  return {
    vcpus: p.vcpus,
    vcpupin: p.vcpupin,
    emulatorpin: p.emulatorpin.toList(),
    iothreads: p.iothreads,
    iothreadpin: p.iothreadpin.map((i) => ({ iothread: i.iothread, cpuset: i.cpus.toList() })),
    ...(p.vcpusched ? { vcpusched: p.vcpusched } : {}),
    ...(p.iothreadsched ? { iothreadsched: p.iothreadsched } : {}),
    topology: p.topology,
    ...(p.numatune ? { numatune: { mode: p.numatune.mode, nodeset: p.numatune.nodeset.toList() } } : {}),
    warnings: p.warnings,
    xml: renderCputuneXml(p),
  };
}
